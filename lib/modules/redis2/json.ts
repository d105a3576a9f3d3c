/*
 * **extension** `redis2d_output json`: the reply stream re-encoded as JSON
 * while it streams. The reader (reply_reader.ts) hands this encoder only
 * bytes its scanner has accepted, in the pieces they arrived in; the
 * encoder keeps a small state machine across pieces and never holds a
 * bulk payload: a 64 MiB value goes out as it comes in, escaped, under the
 * same backpressure as the raw path.
 *
 * The mapping (docs/behaviour.md §10):
 *   one JSON array per request, one element per reply (per query);
 *   +simple / $bulk / =verbatim  → string (a verbatim string loses its
 *                                  `txt:` format prefix);
 *   :integer / (big number       → number, digits as Redis sent them;
 *   ,double                      → number, or the string "inf", "-inf",
 *                                  "nan" (JSON has no such numbers);
 *   #t / #f → true / false;  _ and $-1 / *-1 → null;
 *   -error / !blob error         → {"error":"MESSAGE"};
 *   *array / ~set / >push        → array;  %map → object;
 *   |attribute                   → dropped (the value after it stays);
 *   a map key that is not a string (+ $ =) → the JSON text of the key, as a
 *                                  string (`:1` → "1", `*1..` → "[...]").
 * Strings: `"` `\` and control bytes escaped as JSON.stringify escapes them;
 * valid UTF-8 passes through; every byte that is not part of a valid UTF-8
 * sequence is written as the lone surrogate \udcXX (XX its value: Python's
 * "surrogateescape"), which no valid UTF-8 text produces, so the bytes
 * can be recovered exactly.
 */

const CR = 13;

const enum St {
  /** a reply's type byte */
  Type,
  /** the text of a line reply, up to CR */
  Line,
  /** the length of a blob or aggregate, up to CR */
  Len,
  /** the LF after a line or a length */
  Lf,
  /** blob payload bytes */
  Blob,
  /** CR then LF after a payload */
  BlobCr,
  BlobLf,
}

const enum Next {
  /** the value is complete */
  Done,
  /** a payload follows (possibly empty) */
  Payload,
  /** an aggregate was opened: its first element follows */
  Open,
}

const enum Fr {
  Array,
  Map,
  Attr,
}

interface Frame {
  kind: Fr;
  /** elements still to come (a map counts keys and values) */
  left: number;
  /** elements done */
  done: number;
  /** the key now being read is captured (not a string reply) */
  capture: boolean;
}

/** how a line or blob is written */
const enum Out {
  /** a JSON string */
  Str,
  /** {"error": STRING} */
  Err,
  /** the text as a JSON token (number, true/false/null: decided at the end) */
  Tok,
}

const HEX = '0123456789abcdef';
/** JSON escapes of bytes below 0x20 plus `"` and `\`, as JSON.stringify writes them */
const ESC: (Buffer | undefined)[] = new Array(256).fill(undefined);
for (let b = 0; b < 0x20; b++) ESC[b] = Buffer.from(`\\u00${HEX[b >> 4]}${HEX[b & 15]}`, 'latin1');
ESC[8] = Buffer.from('\\b');
ESC[9] = Buffer.from('\\t');
ESC[10] = Buffer.from('\\n');
ESC[12] = Buffer.from('\\f');
ESC[13] = Buffer.from('\\r');
ESC[0x22] = Buffer.from('\\"');
ESC[0x5c] = Buffer.from('\\\\');
/** \udcXX for the bytes 0x80..0xff that are not valid UTF-8 */
const SURROGATE: Buffer[] = [];
for (let b = 0; b < 256; b++) SURROGATE.push(Buffer.from(`\\udc${HEX[b >> 4]}${HEX[b & 15]}`, 'latin1'));

/** the continuation range of the byte after a UTF-8 lead byte, and how many follow it */
function leadInfo(b: number): number {
  // packed: need << 16 | lo << 8 | hi; 0 = not a lead byte
  if (b >= 0xc2 && b <= 0xdf) return (1 << 16) | (0x80 << 8) | 0xbf;
  if (b === 0xe0) return (2 << 16) | (0xa0 << 8) | 0xbf;
  if (b === 0xed) return (2 << 16) | (0x80 << 8) | 0x9f;
  if (b >= 0xe1 && b <= 0xef) return (2 << 16) | (0x80 << 8) | 0xbf;
  if (b === 0xf0) return (3 << 16) | (0x90 << 8) | 0xbf;
  if (b >= 0xf1 && b <= 0xf3) return (3 << 16) | (0x80 << 8) | 0xbf;
  if (b === 0xf4) return (3 << 16) | (0x80 << 8) | 0x8f;
  return 0;
}

/* what a JSON number looks like (RESP3 doubles are checked against it once each) */
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

const B_OPEN_ARRAY = Buffer.from('[');
const B_CLOSE_ARRAY = Buffer.from(']');
const B_OPEN_MAP = Buffer.from('{');
const B_CLOSE_MAP = Buffer.from('}');
const B_COMMA = Buffer.from(',');
const B_COLON = Buffer.from(':');
const B_QUOTE = Buffer.from('"');
const B_ERR_OPEN = Buffer.from('{"error":"');
const B_ERR_CLOSE = Buffer.from('"}');
const B_NULL = Buffer.from('null');
const B_TRUE = Buffer.from('true');
const B_FALSE = Buffer.from('false');
const B_EMPTY_ARRAY = Buffer.from('[]');
const B_EMPTY_MAP = Buffer.from('{}');

export class RespJsonEncoder {
  private st = St.Type;
  private type = 0;
  /** the digits of a length, or the text of a token line */
  private text = '';
  /** payload bytes still to read */
  private left = 0;
  /** payload bytes to drop first (a verbatim string's `txt:`) */
  private skip = 0;
  /** what the LF of a line or length leads to */
  private next = Next.Done;
  private out = Out.Str;
  private readonly stack: Frame[] = [];
  /** top-level replies written */
  private replies = 0;
  /** the array of replies was opened */
  private opened = false;
  /** >0 while inside an attribute: nothing is written */
  private discard = 0;
  /** captured output of map keys that are not strings, innermost last */
  private readonly captures: Buffer[][] = [];
  /** the bytes of an unfinished UTF-8 sequence: count, need, next byte's range */
  private readonly seq = Buffer.alloc(4);
  private seqLen = 0;
  private seqNeed = 0;
  private seqLo = 0;
  private seqHi = 0;
  /** the output of the current feed(): a buffer of its own (it goes to the socket), grown as needed */
  private outBuf: Buffer = EMPTY;
  private outLen = 0;

  /** the encoding of `chunk` (whole replies or parts of them); may be empty */
  feed(chunk: Buffer): Buffer {
    // escapes make the output longer than the input; most values need few
    this.outBuf = Buffer.allocUnsafe(chunk.length + 64);
    this.outLen = 0;
    if (!this.opened && chunk.length > 0) {
      this.opened = true;
      this.emit(B_OPEN_ARRAY);
    }
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      switch (this.st) {
        case St.Type: {
          this.begin(chunk[i++]!);
          break;
        }
        case St.Line: {
          const cr = chunk.indexOf(CR, i);
          const end = cr < 0 ? n : cr;
          if (this.out === Out.Tok) this.text += chunk.toString('latin1', i, end);
          else this.escape(chunk, i, end);
          i = end;
          if (cr >= 0) {
            i++;
            this.st = St.Lf;
            this.endLine();
          }
          break;
        }
        case St.Len: {
          const cr = chunk.indexOf(CR, i);
          const end = cr < 0 ? n : cr;
          this.text += chunk.toString('latin1', i, end);
          i = end;
          if (cr >= 0) {
            i++;
            this.st = St.Lf;
            this.endLen();
          }
          break;
        }
        case St.Lf: {
          // the LF of a line or a length; what follows was decided at its CR
          i++;
          const next = this.next;
          if (next === Next.Payload) this.st = this.left > 0 || this.skip > 0 ? St.Blob : St.BlobCr;
          else {
            this.st = St.Type;
            if (next === Next.Done) this.valueDone();
          }
          break;
        }
        case St.Blob: {
          if (this.skip > 0) {
            const k = Math.min(this.skip, n - i);
            this.skip -= k;
            i += k;
            if (this.skip > 0) break;
          }
          const k = Math.min(this.left, n - i);
          this.escape(chunk, i, i + k);
          this.left -= k;
          i += k;
          if (this.left === 0) this.st = St.BlobCr;
          break;
        }
        case St.BlobCr: {
          i++;
          this.st = St.BlobLf;
          break;
        }
        case St.BlobLf: {
          i++;
          this.st = St.Type;
          this.endBlob();
          break;
        }
      }
    }
    const out = this.outBuf.subarray(0, this.outLen);
    this.outBuf = EMPTY;
    return out;
  }

  /** the closing bracket, once every reply is complete; undefined if the stream stopped inside a reply */
  finish(): Buffer | undefined {
    if (this.st !== St.Type || this.stack.length > 0) return undefined;
    return this.opened ? B_CLOSE_ARRAY : B_EMPTY_ARRAY;
  }

  private emit(b: Buffer): void {
    this.emitRange(b, 0, b.length);
  }

  /** bytes [from, to) of `b` go out (copied: `b` may be the reply's own buffer) */
  private emitRange(b: Buffer, from: number, to: number): void {
    if (this.discard > 0 || to <= from) return;
    const c = this.captures;
    if (c.length > 0) {
      c[c.length - 1]!.push(Buffer.from(b.subarray(from, to)));
      return;
    }
    const n = to - from;
    let buf = this.outBuf;
    if (this.outLen + n > buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(buf.length * 2, this.outLen + n));
      buf.copy(grown, 0, 0, this.outLen);
      buf = this.outBuf = grown;
    }
    b.copy(buf, this.outLen, from, to);
    this.outLen += n;
  }

  /** a reply starts with type byte `t`: separators, and the state of what follows */
  private begin(t: number): void {
    const top = this.stack.length > 0 ? this.stack[this.stack.length - 1]! : undefined;
    // `|` is not an element: it comes before the element it describes
    if (t !== 0x7c) {
      if (top === undefined) {
        if (this.replies > 0) this.emit(B_COMMA);
      } else if (top.kind !== Fr.Attr) {
        const isKey = top.kind === Fr.Map && (top.done & 1) === 0;
        if (top.done > 0 && (top.kind === Fr.Array || isKey)) this.emit(B_COMMA);
        // a key that is not a string reply is written as a string of its JSON text
        if (isKey && t !== 0x2b && t !== 0x24 && t !== 0x3d) {
          top.capture = true;
          this.captures.push([]);
        }
      }
    }
    this.text = '';
    this.left = 0;
    this.skip = 0;
    this.next = Next.Done;
    switch (t) {
      case 0x2b: // +
        this.type = 0;
        this.out = Out.Str;
        this.emit(B_QUOTE);
        this.st = St.Line;
        return;
      case 0x2d: // -
        this.type = 0;
        this.out = Out.Err;
        this.emit(B_ERR_OPEN);
        this.st = St.Line;
        return;
      case 0x3a: // :
      case 0x28: // (
      case 0x2c: // ,
      case 0x23: // #
      case 0x5f: // _
        this.type = t;
        this.out = Out.Tok;
        this.st = St.Line;
        return;
      default:
        // $ = ! * ~ > % |: a length follows
        this.type = t;
        this.st = St.Len;
    }
  }

  /** the CR of a line reply */
  private endLine(): void {
    if (this.out === Out.Str) this.flushSeq(), this.emit(B_QUOTE);
    else if (this.out === Out.Err) this.flushSeq(), this.emit(B_ERR_CLOSE);
    else this.emit(this.token(this.type, this.text));
  }

  private token(t: number, text: string): Buffer {
    switch (t) {
      case 0x23:
        return text === 't' ? B_TRUE : B_FALSE;
      case 0x5f:
        return B_NULL;
      case 0x2c:
        if (JSON_NUMBER.test(text)) return Buffer.from(text, 'latin1');
        return Buffer.from(JSON.stringify(text), 'latin1');
      default:
        // integers and big numbers: Redis's digits; anything else as a string
        return /^-?\d+$/.test(text) ? Buffer.from(text, 'latin1') : Buffer.from(JSON.stringify(text), 'latin1');
    }
  }

  /** the CR of a length line */
  private endLen(): void {
    const t = this.type;
    const len = Number(this.text);
    if (t === 0x24 || t === 0x3d || t === 0x21) {
      // $ = !
      if (len < 0) {
        this.emit(B_NULL);
        return;
      }
      this.emit(t === 0x21 ? B_ERR_OPEN : B_QUOTE);
      this.out = t === 0x21 ? Out.Err : Out.Str;
      this.skip = t === 0x3d ? Math.min(4, len) : 0;
      this.left = len - this.skip;
      this.next = Next.Payload;
      return;
    }
    if (len < 0) {
      this.emit(B_NULL);
      return;
    }
    const kind = t === 0x25 ? Fr.Map : t === 0x7c ? Fr.Attr : Fr.Array;
    const count = kind === Fr.Array ? len : len * 2;
    if (kind === Fr.Attr) this.discard++;
    if (count === 0) {
      if (kind === Fr.Attr) {
        this.discard--;
        // an empty attribute: the described value's type byte follows
        this.next = Next.Open;
        return;
      }
      this.emit(kind === Fr.Map ? B_EMPTY_MAP : B_EMPTY_ARRAY);
      return;
    }
    this.emit(kind === Fr.Map ? B_OPEN_MAP : kind === Fr.Array ? B_OPEN_ARRAY : EMPTY);
    this.stack.push({ kind, left: count, done: 0, capture: false });
    this.next = Next.Open;
  }

  /** the LF after a payload */
  private endBlob(): void {
    this.flushSeq();
    this.emit(this.out === Out.Err ? B_ERR_CLOSE : B_QUOTE);
    this.valueDone();
  }

  /** a value is complete: count it in its frame and close the frames it completes */
  private valueDone(): void {
    for (;;) {
      const stack = this.stack;
      const top = stack.length > 0 ? stack[stack.length - 1]! : undefined;
      if (top === undefined) {
        this.replies++;
        return;
      }
      top.done++;
      if (top.kind === Fr.Map && (top.done & 1) === 1) {
        if (top.capture) {
          top.capture = false;
          const text = Buffer.concat(this.captures.pop()!).toString('utf8');
          this.emit(Buffer.from(JSON.stringify(text), 'utf8'));
        }
        this.emit(B_COLON);
      }
      if (--top.left > 0) return;
      stack.pop();
      if (top.kind === Fr.Attr) {
        // the attribute is not the element: the value it describes comes next
        this.discard--;
        return;
      }
      this.emit(top.kind === Fr.Map ? B_CLOSE_MAP : B_CLOSE_ARRAY);
    }
  }

  /**
   * Write bytes [from, to) of `b` as JSON string content. Runs of bytes
   * that need no escape (ASCII and whole UTF-8 sequences) go out as slices
   * of the piece; a sequence cut by the end of the piece is carried.
   */
  private escape(b: Buffer, from: number, to: number): void {
    let i = from;
    // a sequence carried over from an earlier piece
    while (this.seqNeed > 0 && i < to) {
      const c = b[i]!;
      if (c < this.seqLo || c > this.seqHi) {
        this.flushSeq();
        break;
      }
      this.seq[this.seqLen++] = c;
      this.seqLo = 0x80;
      this.seqHi = 0xbf;
      i++;
      if (--this.seqNeed === 0) {
        this.emitRange(this.seq, 0, this.seqLen);
        this.seqLen = 0;
      }
    }
    let run = i;
    let start = -1;
    let need = 0;
    let lo = 0;
    let hi = 0;
    while (i < to) {
      const c = b[i]!;
      if (need > 0) {
        if (c >= lo && c <= hi) {
          lo = 0x80;
          hi = 0xbf;
          need--;
          i++;
          continue;
        }
        // not a continuation: the bytes since the lead are not UTF-8; this byte starts afresh
        if (start > run) this.emitRange(b, run, start);
        for (let k = start; k < i; k++) this.emit(SURROGATE[b[k]!]!);
        need = 0;
        run = i;
        continue;
      }
      if (c >= 0x20 && c < 0x80 && c !== 0x22 && c !== 0x5c) {
        i++;
        continue;
      }
      if (c < 0x80) {
        if (i > run) this.emitRange(b, run, i);
        this.emit(ESC[c]!);
        run = ++i;
        continue;
      }
      const info = leadInfo(c);
      if (info === 0) {
        if (i > run) this.emitRange(b, run, i);
        this.emit(SURROGATE[c]!);
        run = ++i;
        continue;
      }
      start = i++;
      need = info >> 16;
      lo = (info >> 8) & 0xff;
      hi = info & 0xff;
    }
    if (need > 0) {
      // cut by the end of the piece: carry the sequence's bytes
      if (start > run) this.emitRange(b, run, start);
      b.copy(this.seq, 0, start, to);
      this.seqLen = to - start;
      this.seqNeed = need;
      this.seqLo = lo;
      this.seqHi = hi;
    } else if (i > run) this.emitRange(b, run, i);
  }

  /** an unfinished sequence ends: each of its bytes as \udcXX */
  private flushSeq(): void {
    for (let k = 0; k < this.seqLen; k++) this.emit(SURROGATE[this.seq[k]!]!);
    this.seqLen = 0;
    this.seqNeed = 0;
  }
}

const EMPTY = Buffer.alloc(0);
