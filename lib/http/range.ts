import type { HttpRequest } from './http_request.js';
import { dropListedLength } from './conditional.js';
import { parseHttpTime } from './http_time.js';

/*
 * ngx_http_range_filter_module for responses that allow ranges (the static
 * module's): the header half runs after add_header, as in nginx's chain.
 * A valid `Range: bytes=...` (and a matching If-Range) turns the 200 into
 * a 206 with one range (Content-Range) or several (multipart/byteranges,
 * a 20-digit boundary as nginx's ngx_next_temp_number gives); a range
 * wholly past the end is 416 with a Content-Range of `bytes *` `/SIZE`; anything
 * else leaves the 200 with `Accept-Ranges: bytes`. The body half is the
 * static handler's: it reads just the ranges' bytes from the file, each
 * part after its boundary header (`parts`), then the closing boundary.
 */

/** one range of the response body: [start, end) and what goes before it */
export interface BodyRange {
  start: number;
  end: number;
  /** multipart: the boundary header and Content-Range of this part; '' for a single range */
  head: string;
}

export interface RangeBody {
  parts: BodyRange[];
  /** multipart: the closing boundary; '' for a single range */
  tail: string;
}

const MAX = Number.MAX_SAFE_INTEGER;
const CUTOFF = Math.floor(MAX / 10);
const CUTLIM = MAX % 10;

const NOT_SATISFIABLE = -2;
const DECLINED = -1;

/** ngx_http_range_parse: the ranges, NOT_SATISFIABLE or DECLINED */
function parseRanges(value: string, contentLength: number, maxRanges: number): Array<[number, number]> | number {
  const out: Array<[number, number]> = [];
  let p = 6;
  let size = 0;
  let left = maxRanges;
  const at = (i: number): number => (i < value.length ? value.charCodeAt(i) : 0);
  const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
  for (;;) {
    let start = 0;
    let end = 0;
    let suffix = false;
    let found = false;
    while (at(p) === 0x20) p++;
    if (at(p) !== 0x2d) {
      if (!isDigit(at(p))) return NOT_SATISFIABLE;
      while (isDigit(at(p))) {
        const d = at(p) - 0x30;
        if (start >= CUTOFF && (start > CUTOFF || d > CUTLIM)) return NOT_SATISFIABLE;
        start = start * 10 + d;
        p++;
      }
      while (at(p) === 0x20) p++;
      if (at(p++) !== 0x2d) return NOT_SATISFIABLE;
      while (at(p) === 0x20) p++;
      if (at(p) === 0x2c || at(p) === 0) {
        end = contentLength;
        found = true;
      }
    } else {
      suffix = true;
      p++;
    }
    if (!found) {
      if (!isDigit(at(p))) return NOT_SATISFIABLE;
      while (isDigit(at(p))) {
        const d = at(p) - 0x30;
        if (end >= CUTOFF && (end > CUTOFF || d > CUTLIM)) return NOT_SATISFIABLE;
        end = end * 10 + d;
        p++;
      }
      while (at(p) === 0x20) p++;
      if (at(p) !== 0x2c && at(p) !== 0) return NOT_SATISFIABLE;
      if (suffix) {
        start = end < contentLength ? contentLength - end : 0;
        end = contentLength - 1;
      }
      end = end >= contentLength ? contentLength : end + 1;
    }
    if (start < end) {
      out.push([start, end]);
      if (size > MAX - (end - start)) return NOT_SATISFIABLE;
      size += end - start;
      if (left-- === 0) return DECLINED;
    } else if (start === 0) return DECLINED;
    if (at(p++) !== 0x2c) break;
  }
  if (out.length === 0) return NOT_SATISFIABLE;
  if (size > contentLength) return DECLINED;
  return out;
}

/** ngx_next_temp_number's sequence: a random start, one step per multipart response */
let tempNumber = Math.floor(Math.random() * 2 ** 40);

/**
 * The header filter for r (a main request's 200 with a Content-Length that
 * allows ranges): 0 to go on, or 416 for the caller to finalize with (the
 * Content-Range header stays, as nginx's special response keeps it).
 */
export function rangeHeaderFilter(r: HttpRequest): number {
  if (r.version < 1000 || r.status !== 200 || r.contentLength === -1 || r.loc.maxRanges === 0) return 0;
  const h = r.req.byName;
  const range = h.get('range');
  if (range !== undefined && range.length >= 7 && range.slice(0, 6).toLowerCase() === 'bytes=' && ifRangeOk(r, h.get('if-range'))) {
    const total = r.contentLength;
    // an upstream's forced ranges are single (nginx's r->single_range)
    const rc = parseRanges(range, total, r.singleRange ? 1 : r.loc.maxRanges);
    if (rc === NOT_SATISFIABLE) {
      r.status = 416;
      r.headersOut.push(['Content-Range', `bytes */${total}`]);
      r.contentLength = -1;
      dropListedLength(r);
      return 416;
    }
    if (rc !== DECLINED) {
      const list = rc as Array<[number, number]>;
      r.status = 206;
      r.statusLine = undefined;
      // the parts' length replaces a listed Content-Length (a cached entry's)
      dropListedLength(r);
      if (list.length === 1) {
        const [start, end] = list[0]!;
        r.headersOut.push(['Content-Range', `bytes ${start}-${end - 1}/${total}`]);
        r.contentLength = end - start;
        r.rangeBody = { parts: [{ start, end, head: '' }], tail: '' };
        return 0;
      }
      const boundary = String(++tempNumber).padStart(20, '0');
      const type = r.contentType ?? r.defaultContentType();
      const partHead = `\r\n--${boundary}\r\n${type ? `Content-Type: ${type}\r\n` : ''}Content-Range: bytes `;
      r.contentType = `multipart/byteranges; boundary=${boundary}`;
      const tail = `\r\n--${boundary}--\r\n`;
      let len = tail.length;
      const parts: BodyRange[] = list.map(([start, end]) => {
        const head = `${partHead}${start}-${end - 1}/${total}\r\n\r\n`;
        len += head.length + end - start;
        return { start, end, head };
      });
      r.contentLength = len;
      r.rangeBody = { parts, tail };
      return 0;
    }
  }
  const acceptRanges: [string, string] = ['Accept-Ranges', 'bytes'];
  r.headersOut.push(acceptRanges);
  r.acceptRanges = acceptRanges;
  return 0;
}

/** If-Range: a quoted value is compared with the ETag, anything else with Last-Modified */
function ifRangeOk(r: HttpRequest, ifRange: string | undefined): boolean {
  if (ifRange === undefined) return true;
  if (ifRange.length >= 2 && ifRange.endsWith('"')) return r.etag !== undefined && ifRange === r.etag[1];
  if (r.lastModifiedTime === -1) return false;
  return parseHttpTime(ifRange) === r.lastModifiedTime;
}
