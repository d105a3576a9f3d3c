import { evalComplexValue } from '../../http/eval.js';
import type { HttpRequest } from '../../http/http_request.js';
import { afterAccess } from '../../http/phases.js';
import { DECLINED, DONE } from '../../http/request.js';
import { createSubrequest, type SubRequest, type SubrequestOptions } from '../../http/subrequest.js';
import type { SrcacheLocConf, SubrequestTemplate } from './conf.js';
import { ctxOf, skipped } from './state.js';

/*
 * srcache_fetch (ngx_http_srcache_access_handler + fetch subrequest): at
 * the end of the access phase the location's fetch subrequest runs with
 * its output kept in memory; a 200 whose body is a stored response (status
 * line, headers, a blank line, the body, as store.ts writes it) answers
 * the request (HIT) and the content handler never runs; anything else is a
 * MISS and the request goes on to its content handler (the application).
 * The entry is held whole here, bounded by srcache_store_max_size when
 * that is set (the module streams it).
 */

/** the fetch's subrequest target: URI, args (a `?` in the URI splits them when no args are given) */
export function target(r: HttpRequest, t: SubrequestTemplate): { uri: string; args: string } {
  let uri = evalComplexValue(r, t.uri);
  let args = t.args !== undefined ? evalComplexValue(r, t.args) : '';
  const q = uri.indexOf('?');
  if (q !== -1 && t.args === undefined) {
    args = uri.slice(q + 1);
    uri = uri.slice(0, q);
  }
  return { uri, args };
}

/* Cache-Control: no-cache / Pragma: no-cache from the client skip the fetch (srcache_request_cache_control) */
function clientRefuses(r: HttpRequest): boolean {
  for (const [k, v] of r.req.headers) {
    const key = k.toLowerCase();
    if ((key === 'cache-control' || key === 'pragma') && /\bno-cache\b/i.test(v)) return true;
    if (key === 'cache-control' && /\bno-store\b/i.test(v)) return true;
  }
  return false;
}

const GET_HEAD = ['GET', 'HEAD'];

/* the fetch subrequest's options, made once per location (its `done` finds the request and conf from the child) */
const fetchOptions = new WeakMap<SrcacheLocConf, SubrequestOptions>();

function optionsOf(conf: SrcacheLocConf): SubrequestOptions {
  let o = fetchOptions.get(conf);
  if (o === undefined) {
    // ngx_http_srcache_adjust_subrequest: the subrequest does not share the parent's variables
    o = { method: conf.fetch!.method, ownVariables: true, inMemory: true, captureLimit: conf.storeMaxSize > 0 ? conf.storeMaxSize : undefined, done: fetched };
    fetchOptions.set(conf, o);
  }
  return o;
}

/** the access-phase hook */
export function fetchHandler(r: HttpRequest, conf: SrcacheLocConf | undefined): number {
  if (conf === undefined || conf.fetch === undefined || r.main !== r) return DECLINED;
  const ctx = ctxOf(r);
  if (!(conf.methods ?? GET_HEAD).includes(r.method)) return DECLINED;
  if (conf.fetchSkip !== undefined && skipped(evalComplexValue(r, conf.fetchSkip))) return DECLINED;
  if (conf.requestCacheControl && clientRefuses(r)) return DECLINED;
  const { uri, args } = target(r, conf.fetch);
  const sr = createSubrequest(r, uri, args, optionsOf(conf));
  if (sr === undefined) return DECLINED;
  ctx.fetchStatus = 'MISS';
  ctx.fetchConf = conf;
  return DONE;
}

/* the fetch subrequest ended: serve the entry, or go on to the content handler */
function fetched(sr: SubRequest): void {
  const r = sr.parent!;
  if (r.aborted || r.finished) return;
  const body = sr.captured;
  if (sr.status === 200 && body !== undefined && !sr.capturedOver && body.length > 0) {
    const entry = body.length === 1 ? body[0]! : Buffer.concat(body, sr.capturedLength);
    if (serveEntry(r, entry, ctxOf(r).fetchConf!)) return;
  }
  afterAccess(r);
}

const CR = 0x0d;
const LF = 0x0a;
const COLON = 0x3a;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

/* is b[at, at+name.length) `name` (lowercase ASCII) in any case? */
function nameIs(b: Buffer, at: number, len: number, name: string): boolean {
  if (len !== name.length) return false;
  for (let i = 0; i < len; i++) if ((b[at + i]! | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

/* the whitespace String.prototype.trim removes, among latin1 bytes (TAB..CR, space, NBSP) */
function isTrimmed(c: number): boolean {
  return (c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0xa0;
}

/* the index of the next CR LF at or after `from` (before `end`), else `end` */
function lineEnd(b: Buffer, from: number, end: number): number {
  for (let i = from; i < end - 1; i++) if (b[i] === CR && b[i + 1] === LF) return i;
  return end;
}

/**
 * The entry's status line `HTTP/D.D NNN[ TEXT]` (TEXT without CR or LF):
 * the status, or -1 when it is not one.
 */
function statusOf(b: Buffer, end: number): number {
  if (end < 12 || b[0] !== 0x48 || b[1] !== 0x54 || b[2] !== 0x54 || b[3] !== 0x50 || b[4] !== 0x2f) return -1;
  const digit = (i: number): boolean => b[i]! >= 0x30 && b[i]! <= 0x39;
  if (!digit(5) || b[6] !== 0x2e || !digit(7) || b[8] !== 0x20 || !digit(9) || !digit(10) || !digit(11)) return -1;
  if (end > 12) {
    if (b[12] !== 0x20) return -1;
    for (let i = 13; i < end; i++) if (b[i] === CR || b[i] === LF) return -1;
  }
  return (b[9]! - 0x30) * 100 + (b[10]! - 0x30) * 10 + (b[11]! - 0x30);
}

/**
 * A stored response as the answer: nginx's status line and the stored
 * headers (Content-Type in its place; a stored Content-Length stays one
 * of the listed headers, as the module copies it; without one the body's
 * length is sent), then the body. The entry is read from its bytes: the
 * only strings made are the header names and values that go out.
 */
function serveEntry(r: HttpRequest, entry: Buffer, conf: SrcacheLocConf): boolean {
  const end = entry.indexOf(HEAD_END);
  if (end === -1 || end > Math.max(conf.headerBufferSize, 1)) {
    r.log('error', 'srcache_fetch: invalid cached response: header too long or not complete');
    return false;
  }
  const first = lineEnd(entry, 0, end);
  const status = statusOf(entry, first);
  if (status < 0) {
    r.log('error', `srcache_fetch: invalid status line in the cached response: "${entry.toString('latin1', 0, first)}"`);
    return false;
  }
  const ctx = ctxOf(r);
  ctx.fetchStatus = 'HIT';
  r.status = status;
  r.statusLine = first > 13 ? `${status} ${entry.toString('latin1', 13, first)}` : undefined;
  r.contentType = '';
  const bodyLen = entry.length - end - 4;
  let listedLength = false;
  for (let at = first + 2; at < end + 2; ) {
    const eol = lineEnd(entry, at, end);
    let colon = at;
    while (colon < eol && entry[colon] !== COLON) colon++;
    if (colon === at || colon === eol) {
      at = eol + 2;
      continue;
    }
    // the value without the whitespace around it (as String.prototype.trim)
    let vs = colon + 1;
    let ve = eol;
    while (vs < ve && isTrimmed(entry[vs]!)) vs++;
    while (ve > vs && isTrimmed(entry[ve - 1]!)) ve--;
    const nameLen = colon - at;
    if (nameIs(entry, at, nameLen, 'content-type')) {
      r.contentType = entry.toString('latin1', vs, ve);
    } else if (nameIs(entry, at, nameLen, 'x-srcache-allow-ranges')) {
      // the store's mark (see store.ts): ranges allowed, the line not sent
      r.allowRanges = true;
    } else {
      if (nameIs(entry, at, nameLen, 'content-length')) listedLength = true;
      r.headersOut.push([entry.toString('latin1', at, colon), entry.toString('latin1', vs, ve)]);
    }
    at = eol + 2;
  }
  if (listedLength) r.ownContentLength = false;
  r.contentLength = bodyLen;
  r.conn.discardBody(r, false);
  r.sendHeader();
  const body = entry.subarray(end + 4);
  const ranges = r.rangeBody;
  if (ranges !== undefined) {
    // the range filter's parts (X-SRCache-Allow-Ranges let it in), from the entry in memory
    for (const p of ranges.parts) {
      if (p.head) r.send(Buffer.from(p.head, 'latin1'));
      r.send(body.subarray(p.start, p.end));
    }
    if (ranges.tail) r.send(Buffer.from(ranges.tail, 'latin1'));
  } else if (bodyLen > 0) r.send(body);
  r.finish();
  return true;
}
