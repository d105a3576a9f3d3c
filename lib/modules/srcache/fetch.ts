import { evalComplexValue } from '../../http/eval.js';
import type { HttpRequest } from '../../http/http_request.js';
import { afterAccess } from '../../http/phases.js';
import { DECLINED, DONE } from '../../http/request.js';
import { createSubrequest, type SubRequest } from '../../http/subrequest.js';
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

/** the access-phase hook */
export function fetchHandler(r: HttpRequest, conf: SrcacheLocConf | undefined): number {
  if (conf === undefined || conf.fetch === undefined || r.main !== r) return DECLINED;
  const ctx = ctxOf(r);
  const methods = conf.methods ?? ['GET', 'HEAD'];
  if (!methods.includes(r.method)) return DECLINED;
  if (conf.fetchSkip !== undefined && skipped(evalComplexValue(r, conf.fetchSkip))) return DECLINED;
  if (conf.requestCacheControl && clientRefuses(r)) return DECLINED;
  const { uri, args } = target(r, conf.fetch);
  const sr = createSubrequest(r, uri, args, {
    method: conf.fetch.method,
    inMemory: true,
    captureLimit: conf.storeMaxSize > 0 ? conf.storeMaxSize : undefined,
    done: (child) => fetched(r, child, conf),
  });
  if (sr === undefined) return DECLINED;
  ctx.fetchStatus = 'MISS';
  return DONE;
}

/* the fetch subrequest ended: serve the entry, or go on to the content handler */
function fetched(r: HttpRequest, sr: SubRequest, conf: SrcacheLocConf): void {
  if (r.aborted || r.finished) return;
  const body = sr.captured;
  if (sr.status === 200 && body !== undefined && !sr.capturedOver && body.length > 0) {
    const entry = body.length === 1 ? body[0]! : Buffer.concat(body, sr.capturedLength);
    if (serveEntry(r, entry, conf)) return;
  }
  afterAccess(r);
}

/**
 * A stored response as the answer: nginx's status line and the stored
 * headers (Content-Type in its place; a stored Content-Length stays one
 * of the listed headers, as the module copies it; without one the body's
 * length is sent), then the body.
 */
function serveEntry(r: HttpRequest, entry: Buffer, conf: SrcacheLocConf): boolean {
  const end = entry.indexOf('\r\n\r\n');
  if (end === -1 || end > Math.max(conf.headerBufferSize, 1)) {
    r.log('error', 'srcache_fetch: invalid cached response: header too long or not complete');
    return false;
  }
  const lines = entry.toString('latin1', 0, end).split('\r\n');
  const m = /^HTTP\/\d\.\d (\d{3})(?: (.*))?$/.exec(lines[0]!);
  if (m === null) {
    r.log('error', `srcache_fetch: invalid status line in the cached response: "${lines[0]}"`);
    return false;
  }
  const status = Number(m[1]);
  const ctx = ctxOf(r);
  ctx.fetchStatus = 'HIT';
  r.status = status;
  r.statusLine = m[2] ? `${status} ${m[2]}` : undefined;
  r.contentType = '';
  const bodyLen = entry.length - end - 4;
  let listedLength = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    const key = name.toLowerCase();
    if (key === 'content-type') {
      r.contentType = value;
      continue;
    }
    if (key === 'x-srcache-allow-ranges') {
      // the store's mark (see store.ts): ranges allowed, the line not sent
      r.allowRanges = true;
      continue;
    }
    if (key === 'content-length') listedLength = true;
    r.headersOut.push([name, value]);
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
