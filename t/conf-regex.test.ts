import t from 'tap';
import { RegexSyntaxError, regexErrorText, translatePcre } from '../lib/conf/regex.js';

/*
 * PCRE → V8 translation. Error texts are the ones Debian's nginx 1.22
 * (PCRE2) prints for the same patterns (checked by hand with nginx -t).
 */

function re(p: string, caseless = false): RegExp {
  const tr = translatePcre(p, caseless);
  if (tr instanceof RegexSyntaxError) throw new Error(regexErrorText(p, tr));
  return new RegExp(tr.source, tr.flags);
}

function err(p: string): string {
  const tr = translatePcre(p, false);
  return tr instanceof RegexSyntaxError ? regexErrorText(p, tr) : 'ok';
}

t.test('PCRE errors in nginx words', async (t) => {
  t.equal(err('(abc'), 'pcre2_compile() failed: missing closing parenthesis in "(abc"');
  t.equal(err('abc)'), 'pcre2_compile() failed: unmatched closing parenthesis in "abc)" at ")"');
  t.equal(err('a)b('), 'pcre2_compile() failed: unmatched closing parenthesis in "a)b(" at ")b("');
  t.equal(err('*a'), 'pcre2_compile() failed: quantifier does not follow a repeatable item in "*a" at "*a"');
  t.equal(err('a**'), 'pcre2_compile() failed: quantifier does not follow a repeatable item in "a**" at "*"');
  t.equal(err('(a)|*'), 'pcre2_compile() failed: quantifier does not follow a repeatable item in "(a)|*" at "*"');
  t.equal(err('^*'), 'pcre2_compile() failed: quantifier does not follow a repeatable item in "^*" at "*"');
  t.equal(err('a{3}{2}'), 'pcre2_compile() failed: quantifier does not follow a repeatable item in "a{3}{2}" at "}"');
  t.equal(err('a[b'), 'pcre2_compile() failed: missing terminating ] for character class in "a[b"');
  t.equal(err('[]'), 'pcre2_compile() failed: missing terminating ] for character class in "[]"');
  t.equal(err('a{2,1}'), 'pcre2_compile() failed: numbers out of order in {} quantifier in "a{2,1}" at "}"');
  t.equal(err('a{99999}'), 'pcre2_compile() failed: number too big in {} quantifier in "a{99999}" at "}"');
  t.equal(err('[z-a]'), 'pcre2_compile() failed: range out of order in character class in "[z-a]" at "a]"');
  t.equal(err('[\\d-z]'), 'pcre2_compile() failed: invalid range in character class in "[\\d-z]" at "-z]"');
  t.equal(err('(?<n>a)(?<n>b)'), 'pcre2_compile() failed: two named subpatterns have the same name (PCRE2_DUPNAMES not set) in "(?<n>a)(?<n>b)" at "b)"');
  t.equal(err('(?<1a>x)'), 'pcre2_compile() failed: subpattern name must start with a non-digit in "(?<1a>x)" at "1a>x)"');
  t.equal(err('(?<n'), 'pcre2_compile() failed: syntax error in subpattern name (missing terminator?) in "(?<n"');
  t.equal(err('(?<n>'), 'pcre2_compile() failed: missing closing parenthesis in "(?<n>"');
  t.equal(err('\\'), 'pcre2_compile() failed: \\ at end of pattern in "\\"');
  t.equal(err('\\c'), 'pcre2_compile() failed: \\c at end of pattern in "\\c"');
  t.equal(err('a\\ib'), 'pcre2_compile() failed: unrecognized character follows \\ in "a\\ib" at "ib"');
  t.equal(err('a\\ub'), 'pcre2_compile() failed: PCRE2 does not support \\F, \\L, \\l, \\N{name}, \\U, or \\u in "a\\ub" at "b"');
  t.equal(err('(?z)'), 'pcre2_compile() failed: unrecognized character after (? or (?- in "(?z)" at "z)"');
  t.equal(err('\\8'), 'pcre2_compile() failed: reference to non-existent subpattern in "\\8" at "8"');
  t.equal(err('(?<n>a)\\k<m>'), 'pcre2_compile() failed: reference to non-existent subpattern in "(?<n>a)\\k<m>" at "m>"');
  t.equal(err('\\x{100}'), 'pcre2_compile() failed: character code point value in \\x{} or \\o{} is too large in "\\x{100}" at "}"');
  t.equal(err('x(?'), 'pcre2_compile() failed: missing closing parenthesis in "x(?"');
  t.equal(
    err('(?<abcdefghijabcdefghijabcdefghijabc>x)'),
    'pcre2_compile() failed: subpattern name is too long (maximum 32 code units) in "(?<abcdefghijabcdefghijabcdefghijabc>x)" at ">x)"',
  );
});

t.test('what V8 cannot honour is refused, not changed', async (t) => {
  t.equal(err('a++'), 'regex "a++" uses possessive quantifiers, which redis2d does not support');
  t.equal(err('(?>a)'), 'regex "(?>a)" uses atomic groups "(?>", which redis2d does not support');
  t.equal(err('a(?i)b'), 'regex "a(?i)b" uses inline options "(?i" after the start of the pattern, which redis2d does not support');
  t.equal(err('(?x)a b'), 'regex "(?x)a b" uses the inline option "(?x)", which redis2d does not support');
  t.equal(err('\\p{L}'), 'regex "\\p{L}" uses Unicode properties "\\p", which redis2d does not support');
  t.equal(err('(?R)'), 'regex "(?R)" uses recursion "(?R", which redis2d does not support');
  const ci = translatePcre('caf\xe9', true);
  t.ok(ci instanceof RegexSyntaxError && regexErrorText('caf\xe9', ci) === 'regex "caf\xe9" uses a byte above 0x7f in a caseless match, which redis2d does not support',
    'V8 would fold latin1 case where PCRE2 does not');
  t.equal(err('caf\xe9'), 'ok', 'case-sensitive: fine');
  t.ok(re('^caf\xe9$').test('caf\xe9'));
  t.notOk(re('^caf\xe9$').test('caf\xc9'));
  t.equal(err('(*UTF)a'), 'regex "(*UTF)a" uses backtracking control verbs "(*", which redis2d does not support');
});

t.test('named groups in all three spellings', async (t) => {
  for (const p of ['^/(?<id>\\d+)$', '^/(?P<id>\\d+)$', "^/(?'id'\\d+)$"]) {
    const tr = translatePcre(p, false);
    t.notOk(tr instanceof RegexSyntaxError);
    if (tr instanceof RegexSyntaxError) continue;
    t.same(tr.names, ['id']);
    t.same(tr.nameIndex, [1]);
    t.equal(tr.captures, 1);
    t.equal(new RegExp(tr.source, tr.flags).exec('/42')!.groups!['id'], '42');
  }
  const tr = translatePcre('(a)(?:b)(?<x>c)(?=d)(e)', false);
  t.ok(!(tr instanceof RegexSyntaxError) && tr.captures === 3 && tr.nameIndex[0] === 2, 'capture numbering');
  t.ok(re('(?P<w>a)(?P=w)').test('aa'), '(?P=name) back reference');
});

t.test('PCRE meanings kept on V8', async (t) => {
  t.ok(re('(?i)^/ABC$').test('/abc'), 'leading (?i)');
  t.ok(re('^/abc$', true).test('/ABC'), '~* caseless');
  t.ok(re('a$').test('a\n'), '$ matches before a final newline');
  t.notOk(re('a$').test('a\nb'));
  t.ok(re('^a.c$').test('a\rc'), '. matches CR as in PCRE');
  t.notOk(re('^a.c$').test('a\nc'), '. does not match LF');
  t.ok(re('(?s)^a.c$').test('a\nc'), '(?s)');
  t.ok(re('(?m)^b$').test('a\nb\nc'), '(?m)');
  t.notOk(re('^\\s$').test('\xa0'), '\\s is ASCII whitespace only');
  t.ok(re('^\\s$').test('\x0b'), '\\s includes VT (PCRE2)');
  t.ok(re('^\\S$').test('\xa0'));
  t.ok(re('^[\\S]$').test('\xa0'), '\\S in a class');
  t.ok(re('^\\d+\\w*$').test('12ab_'));
  t.ok(re('^\\Qa.b*\\E$').test('a.b*'), '\\Q..\\E literal');
  t.notOk(re('^\\Qa.b\\E$').test('axb'));
  t.ok(re('^[[:alpha:][:digit:]]+$').test('ab12'), 'POSIX classes');
  t.notOk(re('^[[:alpha:]]+$').test('ab1'));
  t.ok(re('^[]a]+$').test(']a]'), '] first in a class is literal');
  t.ok(re('^[^]a]$').test('b'));
  t.ok(re('\\Aab\\z').test('ab'));
  t.notOk(re('\\Aab\\z').test('ab\n'));
  t.ok(re('\\Aab\\Z').test('ab\n'));
  t.ok(re('^\\x41\\x{42}\\101$').test('ABA'), '\\101 with no groups is octal, as PCRE reads it');
});

t.test('misc accepted forms', async (t) => {
  t.equal(err('x{,3}'), 'ok', 'not a quantifier: literal');
  t.ok(re('^x{,3}$').test('x{,3}'));
  t.ok(re('^a{2}b{1,}c{1,2}?$').test('aabcc'));
  t.ok(re('a(?#comment)b').test('ab'));
  t.ok(re('^/(\\w+)/\\1$').test('/ab/ab'));
  t.ok(re('^\\x41\\x{42}\\103$').test('ABC'), 'hex and octal escapes');
  t.ok(re('^\\0103$').test('\x083'), '\\0 takes two more octal digits at most');
  t.ok(re('^\\/a\\-b$').test('/a-b'));
});
