/*
 * The streaming reply-boundary scanner: counts complete Redis replies in a
 * byte stream that arrives in arbitrary chunks, without ever re-scanning or
 * concatenating (bulk payloads are skipped by their length).
 *
 * It plays the role of the redis2 module's Ragel machine
 * (ngx_http_redis2_reply.rl): where that machine rejects a byte, this one
 * rejects the same byte, so the `near pos N` of nginx's error log comes out
 * the same. It accepts more than the module: nested aggregates (EXEC of
 * LRANGE, SCAN, XRANGE) and the RESP3 types, which the module cannot frame.
 */

/** What `feed` found; details are in the scanner's fields. */
export const enum ScanResult {
  /** every byte was consumed; more replies are expected */
  More = 0,
  /** the expected replies are complete; `end` is where they end in the chunk */
  Done = 1,
  /** malformed reply; `end` is the offset of the offending byte */
  Invalid = 2,
}

const enum St {
  Type,
  Line,
  LineCr,
  LenFirst,
  LenZeros,
  LenDigits,
  LenNeg,
  LenNegDigits,
  /** `*-1` read: CR must follow */
  LenNegOne,
  LenLf,
  Bulk,
  BulkCr,
  BulkLf,
}

/* what the length line introduces */
const enum Kind {
  Blob,
  Array,
  Map,
  Attr,
}

const CR = 13;
const LF = 10;
const ZERO = 48;
const NINE = 57;
const MINUS = 45;

/* the largest length we accept: its digits must not lose precision */
const MAX_LEN = Math.floor(Number.MAX_SAFE_INTEGER / 10);

/** Byte-indexed table of reply type bytes: 1 = line, 2 = blob, 3 = array, 4 = map, 5 = attribute. */
const TYPE = new Uint8Array(256);
for (const c of '+-:_,#(') TYPE[c.charCodeAt(0)] = 1;
for (const c of '$=!') TYPE[c.charCodeAt(0)] = 2;
for (const c of '*~>') TYPE[c.charCodeAt(0)] = 3;
TYPE['%'.charCodeAt(0)] = 4;
TYPE['|'.charCodeAt(0)] = 5;

/** True if `byte` can start a reply: the upstream's first-byte check. */
export function isReplyType(byte: number): boolean {
  return TYPE[byte] !== 0;
}

export class ReplyScanner {
  /** replies still expected */
  remaining: number;
  /** after Done or Invalid: the offset in the last chunk (see ScanResult) */
  end = 0;
  private st = St.Type;
  private kind = Kind.Blob;
  private len = 0;
  /* open aggregates, innermost last: elements still to read, times 2, plus 1 for an attribute */
  private readonly stack: number[] = [];

  constructor(expected: number) {
    this.remaining = expected;
  }

  /** True when the scanner sits exactly between replies (no partial reply pending). */
  get atBoundary(): boolean {
    return this.st === St.Type && this.stack.length === 0;
  }

  /**
   * Scan `buf[from, to)`. Returns More when every byte belongs to the expected
   * replies and more are needed, Done when the last expected reply ends at
   * `this.end` (bytes after it are extra), Invalid when `buf[this.end]` breaks
   * the grammar. `this.end` is an index in buf.
   */
  feed(buf: Buffer, from = 0, to = buf.length): ScanResult {
    const n = to;
    let i = from;
    let st: St | -1 = this.st;
    while (i < n) {
      const c = buf[i];
      switch (st) {
        case St.Type: {
          const t = TYPE[c];
          if (t === 0) return this.fail(st, i);
          if (t === 1) st = St.Line;
          else {
            st = St.LenFirst;
            this.kind = t === 2 ? Kind.Blob : t === 3 ? Kind.Array : t === 4 ? Kind.Map : Kind.Attr;
          }
          i++;
          break;
        }
        case St.Line: {
          const at = buf.indexOf(CR, i);
          if (at < 0 || at >= n) {
            i = n;
          } else {
            i = at + 1;
            st = St.LineCr;
          }
          break;
        }
        case St.LineCr:
          // a lone CR is part of the line, as in the module's (any* -- CRLF)
          if (c === LF) {
            i++;
            st = this.valueDone();
            if (st < 0) return this.finish(i);
          } else if (c === CR) {
            i++;
          } else {
            i++;
            st = St.Line;
          }
          break;
        case St.LenFirst:
          if (c === MINUS) st = St.LenNeg;
          else if (c === ZERO) st = St.LenZeros;
          else if (c > ZERO && c <= NINE) {
            this.len = c - ZERO;
            st = St.LenDigits;
          } else return this.fail(st, i);
          i++;
          break;
        case St.LenZeros:
          // the module takes "0"+ as zero, but no other digit after a leading 0
          if (c === ZERO) i++;
          else if (c === CR) {
            this.len = 0;
            st = St.LenLf;
            i++;
          } else return this.fail(st, i);
          break;
        case St.LenDigits:
          if (c >= ZERO && c <= NINE) {
            if (this.len > MAX_LEN) return this.fail(st, i);
            this.len = this.len * 10 + (c - ZERO);
            i++;
          } else if (c === CR) {
            st = St.LenLf;
            i++;
          } else return this.fail(st, i);
          break;
        case St.LenNeg:
          // a null bulk is "$-" digit+; a null multi-bulk is "*-1" only (the module's grammar)
          if (this.kind === Kind.Blob ? c < ZERO || c > NINE : c !== ZERO + 1) return this.fail(st, i);
          st = this.kind === Kind.Blob ? St.LenNegDigits : St.LenNegOne;
          i++;
          break;
        case St.LenNegOne:
          if (c !== CR) return this.fail(st, i);
          this.len = -1;
          st = St.LenLf;
          i++;
          break;
        case St.LenNegDigits:
          if (c >= ZERO && c <= NINE) i++;
          else if (c === CR) {
            // a null: $-1, *-1 (any negative, like the module's "$-" digit+)
            this.len = -1;
            st = St.LenLf;
            i++;
          } else return this.fail(st, i);
          break;
        case St.LenLf:
          if (c !== LF) return this.fail(st, i);
          i++;
          st = this.lengthDone();
          if (st < 0) return this.finish(i);
          break;
        case St.Bulk: {
          const avail = n - i;
          if (avail < this.len) {
            this.len -= avail;
            i = n;
          } else {
            i += this.len;
            this.len = 0;
            st = St.BulkCr;
          }
          break;
        }
        case St.BulkCr:
          if (c !== CR) return this.fail(st, i);
          st = St.BulkLf;
          i++;
          break;
        case St.BulkLf:
          if (c !== LF) return this.fail(st, i);
          i++;
          st = this.valueDone();
          if (st < 0) return this.finish(i);
          break;
      }
    }
    this.st = st as St;
    return ScanResult.More;
  }

  private fail(st: St, i: number): ScanResult {
    this.st = st;
    this.end = i;
    return ScanResult.Invalid;
  }

  /* all expected replies read: the next byte (if any) is extra */
  private finish(i: number): ScanResult {
    this.st = St.Type;
    this.end = i;
    return ScanResult.Done;
  }

  /* a length line ended: start the payload, open an aggregate, or finish a null/empty one */
  private lengthDone(): St | -1 {
    const len = this.len;
    if (this.kind === Kind.Blob) {
      if (len < 0) return this.valueDone();
      if (len === 0) return St.BulkCr;
      return St.Bulk;
    }
    if (len <= 0) {
      // null or empty aggregate: a complete value; an empty attribute adds nothing
      if (this.kind === Kind.Attr) return St.Type;
      return this.valueDone();
    }
    const elems = this.kind === Kind.Array ? len : len * 2;
    this.stack.push(elems * 2 + (this.kind === Kind.Attr ? 1 : 0));
    return St.Type;
  }

  /*
   * One value ended: count it against the innermost aggregate, closing every
   * aggregate it completes; at the top level it is a whole reply. Returns the
   * next state, or -1 when the last expected reply is complete.
   */
  private valueDone(): St | -1 {
    const stack = this.stack;
    while (stack.length > 0) {
      const top = stack.length - 1;
      const left = stack[top] - 2;
      if (left >= 2) {
        stack[top] = left;
        return St.Type;
      }
      stack.pop();
      // an attribute is metadata about the value that follows: not a value itself
      if (left === 1) return St.Type;
    }
    this.remaining--;
    return this.remaining === 0 ? -1 : St.Type;
  }
}
