import type { Conf } from '../../conf/parser.js';
import { parseTime } from '../../conf/values.js';
import { evalComplexValue } from '../../http/eval.js';
import { httpDate } from '../../http/header_filter.js';
import type { HttpRequest } from '../../http/http_request.js';
import { compileComplexValue } from '../../http/script.js';
import { Expires, type ExpiresConf, type HeadersLocConf } from './conf.js';

/*
 * ngx_http_headers_filter's `expires`: Expires and Cache-Control for the
 * statuses add_header serves without `always`, on main requests. The
 * value is parsed at -t when constant, per request when it has variables
 * (a bad one then adds nothing, as nginx).
 */

/** ngx_http_parse_expires: the kind and time of a value, or the error's words */
export function parseExpires(value: string, kind: Expires): { kind: Expires; time: number } | string {
  if (kind !== Expires.Modified) {
    if (value === 'epoch') return { kind: Expires.Epoch, time: 0 };
    if (value === 'max') return { kind: Expires.Max, time: 0 };
    if (value === 'off') return { kind: Expires.Off, time: 0 };
  }
  let minus = false;
  let v = value;
  if (v.startsWith('@')) {
    v = v.slice(1);
    if (kind === Expires.Modified) return 'daily time cannot be used with "modified" parameter';
    kind = Expires.Daily;
  } else if (v.startsWith('+')) v = v.slice(1);
  else if (v.startsWith('-')) {
    v = v.slice(1);
    minus = true;
  }
  const t = parseTime(v, true);
  if (t === -1) return 'invalid value';
  if (kind === Expires.Daily && t > 24 * 60 * 60) return 'daily time value must be less than 24 hours';
  return { kind, time: minus ? -t : t };
}

/** ngx_http_headers_expires: `expires [modified] time` */
export function expiresDirective(cf: Conf, conf: HeadersLocConf): string | undefined {
  if (conf.expires !== undefined) return 'is duplicate';
  let kind = Expires.Access;
  let n = 1;
  if (cf.args.length === 3) {
    if (cf.args[1] !== 'modified') return 'invalid value';
    kind = Expires.Modified;
    n = 2;
  }
  const cv = compileComplexValue(cf, cf.args[n]!);
  if (cv.constant === undefined) {
    conf.expires = { kind, time: 0, value: cv };
    return undefined;
  }
  const p = parseExpires(cv.constant, kind);
  if (typeof p === 'string') return p;
  conf.expires = { kind: p.kind, time: p.time, value: undefined };
  return undefined;
}

/** ngx_next_time: the next moment (local time) at `when` seconds past midnight */
function nextTime(when: number, nowSec: number): number {
  const d = new Date(nowSec * 1000);
  d.setHours(Math.floor(when / 3600), Math.floor((when % 3600) / 60), when % 60, 0);
  let next = Math.floor(d.getTime() / 1000);
  if (next - nowSec > 0) return next;
  d.setDate(d.getDate() + 1);
  next = Math.floor(d.getTime() / 1000);
  return next;
}

/** ngx_http_set_expires */
export function setExpires(r: HttpRequest, conf: ExpiresConf): void {
  let kind = conf.kind;
  let time = conf.time;
  if (conf.value !== undefined) {
    const p = parseExpires(evalComplexValue(r, conf.value), kind);
    if (typeof p === 'string' || p.kind === Expires.Off) return;
    kind = p.kind;
    time = p.time;
  }
  let value: string;
  let cc: string;
  const nowMs = Date.now();
  if (kind === Expires.Epoch) {
    value = 'Thu, 01 Jan 1970 00:00:01 GMT';
    cc = 'no-cache';
  } else if (kind === Expires.Max) {
    value = 'Thu, 31 Dec 2037 23:55:55 GMT';
    cc = 'max-age=315360000';
  } else if (time === 0 && kind !== Expires.Daily) {
    value = httpDate(nowMs);
    cc = 'max-age=0';
  } else {
    const now = Math.floor(nowMs / 1000);
    let at: number;
    let maxAge: number;
    if (kind === Expires.Daily) {
      at = nextTime(time, now);
      maxAge = at - now;
    } else if (kind === Expires.Access || r.lastModifiedTime === -1) {
      maxAge = time;
      at = time + now;
    } else {
      at = time + r.lastModifiedTime;
      maxAge = at - now;
    }
    value = new Date(at * 1000).toUTCString();
    // the directive's own time (not the variable's) decides, as nginx's conf->expires_time
    cc = conf.time < 0 || maxAge < 0 ? 'no-cache' : `max-age=${maxAge}`;
  }
  const out = r.headersOut;
  // a response's own Expires gets the value; its first Cache-Control too, the others go
  const e = out.findIndex(([k]) => k.length === 7 && k.toLowerCase() === 'expires');
  if (e === -1) out.push(['Expires', value]);
  else out[e] = [out[e]![0], value];
  let first = -1;
  for (let i = 0; i < out.length; i++) {
    const k = out[i]![0];
    if (k.length !== 13 || k.toLowerCase() !== 'cache-control') continue;
    if (first === -1) {
      first = i;
      out[i] = [k, cc];
    } else out.splice(i--, 1);
  }
  if (first === -1) out.push(['Cache-Control', cc]);
}
