/*
 * Request line and header line parsing with nginx's rules
 * (ngx_http_parse_request_line / ngx_http_parse_header_line): which bytes
 * are accepted, which give 400 and which 505, which headers are silently
 * ignored. Lines arrive without their LF; a final CR is stripped here.
 */

import { knownHeader, knownName, type Head } from './head.js';

export const enum LineError {
  InvalidMethod = 1,
  InvalidRequest,
  InvalidVersion,
  Invalid09Method,
}

/** nginx's ngx_http_client_errors[], indexed by LineError - 1 */
export const LINE_ERROR_TEXT = [
  'client sent invalid method',
  'client sent invalid request',
  'client sent invalid version',
  'client sent invalid method in HTTP/0.9 request',
];

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isAlpha = (c: number): boolean => {
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x7a;
};
const isHostChar = (c: number): boolean => isAlpha(c) || isDigit(c) || c === 0x2e || c === 0x2d;
const isMethodChar = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x2d;
/** bytes nginx refuses inside a URI */
const isCtl = (c: number): boolean => c < 0x20 || c === 0x7f;

/** states of ngx_http_parse_request_line */
const enum RL {
  Start,
  Method,
  SpacesBeforeUri,
  Schema,
  SchemaSlash,
  SchemaSlashSlash,
  HostStart,
  Host,
  HostIpLiteral,
  HostEnd,
  Port,
  /** the URI's path or query: only control bytes, CR and LF matter here */
  Uri,
  Http09,
  H,
  HT,
  HTT,
  HTTP,
  FirstMajor,
  Major,
  FirstMinor,
  Minor,
  SpacesAfterDigit,
  AlmostDone,
}

/** scan() results besides a LineError */
export const RL_AGAIN = 0;
export const RL_DONE = -1;

/**
 * nginx's request line state machine (ngx_http_parse_request_line), byte by
 * byte: it rejects a request line at the first byte that cannot belong to
 * one (`xyz`, `PRI * H`...), without waiting for the line feed, and skips
 * CR and LF before the line. Resumable: scan() continues where it stopped.
 * Positions are offsets in the buffer scanned.
 */
export class RequestLineScanner {
  private state = RL.Start;
  /** next byte to look at */
  pos = 0;
  /** where the request line starts (after leading CR/LF): nginx's request_start */
  start = -1;
  private methodEnd = 0;
  private schemaStart = -1;
  private hostStart = -1;
  private hostEnd = -1;
  private portEnd = -1;
  private pathStart = -1;
  private uriEnd = -1;
  private protoStart = -1;
  private protoEnd = -1;
  private end = -1;
  private major = 0;
  private minor = 0;
  private http09 = false;

  reset(pos: number): void {
    this.state = RL.Start;
    this.pos = pos;
    this.start = -1;
    this.methodEnd = 0;
    this.schemaStart = this.hostStart = this.hostEnd = this.portEnd = this.pathStart = -1;
    this.uriEnd = this.protoStart = this.protoEnd = this.end = -1;
    this.major = this.minor = 0;
    this.http09 = false;
  }

  /** nothing of the request line seen yet (only CR/LF): nginx's r->state == 0 */
  get idle(): boolean {
    return this.state === RL.Start;
  }

  /** scan buf[pos, to): RL_AGAIN (all scanned), RL_DONE (pos is after the LF) or the LineError */
  scan(buf: Buffer, to: number): number {
    let p = this.pos;
    let state = this.state;
    for (; p < to; p++) {
      const ch = buf[p]!;
      switch (state) {
        case RL.Start:
          if (ch === 0x0d || ch === 0x0a) break;
          this.start = p;
          if (!isMethodChar(ch)) return this.fail(p, LineError.InvalidMethod);
          state = RL.Method;
          break;
        case RL.Method:
          if (ch === 0x20) {
            this.methodEnd = p;
            state = RL.SpacesBeforeUri;
            break;
          }
          if (!isMethodChar(ch)) return this.fail(p, LineError.InvalidMethod);
          break;
        case RL.SpacesBeforeUri:
          if (ch === 0x2f) {
            this.pathStart = p;
            state = RL.Uri;
            break;
          }
          if (isAlpha(ch)) {
            this.schemaStart = p;
            state = RL.Schema;
            break;
          }
          if (ch !== 0x20) return this.fail(p, LineError.InvalidRequest);
          break;
        case RL.Schema:
          if (isAlpha(ch) || isDigit(ch) || ch === 0x2b || ch === 0x2d || ch === 0x2e) break;
          if (ch !== 0x3a) return this.fail(p, LineError.InvalidRequest);
          state = RL.SchemaSlash;
          break;
        case RL.SchemaSlash:
          if (ch !== 0x2f) return this.fail(p, LineError.InvalidRequest);
          state = RL.SchemaSlashSlash;
          break;
        case RL.SchemaSlashSlash:
          if (ch !== 0x2f) return this.fail(p, LineError.InvalidRequest);
          state = RL.HostStart;
          break;
        case RL.HostStart:
          this.hostStart = p;
          if (ch === 0x5b) state = RL.HostIpLiteral;
          else if (isHostChar(ch)) state = RL.Host;
          else if ((state = this.hostEnded(ch, p)) === RL.Start) return this.fail(p, LineError.InvalidRequest);
          break;
        case RL.Host:
          if (isHostChar(ch)) break;
          if ((state = this.hostEnded(ch, p)) === RL.Start) return this.fail(p, LineError.InvalidRequest);
          break;
        case RL.HostEnd:
          if ((state = this.hostEnded(ch, p)) === RL.Start) return this.fail(p, LineError.InvalidRequest);
          break;
        case RL.HostIpLiteral:
          if (isDigit(ch) || isAlpha(ch)) break;
          if (ch === 0x5d) state = RL.HostEnd;
          else if (!":-._~!$&'()*+,;=".includes(String.fromCharCode(ch))) return this.fail(p, LineError.InvalidRequest);
          break;
        case RL.Port:
          if (isDigit(ch)) break;
          this.portEnd = p;
          if (ch === 0x2f || ch === 0x3f) {
            this.pathStart = p;
            state = RL.Uri;
          } else if (ch === 0x20) {
            this.uriEnd = p;
            state = RL.Http09;
          } else return this.fail(p, LineError.InvalidRequest);
          break;
        case RL.Uri:
          if (ch > 0x20 && ch !== 0x7f) {
            // the common bytes of a path or query, run over in a tight loop
            let q = p + 1;
            while (q < to) {
              const c = buf[q]!;
              if (c <= 0x20 || c === 0x7f) break;
              q++;
            }
            p = q - 1;
            break;
          }
          if (ch === 0x20) {
            this.uriEnd = p;
            state = RL.Http09;
          } else if (ch === 0x0d) {
            this.uriEnd = this.end = p;
            this.http09 = true;
            state = RL.AlmostDone;
          } else if (ch === 0x0a) {
            this.uriEnd = this.end = p;
            this.http09 = true;
            return this.done(p, state);
          } else if (isCtl(ch)) return this.fail(p, LineError.InvalidRequest);
          break;
        case RL.Http09:
          if (ch === 0x20) break;
          if (ch === 0x0d) {
            this.end = p;
            this.http09 = true;
            state = RL.AlmostDone;
          } else if (ch === 0x0a) {
            this.end = p;
            this.http09 = true;
            return this.done(p, state);
          } else if (ch === 0x48) {
            this.protoStart = p;
            state = RL.H;
          } else return this.fail(p, LineError.InvalidRequest);
          break;
        case RL.H:
          if (ch !== 0x54) return this.fail(p, LineError.InvalidRequest);
          state = RL.HT;
          break;
        case RL.HT:
          if (ch !== 0x54) return this.fail(p, LineError.InvalidRequest);
          state = RL.HTT;
          break;
        case RL.HTT:
          if (ch !== 0x50) return this.fail(p, LineError.InvalidRequest);
          state = RL.HTTP;
          break;
        case RL.HTTP:
          if (ch !== 0x2f) return this.fail(p, LineError.InvalidRequest);
          state = RL.FirstMajor;
          break;
        case RL.FirstMajor:
          if (ch < 0x31 || ch > 0x39) return this.fail(p, LineError.InvalidRequest);
          this.major = ch - 0x30;
          if (this.major > 1) return this.fail(p, LineError.InvalidVersion);
          state = RL.Major;
          break;
        case RL.Major:
          if (ch === 0x2e) {
            state = RL.FirstMinor;
            break;
          }
          if (!isDigit(ch)) return this.fail(p, LineError.InvalidRequest);
          this.major = this.major * 10 + ch - 0x30;
          if (this.major > 1) return this.fail(p, LineError.InvalidVersion);
          break;
        case RL.FirstMinor:
          if (!isDigit(ch)) return this.fail(p, LineError.InvalidRequest);
          this.minor = ch - 0x30;
          state = RL.Minor;
          break;
        case RL.Minor:
          if (ch === 0x0d) {
            this.protoEnd = this.end = p;
            state = RL.AlmostDone;
          } else if (ch === 0x0a) {
            this.protoEnd = this.end = p;
            return this.done(p, state);
          } else if (ch === 0x20) {
            this.protoEnd = p;
            state = RL.SpacesAfterDigit;
          } else {
            if (!isDigit(ch) || this.minor > 99) return this.fail(p, LineError.InvalidRequest);
            this.minor = this.minor * 10 + ch - 0x30;
          }
          break;
        case RL.SpacesAfterDigit:
          if (ch === 0x20) break;
          if (ch === 0x0d) {
            this.end = p;
            state = RL.AlmostDone;
          } else if (ch === 0x0a) {
            this.end = p;
            return this.done(p, state);
          } else return this.fail(p, LineError.InvalidRequest);
          break;
        case RL.AlmostDone:
          if (ch !== 0x0a) return this.fail(p, LineError.InvalidRequest);
          return this.done(p, state);
      }
    }
    this.pos = p;
    this.state = state;
    return RL_AGAIN;
  }

  /** sw_host_end: the byte after the host; the next state, RL.Start for an invalid request */
  private hostEnded(ch: number, p: number): RL {
    this.hostEnd = p;
    if (ch === 0x3a) return RL.Port;
    if (ch === 0x2f || ch === 0x3f) {
      this.pathStart = p;
      return RL.Uri;
    }
    if (ch === 0x20) {
      this.uriEnd = p;
      return RL.Http09;
    }
    return RL.Start;
  }

  private fail(p: number, e: LineError): number {
    this.pos = p;
    return e;
  }

  private done(p: number, state: RL): number {
    this.pos = p + 1;
    this.state = state;
    if (this.end === -1) this.end = p;
    return RL_DONE;
  }

  /** the method once its space was read (nginx's r->method), else '' */
  method(buf: Buffer): string {
    return this.methodEnd > this.start && this.start !== -1 ? buf.toString('latin1', this.start, this.methodEnd) : '';
  }

  /** the request line of a refused request, for logs: from its start to the first CR or LF received (nginx's log handler) */
  text(buf: Buffer, to: number): string {
    if (this.start === -1) return '';
    let e = this.start;
    while (e < to && buf[e] !== 0x0d && buf[e] !== 0x0a) e++;
    return buf.toString('latin1', this.start, e);
  }

  /** once scan() returned RL_DONE: the fields into h; 0, or the 0.9 method error */
  fill(buf: Buffer, h: Head): 0 | LineError {
    const start = this.start;
    // one string for the line; the fields are slices of it (no copy each)
    const line = buf.toString('latin1', start, this.end);
    const me = this.methodEnd - start;
    const method = me === 3 && line.charCodeAt(0) === 0x47 && line.charCodeAt(1) === 0x45 && line.charCodeAt(2) === 0x54 ? 'GET' : line.slice(0, me);
    if (this.http09 && method !== 'GET') return LineError.Invalid09Method;
    const uriStart = (this.schemaStart !== -1 ? this.schemaStart : this.pathStart) - start;
    const uriEnd = this.uriEnd - start;
    h.method = method;
    h.rawUri = line.slice(uriStart, uriEnd);
    if (this.schemaStart === -1) {
      h.pathQuery = h.rawUri;
      h.uriHost = undefined;
    } else {
      // an absolute URI: nginx's $host comes from it; the path starts at its `/` or `?`
      h.pathQuery = this.pathStart === -1 ? '' : line.slice(this.pathStart - start, uriEnd);
      h.uriHost = line.slice(this.hostStart - start, (this.portEnd !== -1 ? this.portEnd : this.hostEnd) - start);
    }
    h.line = line;
    if (this.http09) {
      h.version = 9;
      h.protocol = '';
    } else {
      const version = this.major * 1000 + this.minor;
      h.version = version;
      // the usual protocols are shared strings, not slices of every line
      const n = this.protoEnd - this.protoStart;
      h.protocol = n === 8 && version === 1001 ? 'HTTP/1.1' : n === 8 && version === 1000 ? 'HTTP/1.0' : line.slice(this.protoStart - start, this.protoEnd - start);
    }
    return 0;
  }
}

/** parse one complete request line (LF optional) into h: 0 or the error, as the connection does */
export function parseRequestLine(raw: string, h: Head): 0 | LineError {
  const buf = Buffer.from(raw.endsWith('\n') ? raw : `${raw}\n`, 'latin1');
  const sc = new RequestLineScanner();
  sc.reset(0);
  const rc = sc.scan(buf, buf.length);
  if (rc > 0) return rc as LineError;
  if (rc !== RL_DONE) return LineError.InvalidRequest;
  return sc.fill(buf, h);
}

/** states of ngx_http_parse_header_line, as far as validity goes */
const enum HL {
  Start,
  Name,
  Value,
  AlmostDone,
  HeaderAlmostDone,
}

/** HeaderScanner.scan() results */
export const HL_AGAIN = 0;
/** a header line ended (pos is after its LF) */
export const HL_LINE = 1;
/** the empty line: the head ended */
export const HL_END = 2;
/** NGX_HTTP_PARSE_INVALID_HEADER at pos */
export const HL_INVALID = 3;

/**
 * The validity side of nginx's header line state machine, byte by byte:
 * a control byte or space in a name, a NUL in a value, a CR not followed
 * by LF are refused at once (400), before the line feed comes.
 * parseHeaderLine() then takes the complete line apart.
 */
export class HeaderScanner {
  private state = HL.Start;
  pos = 0;
  /** where nginx's header_end points after HL_INVALID: the refused byte, or the CR a bad byte followed */
  bad = 0;
  private cr = 0;

  reset(pos: number): void {
    this.state = HL.Start;
    this.pos = pos;
  }

  /** at the start of a line: nothing of it seen (nginx's r->state == 0) */
  get idle(): boolean {
    return this.state === HL.Start;
  }

  scan(buf: Buffer, to: number): number {
    let p = this.pos;
    let state = this.state;
    for (; p < to; p++) {
      const ch = buf[p]!;
      switch (state) {
        case HL.Start:
          if (ch === 0x0d) {
            this.cr = p;
            state = HL.HeaderAlmostDone;
          } else if (ch === 0x0a) {
            this.pos = p + 1;
            return HL_END;
          } else if (ch <= 0x20 || ch === 0x7f || ch === 0x3a) {
            this.pos = this.bad = p;
            return HL_INVALID;
          } else state = HL.Name;
          break;
        case HL.Name:
          if (ch > 0x20 && ch !== 0x7f && ch !== 0x3a) {
            let q = p + 1;
            while (q < to) {
              const c = buf[q]!;
              if (c <= 0x20 || c === 0x7f || c === 0x3a) break;
              q++;
            }
            p = q - 1;
            break;
          }
          if (ch === 0x3a) state = HL.Value;
          else if (ch === 0x0d) {
            this.cr = p;
            state = HL.AlmostDone;
          }
          else if (ch === 0x0a) {
            this.pos = p + 1;
            this.state = HL.Start;
            return HL_LINE;
          } else if (ch <= 0x20 || ch === 0x7f) {
            this.pos = this.bad = p;
            return HL_INVALID;
          }
          break;
        case HL.Value:
          if (ch !== 0x0d && ch !== 0x0a && ch !== 0) {
            let q = p + 1;
            while (q < to) {
              const c = buf[q]!;
              if (c === 0x0d || c === 0x0a || c === 0) break;
              q++;
            }
            p = q - 1;
            break;
          }
          if (ch === 0x0d) {
            this.cr = p;
            state = HL.AlmostDone;
          }
          else if (ch === 0x0a) {
            this.pos = p + 1;
            this.state = HL.Start;
            return HL_LINE;
          } else if (ch === 0) {
            this.pos = this.bad = p;
            return HL_INVALID;
          }
          break;
        case HL.AlmostDone:
          if (ch === 0x0a) {
            this.pos = p + 1;
            this.state = HL.Start;
            return HL_LINE;
          }
          if (ch !== 0x0d) {
            this.pos = p;
            this.bad = this.cr;
            return HL_INVALID;
          }
          break;
        case HL.HeaderAlmostDone:
          if (ch === 0x0a) {
            this.pos = p + 1;
            return HL_END;
          }
          this.pos = p;
          this.bad = this.cr;
          return HL_INVALID;
      }
    }
    this.pos = p;
    this.state = state;
    return HL_AGAIN;
  }
}

/** lowcase[] of ngx_http_parse_header_line: the bytes a header name may hold */
function nameChar(c: number): boolean {
  return c === 0x2d || isDigit(c) || isAlpha(c);
}

export const enum HeaderLine {
  Invalid = -1,
  /** nginx ignores the line (invalid character or `_` in the name) */
  Ignored = 0,
  Added = 1,
}

/**
 * The header line in buf[s, e) (e at its LF; the CRs before it are stripped here),
 * added to h when valid (a name with `_` is valid under underscores_in_headers; one
 * with another odd byte is kept too when ignore_invalid_headers is off). Invalid = NGX_HTTP_PARSE_INVALID_HEADER (400).
 */
export function parseHeaderLine(buf: Buffer, s: number, e: number, h: Head, underscores = false, ignoreInvalid = true): HeaderLine {
  // nginx's sw_almost_done takes any number of CRs before the LF
  let len = e;
  while (len > s && buf[len - 1] === 0x0d) len--;
  let invalid = false;
  let odd = false;
  let i = s;
  const first = buf[s]!;
  if (first <= 0x20 || first === 0x7f || first === 0x3a) return HeaderLine.Invalid;
  for (; i < len; i++) {
    const c = buf[i]!;
    if (c === 0x3a) break;
    if (nameChar(c)) continue;
    if (c === 0x5f && underscores) {
      odd = true;
      continue;
    }
    if (c <= 0x20 || c === 0x7f) return HeaderLine.Invalid;
    invalid = true;
  }
  const nameEnd = i;
  let vs = len;
  let ve = len;
  if (i < len) {
    i++;
    while (i < len && buf[i] === 0x20) i++;
    let end = len;
    while (end > i && buf[end - 1] === 0x20) end--;
    for (let j = i; j < end; j++) {
      const c = buf[j]!;
      if (c === 0 || c === 0x0d) return HeaderLine.Invalid;
    }
    vs = i;
    ve = end;
  }
  if (invalid && ignoreInvalid) return HeaderLine.Ignored;
  if (invalid || odd) h.oddNames = true;
  const known = knownHeader(buf, s, nameEnd);
  h.addHeader(known === 0 ? buf.toString('latin1', s, nameEnd) : knownName(buf, s, nameEnd, known), vs === ve ? '' : buf.toString('latin1', vs, ve), known);
  return HeaderLine.Added;
}

/** ngx_http_validate_host: lowercased host without port or trailing dot, or undefined (400) */
export function validateHost(host: string): string | undefined {
  let dotPos = host.length;
  let hostLen = host.length;
  let state = 0; // 0 usual, 1 literal, 2 rest
  for (let i = 0; i < host.length; i++) {
    const ch = host.charCodeAt(i);
    if (ch === 0x2e) {
      if (dotPos === i - 1) return undefined;
      dotPos = i;
    } else if (ch === 0x3a) {
      if (state === 0) {
        hostLen = i;
        state = 2;
      }
    } else if (ch === 0x5b) {
      if (i === 0) state = 1;
    } else if (ch === 0x5d) {
      if (state === 1) {
        hostLen = i + 1;
        state = 2;
      }
    } else if (ch === 0x2f || ch <= 0x20 || ch === 0x7f) {
      return undefined;
    }
  }
  if (dotPos === hostLen - 1) hostLen--;
  if (hostLen <= 0) return undefined;
  // ngx_strlow: ASCII letters only (bytes past 0x7f stay as sent)
  const h = host.slice(0, hostLen);
  return /[\x80-\xff]/.test(h) ? h.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : h.toLowerCase();
}
