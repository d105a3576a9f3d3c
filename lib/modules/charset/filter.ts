import type { HttpRequest } from '../../http/http_request.js';
import { insertBottomFilter } from '../../http/subrequest.js';
import { cutContentType, testContentType } from '../../http/types.js';
import type { CharsetLocConf, CharsetMainConf, CharsetRef } from './conf.js';
import { CharsetFilter } from './recode.js';

/*
 * ngx_http_charset_header_filter: which charset the response goes out in
 * (the location's `charset`, for charset_types responses without one of
 * their own unless override_charset), which one it is in (an upstream's
 * charset parameter, else source_charset), then either just the
 * `; charset=` parameter or, between two charsets a charset_map links,
 * the recoding body filter (dropping Content-Length when UTF-8 is on
 * either side). Subrequests are recoded into their main request's
 * charset.
 */

const NO_CHARSET = -2;
const OFF = -3;

interface Named {
  index: number;
  name: string;
}

function getCharset(m: CharsetMainConf, name: string): number {
  const low = name.toLowerCase();
  const i = m.charsets.findIndex((c) => c.name.length === name.length && c.name.toLowerCase() === low);
  return i === -1 ? NO_CHARSET : i;
}

/** a variable's value, undefined when not found (ngx_http_get_indexed_variable's not_found) */
function variable(r: HttpRequest, index: number): string | undefined {
  const cached = r.vars[index];
  if (cached !== undefined) return cached;
  const iv = r.variables.indexed[index]!;
  const get = iv.def?.get;
  return get === undefined ? undefined : get(r, iv.name);
}

/** a charset directive's value; undefined for a variable not found (nginx's NGX_ERROR) */
function resolve(r: HttpRequest, m: CharsetMainConf, ref: CharsetRef): Named | undefined {
  if (ref.kind === 'index') return { index: ref.index, name: m.charsets[ref.index]!.name };
  if (ref.kind === 'var') {
    const name = variable(r, ref.index);
    return name === undefined ? undefined : { index: getCharset(m, name), name };
  }
  return { index: OFF, name: '' };
}

/** ngx_http_destination_charset; undefined: leave the response alone, null: fail it */
function destination(r: HttpRequest, conf: CharsetLocConf, m: CharsetMainConf): Named | undefined | null {
  const ct = r.contentType ?? r.defaultContentType();
  if (!ct) return undefined;
  if (conf.charset.kind === 'off' || conf.charset.kind === 'unset') return undefined;
  if (r.charset) {
    if (conf.override === 0) return undefined;
  } else if (!testContentType(r, conf.types!)) return undefined;
  return resolve(r, m, conf.charset) ?? null;
}

/** main_request_charset: a subrequest goes into what its main request went out in */
const mainCharsets = new WeakMap<HttpRequest, Named>();
function mainRequestCharset(r: HttpRequest, m: CharsetMainConf): Named | undefined {
  const main = r.main;
  const known = mainCharsets.get(main);
  if (known !== undefined) return known;
  if (!main.charset) return undefined;
  const n = { index: getCharset(m, main.charset), name: main.charset };
  mainCharsets.set(main, n);
  return n;
}

/** ngx_http_set_charset: main requests only; never on a 301 / 302 */
function setCharset(r: HttpRequest, name: string): void {
  if (r !== r.main) return;
  r.charset = r.status === 301 || r.status === 302 ? '' : name;
}

export function charsetHeaderFilter(r: HttpRequest, conf: CharsetLocConf, m: CharsetMainConf): void {
  const dst = r === r.main ? destination(r, conf, m) : mainRequestCharset(r, m);
  if (dst === undefined) return;
  // the source: the response's own charset, else source_charset
  const src = dst === null ? undefined : r.charset ? { index: getCharset(m, r.charset), name: r.charset } : resolve(r, m, conf.source);
  if (dst === null || src === undefined) {
    // a charset variable not found: nginx's filter fails the request
    r.filterError = true;
    return;
  }
  if (src.index === OFF) {
    setCharset(r, dst.name);
    return;
  }
  if (dst.index === NO_CHARSET || src.index === NO_CHARSET) {
    if (src.index !== dst.index || src.name.slice(0, dst.name.length).toLowerCase() !== dst.name.toLowerCase()) {
      noMap(r, src.name, dst.name);
      return;
    }
    setCharset(r, dst.name);
    return;
  }
  if (src.index === dst.index) {
    cutContentType(r);
    setCharset(r, dst.name);
    return;
  }
  // a compressed body is not recoded (nor marked)
  for (const [k, v] of r.headersOut) if (k.length === 16 && k.toLowerCase() === 'content-encoding' && v.length) return;
  const table = m.charsets[src.index]!.tables.get(dst.index);
  if (table === undefined) {
    noMap(r, src.name, dst.name);
    return;
  }
  cutContentType(r);
  setCharset(r, dst.name);
  const utf8 = m.charsets[src.index]!.utf8 || m.charsets[dst.index]!.utf8;
  if (utf8 && r === r.main) {
    r.contentLength = -1;
    if (!r.ownContentLength) {
      r.headersOut = r.headersOut.filter(([k]) => k.toLowerCase() !== 'content-length');
      r.ownContentLength = true;
    }
  }
  insertBottomFilter(r, (next) => new CharsetFilter(next, table));
}

function noMap(r: HttpRequest, src: string, dst: string): void {
  r.log('error', `no "charset_map" between the charsets "${src}" and "${dst}"`);
}
