import { evalComplexValue } from '../../http/eval.js';
import type { HttpRequest } from '../../http/http_request.js';
import { afterAccess } from '../../http/phases.js';
import { DECLINED, DONE } from '../../http/request.js';
import { createSubrequest, type SubRequest, type SubrequestOptions } from '../../http/subrequest.js';
import { parseUnsafeUri } from '../../http/unsafe_uri.js';
import type { SrcacheLocConf, SubrequestTemplate } from './conf.js';
import { HEAD_TRUNCATED, listedLength, readHead } from './entry.js';
import { ctxOf, skipped } from './state.js';

/*
 * srcache_fetch (ngx_http_srcache_access_handler + fetch subrequest): at
 * the end of the access phase the location's fetch subrequest runs with
 * its output kept in memory; a 200 whose body is a stored response (status
 * line, headers, a blank line, the body, as store.ts writes it) answers
 * the request (HIT) and the content handler never runs; anything else is a
 * MISS and the request goes on to its content handler (the application).
 * The entry's head is read by entry.ts.
 * The entry is held whole, as the module holds it (its body_from_cache)
 * before sending; here bounded by srcache_store_max_size when that is set
 * (a larger entry is a MISS, where the module would serve it).
 */

/*
 * the subrequest's target (ngx_http_parse_unsafe_uri on the evaluated
 * URI): a `?` in it ends the path, its args used when the directive's own
 * are empty; %XX is decoded; an empty or unsafe URI (`..` segments, NUL)
 * gives undefined. The usual URI (no `%`, `?`, NUL or `..`) is taken as it is.
 */
export function target(r: HttpRequest, t: SubrequestTemplate): { uri: string; args: string } | undefined {
  let uri = evalComplexValue(r, t.uri);
  let args = t.args !== undefined ? evalComplexValue(r, t.args) : '';
  if (uri.length === 0) return undefined;
  let plain = uri.indexOf('..') === -1;
  for (let i = 0; plain && i < uri.length; i++) {
    const c = uri.charCodeAt(i);
    if (c === 0x25 || c === 0x3f || c === 0) plain = false;
  }
  if (!plain) {
    const p = parseUnsafeUri(uri);
    if (p.unsafe) return undefined;
    uri = p.uri;
    if (p.args && args === '') args = p.args;
  }
  return { uri, args };
}

/*
 * srcache_request_cache_control: a client's `no-cache` (Cache-Control or
 * Pragma) skips the fetch; `no-store` in a Cache-Control as well skips the
 * store too (ngx_http_srcache_request_no_cache: substrings, any case)
 */
const NO_CACHE = 1;
const NO_STORE = 2;

function requestNoCache(r: HttpRequest): number {
  let flags = 0;
  for (const [k, v] of r.req.headers) {
    if (k.length === 13 && k.toLowerCase() === 'cache-control') {
      const l = v.toLowerCase();
      if (l.includes('no-store')) flags |= NO_STORE;
      if (l.includes('no-cache')) flags |= NO_CACHE;
    } else if (k.length === 6 && k.toLowerCase() === 'pragma' && v.toLowerCase().includes('no-cache')) flags |= NO_CACHE;
  }
  return flags;
}

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

/** the access-phase hook (ngx_http_srcache_access_handler, which runs last in the phase) */
export function fetchHandler(r: HttpRequest, conf: SrcacheLocConf | undefined): number {
  if (conf === undefined || (conf.fetch === undefined && conf.store === undefined) || r.main !== r) return DECLINED;
  // srcache_methods (GET and HEAD always among them): neither fetch nor store for the others
  if (!conf.methods!.includes(r.method)) return DECLINED;
  if (conf.requestCacheControl) {
    const rc = requestNoCache(r);
    if (rc & NO_CACHE) {
      // the store may still run, unless no-store came too
      if (!(rc & NO_STORE)) ctxOf(r).active = true;
      return DECLINED;
    }
  }
  const ctx = ctxOf(r);
  ctx.active = true;
  if (conf.fetchSkip !== undefined && skipped(evalComplexValue(r, conf.fetchSkip))) return DECLINED;
  if (conf.fetch === undefined) return DECLINED;
  const to = target(r, conf.fetch);
  if (to === undefined) {
    // the access handler's NGX_ERROR: the request ends without a response
    r.terminate();
    return DONE;
  }
  const sr = createSubrequest(r, to.uri, to.args, optionsOf(conf));
  if (sr === undefined) return DECLINED;
  ctx.fetchStatus = 'MISS';
  ctx.fetchConf = conf;
  return DONE;
}

/*
 * The fetch subrequest ended (ngx_http_srcache_fetch_post_subrequest):
 * a 200 whose body is a whole entry answers the request; anything else
 * lets it go on to its content handler (a MISS), with nginx's error line
 * for an entry cut short.
 */
function fetched(sr: SubRequest): void {
  const r = sr.parent!;
  if (r.aborted || r.finished) return;
  if (sr.status === 200 && sr.inMemory && !sr.capturedOver && sr.failRc === undefined) {
    const entry = sr.capturedBody();
    const conf = ctxOf(r).fetchConf!;
    const rc = readHead(r, sr, entry, conf.headerBufferSize, sr.upstreamAddr !== undefined);
    if (rc >= 0) {
      if (!sr.noEof) return serveEntry(r, entry, rc);
      sr.log('error', 'srcache_fetch: cache sent truncated response body');
    } else if (rc === HEAD_TRUNCATED) {
      sr.log('error', 'srcache_fetch: cache sent truncated status line or headers');
    } else {
      // the module ignored the rest of the body, whose end it then never saw
      sr.log('error', 'srcache_fetch: cache sent truncated response body');
    }
  }
  afterAccess(r);
}

/**
 * The stored response as the answer, its head read onto r already (the
 * body from `start`): its
 * status with nginx's own reason phrase, the headers as read (a stored
 * Content-Length stays one of the listed headers, as the module copies
 * it; without one the body's length is sent), then the body, through the
 * whole filter chain (304 for a matching If-None-Match, ranges when the
 * entry allows them).
 */
function serveEntry(r: HttpRequest, entry: Buffer, start: number): void {
  ctxOf(r).fetchStatus = 'HIT';
  r.statusLine = undefined;
  if (r.contentType === undefined) r.contentType = '';
  const bodyLen = entry.length - start;
  if (listedLength) r.ownContentLength = false;
  r.contentLength = bodyLen;
  r.conn.discardBody(r, false);
  r.sendHeader();
  const ranges = r.rangeBody;
  if (ranges !== undefined) {
    // the range filter's parts (X-SRCache-Allow-Ranges let it in), from the entry in memory
    for (const p of ranges.parts) {
      if (p.head) r.send(Buffer.from(p.head, 'latin1'));
      r.send(entry.subarray(start + p.start, start + p.end));
    }
    if (ranges.tail) r.send(Buffer.from(ranges.tail, 'latin1'));
  } else if (bodyLen > 0) r.send(entry.subarray(start));
  r.finish();
}
