import type { HttpRequest } from './http_request.js';
import { parseHttpTime } from './http_time.js';

/*
 * ngx_http_not_modified_filter_module: the first header filter of nginx's
 * chain, for a main request's 200. If-Unmodified-Since and If-Match fail
 * as 412 (the header cleaned, nginx's error page); If-Modified-Since
 * (`if_modified_since off|exact|before`) and If-None-Match (weak
 * comparison) turn the response into a 304 without body, Content-Type or
 * Content-Length. The validators are the response's Last-Modified time and
 * ETag (the static module sets both): a response without them is
 * "modified" and fails If-Match / If-Unmodified-Since, as in nginx.
 */

export const IMS_OFF = 0;
export const IMS_EXACT = 1;
export const IMS_BEFORE = 2;

/** does the request carry an `If-*` header at all (a scan of the names, no map built) */
export function hasIfHeader(headers: ReadonlyArray<[string, string]>): boolean {
  for (let i = 0; i < headers.length; i++) {
    const n = headers[i]![0];
    if (n.length > 3 && (n.charCodeAt(0) | 0x20) === 0x69 && (n.charCodeAt(1) | 0x20) === 0x66 && n.charCodeAt(2) === 0x2d) return true;
  }
  return false;
}

/** ngx_http_test_if_match: does the ETag list (`*`, or tags separated by commas) hold the response's */
export function testIfMatch(r: HttpRequest, list: string, weak: boolean): boolean {
  if (list === '*') return true;
  if (r.etag === undefined) return false;
  let etag = r.etag[1];
  if (weak && etag.length > 2 && etag.startsWith('W/')) etag = etag.slice(2);
  const end = list.length;
  let start = 0;
  while (start < end) {
    if (weak && end - start > 2 && list.charCodeAt(start) === 0x57 && list.charCodeAt(start + 1) === 0x2f) start += 2;
    if (etag.length > end - start) return false;
    if (list.startsWith(etag, start)) {
      start += etag.length;
      while (start < end) {
        const ch = list.charCodeAt(start);
        if (ch !== 0x20 && ch !== 0x09) break;
        start++;
      }
      if (start === end || list.charCodeAt(start) === 0x2c) return true;
    }
    while (start < end && list.charCodeAt(start) !== 0x2c) start++;
    while (start < end) {
      const ch = list.charCodeAt(start);
      if (ch !== 0x20 && ch !== 0x09 && ch !== 0x2c) break;
      start++;
    }
  }
  return false;
}

/** ngx_http_test_if_modified */
function testIfModified(r: HttpRequest, value: string): boolean {
  const lm = r.lastModifiedTime;
  if (lm === -1) return true;
  const mode = r.loc.ifModifiedSince;
  if (mode === IMS_OFF) return true;
  const ims = parseHttpTime(value);
  if (ims === lm) return false;
  return mode === IMS_EXACT || ims < lm;
}

/**
 * The filter: 0 to go on (the response possibly turned into a 304), or 412
 * for the caller to finalize the request with (ngx_http_filter_finalize_request).
 */
export function notModifiedFilter(r: HttpRequest): number {
  const h = r.req.byName;
  const ius = h.get('if-unmodified-since');
  if (ius !== undefined) {
    // ngx_http_test_if_unmodified
    if (r.lastModifiedTime === -1 || !(parseHttpTime(ius) >= r.lastModifiedTime)) return 412;
  }
  const im = h.get('if-match');
  if (im !== undefined && !testIfMatch(r, im, false)) return 412;
  const ims = h.get('if-modified-since');
  const inm = h.get('if-none-match');
  if (ims === undefined && inm === undefined) return 0;
  if (ims !== undefined && testIfModified(r, ims)) return 0;
  if (inm !== undefined && !testIfMatch(r, inm, true)) return 0;
  // not modified
  r.status = 304;
  r.statusLine = undefined;
  r.contentType = '';
  r.contentLength = -1;
  // ngx_http_clear_content_length / _accept_ranges: a listed Content-Length (headers-more's, a cached
  // entry's) and Accept-Ranges go too
  dropListedLength(r);
  if (r.acceptRanges !== undefined) {
    const ar = r.acceptRanges;
    r.headersOut = r.headersOut.filter((h) => h !== ar);
    r.acceptRanges = undefined;
  }
  r.allowRanges = false;
  // the response's Content-Encoding (gzip_static's, an upstream's) goes with the body
  const ce = r.headersOut.findIndex(([k]) => k.length === 16 && k.toLowerCase() === 'content-encoding');
  if (ce !== -1) r.headersOut.splice(ce, 1);
  return 0;
}

/** the Content-Length line of the header list that stood for the response's length, if one did: gone, the length is r's own again */
export function dropListedLength(r: HttpRequest): void {
  if (r.ownContentLength) return;
  r.headersOut = r.headersOut.filter(([k]) => !(k.length === 14 && k.toLowerCase() === 'content-length'));
  r.ownContentLength = true;
}
