import type { RequestHead } from './request.js';

/*
 * The parsed request head of one client request (nginx's request line
 * fields + headers_in). Filled while the head is read: the request line by
 * parseRequestLine, each header by addHeader. The few headers the engine
 * itself needs (Host, Content-Length, Transfer-Encoding, Connection,
 * User-Agent) are recognised from their bytes as they arrive and kept in
 * fields, as nginx's headers_in hash does; the lowercase name → value map
 * the variables ($http_*, $cookie_*) read is built only when someone asks.
 */

/** the headers nginx's headers_in knows and the engine reads (bit numbers) */
export const enum Known {
  None = 0,
  Host = 1,
  ContentLength = 2,
  TransferEncoding = 4,
  IfModifiedSince = 8,
  IfUnmodifiedSince = 16,
  ContentRange = 32,
  IfRange = 64,
  Expect = 128,
  Authorization = 256,
  Connection = 512,
  UserAgent = 1024,
}

/** headers nginx treats as unique: a second one is a 400 */
const UNIQUE =
  Known.Host | Known.ContentLength | Known.TransferEncoding | Known.IfModifiedSince | Known.IfUnmodifiedSince |
  Known.ContentRange | Known.IfRange | Known.Expect | Known.Authorization;

/** bytes [s, s + lit.length) equal `lit` (lowercase) ignoring case; valid header-name bytes only */
function eqLower(buf: Buffer, s: number, lit: string): boolean {
  for (let i = 0; i < lit.length; i++) {
    // name bytes are letters, digits and `-`: |0x20 lowercases letters, keeps the rest
    if ((buf[s + i]! | 0x20) !== lit.charCodeAt(i)) return false;
  }
  return true;
}

/** which known header the name bytes [s, e) are (Known.None for any other) */
export function knownHeader(buf: Buffer, s: number, e: number): Known {
  switch (e - s) {
    case 4:
      return eqLower(buf, s, 'host') ? Known.Host : Known.None;
    case 6:
      return eqLower(buf, s, 'expect') ? Known.Expect : Known.None;
    case 8:
      return eqLower(buf, s, 'if-range') ? Known.IfRange : Known.None;
    case 10:
      return eqLower(buf, s, 'connection') ? Known.Connection : eqLower(buf, s, 'user-agent') ? Known.UserAgent : Known.None;
    case 13:
      return eqLower(buf, s, 'content-range') ? Known.ContentRange : eqLower(buf, s, 'authorization') ? Known.Authorization : Known.None;
    case 14:
      return eqLower(buf, s, 'content-length') ? Known.ContentLength : Known.None;
    case 17:
      return eqLower(buf, s, 'transfer-encoding') ? Known.TransferEncoding : eqLower(buf, s, 'if-modified-since') ? Known.IfModifiedSince : Known.None;
    case 19:
      return eqLower(buf, s, 'if-unmodified-since') ? Known.IfUnmodifiedSince : Known.None;
    default:
      return Known.None;
  }
}

/** the usual spelling of the known names: a name sent so is this string, not a new one */
export function knownName(buf: Buffer, s: number, e: number, known: Known): string {
  const name = known === Known.Host ? 'Host' : known === Known.Connection ? 'Connection' : known === Known.ContentLength ? 'Content-Length' : undefined;
  if (name !== undefined && name.length === e - s) {
    let i = 0;
    while (i < name.length && buf[s + i] === name.charCodeAt(i)) i++;
    if (i === name.length) return name;
  }
  return buf.toString('latin1', s, e);
}

export class Head implements RequestHead {
  method = '';
  /** the URI exactly as sent (absolute or not) */
  rawUri = '';
  /** the path-and-query part (`/p?a`); '' for `http://h?x` style */
  pathQuery = '';
  /** the host of an absolute URI (with port), else undefined */
  uriHost: string | undefined = undefined;
  /** the URI's normalized path and its arguments, once the request line was checked (ngx_http_process_request_uri) */
  uri = '';
  args = '';
  /** the validated host of an absolute URI ('' when none) */
  lineHost = '';
  /** the Host header's validated value, once checked as it arrived */
  hostValid: string | undefined = undefined;
  /** the request line without the line end, for $request and logs */
  line = '';
  version = 0;
  protocol = '';
  headers: Array<[string, string]> = [];
  /** a name holds `_` or another odd byte: $http_NAME then scans the lines (core_variables.ts) */
  oddNames = false;
  /** first values of the known headers (undefined: not sent) */
  host: string | undefined = undefined;
  contentLength: string | undefined = undefined;
  transferEncoding: string | undefined = undefined;
  /**
   * the first User-Agent (headers_in.user_agent): keepalive_disable asks for
   * it on every request, which should not build the name map
   */
  userAgent: string | undefined = undefined;
  /** nginx's connection_type from every Connection header: 0 none, 1 close, 2 keep-alive */
  connectionType = 0;
  /** Known bits seen so far */
  private seen = 0;
  /** index in `headers` of the first repeated unique header (-1: none) */
  duplicate = -1;
  private map: Map<string, string> | undefined = undefined;

  /** one valid header line; `known` from knownHeader() on its name bytes */
  addHeader(name: string, value: string, known: Known): void {
    const headers = this.headers;
    if (known === Known.Connection) this.connectionHeader(value);
    if (known !== Known.None) {
      if (this.seen & known) {
        if (known & UNIQUE && this.duplicate === -1) this.duplicate = headers.length;
      } else {
        this.seen |= known;
        if (known === Known.Host) this.host = value;
        else if (known === Known.ContentLength) this.contentLength = value;
        else if (known === Known.TransferEncoding) this.transferEncoding = value;
        else if (known === Known.UserAgent) this.userAgent = value;
      }
    }
    headers.push([name, value]);
  }

  /** ngx_http_process_connection: each Connection header containing `close` or `keep-alive` sets the type */
  private connectionHeader(value: string): void {
    const lc = value.toLowerCase();
    if (lc.includes('close')) this.connectionType = 1;
    else if (lc.includes('keep-alive')) this.connectionType = 2;
  }

  /** a header of this kind was sent (without building the name map) */
  has(known: Known): boolean {
    return (this.seen & known) !== 0;
  }

  /** nginx's message for the first repeated unique header */
  duplicateMessage(): string {
    const [name, value] = this.headers[this.duplicate]!;
    const key = name.toLowerCase();
    const [pname, prev] = this.headers.find(([n]) => n.toLowerCase() === key)!;
    return `client sent duplicate ${key === 'host' ? 'host header' : 'header line'}: "${name}: ${value}", previous value: "${pname}: ${prev}"`;
  }

  /** a request refused before its headers were looked at: no header lookups (nginx's headers_in stays empty) */
  forgetHeaders(): void {
    this.map = new Map();
  }

  /** lowercased name → first value (Cookie and X-Forwarded-For joined), built on first use */
  get byName(): Map<string, string> {
    let m = this.map;
    if (m === undefined) {
      m = new Map();
      // after a repeated unique header nginx stopped filling headers_in there
      const headers = this.headers;
      const n = this.duplicate === -1 ? headers.length : this.duplicate;
      for (let i = 0; i < n; i++) {
        const [name, value] = headers[i]!;
        const key = name.toLowerCase();
        const prev = m.get(key);
        if (prev === undefined) m.set(key, value);
        else if (key === 'cookie') m.set(key, `${prev}; ${value}`);
        else if (key === 'x-forwarded-for') m.set(key, `${prev}, ${value}`);
      }
      this.map = m;
    }
    return m;
  }
}
