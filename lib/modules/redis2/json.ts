/*
 * **extension** `redis2d_output json`: Redis's replies converted to JSON as
 * they stream (docs/behaviour.md §12). One JSON array per request, one
 * element per expected reply:
 *   simple string, bulk string, verbatim string (its `txt:` dropped) → string
 *   error (`-`, `!`)             → {"error": "TEXT"}
 *   integer, big number          → number (Redis's digits as they are)
 *   double                       → number; inf, -inf, nan → "inf", "-inf", "nan"
 *   null (`_`, `$-1`, `*-1`)     → null;  boolean (`#t`, `#f`) → true / false
 *   array, set, push             → array; map → object (a key that is not a
 *   string becomes the text of its JSON: 1 → "1", [1,2] → "[1,2]")
 *   attribute (`|`)              → dropped (it describes the reply after it)
 * Strings: valid UTF-8 passes as is; any byte that is not part of a valid
 * UTF-8 sequence becomes \u00XX (its Latin-1 reading), so every reply maps to
 * valid JSON and distinct bytes stay distinct; control characters are
 * escaped as JSON requires.
 *
 * Memory: nothing is buffered beyond the containers' stack, a number's
 * digits and up to 3 bytes of a UTF-8 sequence cut by a chunk end; a bulk
 * string of any size streams through. The input is the redis2 reader's
 * output, already checked against the reply grammar.
 */

const enum St {
  Type,
  /** a line kept (numbers, lengths, booleans): up to CR */
  Line,
  /** a simple string or error streamed: up to CR */
  StreamLine,
  LineLf,
  Blob,
  BlobCr,
  BlobLf,
}

const enum K {
  Array,
  Map,
  /** an attribute: parsed and dropped */
  Attr,
}

interface Frame {
  kind: K;
  /** elements left (a map counts keys and values) */
  left: number;
  /** elements seen */
  seen: number;
}

const HEX = '0123456789abcdef';
const MAX_LINE = 4096;
const NUMBER = /^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;
const INTEGER = /^-?[0-9]+$/;

export class JsonEncoder {
  private st = St.Type;
  private type = 0;
  private line: number[] = [];
  private blobLeft = 0;
  /** verbatim strings: format bytes (`txt:`) still to drop */
  private skip = 0;
  /** what closes the current streamed string: '"' or '"}' */
  private close = '';
  private readonly stack: Frame[] = [];
  private done = 0;
  /** attribute nesting: output is dropped while > 0 */
  private mute = 0;
  /** an aggregate in key position: its JSON is collected, then written as a string */
  private cap: string[] | undefined = undefined;
  private capDepth = 0;
  /** a UTF-8 sequence cut by the end of a chunk */
  private tail: number[] = [];
  private out: Buffer = Buffer.alloc(0);
  private o = 0;

  constructor(private readonly expected: number) {}

  /** JSON for the reply bytes in `chunk` (possibly empty) */
  feed(chunk: Buffer): Buffer {
    // the middle of a large string whose bytes need no escaping goes out as it came (no copy)
    if (this.st === St.Blob && this.begun && this.skip === 0 && this.tail.length === 0 && this.mute === 0 && this.cap === undefined && chunk.length < this.blobLeft && plainEnd(chunk, 0, chunk.length) === chunk.length) {
      this.blobLeft -= chunk.length;
      return chunk;
    }
    // room for the usual case (ASCII, one byte out per byte in); escapes and structure grow it (room())
    this.out = Buffer.allocUnsafe(chunk.length + (chunk.length >> 4) + 64);
    this.o = 0;
    if (!this.begun) {
      this.begun = true;
      this.raw('[');
    }
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      const c = chunk[i]!;
      switch (this.st) {
        case St.Type:
          this.type = c;
          i++;
          this.startValue(c);
          break;
        case St.Line:
          if (c === 13) this.st = St.LineLf;
          else if (this.line.length < MAX_LINE) this.line.push(c);
          i++;
          break;
        case St.StreamLine: {
          let e = chunk.indexOf(13, i);
          if (e < 0) e = n;
          this.str(chunk, i, e, e === n);
          i = e;
          if (e < n) {
            this.st = St.LineLf;
            i++;
          }
          break;
        }
        case St.LineLf:
          i++;
          this.endLine();
          break;
        case St.Blob: {
          const take = Math.min(this.blobLeft, n - i);
          let from = i;
          if (this.skip > 0) {
            const s = Math.min(this.skip, take);
            this.skip -= s;
            from += s;
          }
          this.blobLeft -= take;
          this.str(chunk, from, i + take, this.blobLeft > 0);
          i += take;
          if (this.blobLeft === 0) this.st = St.BlobCr;
          break;
        }
        case St.BlobCr:
          i++;
          this.st = St.BlobLf;
          break;
        case St.BlobLf:
          i++;
          this.st = St.Type;
          this.raw(this.close);
          this.valueDone();
          break;
      }
    }
    return this.out.subarray(0, this.o);
  }

  private begun = false;

  private inKey(): boolean {
    const f = this.stack[this.stack.length - 1];
    return f !== undefined && f.kind === K.Map && (f.seen & 1) === 0;
  }

  /* the separator before a value, and for a map key the quote a non-string key needs */
  private startValue(c: number): void {
    const f = this.stack[this.stack.length - 1];
    if (c === 0x7c) {
      // an attribute is no element: the reply after it takes the separator
      this.line.length = 0;
      this.st = St.Line;
      return;
    }
    if (f === undefined) {
      if (this.done > 0) this.raw(',');
    } else if (f.kind === K.Map) {
      if (f.seen > 0) this.raw((f.seen & 1) === 0 ? ',' : ':');
    } else if (f.kind === K.Array && f.seen > 0) this.raw(',');
    switch (c) {
      case 0x2b: // + simple string
        this.raw('"');
        this.close = '"';
        this.st = St.StreamLine;
        return;
      case 0x2d: // - error
        this.raw(this.inKey() ? '"' : '{"error":"');
        this.close = this.inKey() ? '"' : '"}';
        this.st = St.StreamLine;
        return;
      default:
        this.line.length = 0;
        this.st = St.Line;
    }
  }

  /* a kept line ended: a scalar, or the length of a blob or an aggregate */
  private endLine(): void {
    const text = String.fromCharCode(...this.line);
    const key = this.inKey();
    this.st = St.Type;
    switch (this.type) {
      case 0x2b:
      case 0x2d:
        // streamed lines
        this.raw(this.close);
        return this.valueDone();
      case 0x3a: // :
      case 0x28: // (
        return this.scalar(INTEGER.test(text) ? text : JSON.stringify(text), key);
      case 0x2c: // ,
        return this.scalar(NUMBER.test(text) ? text : JSON.stringify(text), key);
      case 0x23: // #
        return this.scalar(text === 't' ? 'true' : 'false', key);
      case 0x5f: // _
        return this.scalar('null', key);
      case 0x24: // $
      case 0x21: // !
      case 0x3d: {
        // = verbatim
        const len = Number(text);
        if (len < 0) return this.scalar('null', key);
        const err = this.type === 0x21 && !key;
        this.raw(err ? '{"error":"' : '"');
        this.close = err ? '"}' : '"';
        this.skip = this.type === 0x3d ? Math.min(4, len) : 0;
        this.blobLeft = len;
        this.st = len === 0 ? St.BlobCr : St.Blob;
        return;
      }
      default: {
        // * ~ > % |
        let len = Number(text);
        if (len < 0) return this.scalar('null', key);
        const kind = this.type === 0x25 ? K.Map : this.type === 0x7c ? K.Attr : K.Array;
        if (kind !== K.Array) len *= 2;
        if (kind === K.Attr) {
          this.mute++;
        } else {
          if (key && this.cap === undefined) {
            this.cap = [];
            this.capDepth = this.stack.length;
          }
          this.raw(kind === K.Map ? '{' : '[');
        }
        this.stack.push({ kind, left: len, seen: 0 });
        if (len === 0) this.closeFrame();
      }
    }
  }

  private scalar(json: string, key: boolean): void {
    this.raw(key && json[0] !== '"' ? JSON.stringify(json) : json);
    this.valueDone();
  }

  private closeFrame(): void {
    const f = this.stack.pop()!;
    if (f.kind === K.Attr) {
      // the attribute is not a value of its container: the reply after it is
      this.mute--;
      return;
    }
    this.raw(f.kind === K.Map ? '}' : ']');
    if (this.cap !== undefined && this.stack.length === this.capDepth) {
      const text = this.cap.join('');
      this.cap = undefined;
      this.raw(JSON.stringify(text));
    }
    this.valueDone();
  }

  /* a value ended: count it in its container (closing the ones it completes) */
  private valueDone(): void {
    const f = this.stack[this.stack.length - 1];
    if (f === undefined) {
      this.done++;
      if (this.done === this.expected) this.raw(']');
      return;
    }
    f.seen++;
    if (--f.left === 0) this.closeFrame();
  }

  private raw(s: string): void {
    if (this.mute > 0 || s === '') return;
    if (this.cap !== undefined) {
      this.cap.push(s);
      return;
    }
    this.room(this.o, s.length + 64);
    this.o += this.out.write(s, this.o, 'latin1');
  }

  /* at least `n` bytes free after `o` (the output grows by half, rarely: 1/16 headroom covers sparse escapes) */
  private room(o: number, n: number): Buffer {
    if (o + n > this.out.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.out.length + (this.out.length >> 1), o + n));
      this.out.copy(bigger, 0, 0, o);
      this.out = bigger;
    }
    return this.out;
  }

  /* string bytes [from, to) of a streamed string; `more`: the string goes on after them */
  private str(b: Buffer, from: number, to: number, more: boolean): void {
    if (this.mute > 0) return;
    if (this.cap !== undefined) {
      // a key being collected: convert into a scratch buffer, then keep it as text
      const save = this.out;
      const so = this.o;
      this.out = Buffer.allocUnsafe((to - from + this.tail.length) * 6 + 8);
      this.o = 0;
      const cap = this.cap;
      this.cap = undefined;
      this.str(b, from, to, more);
      cap.push(this.out.toString('utf8', 0, this.o));
      this.cap = cap;
      this.out = save;
      this.o = so;
      return;
    }
    if (this.tail.length > 0) {
      const joined = Buffer.concat([Buffer.from(this.tail), b.subarray(from, to)]);
      this.tail = [];
      return this.str(joined, 0, joined.length, more);
    }
    // one byte out per plain byte in: room for all of them, plus 6 for each escape as it comes
    let out = this.room(this.o, to - from + 8);
    let o = this.o;
    let i = from;
    while (i < to) {
      const c = b[i]!;
      if (c >= 0x20 && c < 0x80 && c !== 0x22 && c !== 0x5c) {
        out[o++] = c;
        i++;
        continue;
      }
      out = this.room(o, to - i + 8);
      if (c < 0x80) {
        out[o++] = 0x5c;
        if (c === 0x22 || c === 0x5c) out[o++] = c;
        else if (c === 0x0a) out[o++] = 0x6e;
        else if (c === 0x0d) out[o++] = 0x72;
        else if (c === 0x09) out[o++] = 0x74;
        else o = esc(out, o - 1, c);
        i++;
        continue;
      }
      const n = seqLen(b, i, to);
      if (n > 0) {
        for (let k = 0; k < n; k++) out[o++] = b[i + k]!;
        i += n;
      } else if (n === 0 && more) {
        // a sequence that may complete in the next chunk
        for (let k = i; k < to; k++) this.tail.push(b[k]!);
        break;
      } else {
        o = esc(out, o, c);
        i++;
      }
    }
    this.o = o;
  }
}

/* \u00XX at o (over the backslash already written when o points to it) */
function esc(out: Buffer, o: number, c: number): number {
  out[o++] = 0x5c;
  out[o++] = 0x75;
  out[o++] = 0x30;
  out[o++] = 0x30;
  out[o++] = HEX.charCodeAt(c >> 4);
  out[o++] = HEX.charCodeAt(c & 15);
  return o;
}

/** the length of the valid UTF-8 sequence at i; 0: valid so far but cut at `to`; -1: invalid */
function seqLen(b: Buffer, i: number, to: number): number {
  const c = b[i]!;
  let n: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c === 0xe0) lo = 0xa0;
    else if (c === 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c === 0xf0) lo = 0x90;
    else if (c === 0xf4) hi = 0x8f;
  } else return -1;
  for (let k = 1; k < n; k++) {
    if (i + k >= to) return 0;
    const d = b[i + k]!;
    if (k === 1 ? d < lo || d > hi : d < 0x80 || d > 0xbf) return -1;
  }
  return n;
}

/** where the bytes that JSON takes as they are (printable ASCII, complete valid UTF-8) stop */
function plainEnd(b: Buffer, from: number, to: number): number {
  let i = from;
  while (i < to) {
    const c = b[i]!;
    if (c >= 0x20 && c < 0x80 && c !== 0x22 && c !== 0x5c) {
      i++;
      continue;
    }
    if (c < 0x80) return i;
    const n = seqLen(b, i, to);
    if (n <= 0) return i;
    i += n;
  }
  return i;
}
