import type { HttpRequest } from '../../http/http_request.js';
import type { Request } from '../../http/request.js';

/*
 * ngx_http_redis 0.4.x sets force_ranges, so nginx's range filter works on
 * its responses as on a static file's, with a single range at most
 * (r->single_range): a found value is answered
 *   - 206 with `Content-Range: bytes S-E/N` and those bytes, for one
 *     satisfiable `Range: bytes=...` (ngx_http_range_parse's grammar);
 *   - 416 (nginx's page, `Content-Range: bytes * /N`) when no range of the
 *     header is satisfiable; the Redis connection is closed, as nginx
 *     finalizes the upstream there;
 *   - else 200 with `Accept-Ranges: bytes` (no Range, a malformed one,
 *     several ranges, any If-Range: the response has no ETag nor
 *     Last-Modified to match it).
 * Subrequests and HTTP/0.9 get the plain 200. The header (Accept-Ranges or
 * Content-Range) is added by the module's header filter, which runs after
 * add_header's, as nginx's range filter runs after the headers filter.
 */

export type RangeDecision =
  | { kind: 'full' }
  /** bytes [start, end) of the value */
  | { kind: 'part'; start: number; end: number }
  | { kind: 'unsatisfiable' };

const FULL: RangeDecision = { kind: 'full' };
const UNSATISFIABLE: RangeDecision = { kind: 'unsatisfiable' };
const DECLINED = 'declined';

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/** ngx_http_range_parse with one range allowed: the range, DECLINED (send it all), or unsatisfiable */
function parseRanges(spec: string, length: number): { start: number; end: number } | typeof DECLINED | undefined {
  let p = 6; // after `bytes=`
  const at = (i: number): number => (i < spec.length ? spec.charCodeAt(i) : 0);
  let found: { start: number; end: number } | undefined;
  let left = 1;
  let size = 0;
  // one pass per comma-separated range; each consumes at least one byte
  for (let guard = 0; guard <= spec.length; guard++) {
    let start = 0;
    let end = 0;
    let suffix = false;
    while (at(p) === 0x20) p++;
    let open = false;
    if (at(p) !== 0x2d) {
      if (!isDigit(at(p))) return undefined;
      while (isDigit(at(p))) {
        start = start * 10 + (at(p++) - 0x30);
        if (start > Number.MAX_SAFE_INTEGER) return undefined;
      }
      while (at(p) === 0x20) p++;
      if (at(p++) !== 0x2d) return undefined;
      while (at(p) === 0x20) p++;
      if (at(p) === 0x2c || at(p) === 0) {
        end = length;
        open = true;
      }
    } else {
      suffix = true;
      p++;
    }
    if (!open) {
      if (!isDigit(at(p))) return undefined;
      while (isDigit(at(p))) {
        end = end * 10 + (at(p++) - 0x30);
        if (end > Number.MAX_SAFE_INTEGER) return undefined;
      }
      while (at(p) === 0x20) p++;
      if (at(p) !== 0x2c && at(p) !== 0) return undefined;
      if (suffix) {
        start = end < length ? length - end : 0;
        end = length - 1;
      }
      end = end >= length ? length : end + 1;
    }
    if (start < end) {
      if (found === undefined) found = { start, end };
      size += end - start;
      if (left-- === 0) return DECLINED;
    } else if (start === 0) return DECLINED;
    if (at(p++) !== 0x2c) break;
  }
  if (found === undefined) return undefined;
  if (size > length) return DECLINED;
  return found;
}

/** what nginx's range filter makes of a found value of `length` bytes for this request */
export function rangeOf(r: Request, length: number): RangeDecision {
  const hr = r as HttpRequest;
  if (hr.main !== hr || hr.version < 1000) return FULL;
  const range = r.req.byName.get('range');
  if (range === undefined || range.length < 7 || range.slice(0, 6).toLowerCase() !== 'bytes=') return FULL;
  if (r.req.byName.get('if-range') !== undefined) return FULL;
  const parsed = parseRanges(range, length);
  if (parsed === undefined) return UNSATISFIABLE;
  if (parsed === DECLINED) return FULL;
  return { kind: 'part', start: parsed.start, end: parsed.end };
}

/** the header the filter adds to a response of ours that is about to go out */
const pending = new WeakMap<Request, [string, string]>();
/** marks not yet taken by the filter: most responses are not ours, and skip the lookup */
let marked = 0;

/** r's header is about to go out with this decision: 200 gets Accept-Ranges, 206 its Content-Range */
export function markRedisResponse(r: Request, d: RangeDecision, length: number): void {
  const hr = r as HttpRequest;
  let h: [string, string];
  if (d.kind === 'part') h = ['Content-Range', `bytes ${d.start}-${d.end - 1}/${length}`];
  else if (hr.main === hr && hr.version >= 1000) h = ['Accept-Ranges', 'bytes'];
  else return;
  if (!pending.has(r)) marked++;
  pending.set(r, h);
}

/** the header filter: after add_header's lines, as nginx's range filter */
export function rangeHeaderFilter(r: HttpRequest): void {
  if (marked === 0) return;
  const h = pending.get(r);
  if (h === undefined) return;
  pending.delete(r);
  marked--;
  if (r.status === 200 || r.status === 206) r.headersOut.push(h);
}
