/*
 * Request body framing (ngx_http_request_body.c): Content-Length bodies and
 * chunked ones (ngx_http_parse_chunked). The reader is fed raw socket bytes
 * and returns what follows the body (a pipelined request) once it is done.
 */

export const enum BodyStatus {
  More,
  Done,
  /** malformed chunked body: 400 */
  Invalid,
  /** chunked body beyond client_max_body_size: 413 */
  TooLarge,
}

const enum C {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  Trailer,
  TrailerLf,
  LastLf,
}

export class BodyReader {
  /** bytes still expected (Content-Length), or of the current chunk */
  private remaining: number;
  private readonly chunked: boolean;
  private state = C.Size;
  private sizeDigits = 0;
  private trailerLen = 0;
  private trailerCr = false;
  /** total body bytes so far */
  received = 0;
  /** the declared size of the chunk that crossed the limit (for the log line) */
  tooLargeChunk = 0;
  /** leftover bytes after the body */
  rest: Buffer | undefined;
  /** raw bytes fed so far (chunk framing included) */
  private fed = 0;

  constructor(
    contentLength: number,
    chunked: boolean,
    private readonly maxSize: number,
    /** called with each body slice; undefined = discard */
    private readonly sink: ((b: Buffer) => void) | undefined,
  ) {
    this.chunked = chunked;
    this.remaining = chunked ? 0 : contentLength;
  }

  get done(): boolean {
    return this.chunked ? this.state === C.LastLf + 1 : this.remaining === 0;
  }

  /** ngx_http_parse_chunked's ctx->length after NGX_AGAIN: the bytes it wants at least, by state */
  chunkedWant(): number {
    switch (this.state) {
      case C.Size:
        return this.sizeDigits === 0 ? 3 : 1 + (this.remaining ? this.remaining + 4 : 1);
      case C.Ext:
      case C.SizeLf:
        return 1 + this.remaining + 4;
      case C.Data:
        return this.remaining + 4;
      case C.DataCr:
      case C.DataLf:
        return 4;
      default:
        return this.trailerLen > 0 ? 2 : 1;
    }
  }

  /** the raw bytes the body took (chunk framing included), once done */
  get raw(): number {
    return this.fed - (this.rest?.length ?? 0);
  }

  feed(buf: Buffer): BodyStatus {
    this.fed += buf.length;
    if (!this.chunked) {
      const n = Math.min(this.remaining, buf.length);
      if (n > 0) {
        this.sink?.(n === buf.length ? buf : buf.subarray(0, n));
        this.remaining -= n;
        this.received += n;
      }
      if (this.remaining === 0) {
        this.rest = n < buf.length ? buf.subarray(n) : undefined;
        return BodyStatus.Done;
      }
      return BodyStatus.More;
    }
    return this.feedChunked(buf);
  }

  private feedChunked(buf: Buffer): BodyStatus {
    let i = 0;
    const len = buf.length;
    while (i < len) {
      const ch = buf[i]!;
      switch (this.state) {
        case C.Size: {
          const v = hex(ch);
          if (v >= 0) {
            if (++this.sizeDigits > 15) return BodyStatus.Invalid;
            this.remaining = this.remaining * 16 + v;
            i++;
            break;
          }
          if (this.sizeDigits === 0) return BodyStatus.Invalid;
          if (ch === 0x0d) this.state = C.SizeLf;
          else if (ch === 0x0a) {
            i--;
            this.state = C.SizeLf;
          } else if (ch === 0x3b || ch === 0x20 || ch === 0x09) this.state = C.Ext;
          else return BodyStatus.Invalid;
          i++;
          break;
        }
        case C.Ext:
          if (ch === 0x0d) this.state = C.SizeLf;
          else if (ch === 0x0a) {
            this.state = C.SizeLf;
            continue;
          }
          i++;
          break;
        case C.SizeLf:
          if (ch !== 0x0a) return BodyStatus.Invalid;
          i++;
          if (this.remaining === 0) {
            this.state = C.Trailer;
            this.trailerLen = 0;
          } else {
            if (this.maxSize && this.received + this.remaining > this.maxSize) {
              this.tooLargeChunk = this.remaining;
              return BodyStatus.TooLarge;
            }
            this.state = C.Data;
          }
          break;
        case C.Data: {
          const n = Math.min(this.remaining, len - i);
          this.sink?.(buf.subarray(i, i + n));
          this.received += n;
          this.remaining -= n;
          i += n;
          if (this.remaining === 0) this.state = C.DataCr;
          break;
        }
        case C.DataCr:
          if (ch === 0x0d) {
            this.state = C.DataLf;
            i++;
          } else if (ch === 0x0a) this.state = C.DataLf;
          else return BodyStatus.Invalid;
          break;
        case C.DataLf:
          if (ch !== 0x0a) return BodyStatus.Invalid;
          i++;
          this.state = C.Size;
          this.sizeDigits = 0;
          this.remaining = 0;
          break;
        case C.Trailer:
          // trailer lines are skipped up to the empty line; a CR must be followed by LF (ngx_http_parse_chunked)
          if (this.trailerCr && ch !== 0x0a) return BodyStatus.Invalid;
          this.trailerCr = ch === 0x0d;
          if (ch === 0x0a) {
            i++;
            if (this.trailerLen === 0) {
              this.state = C.LastLf + 1;
              this.rest = i < len ? buf.subarray(i) : undefined;
              return BodyStatus.Done;
            }
            this.trailerLen = 0;
          } else {
            if (ch !== 0x0d) this.trailerLen++;
            i++;
          }
          break;
        default:
          return BodyStatus.Invalid;
      }
    }
    return BodyStatus.More;
  }
}

function hex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}
