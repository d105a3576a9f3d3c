import type { HttpRequest } from '../../http/http_request.js';
import { parseHttpTime } from '../../http/http_time.js';

/*
 * A cached entry read back (ngx_http_srcache_process_status_line and
 * _process_header): the status line as nginx's status-line parser takes
 * it, then one header line at a time as nginx's header-line parser takes
 * it, each line (to its LF) within srcache_header_buffer_size. Every
 * header is applied to the main request as soon as it is read, as the
 * module does: an entry found broken halfway leaves what was applied (the
 * status, the first headers) on the request that then goes on as a MISS.
 * The bytes are read in place; only the names and values that go out
 * become strings.
 */

const CR = 0x0d;
const LF = 0x0a;

/** what reading an entry's head came to, when not the body's offset (>= 0): the entry ended inside the status line or the headers */
export const HEAD_TRUNCATED = -1;
/** a broken status line, header line, or a line past the header buffer: logged already */
export const HEAD_BAD = -2;

/** a stored Content-Length was among the headers (of the last readHead) */
export let listedLength = false;

/** ngx_http_parse_status_line over b[0, end): the offset after the line, -1 broken, -2 incomplete */
function statusLine(r: HttpRequest, b: Buffer, end: number): number {
  const want = 'HTTP/';
  let p = 0;
  for (; p < 5; p++) {
    if (p === end) return -2;
    if (b[p] !== want.charCodeAt(p)) return -1;
  }
  // the major version: a first digit 1-9, then digits up to `.` (at most three digits)
  if (p === end) return -2;
  let c = b[p]!;
  if (c < 0x31 || c > 0x39) return -1;
  let n = c - 0x30;
  for (p++; ; p++) {
    if (p === end) return -2;
    c = b[p]!;
    if (c === 0x2e) break;
    if (c < 0x30 || c > 0x39 || n > 99) return -1;
    n = n * 10 + c - 0x30;
  }
  // the minor version: digits up to a space
  p++;
  if (p === end) return -2;
  c = b[p]!;
  if (c < 0x30 || c > 0x39) return -1;
  n = c - 0x30;
  for (p++; ; p++) {
    if (p === end) return -2;
    c = b[p]!;
    if (c === 0x20) break;
    if (c < 0x30 || c > 0x39 || n > 99) return -1;
    n = n * 10 + c - 0x30;
  }
  // the status: spaces, then three digits
  let code = 0;
  let digits = 0;
  for (p++; digits < 3; p++) {
    if (p === end) return -2;
    c = b[p]!;
    if (c === 0x20) continue;
    if (c < 0x30 || c > 0x39) return -1;
    code = code * 10 + c - 0x30;
    digits++;
  }
  // a space or `.` and any text, or the end of the line
  if (p === end) return -2;
  c = b[p]!;
  if (c !== 0x20 && c !== 0x2e && c !== CR && c !== LF) return -1;
  for (; p < end; p++) {
    c = b[p]!;
    if (c === LF) {
      r.status = code;
      return p + 1;
    }
    if (c === CR) {
      if (p + 1 === end) return -2;
      if (b[p + 1] !== LF) return -1;
      r.status = code;
      return p + 2;
    }
  }
  return -2;
}

/* ngx_http_parse_header_line's byte classes: letters, digits, `-` and `_` make a name */
function nameByte(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f;
}

// one header line's parse (set by headerLine)
let nameStart = 0;
let nameEnd = 0;
let valueStart = 0;
let valueEnd = 0;

const L_OK = 0;
const L_DONE = 1;
const L_INVALID = 2;
const L_AGAIN = 3;
/** the line's next byte after L_OK / L_DONE */
let lineNext = 0;

/**
 * ngx_http_parse_header_line over b[at, limit): one `Name: value` line
 * (L_OK), the blank line that ends the head (L_DONE), a broken line
 * (L_INVALID) or not complete before `limit` (L_AGAIN). A name is any
 * bytes above space but `:`; the value loses the spaces around it (not
 * tabs); a line without a colon is a name with an empty value.
 * `upstream`: the fetch was answered by an upstream, whose repeated
 * `HTTP/...` lines nginx skips.
 */
function headerLine(b: Buffer, at: number, limit: number, upstream: boolean): number {
  let p = at;
  if (p === limit) return L_AGAIN;
  let c = b[p]!;
  if (c === CR) {
    if (p + 1 === limit) return L_AGAIN;
    if (b[p + 1] !== LF) return L_INVALID;
    lineNext = p + 2;
    return L_DONE;
  }
  if (c === LF) {
    lineNext = p + 1;
    return L_DONE;
  }
  if (!nameByte(c) && (c <= 0x20 || c === 0x7f || c === 0x3a)) return L_INVALID;
  nameStart = at;
  // the name
  for (p++; ; p++) {
    if (p === limit) return L_AGAIN;
    c = b[p]!;
    if (nameByte(c)) continue;
    if (c === 0x3a || c === CR || c === LF) break;
    if (c === 0x2f && upstream && p - at === 4 && b[at] === 0x48 && b[at + 1] === 0x54 && b[at + 2] === 0x54 && b[at + 3] === 0x50) {
      // a repeated status line: skipped to its LF
      for (p++; p < limit; p++) {
        if (b[p] === LF) return headerLine(b, p + 1, limit, upstream);
      }
      return L_AGAIN;
    }
    if (c <= 0x20 || c === 0x7f) return L_INVALID;
  }
  nameEnd = p;
  if (c !== 0x3a) {
    valueStart = valueEnd = p;
    return lineEnd(b, p, limit);
  }
  // spaces before the value
  for (p++; ; p++) {
    if (p === limit) return L_AGAIN;
    c = b[p]!;
    if (c !== 0x20) break;
  }
  valueStart = p;
  valueEnd = p;
  for (; ; p++) {
    if (p === limit) return L_AGAIN;
    c = b[p]!;
    if (c === CR || c === LF) break;
    if (c === 0) return L_INVALID;
    if (c !== 0x20) valueEnd = p + 1;
  }
  return lineEnd(b, p, limit);
}

/* the CR LF (or LF; CRs before it are let through) that ends a header line at p */
function lineEnd(b: Buffer, p: number, limit: number): number {
  for (; p < limit; p++) {
    const c = b[p]!;
    if (c === LF) {
      lineNext = p + 1;
      return L_OK;
    }
    if (c !== CR) return L_INVALID;
  }
  return L_AGAIN;
}

/* is b[at, at+len) `name` (lowercase ASCII) in any case? */
function nameIs(b: Buffer, at: number, len: number, name: string): boolean {
  if (len !== name.length) return false;
  for (let i = 0; i < len; i++) if ((b[at + i]! | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

/** the header line b[nameStart, nameEnd) / [valueStart, valueEnd) onto r, as the module's headers_in table handles it */
function apply(r: HttpRequest, b: Buffer): void {
  const at = nameStart;
  const len = nameEnd - at;
  let entry: [string, string];
  switch (len) {
    case 4:
      if (nameIs(b, at, len, 'date')) {
        // the stored Date goes out in its place, instead of nginx's own
        r.ownDate = false;
      } else if (nameIs(b, at, len, 'etag')) {
        entry = [b.toString('latin1', at, nameEnd), b.toString('latin1', valueStart, valueEnd)];
        r.headersOut.push(entry);
        r.etag = entry;
        return;
      }
      break;
    case 6:
      if (nameIs(b, at, len, 'server')) r.ownServer = false;
      break;
    case 10:
      if (nameIs(b, at, len, 'connection')) return;
      if (nameIs(b, at, len, 'keep-alive')) return;
      break;
    case 12:
      if (nameIs(b, at, len, 'content-type')) {
        r.contentType = b.toString('latin1', valueStart, valueEnd);
        return;
      }
      break;
    case 13:
      if (nameIs(b, at, len, 'last-modified')) {
        entry = [b.toString('latin1', at, nameEnd), b.toString('latin1', valueStart, valueEnd)];
        r.headersOut.push(entry);
        r.lastModified = entry;
        r.lastModifiedTime = parseHttpTime(entry[1]);
        return;
      }
      if (nameIs(b, at, len, 'accept-ranges')) {
        entry = [b.toString('latin1', at, nameEnd), b.toString('latin1', valueStart, valueEnd)];
        r.headersOut.push(entry);
        r.acceptRanges = entry;
        return;
      }
      break;
    case 14:
      if (nameIs(b, at, len, 'content-length')) listedLength = true;
      break;
    case 22:
      // the store's mark (store.ts): ranges allowed, the line not sent
      if (nameIs(b, at, len, 'x-srcache-allow-ranges')) {
        r.allowRanges = true;
        return;
      }
      break;
  }
  r.headersOut.push([b.toString('latin1', at, nameEnd), b.toString('latin1', valueStart, valueEnd)]);
}

/**
 * Read the entry's status line and headers onto r (the fetch subrequest
 * sr writes the log lines, with its context): the body's offset, or
 * HEAD_BAD (logged, nginx's words) or HEAD_TRUNCATED (for the caller to
 * log once the fetch is over).
 */
export function readHead(r: HttpRequest, sr: HttpRequest, b: Buffer, bufferSize: number, upstream: boolean): number {
  const end = b.length;
  listedLength = false;
  const first = statusLine(r, b, end);
  if (first === -2) return HEAD_TRUNCATED;
  if (first === -1) {
    sr.log('error', 'srcache_fetch: cache sent invalid status line');
    return HEAD_BAD;
  }
  let at = first;
  for (;;) {
    // each line is read within the header buffer (the rest of the entry as far as it holds)
    const over = end - at > bufferSize;
    const rc = headerLine(b, at, over ? at + bufferSize : end, upstream);
    if (rc === L_OK) {
      apply(r, b);
      at = lineNext;
      continue;
    }
    if (rc === L_DONE) return lineNext;
    if (rc === L_AGAIN) {
      if (!over) return HEAD_TRUNCATED;
      sr.log('error', 'srcache_fetch: header buffer overflown (maybe you should consider increasing srcache_header_buffer_size?)');
      return HEAD_BAD;
    }
    sr.log('error', 'srcache_fetch: cache sent invalid header');
    return HEAD_BAD;
  }
}
