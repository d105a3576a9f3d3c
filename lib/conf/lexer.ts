import { ConfError } from './errors.js';

/**
 * nginx's ngx_conf_read_token, as a pull tokenizer over one file's bytes.
 * Each call to next() yields the words of one directive and what ended it
 * (`;`, `{`, `}` or end of file), with the line nginx reports for it: the
 * line the terminator stood on.
 */

export const enum TokenEnd {
  Semicolon,
  BlockStart,
  BlockDone,
  FileDone,
}

export interface Statement {
  end: TokenEnd;
  args: string[];
  /** line of the terminator (what nginx prints in `in FILE:LINE`) */
  line: number;
  /** line of the first word, for -T style tooling */
  startLine: number;
}

/** nginx reads the file through a 4 KiB buffer; a word must fit in it. */
const CONF_BUFFER = 4096;

const CH_LF = 0x0a;
const CH_CR = 0x0d;
const CH_SP = 0x20;
const CH_TAB = 0x09;
const CH_SEMI = 0x3b;
const CH_LBRACE = 0x7b;
const CH_RBRACE = 0x7d;
const CH_HASH = 0x23;
const CH_BSLASH = 0x5c;
const CH_DQ = 0x22;
const CH_SQ = 0x27;
const CH_DOLLAR = 0x24;
const CH_RPAREN = 0x29;

function isSpace(ch: number): boolean {
  return ch === CH_SP || ch === CH_TAB || ch === CH_CR || ch === CH_LF;
}

export class Lexer {
  private pos = 0;
  line = 1;
  private readonly buf: Buffer;
  readonly file: string;
  /** `-g` directives: nginx words the end-of-input error differently */
  private readonly isParam: boolean;

  constructor(buf: Buffer, file: string, isParam = false) {
    this.buf = buf;
    this.file = file;
    this.isParam = isParam;
  }

  private fail(msg: string): never {
    throw new ConfError(msg, this.file, this.line);
  }

  next(): Statement {
    const buf = this.buf;
    const len = buf.length;
    const args: string[] = [];
    let startLine = this.line;
    let sharpComment = false;
    let lastSpace = true;
    let needSpace = false;
    let quoted = false;
    let sQuoted = false;
    let dQuoted = false;
    let variable = false;
    let start = this.pos;
    let startTokenLine = this.line;

    for (;;) {
      if (this.pos >= len) {
        if (args.length > 0 || !lastSpace) {
          if (this.isParam) this.fail('unexpected end of parameter, expecting ";"');
          this.fail('unexpected end of file, expecting ";" or "}"');
        }
        return { end: TokenEnd.FileDone, args, line: this.line, startLine };
      }

      if (!lastSpace && this.pos - start >= CONF_BUFFER) {
        // nginx fails when one unfinished word fills its whole read buffer
        if (dQuoted || sQuoted) {
          this.fail(`too long parameter, probably missing terminating "${dQuoted ? '"' : "'"}" character`);
        }
        this.fail(`too long parameter "${buf.toString('latin1', start, start + 10)}..." started`);
      }

      const ch = buf[this.pos++]!;

      if (ch === CH_LF) {
        this.line++;
        if (sharpComment) sharpComment = false;
      }

      if (sharpComment) continue;

      if (quoted) {
        quoted = false;
        continue;
      }

      if (needSpace) {
        if (isSpace(ch)) {
          lastSpace = true;
          needSpace = false;
          continue;
        }
        if (ch === CH_SEMI) return { end: TokenEnd.Semicolon, args, line: this.line, startLine };
        if (ch === CH_LBRACE) return { end: TokenEnd.BlockStart, args, line: this.line, startLine };
        if (ch === CH_RPAREN) {
          lastSpace = true;
          needSpace = false;
        } else {
          this.fail(`unexpected "${String.fromCharCode(ch)}"`);
        }
      }

      if (lastSpace) {
        start = this.pos - 1;
        startTokenLine = this.line;
        if (isSpace(ch)) continue;

        switch (ch) {
          case CH_SEMI:
          case CH_LBRACE:
            if (args.length === 0) this.fail(`unexpected "${String.fromCharCode(ch)}"`);
            return {
              end: ch === CH_LBRACE ? TokenEnd.BlockStart : TokenEnd.Semicolon,
              args,
              line: this.line,
              startLine,
            };
          case CH_RBRACE:
            if (args.length !== 0) this.fail('unexpected "}"');
            return { end: TokenEnd.BlockDone, args, line: this.line, startLine };
          case CH_HASH:
            sharpComment = true;
            continue;
          case CH_BSLASH:
            quoted = true;
            lastSpace = false;
            continue;
          case CH_DQ:
            start++;
            dQuoted = true;
            lastSpace = false;
            continue;
          case CH_SQ:
            start++;
            sQuoted = true;
            lastSpace = false;
            continue;
          case CH_DOLLAR:
            variable = true;
            lastSpace = false;
            continue;
          default:
            lastSpace = false;
        }
        if (args.length === 0) startLine = startTokenLine;
      } else {
        if (ch === CH_LBRACE && variable) continue;
        variable = false;

        if (ch === CH_BSLASH) {
          quoted = true;
          continue;
        }
        if (ch === CH_DOLLAR) {
          variable = true;
          continue;
        }

        let found = false;
        if (dQuoted) {
          if (ch === CH_DQ) {
            dQuoted = false;
            needSpace = true;
            found = true;
          }
        } else if (sQuoted) {
          if (ch === CH_SQ) {
            sQuoted = false;
            needSpace = true;
            found = true;
          }
        } else if (isSpace(ch) || ch === CH_SEMI || ch === CH_LBRACE) {
          lastSpace = true;
          found = true;
        }

        if (found) {
          if (args.length === 0) startLine = startTokenLine;
          args.push(unescapeWord(buf, start, this.pos - 1));
          if (ch === CH_SEMI) return { end: TokenEnd.Semicolon, args, line: this.line, startLine };
          if (ch === CH_LBRACE) return { end: TokenEnd.BlockStart, args, line: this.line, startLine };
        }
      }
    }
  }

  /**
   * The raw text of a block whose inside is Lua code (ngx_lua's
   * *_by_lua_block): from just after the `{` to the `}` that closes it,
   * with Lua's strings, long brackets and comments skipped so braces in
   * them do not count. The closing `}` is consumed.
   */
  readLuaBlock(): string {
    const buf = this.buf;
    const len = buf.length;
    const start = this.pos;
    let depth = 0;
    while (this.pos < len) {
      const ch = buf[this.pos]!;
      if (ch === CH_LF) {
        this.line++;
        this.pos++;
        continue;
      }
      if (ch === CH_LBRACE) depth++;
      else if (ch === CH_RBRACE) {
        if (depth === 0) {
          const text = buf.toString('latin1', start, this.pos);
          this.pos++;
          return text;
        }
        depth--;
      } else if (ch === CH_DQ || ch === CH_SQ) {
        this.pos++;
        while (this.pos < len && buf[this.pos] !== ch) {
          if (buf[this.pos] === CH_BSLASH) this.pos++;
          else if (buf[this.pos] === CH_LF) this.line++;
          this.pos++;
        }
      } else if (ch === 0x5b /* [ */ && this.longBracket()) {
        continue;
      } else if (ch === 0x2d /* - */ && buf[this.pos + 1] === 0x2d) {
        this.pos += 2;
        if (buf[this.pos] === 0x5b && this.longBracket()) continue;
        while (this.pos < len && buf[this.pos] !== CH_LF) this.pos++;
        continue;
      }
      this.pos++;
    }
    this.fail('unexpected end of file, expecting "}"');
  }

  /** skip a Lua long bracket ([[...]], [==[...]==]) at pos; false when `[` opens none */
  private longBracket(): boolean {
    const buf = this.buf;
    let p = this.pos + 1;
    let level = 0;
    while (buf[p] === 0x3d) {
      level++;
      p++;
    }
    if (buf[p] !== 0x5b) return false;
    p++;
    for (; p < buf.length; p++) {
      const c = buf[p]!;
      if (c === CH_LF) this.line++;
      else if (c === 0x5d) {
        let q = p + 1;
        let l = 0;
        while (buf[q] === 0x3d) {
          l++;
          q++;
        }
        if (l === level && buf[q] === 0x5d) {
          this.pos = q + 1;
          return true;
        }
      }
    }
    this.pos = p;
    return true;
  }
}

/** The copy loop of ngx_conf_read_token: `\" \' \\` drop the backslash, `\t \r \n` become controls. */
function unescapeWord(buf: Buffer, from: number, to: number): string {
  if (buf.indexOf(CH_BSLASH, from) === -1 || buf.indexOf(CH_BSLASH, from) >= to) {
    return buf.toString('latin1', from, to);
  }
  const out: number[] = [];
  let src = from;
  while (src < to) {
    const c = buf[src]!;
    if (c === CH_BSLASH && src + 1 < buf.length) {
      const n = buf[src + 1]!;
      if (n === CH_DQ || n === CH_SQ || n === CH_BSLASH) {
        src++;
      } else if (n === 0x74 /* t */) {
        out.push(CH_TAB);
        src += 2;
        continue;
      } else if (n === 0x72 /* r */) {
        out.push(CH_CR);
        src += 2;
        continue;
      } else if (n === 0x6e /* n */) {
        out.push(CH_LF);
        src += 2;
        continue;
      }
    }
    out.push(buf[src++]!);
  }
  return Buffer.from(out).toString('latin1');

}
