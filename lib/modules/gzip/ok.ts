import type { HttpRequest } from '../../http/http_request.js';
import { parseHttpTime } from '../../http/http_time.js';
import {
  PROXIED_ANY,
  PROXIED_AUTH,
  PROXIED_EXPIRED,
  PROXIED_NO_CACHE,
  PROXIED_NO_ETAG,
  PROXIED_NO_LM,
  PROXIED_NO_STORE,
  PROXIED_OFF,
  PROXIED_PRIVATE,
  type GzipLocConf,
} from './conf.js';

/*
 * ngx_http_gzip_ok: may this client get a gzipped response? Asked by the
 * gzip filter and by gzip_static; the answer is kept on the request
 * (r.gzipTested / r.gzipOk, reset by an internal redirect) so the second
 * asker gets the first one's, as nginx's r->gzip_tested / r->gzip_ok.
 */

/** ngx_http_gzip_quantity: q in thousandths*10 (0..100), 0 for a malformed one */
function quantity(s: string, p: number): number {
  const last = s.length;
  let c = s.charCodeAt(p++);
  if (c !== 0x30 && c !== 0x31) return 0;
  let q = (c - 0x30) * 100;
  if (p === last) return q;
  c = s.charCodeAt(p++);
  if (c === 0x2c || c === 0x20) return q;
  if (c !== 0x2e) return 0;
  let n = 0;
  while (p < last) {
    c = s.charCodeAt(p++);
    if (c === 0x2c || c === 0x20) break;
    if (c >= 0x30 && c <= 0x39) {
      q += c - 0x30;
      n++;
      continue;
    }
    return 0;
  }
  return q > 100 || n > 3 ? 0 : q;
}

/** ngx_http_gzip_accept_encoding: a `gzip` token (case-insensitive) not refused by q=0 */
export function acceptsGzip(ae: string): boolean {
  if (ae.length < 4) return false;
  if (ae.startsWith('gzip,')) return true;
  const low = ae.toLowerCase();
  let start = 0;
  let p: number;
  for (;;) {
    p = low.indexOf('gzip', start);
    if (p === -1) return false;
    if (p === 0 || ae[p - 1] === ',' || ae[p - 1] === ' ') break;
    start = p + 4;
  }
  p += 4;
  const last = ae.length;
  while (p < last) {
    const c = ae[p++];
    if (c === ',') return true;
    if (c === ';') {
      // quantity: spaces, then q=
      while (p < last) {
        const d = ae[p++];
        if (d === 'q' || d === 'Q') {
          if (p + 2 > last || ae[p++] !== '=') return false;
          return quantity(ae, p) !== 0;
        }
        if (d !== ' ') return false;
      }
      return true;
    }
    if (c !== ' ') return false;
  }
  return true;
}

/** ngx_http_process_user_agent's msie6: MSIE 4.x, 5.x, or 6.x without SV1 (not Opera) */
export function isMsie6(ua: string): boolean {
  if (ua.includes('Opera')) return false;
  const i = ua.indexOf('MSIE ');
  if (i === -1 || !(i + 7 < ua.length)) return false;
  if (ua[i + 6] !== '.') return false;
  const v = ua[i + 5];
  if (v === '4' || v === '5') return true;
  return v === '6' && !ua.includes('SV1', i + 8);
}

/**
 * ngx_http_parse_multi_header_lines without a value: some Cache-Control
 * line has an element (after `,` or `;`) that is `token` (any case),
 * then only spaces before the next `,` or the end
 */
function cacheControlHas(r: HttpRequest, token: string): boolean {
  const n = token.length;
  for (const [k, v] of r.headersOut) {
    if (k.toLowerCase() !== 'cache-control' || n > v.length) continue;
    const end = v.length;
    let p = 0;
    while (p < end) {
      if (v.slice(p, p + n).toLowerCase() === token) {
        let q = p + n;
        while (q < end && v.charCodeAt(q) === 0x20) q++;
        if (q === end || v.charCodeAt(q) === 0x2c) return true;
      }
      // past the next `;` or `,`, then spaces
      while (p < end) {
        const c = v.charCodeAt(p++);
        if (c === 0x3b || c === 0x2c) break;
      }
      while (p < end && v.charCodeAt(p) === 0x20) p++;
    }
  }
  return false;
}

function headerOut(r: HttpRequest, name: string): string | undefined {
  for (const [k, v] of r.headersOut) if (k.toLowerCase() === name) return v;
  return undefined;
}

function test(r: HttpRequest, conf: GzipLocConf): boolean {
  if (r.main !== r) return false;
  const h = r.req.byName;
  const ae = h.get('accept-encoding');
  if (ae === undefined || !acceptsGzip(ae)) return false;
  const ua = h.get('user-agent');
  if (conf.disableMsie6 === 1 && ua !== undefined && isMsie6(ua)) return false;
  if (r.version < conf.httpVersion) return false;
  if (h.has('via')) {
    const p = conf.proxied;
    if (p & PROXIED_OFF) return false;
    if (!(p & PROXIED_ANY) && !(h.has('authorization') && p & PROXIED_AUTH) && !proxiedOk(r, p)) return false;
  }
  if (conf.disable !== undefined && ua !== undefined) {
    for (const re of conf.disable) if (re.re.test(ua)) return false;
  }
  return true;
}

/** gzip_proxied's tests of the response headers (after the request's Via) */
function proxiedOk(r: HttpRequest, p: number): boolean {
  const expires = headerOut(r, 'expires');
  if (expires !== undefined) {
    if (!(p & PROXIED_EXPIRED)) return false;
    const e = parseHttpTime(expires);
    if (e === -1) return false;
    let date = Math.floor(Date.now() / 1000);
    const d = r.ownDate ? undefined : headerOut(r, 'date');
    if (d !== undefined) {
      date = parseHttpTime(d);
      if (date === -1) return false;
    }
    return e < date;
  }
  if (headerOut(r, 'cache-control') !== undefined) {
    return (
      (!!(p & PROXIED_NO_CACHE) && cacheControlHas(r, 'no-cache')) ||
      (!!(p & PROXIED_NO_STORE) && cacheControlHas(r, 'no-store')) ||
      (!!(p & PROXIED_PRIVATE) && cacheControlHas(r, 'private'))
    );
  }
  if (p & PROXIED_NO_LM && (r.lastModifiedTime !== -1 || headerOut(r, 'last-modified') !== undefined)) return false;
  if (p & PROXIED_NO_ETAG && (r.etag !== undefined || headerOut(r, 'etag') !== undefined)) return false;
  return true;
}

/** ngx_http_gzip_ok, remembered on the request */
export function gzipOk(r: HttpRequest, conf: GzipLocConf): boolean {
  if (r.gzipTested) return r.gzipOk;
  r.gzipTested = true;
  r.gzipOk = test(r, conf);
  return r.gzipOk;
}
