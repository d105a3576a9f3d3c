import t from 'tap';
import {
  decodeBase64,
  decodeBase64url,
  decodeHex,
  encodeBase64,
  encodeBase64url,
  encodeHex,
  escapeUri,
  hashKeyLc,
  quoteJson,
  quotePgsql,
  quoteSql,
  unescapeUri,
} from '../lib/modules/set_misc/codecs.js';
import { hashedUpstreamPick } from '../lib/modules/set_misc/filters.js';
import { DEFAULT_BASE32_ALPHABET, decodeBase32, decodeTable, encodeBase32 } from '../lib/modules/set_misc/base32.js';
import { strftimeGmt, strftimeLocal } from '../lib/modules/set_misc/time.js';
import { parsePosixTz } from '../lib/modules/set_misc/tz.js';

/*
 * set_misc's transforms without a server (the differential tests in
 * setmisc-diff.test.ts hold them to Debian nginx; these pin the rules so a
 * machine without nginx still checks them). Byte strings are latin1.
 */

const utf8 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');

t.test('set_unescape_uri: the module patched decoder', async (t) => {
  t.equal(unescapeUri('a+b%20c'), 'a b c', '+ is a space, %20 too');
  t.equal(unescapeUri('%2B%2b'), '++', 'hex digits in either case');
  t.equal(unescapeUri('%zz'), 'zz', '% then a non-hex byte: the % goes, the byte stays');
  t.equal(unescapeUri('%4z'), '', '%X then a non-hex byte: all three go');
  t.equal(unescapeUri('x%4'), 'x', 'a truncated escape at the end goes');
  t.equal(unescapeUri('x%'), 'x');
  t.equal(unescapeUri('%%41'), '%41', 'an invalid escape does not start another');
  t.equal(unescapeUri('%+'), '+', 'a + right after % stays a +');
  t.equal(unescapeUri('%C3%A9'), utf8('é'), 'UTF-8 bytes come out as bytes');
  t.equal(unescapeUri(''), '');
});

t.test('set_escape_uri: which bytes, uppercase hex', async (t) => {
  t.equal(escapeUri('a b'), 'a%20b');
  t.equal(escapeUri('"#%&+/:;<=>?'), '%22%23%25%26%2B%2F%3A%3B%3C%3D%3E%3F');
  t.equal(escapeUri('[\\]^{}'), '%5B%5C%5D%5E%7B%7D');
  t.equal(escapeUri("!$'()*,-.@_`|~AZaz09"), "!$'()*,-.@_`|~AZaz09", 'left alone');
  t.equal(escapeUri('\x00\x1f\x7f\x80\xff'), '%00%1F%7F%80%FF');
  t.equal(escapeUri(utf8('é')), '%C3%A9');
  t.equal(escapeUri(''), '');
  for (let c = 0; c < 256; c++) {
    const s = String.fromCharCode(c);
    t.equal(unescapeUri(escapeUri(s)), c === 0x2b ? '+' : s, `round trip of byte ${c}`);
  }
});

t.test('quoting', async (t) => {
  t.equal(quoteSql(''), "''");
  t.equal(quoteSql(`a'b"c\\d$e\x00\b\n\r\t\x1a`), `'a\\'b\\"c\\\\d\\$e\\0\\b\\n\\r\\t\\Z'`);
  t.equal(quoteSql(utf8("é'")), `'${utf8('é')}\\''`, 'high bytes untouched');
  t.equal(quoteJson(''), 'null');
  t.equal(quoteJson('a"b\\c\r\n\t\f\b\x01\x1f'), '"a\\"b\\\\c\\r\\n\\t\\f\\b\\u0001\\u001f"');
  t.equal(quoteJson(`/'$${utf8('中')}`), `"/'$${utf8('中')}"`, 'no escaping of / or high bytes');
});

t.test('base64 and hex as nginx decodes them', async (t) => {
  t.equal(encodeBase64('hello'), 'aGVsbG8=');
  t.equal(encodeBase64(''), '');
  t.equal(decodeBase64('aGVsbG8='), 'hello');
  t.equal(decodeBase64('aGVsbG8'), 'hello', 'padding optional');
  t.equal(decodeBase64('aGVsbG8=trailing'), 'hello', 'stops at =');
  t.equal(decodeBase64('YQ'), 'a');
  t.equal(decodeBase64('a'), undefined, 'a lone sextet');
  t.equal(decodeBase64('aGVsbG'), 'hell', 'six sextets: four bytes');
  t.equal(decodeBase64('@@@@'), undefined, 'outside the alphabet');
  t.equal(decodeBase64('YQ-_'), undefined, 'base64url letters are invalid here');
  t.equal(decodeBase64('===='), '');
  t.equal(encodeHex('\x00\xffA'), '00ff41', 'lowercase');
  t.equal(decodeHex('48656c6C6F'), 'Hello', 'either case');
  t.equal(decodeHex('4'), undefined, 'odd length');
  t.equal(decodeHex('0g'), undefined);
  t.equal(decodeHex(''), '');
});

t.test('set_hashed_upstream: ngx_hash_key_lc modulo the members', async (t) => {
  t.equal(hashKeyLc('abc'), (97 * 31 + 98) * 31 + 99);
  t.equal(hashKeyLc('ABC'), hashKeyLc('abc'), 'ASCII case folded');
  t.equal(hashKeyLc(utf8('Ä')), hashKeyLc(utf8('Ä')), 'high bytes as they are');
  t.not(hashKeyLc(utf8('Ä')), hashKeyLc(utf8('ä')), 'only ASCII letters fold (ngx_tolower)');
  // 32-bit wrap-around: the low 32 bits of nginx's 64-bit hash
  let h = 0n;
  const long = 'a-long-key-that-overflows-32-bits-many-times-over';
  for (const ch of long) h = (h * 31n + BigInt(ch.toLowerCase().charCodeAt(0))) & 0xffffffffffffffffn;
  t.equal(hashKeyLc(long), Number(h & 0xffffffffn));
  const list = { name: 'l', buckets: ['a', 'b', 'c'] };
  t.equal(hashedUpstreamPick(list, 'abc'), ['a', 'b', 'c'][hashKeyLc('abc') % 3]);
  t.equal(hashedUpstreamPick({ name: 'one', buckets: ['x'] }, 'anything'), 'x');
  t.equal(hashedUpstreamPick({ name: 'none', buckets: [] }, 'k'), '');
});

t.test('strftime in the C locale, UTC', async (t) => {
  const d = new Date(Date.UTC(2024, 0, 7, 5, 4, 3)); // a Sunday
  t.equal(strftimeGmt('%a, %d %b %Y %H:%M:%S GMT', d), 'Sun, 07 Jan 2024 05:04:03 GMT');
  t.equal(strftimeGmt('%A %B %e %j %u %w %U %W %V %G %y %C %p %I %Z %z %%', d), 'Sunday January  7 007 7 0 01 01 01 2024 24 20 AM 05 GMT +0000 %');
  t.equal(strftimeGmt('%F %T %D %R %s', d), `2024-01-07 05:04:03 01/07/24 05:04 ${d.getTime() / 1000}`);
  t.equal(strftimeGmt('%-d|%_m|%^a|%10B|%05y', d), '7| 1|SUN|   January|00024');
  t.equal(strftimeGmt('%Q %', d), '%Q %', 'unknown conversions copied');
  t.equal(strftimeGmt('x'.repeat(255), d), 'x'.repeat(255));
  t.equal(strftimeGmt('x'.repeat(256), d), undefined, 'no room for the NUL: strftime returns 0');
});

t.test('base32: the module coding, padding and alphabets', async (t) => {
  const hex = decodeTable(DEFAULT_BASE32_ALPHABET);
  const RFC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const rfc = decodeTable(RFC);
  t.equal(encodeBase32('hello', true, DEFAULT_BASE32_ALPHABET), 'd1imor3f');
  t.same(['a', 'ab', 'abc', 'abcd', 'abcde'].map((s) => encodeBase32(s, true, DEFAULT_BASE32_ALPHABET)), ['c4======', 'c5h0====', 'c5h66===', 'c5h66p0=', 'c5h66p35'], '1-4 byte tails pad to 8');
  t.equal(encodeBase32('abcd', false, DEFAULT_BASE32_ALPHABET), 'c5h66p0', 'no padding');
  t.equal(encodeBase32('hello!', true, RFC), 'NBSWY3DPEE======', 'RFC 4648 with its alphabet');
  t.equal(encodeBase32('', true, RFC), '');
  t.equal(decodeBase32('c5h66p35', hex), 'abcde');
  t.equal(decodeBase32('c5h66p0=', hex), 'abcd', 'stops at =');
  t.equal(decodeBase32('c5h66p0', hex), 'abcd', 'padding optional');
  t.equal(decodeBase32('NBSWY3DPEE', rfc), 'hello!');
  for (const n of [1, 3, 6]) t.equal(decodeBase32('0'.repeat(8 + n), hex), undefined, `${n} digits over 8: no whole bytes`);
  t.equal(decodeBase32('!!!!!!!!', hex), '\0\0\0\0\0', 'bytes outside the alphabet decode as 0 (nginx never refuses them)');
  t.equal(decodeBase32('C5H66P35', hex), '\x01@c\0e', 'case matters: upper-case letters are outside [0-9a-v], so 0');
  for (let n = 0; n < 12; n++) {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode((i * 97 + 13) & 255);
    t.equal(decodeBase32(encodeBase32(s, n % 2 === 0, RFC), rfc), s, `round trip of ${n} bytes`);
  }
});

t.test('base64url and pgsql quoting', async (t) => {
  t.equal(encodeBase64url('\xff\xfe\xfd?'), '__79Pw', 'no padding, - and _');
  t.equal(decodeBase64url('__79Pw'), '\xff\xfe\xfd?');
  t.equal(decodeBase64url('Xy1hYg=='), '_-ab');
  t.equal(decodeBase64url('+/'), undefined, '+ and / are not in the URL alphabet');
  t.equal(decodeBase64url('a'), undefined);
  t.equal(quotePgsql(''), "''", 'empty: no E');
  t.equal(quotePgsql("it's"), "E'it\\'s'");
  t.equal(quotePgsql(utf8('é')), `E'${utf8('é')}'`, 'valid UTF-8 as is');
  t.equal(quotePgsql("\xff'"), "E'\\\\377\\''", 'not UTF-8: high bytes as \\\\ooo');
  t.equal(quotePgsql('\xc3'), "E'\\\\303'", 'a truncated sequence');
  t.equal(quotePgsql('\xc0\x80'), `E'\xc0\x80'`, 'the module checks only the continuation byte of a 2-byte sequence');
  t.equal(quotePgsql('\xf8\x80\x80\x80\x80'), "E'\\\\370\\\\200\\\\200\\\\200\\\\200'", '5-byte sequences are refused');
});

t.test('strftime on local time; zone names from the TZ rule', async (t) => {
  t.same(parsePosixTz('CET-1CEST,M3.5.0,M10.5.0/3'), { std: 'CET', stdOff: 3600, dst: 'CEST' });
  t.same(parsePosixTz('<+04>-4'), { std: '+04', stdOff: 14400, dst: undefined });
  t.same(parsePosixTz('EST5EDT,M3.2.0,M11.1.0'), { std: 'EST', stdOff: -18000, dst: 'EDT' });
  t.same(parsePosixTz('<+0530>-5:30'), { std: '+0530', stdOff: 19800, dst: undefined });
  t.equal(parsePosixTz('UTC'), null, 'a name without an offset is no rule');
  const d = new Date(Date.UTC(2024, 6, 15, 12, 30, 0));
  const local = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')} ${String(d.getHours()).padStart(2, '0')}`;
  t.equal(strftimeLocal('%Y-%m-%d %H', d), local, 'the process time zone');
  const off = -d.getTimezoneOffset();
  const z = `${off < 0 ? '-' : '+'}${String(Math.floor(Math.abs(off) / 60)).padStart(2, '0')}${String(Math.abs(off) % 60).padStart(2, '0')}`;
  t.equal(strftimeLocal('%z', d), z, '%z: the local offset');
  t.equal(strftimeLocal('%s', d), String(d.getTime() / 1000));
});
