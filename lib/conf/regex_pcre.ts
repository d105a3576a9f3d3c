/*
 * The PCRE → V8 pattern translator behind lib/conf/regex.ts: one pass over
 * the pattern, PCRE2's error wording and offsets for the common mistakes.
 */

export interface Translation {
  source: string;
  flags: string;
  captures: number;
  names: string[];
  nameIndex: number[];
}

/** A PCRE2 compile error: message and offset into the pattern. */
export class RegexSyntaxError {
  constructor(
    readonly msg: string,
    readonly offset: number,
    /** our own refusal (not PCRE's wording) */
    readonly unsupported = false,
  ) {}
}

const SPACE = '\\t\\n\\x0b\\f\\r ';
const VSPACE = '\\n\\x0b\\f\\r\\x85';
const HSPACE = '\\t \\xa0';
const POSIX: Record<string, string> = {
  alpha: 'A-Za-z', digit: '0-9', alnum: 'A-Za-z0-9', upper: 'A-Z', lower: 'a-z', space: SPACE,
  punct: '!-\\/:-@\\[-`{-~', xdigit: '0-9A-Fa-f', word: 'A-Za-z0-9_', blank: ' \\t',
  cntrl: '\\x00-\\x1f\\x7f', print: ' -~', graph: '!-~', ascii: '\\x00-\\x7f',
};
const NAME_CHAR = /[A-Za-z0-9_]/;

function hex2(c: number): string {
  return '\\x' + c.toString(16).padStart(2, '0');
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

/** One escape's meaning: a single character (code) or a class text. */
interface Esc {
  /** the character, when the escape stands for exactly one */
  code: number | undefined;
  /** JS text outside a class */
  out: string;
  /** JS text inside a class (undefined: not allowed there) */
  inClass: string | undefined;
  /** index after the escape */
  next: number;
}

/** Translate; returns the error on failure. */
export function translatePcre(p: string, caseless: boolean): Translation | RegexSyntaxError {
  try {
    return new Translator(p, caseless).run();
  } catch (e) {
    if (e instanceof RegexSyntaxError) return e;
    throw e;
  }
}

class Translator {
  private i = 0;
  private out = '';
  private flagI: boolean;
  private flagS = false;
  private flagM = false;
  private captures = 0;
  /** offset of the first byte >= 0x80 the pattern names (V8 folds latin1 case, PCRE2 does not) */
  private highAt = -1;
  private readonly names: string[] = [];
  private readonly nameIndex: number[] = [];
  /** open groups: offset of `(` */
  private readonly stack: number[] = [];
  /** backreferences to check once all groups are known */
  private readonly refs: Array<{ n: number; name: string | undefined; at: number }> = [];

  constructor(private readonly p: string, caseless: boolean) {
    this.flagI = caseless;
  }

  private fail(msg: string, at: number): never {
    throw new RegexSyntaxError(msg, at);
  }

  private unsupported(what: string, at: number): never {
    throw new RegexSyntaxError(what, at, true);
  }

  run(): Translation {
    const p = this.p;
    this.leadingOptions();
    // repeatable: the previous item may take a quantifier
    let repeatable = false;
    while (this.i < p.length) {
      const c = p[this.i]!;
      const at = this.i;
      switch (c) {
        case '\\': {
          if (p[this.i + 1] === 'Q') {
            this.quoted();
            repeatable = true;
            break;
          }
          if (p[this.i + 1] === 'E') {
            this.i += 2;
            break;
          }
          const e = this.escape(false);
          this.out += e.out;
          this.i = e.next;
          repeatable = !(e.out.startsWith('(?=') || e.out.startsWith('(?!') || e.out.startsWith('(?<!') || e.out === '^' || e.out === '\\b' || e.out === '\\B');
          break;
        }
        case '[':
          this.charClass();
          repeatable = true;
          break;
        case '(':
          this.openGroup();
          repeatable = false;
          break;
        case ')':
          if (this.stack.length === 0) this.fail('unmatched closing parenthesis', at);
          this.stack.pop();
          this.out += ')';
          this.i++;
          repeatable = true;
          break;
        case '|':
          this.out += '|';
          this.i++;
          repeatable = false;
          break;
        case '*':
        case '+':
        case '?':
          if (!repeatable) this.fail('quantifier does not follow a repeatable item', at);
          this.out += c;
          this.i++;
          this.quantifierSuffix();
          repeatable = false;
          break;
        case '{': {
          const q = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(at));
          if (!q) {
            this.out += '\\{';
            this.i++;
            repeatable = true;
            break;
          }
          const end = at + q[0].length - 1;
          if (!repeatable) this.fail('quantifier does not follow a repeatable item', end);
          const lo = Number(q[1]);
          const hi = q[3] ? Number(q[3]) : lo;
          if (lo > 65535 || hi > 65535) this.fail('number too big in {} quantifier', end);
          if (q[3] && hi < lo) this.fail('numbers out of order in {} quantifier', end);
          this.out += q[0];
          this.i = end + 1;
          this.quantifierSuffix();
          repeatable = false;
          break;
        }
        case '.':
          this.out += this.flagS ? '[\\s\\S]' : '[^\\n]';
          this.i++;
          repeatable = true;
          break;
        case '^':
          this.out += this.flagM ? '(?<![^\\n])' : '^';
          this.i++;
          repeatable = false;
          break;
        case '$':
          // PCRE's `$` also matches before a final newline
          this.out += this.flagM ? '(?=\\n|(?![\\s\\S]))' : '(?=\\n?(?![\\s\\S]))';
          this.i++;
          repeatable = false;
          break;
        case '}':
        case ']':
        case '/':
          this.out += '\\' + c;
          this.i++;
          repeatable = true;
          break;
        default:
          if (c.charCodeAt(0) >= 0x80) this.high(at);
          this.out += c;
          this.i++;
          repeatable = true;
      }
    }
    if (this.stack.length) this.fail('missing closing parenthesis', p.length);
    if (this.flagI && this.highAt !== -1) this.unsupported('a byte above 0x7f in a caseless match', this.highAt);
    for (const r of this.refs) {
      if (r.name !== undefined ? !this.names.includes(r.name) : r.n > this.captures) {
        this.fail('reference to non-existent subpattern', r.at);
      }
    }
    return {
      source: this.out,
      flags: this.flagI ? 'i' : '',
      captures: this.captures,
      names: this.names,
      nameIndex: this.nameIndex,
    };
  }

  /** `(?i)`, `(?s)`, `(?m)`, `(?is)`... at the very start set options for all. */
  private leadingOptions(): void {
    for (;;) {
      const m = /^\(\?([a-zA-Z]+)\)/.exec(this.p.slice(this.i));
      if (!m || !/^[imnsxJUX]+$/.test(m[1]!)) return;
      for (const f of m[1]!) {
        if (f === 'i') this.flagI = true;
        else if (f === 's') this.flagS = true;
        else if (f === 'm') this.flagM = true;
        else if ('xnJUX'.includes(f)) this.unsupported(`the inline option "(?${f})"`, this.i);
        else this.fail('unrecognized character after (? or (?-', this.i + 2 + m[1]!.indexOf(f));
      }
      this.i += m[0].length;
    }
  }

  private high(at: number): void {
    if (this.highAt === -1) this.highAt = at;
  }

  /** after a quantifier: `?` lazy is fine, `+` possessive is refused */
  private quantifierSuffix(): void {
    const n = this.p[this.i];
    if (n === '?') {
      this.out += '?';
      this.i++;
    } else if (n === '+') {
      this.unsupported('possessive quantifiers', this.i);
    } else if (n === '*' || n === '{' && /^\{\d+(,\d*)?\}/.test(this.p.slice(this.i))) {
      const m = /^\{\d+(,\d*)?\}/.exec(this.p.slice(this.i));
      this.fail('quantifier does not follow a repeatable item', m ? this.i + m[0].length - 1 : this.i);
    }
  }

  /** `\Q...\E`: everything between is literal */
  private quoted(): void {
    const p = this.p;
    let j = this.i + 2;
    const end = p.indexOf('\\E', j);
    const stop = end === -1 ? p.length : end;
    for (; j < stop; j++) {
      if (p.charCodeAt(j) >= 0x80) this.high(j);
      this.out += literal(p.charCodeAt(j));
    }
    this.i = end === -1 ? p.length : end + 2;
  }

  private openGroup(): void {
    const p = this.p;
    const at = this.i;
    this.stack.push(at);
    if (p[at + 1] === '*' && /^[A-Z:]/.test(p[at + 2] ?? '')) this.unsupported('backtracking control verbs "(*"', at);
    if (p[at + 1] !== '?') {
      this.captures++;
      this.out += '(';
      this.i++;
      return;
    }
    const k = p[at + 2];
    if (k === undefined) this.fail('missing closing parenthesis', p.length);
    if (k === ':' || k === '=' || k === '!') {
      this.out += '(?' + k;
      this.i = at + 3;
      return;
    }
    if (k === '<' && (p[at + 3] === '=' || p[at + 3] === '!')) {
      this.out += '(?<' + p[at + 3];
      this.i = at + 4;
      return;
    }
    if (k === '#') {
      const end = p.indexOf(')', at);
      if (end === -1) this.fail('missing ) after (?# comment', p.length);
      this.stack.pop();
      this.i = end + 1;
      return;
    }
    if (k === '<' || k === "'" || (k === 'P' && p[at + 3] === '<')) {
      const start = k === 'P' ? at + 4 : at + 3;
      this.namedGroup(start, k === "'" ? "'" : '>');
      return;
    }
    if (k === 'P' && p[at + 3] === '=') {
      const end = p.indexOf(')', at);
      if (end === -1) this.fail('syntax error in subpattern name (missing terminator?)', p.length);
      const name = p.slice(at + 4, end);
      this.refs.push({ n: 0, name, at: at + 4 });
      this.stack.pop();
      this.out += `\\k<${name}>`;
      this.i = end + 1;
      return;
    }
    if (k === '>') this.unsupported('atomic groups "(?>"', at);
    if (k === '|') this.unsupported('branch reset groups "(?|"', at);
    if (k === '(') this.unsupported('conditional groups "(?("', at);
    if (k === 'R' || k === '&' || k === '+' || isDigit(k) || (k === 'P' && p[at + 3] === '>')) {
      this.unsupported('recursion "(?' + k + '"', at);
    }
    if (/[a-zA-Z^-]/.test(k)) {
      const m = /^[a-zA-Z^-]*/.exec(p.slice(at + 2))![0];
      const bad = [...m].findIndex((f) => !'imnsxJUX^-'.includes(f));
      if (bad !== -1) this.fail('unrecognized character after (? or (?-', at + 2 + bad);
      this.unsupported(`inline options "(?${m}" after the start of the pattern`, at);
    }
    this.fail('unrecognized character after (? or (?-', at + 2);
  }

  private namedGroup(start: number, term: string): void {
    const p = this.p;
    let j = start;
    if (isDigit(p[j])) this.fail('subpattern name must start with a non-digit', j);
    while (j < p.length && NAME_CHAR.test(p[j]!)) j++;
    const name = p.slice(start, j);
    if (name.length > 32) this.fail('subpattern name is too long (maximum 32 code units)', j);
    if (p[j] !== term || name.length === 0) {
      if (j >= p.length) this.fail('syntax error in subpattern name (missing terminator?)', j);
      this.fail(name.length === 0 ? 'subpattern name expected' : 'syntax error in subpattern name (missing terminator?)', j);
    }
    if (this.names.includes(name)) this.fail('two named subpatterns have the same name (PCRE2_DUPNAMES not set)', j + 1);
    this.captures++;
    this.names.push(name);
    this.nameIndex.push(this.captures);
    this.out += `(?<${name}>`;
    this.i = j + 1;
  }

  private charClass(): void {
    const p = this.p;
    let j = this.i + 1;
    let out = '[';
    if (p[j] === '^') {
      out += '^';
      j++;
    }
    // a `]` first is a literal in PCRE
    if (p[j] === ']') {
      out += '\\]';
      j++;
    }
    // the previous single character, for ranges
    let prev: number | undefined;
    let prevAt = 0;
    for (;;) {
      if (j >= p.length) this.fail('missing terminating ] for character class', p.length);
      const c = p[j]!;
      if (c === ']') break;
      if (c === '[' && (p[j + 1] === ':' || p[j + 1] === '.' || p[j + 1] === '=')) {
        const m = /^\[:(\^?)([a-z]+):\]/.exec(p.slice(j));
        if (!m) {
          if (p[j + 1] === ':') this.fail('unknown POSIX class name', j);
          this.unsupported('POSIX collating elements', j);
        }
        const set = POSIX[m[2]!];
        if (set === undefined) this.fail('unknown POSIX class name', j);
        if (m[1]) this.unsupported('negated POSIX classes', j);
        out += set;
        j += m[0].length;
        prev = undefined;
        continue;
      }
      if (c === '-' && prev !== undefined && p[j + 1] !== ']' && j + 1 < p.length) {
        // a range: prev - next
        const endAt = j + 1;
        let endCode: number;
        let endText: string;
        if (p[endAt] === '\\') {
          this.i = endAt;
          const e = this.escape(true);
          if (e.code === undefined) this.fail('invalid range in character class', j);
          endCode = e.code;
          endText = e.inClass!;
          j = e.next;
        } else if (p[endAt] === '[' && p[endAt + 1] === ':') {
          this.fail('invalid range in character class', j);
        } else {
          endCode = p.charCodeAt(endAt);
          if (endCode >= 0x80) this.high(endAt);
          endText = literal(endCode);
          j = endAt + 1;
        }
        if (endCode < prev) this.fail('range out of order in character class', j - 1);
        out += '-' + endText;
        prev = undefined;
        continue;
      }
      if (c === '\\') {
        this.i = j;
        const e = this.escape(true);
        if (e.inClass === undefined) this.fail('escape sequence is invalid in character class', e.next - 1);
        if (e.code === undefined && p[e.next] === '-' && p[e.next + 1] !== ']' && e.next + 1 < p.length) {
          this.fail('invalid range in character class', e.next);
        }
        out += e.inClass;
        prev = e.code;
        prevAt = j;
        j = e.next;
        continue;
      }
      if (p.charCodeAt(j) >= 0x80) this.high(j);
      out += literal(p.charCodeAt(j));
      prev = p.charCodeAt(j);
      prevAt = j;
      j++;
    }
    void prevAt;
    this.out += out + ']';
    this.i = j + 1;
  }

  /** Read the escape at this.i (a backslash). */
  private escape(inClass: boolean): Esc {
    const p = this.p;
    const at = this.i;
    const c = p[at + 1];
    const one = (code: number, next: number): Esc => {
      if (code >= 0x80) this.high(at);
      return { code, out: hex2(code), inClass: hex2(code), next };
    };
    const cls = (out: string, inside: string | undefined): Esc => ({ code: undefined, out, inClass: inside, next: at + 2 });
    if (c === undefined) this.fail('\\ at end of pattern', p.length);
    switch (c) {
      case 'd': case 'D': case 'w': case 'W':
        return cls('\\' + c, '\\' + c);
      case 's': return cls(`[${SPACE}]`, SPACE);
      case 'S': return cls(`[^${SPACE}]`, '\\S\\xa0');
      case 'h': return cls(`[${HSPACE}]`, HSPACE);
      case 'H': return cls(`[^${HSPACE}]`, undefined);
      case 'v': return cls(`[${VSPACE}]`, VSPACE);
      case 'V': return cls(`[^${VSPACE}]`, undefined);
      case 'R': return cls(`(?:\\r\\n|[${VSPACE}])`, undefined);
      case 'N':
        if (p[at + 2] === '{') this.fail('PCRE2 does not support \\F, \\L, \\l, \\N{name}, \\U, or \\u', at + 2);
        return cls('[^\\n]', undefined);
      case 'b': return inClass ? one(8, at + 2) : cls('\\b', undefined);
      case 'B': return cls('\\B', undefined);
      case 'A': return cls('(?<![\\s\\S])', undefined);
      case 'z': return cls('(?![\\s\\S])', undefined);
      case 'Z': return cls('(?=\\n?(?![\\s\\S]))', undefined);
      case 'G': this.unsupported('"\\G"', at);
      case 'K': this.unsupported('"\\K"', at);
      case 'X': case 'C': this.unsupported(`"\\${c}"`, at);
      case 'p': case 'P': this.unsupported('Unicode properties "\\p"', at);
      case 'F': case 'L': case 'l': case 'U': case 'u':
        this.fail('PCRE2 does not support \\F, \\L, \\l, \\N{name}, \\U, or \\u', at + 2);
      case 'a': return one(7, at + 2);
      case 'e': return one(0x1b, at + 2);
      case 'f': return one(12, at + 2);
      case 'n': return one(10, at + 2);
      case 'r': return one(13, at + 2);
      case 't': return one(9, at + 2);
      case 'c': {
        const x = p[at + 2];
        if (x === undefined) this.fail('\\c at end of pattern', p.length);
        const code = x.toUpperCase().charCodeAt(0) ^ 0x40;
        return one(code, at + 3);
      }
      case 'x': {
        if (p[at + 2] === '{') {
          const m = /^\{([0-9a-fA-F]+)\}/.exec(p.slice(at + 2));
          if (m) {
            const code = parseInt(m[1]!, 16);
            if (code > 0xff) this.fail('character code point value in \\x{} or \\o{} is too large', at + 2 + m[0].length - 1);
            return one(code, at + 2 + m[0].length);
          }
        }
        const m = /^[0-9a-fA-F]{0,2}/.exec(p.slice(at + 2))![0];
        return one(m ? parseInt(m, 16) : 0, at + 2 + m.length);
      }
      case 'o': {
        const m = /^\{([0-7]+)\}/.exec(p.slice(at + 2));
        if (!m) this.fail('missing opening brace after \\o', at + 2);
        const code = parseInt(m[1]!, 8);
        if (code > 0xff) this.fail('character code point value in \\x{} or \\o{} is too large', at + 2 + m[0].length - 1);
        return one(code, at + 2 + m[0].length);
      }
      case 'g': case 'k': {
        if (inClass) this.fail('escape sequence is invalid in character class', at + 2);
        const m = c === 'k'
          ? /^(?:<([^>]*)>|'([^']*)'|\{([^}]*)\})/.exec(p.slice(at + 2))
          : /^(?:\{(-?\d+|[A-Za-z_]\w*)\}|<([^>]*)>|(-?\d+))/.exec(p.slice(at + 2));
        if (!m) this.fail(c === 'k' ? '\\k is not followed by a braced, angle-bracketed, or quoted name' : 'a numbered reference must not be zero', at + 2);
        const ref = (m[1] ?? m[2] ?? m[3])!;
        const next = at + 2 + m[0].length;
        if (/^-?\d+$/.test(ref)) {
          let n = Number(ref);
          if (n < 0) n = this.captures + 1 + n;
          if (n <= 0) this.fail('a numbered reference must not be zero', at + 2);
          this.refs.push({ n, name: undefined, at: at + 2 });
          return cls(`(?:\\${n})`, undefined);
        }
        this.refs.push({ n: 0, name: ref, at: at + 3 });
        return { code: undefined, out: `\\k<${ref}>`, inClass: undefined, next };
      }
      default:
        break;
    }
    if (c >= '0' && c <= '9') {
      const digits = /^\d+/.exec(p.slice(at + 1))![0];
      // `\0`, and numbers in a class, are octal; otherwise a backreference
      if (c === '0' || inClass) {
        const oct = /^[0-7]{1,3}/.exec(p.slice(at + 1));
        if (!oct) return { code: c.charCodeAt(0), out: c, inClass: c, next: at + 2 };
        return one(parseInt(oct[0], 8) & 0xff, at + 1 + oct[0].length);
      }
      const n = Number(digits);
      // PCRE: \NN not starting with 8/9, with fewer groups so far, is octal
      if (n >= 10 && c < '8' && n > this.captures) {
        const oct = /^[0-7]{1,3}/.exec(p.slice(at + 1))!;
        return one(parseInt(oct[0], 8) & 0xff, at + 1 + oct[0].length);
      }
      this.refs.push({ n, name: undefined, at: at + 1 });
      return cls(`(?:\\${n})`, undefined);
    }
    if (/[A-Za-z]/.test(c)) this.fail('unrecognized character follows \\', at + 1);
    // any other escaped character is itself
    const code = c.charCodeAt(0);
    if (code >= 0x80) this.high(at + 1);
    return { code, out: literal(code), inClass: literal(code), next: at + 2 };
  }
}

/** A character as a JS regex literal (escaping what V8 reads specially). */
function literal(code: number): string {
  const ch = String.fromCharCode(code);
  if ('\\^$.|?*+()[]{}/-'.includes(ch)) return '\\' + ch;
  if (code < 0x20 || code >= 0x7f) return hex2(code);
  return ch;
}
