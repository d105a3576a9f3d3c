import type { CoreLocConf } from './core/module.js';
import { PROGRAM, SERVER_TOKEN } from '../core/version.js';
import type { HttpRequest } from './http_request.js';
import { statusLine } from './status.js';
import { contentTypeLine } from './types.js';

/*
 * ngx_http_header_filter's output half: a response's status line and
 * headers, in nginx's order, as bytes. The usual response (200 with
 * nothing but its location's own headers) reuses the bytes of the last
 * one built for that location within the same second.
 */

const CRLF = '\r\n';

let dateSec = -1;
let dateStr = '';
/** `Date:` value, cached per second */
export function httpDate(now = Date.now()): string {
  const sec = Math.floor(now / 1000);
  if (sec !== dateSec) {
    dateSec = sec;
    dateStr = new Date(sec * 1000).toUTCString();
  }
  return dateStr;
}

/** the last plain response header of a location (never mutated once written: shared by responses) */
interface CachedHeader {
  date: string;
  status: number;
  statusLine: string | undefined;
  contentType: string | undefined;
  /** the Content-Length line's value, -1 none */
  length: number;
  chunked: boolean;
  keepalive: boolean;
  /** the header list's lines (a copy: the request's own list may change after) */
  list: string[];
  bytes: Buffer;
}

/* r's header list is the cached one, name for name and value for value */
function sameList(list: string[], h: Array<[string, string]>): boolean {
  if (list.length !== h.length * 2) return false;
  for (let i = 0; i < h.length; i++) {
    const e = h[i]!;
    if (list[2 * i] !== e[0] || list[2 * i + 1] !== e[1]) return false;
  }
  return true;
}
const headerCache = new WeakMap<CoreLocConf, CachedHeader>();

/** ngx_http_header_filter's absolute Location: server_name_in_redirect, Host or the local address; port_in_redirect */
function absoluteLocation(r: HttpRequest, clcf: CoreLocConf | undefined, loc: string): string {
  let host: string;
  if (clcf?.serverNameInRedirect) {
    // cscf->server_name: the first name as written (a regex with its `~`)
    const n = r.srv.serverNames[0];
    host = n === undefined ? '' : n.regex ? `~${n.name}` : n.name;
  } else host = r.host || r.conn.localAddr;
  const port = clcf === undefined || clcf.portInRedirect ? r.conn.localPort : 0;
  // ngx_http_header_filter: https:// and port 443 left out on a TLS connection
  if (r.conn.tls?.secure) return `https://${host}${port && port !== 443 ? `:${port}` : ''}${loc}`;
  return `http://${host}${port && port !== 80 ? `:${port}` : ''}${loc}`;
}

/**
 * the header bytes of r, whose status, keep-alive, chunking, Location and
 * Content-Type sendHeader has settled already
 */
export function headerBytes(r: HttpRequest, clcf: CoreLocConf | undefined, status: number): Buffer {
  // the usual response (no Location, Last-Modified, Vary or charset; its own Server and Date): the
  // bytes of the last one of the location when it is the same response within the same second
  // (a page served again, from a cache or a handler)
  const plain =
    clcf !== undefined &&
    r.location === undefined &&
    r.ownServer &&
    r.ownDate &&
    r.lastModifiedTime === -1 &&
    !r.gzipVary &&
    r.charset === '';
  const date = httpDate();
  const length = r.contentLength >= 0 && r.ownContentLength ? r.contentLength : -1;
  if (plain) {
    const c = headerCache.get(clcf);
    if (
      c !== undefined &&
      c.date === date &&
      c.status === status &&
      c.statusLine === r.statusLine &&
      c.contentType === r.contentType &&
      c.length === length &&
      c.chunked === r.chunked &&
      c.keepalive === r.keepalive &&
      sameList(c.list, r.headersOut)
    ) {
      return c.bytes;
    }
  }
  let h = `HTTP/1.1 ${r.statusLine ?? statusLine(status)}${CRLF}`;
  const tokens = clcf ? clcf.serverTokens : 1;
  if (r.ownServer) h += `Server: ${tokens === 0 ? PROGRAM : SERVER_TOKEN}${CRLF}`;
  if (r.ownDate) h += `Date: ${date}${CRLF}`;
  if (r.contentType) h += `Content-Type: ${r.charset ? contentTypeLine(r) : r.contentType}${CRLF}`;
  if (length >= 0) h += `Content-Length: ${length}${CRLF}`;
  // Last-Modified goes with 200, 206 and 304 only (ngx_http_header_filter clears it otherwise)
  // the response's own line, unless an entry of the list stands for it (an upstream's: in list order)
  const lmEntry = r.lastModified;
  if (r.lastModifiedTime !== -1 && lmEntry === undefined && (status === 200 || status === 206 || status === 304)) {
    h += `Last-Modified: ${new Date(r.lastModifiedTime * 1000).toUTCString()}${CRLF}`;
  }
  // a Last-Modified of the header list (an upstream's, srcache's entry, add_header's) keeps its
  // place in the list, after Connection: ngx_http_header_filter writes the fixed one only when
  // headers_out.last_modified is NULL
  let absLocation: string | undefined;
  if (r.location !== undefined) {
    // an empty one (`return 301;`) still goes out, as `Location: ` in nginx's header list
    if (r.location.charCodeAt(0) === 0x2f && (clcf === undefined || clcf.absoluteRedirect)) {
      h += `Location: ${absoluteLocation(r, clcf, r.location)}${CRLF}`;
    }
    else absLocation = r.location;
  }
  if (r.chunked) h += `Transfer-Encoding: chunked${CRLF}`;
  if (r.keepalive) {
    h += `Connection: keep-alive${CRLF}`;
    if (clcf && clcf.keepaliveHeaderTimeout) h += `Keep-Alive: timeout=${clcf.keepaliveHeaderTimeout}${CRLF}`;
  } else h += `Connection: close${CRLF}`;
  // after Connection, before the header list, as ngx_http_header_filter writes it
  if (r.gzipVary) h += `Vary: Accept-Encoding${CRLF}`;
  if (absLocation !== undefined) h += `Location: ${absLocation}${CRLF}`;
  for (const [k, v] of r.headersOut) h += `${k}: ${v}${CRLF}`;
  h += CRLF;
  const bytes = Buffer.from(h, 'latin1');
  if (plain) {
    const list: string[] = [];
    for (const [k, v] of r.headersOut) list.push(k, v);
    headerCache.set(clcf, { date, status, statusLine: r.statusLine, contentType: r.contentType, length, chunked: r.chunked, keepalive: r.keepalive, list, bytes });
  }
  return bytes;
}
