/*
 * The HTTP/1.x response of a proxied backend, read as nginx's proxy module
 * reads it (ngx_http_proxy_process_status_line / process_header and its
 * input filters): the status line and header lines collected in a buffer
 * of proxy_buffer_size bytes (a longer head is "too big"), then the body
 * delimited by Content-Length, by chunked framing (decoded: the client
 * gets it re-framed by the engine) or by the connection's close. Lenient
 * where nginx is: bare LF line ends, a header line without a colon (an
 * empty value); strict where it is: a NUL byte in a header line.
 */

const CR = 13;
const LF = 10;

export interface ResponseHead {
  /** 1000 for HTTP/1.0, 1001 for HTTP/1.1 (as nginx's http_version) */
  version: number;
  status: number;
  /** the reason phrase as sent ('' when none) */
  reason: string;
  headers: Array<[string, string]>;
}

export type HeadResult =
  | { state: 'more' }
  | { state: 'done'; head: ResponseHead; bodyOffset: number }
  /** message: nginx's log line without the `while ...` */
  | { state: 'error'; message: string; failure: 'invalid_response' };

/** a status line: HTTP/major.minor SP 3 digits [SP reason] (ngx_http_parse_status_line) */
const STATUS_LINE = /^HTTP\/(\d{1,3})\.(\d{1,3}) +(\d{3})(?: (.*))?$/;

/** Collects the response head across reads, within proxy_buffer_size bytes. */
export class HeadParser {
  private readonly limit: number;
  private buf: Buffer = Buffer.alloc(0);

  constructor(limit: number) {
    this.limit = limit;
  }

  feed(chunk: Buffer): HeadResult {
    const buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    // the end of the head: an empty line (CRLF CRLF, or bare LFs)
    let end = -1;
    let lineStart = 0;
    for (let i = 0; i < buf.length && i < this.limit; i++) {
      if (buf[i] !== LF) continue;
      const len = i - lineStart - (i > lineStart && buf[i - 1] === CR ? 1 : 0);
      if (len === 0 && lineStart > 0) {
        end = i + 1;
        break;
      }
      lineStart = i + 1;
    }
    if (end === -1) {
      if (buf.length >= this.limit) return { state: 'error', message: 'upstream sent too big header', failure: 'invalid_response' };
      this.buf = Buffer.from(buf);
      return { state: 'more' };
    }
    this.buf = Buffer.alloc(0);
    const text = buf.toString('latin1', 0, end);
    const lines = text.split('\n');
    const first = lines[0]!.endsWith('\r') ? lines[0]!.slice(0, -1) : lines[0]!;
    const m = STATUS_LINE.exec(first);
    if (m === null) return { state: 'error', message: 'upstream sent no valid HTTP/1.0 header', failure: 'invalid_response' };
    const version = Number(m[1]) * 1000 + Number(m[2]);
    const headers: Array<[string, string]> = [];
    for (let k = 1; k < lines.length; k++) {
      let line = lines[k]!;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line.length === 0) continue;
      const colon = line.indexOf(':');
      const name = colon === -1 ? line.trimEnd() : line.slice(0, colon).trimEnd();
      const nul = line.indexOf('\0');
      if (nul !== -1) {
        // nginx prints the line up to the bad byte, then the byte as \xNN
        return { state: 'error', message: `upstream sent invalid header: "${line.slice(0, nul)}\\x00..."`, failure: 'invalid_response' };
      }
      const value = colon === -1 ? '' : line.slice(colon + 1).trim();
      headers.push([name, value]);
    }
    return { state: 'done', head: { version, status: Number(m[3]), reason: m[4] ?? '', headers }, bodyOffset: end };
  }
}

export const enum Body {
  /** nothing to read (HEAD, 204, 304, Content-Length: 0) */
  None,
  /** exactly `length` bytes */
  Length,
  /** chunked framing */
  Chunked,
  /** until the backend closes */
  Close,
}

export type BodyResult =
  /** more is expected */
  | 0
  /** the body is complete; `rest` bytes of the last piece were beyond it */
  | 1
  /** malformed chunked framing */
  | 2;

export const BODY_MORE = 0;
export const BODY_DONE = 1;
export const BODY_INVALID = 2;

const enum Ch {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  Trailer,
  TrailerLf,
  Done,
}

/**
 * The body after the head: `feed` hands the payload bytes to `out` (slices
 * of the pieces read, never copied) and says when the body ends.
 */
export class BodyReader {
  readonly kind: Body;
  private left: number;
  private st = Ch.Size;
  private size = 0;
  private sizeDigits = 0;
  /** the bytes of the last piece beyond the body */
  rest = 0;

  constructor(kind: Body, length: number) {
    this.kind = kind;
    this.left = length;
  }

  feed(b: Buffer, out: (data: Buffer) => void): BodyResult {
    switch (this.kind) {
      case Body.None:
        this.rest = b.length;
        return BODY_DONE;
      case Body.Close:
        if (b.length > 0) out(b);
        return BODY_MORE;
      case Body.Length: {
        const n = Math.min(this.left, b.length);
        if (n > 0) out(n === b.length ? b : b.subarray(0, n));
        this.left -= n;
        this.rest = b.length - n;
        return this.left === 0 ? BODY_DONE : BODY_MORE;
      }
      default:
        return this.chunked(b, out);
    }
  }

  /** ngx_http_parse_chunked's states, byte by byte outside the data */
  private chunked(b: Buffer, out: (data: Buffer) => void): BodyResult {
    let i = 0;
    const n = b.length;
    while (i < n) {
      switch (this.st) {
        case Ch.Size: {
          const c = b[i]!;
          const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
          if (d >= 0) {
            // nginx refuses sizes beyond its off_t
            if (++this.sizeDigits > 15) return BODY_INVALID;
            this.size = this.size * 16 + d;
            i++;
            continue;
          }
          if (this.sizeDigits === 0) return BODY_INVALID;
          if (c === CR) this.st = Ch.SizeLf;
          else if (c === LF) this.afterSize();
          else if (c === 0x3b || c === 0x20 || c === 0x09) this.st = Ch.Ext;
          else return BODY_INVALID;
          i++;
          continue;
        }
        case Ch.Ext: {
          const c = b[i++]!;
          if (c === CR) this.st = Ch.SizeLf;
          else if (c === LF) this.afterSize();
          continue;
        }
        case Ch.SizeLf:
          if (b[i++] !== LF) return BODY_INVALID;
          this.afterSize();
          continue;
        case Ch.Data: {
          const k = Math.min(this.size, n - i);
          out(b.subarray(i, i + k));
          this.size -= k;
          i += k;
          if (this.size === 0) this.st = Ch.DataCr;
          continue;
        }
        case Ch.DataCr: {
          const c = b[i++]!;
          if (c === CR) this.st = Ch.DataLf;
          else if (c === LF) this.nextSize();
          else return BODY_INVALID;
          continue;
        }
        case Ch.DataLf:
          if (b[i++] !== LF) return BODY_INVALID;
          this.nextSize();
          continue;
        case Ch.Trailer: {
          // trailer lines until an empty one
          const c = b[i++]!;
          if (c === LF) {
            if (this.sizeDigits === 0) {
              this.st = Ch.Done;
              this.rest = n - i;
              return BODY_DONE;
            }
            this.sizeDigits = 0;
          } else if (c !== CR) this.sizeDigits = 1;
          continue;
        }
        default:
          this.rest = n - i;
          return BODY_DONE;
      }
    }
    return BODY_MORE;
  }

  private afterSize(): void {
    if (this.size === 0) {
      // the last chunk: trailers (ignored, as nginx's proxy does) until an empty line
      this.st = Ch.Trailer;
      this.sizeDigits = 0;
      return;
    }
    this.st = Ch.Data;
  }

  private nextSize(): void {
    this.st = Ch.Size;
    this.size = 0;
    this.sizeDigits = 0;
  }
}
