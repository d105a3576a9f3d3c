import { errorLogFor, getMainLog } from '../../core/error_log.js';
import { evalComplexValue } from '../../http/eval.js';
import { nextBody, nextLast, type BodyFilter, type HttpRequest } from '../../http/http_request.js';
import { parseHttpTime } from '../../http/http_time.js';
import { statusLine } from '../../http/status.js';
import { createSubrequest, type SubRequest } from '../../http/subrequest.js';
import type { SrcacheLocConf } from './conf.js';
import { target } from './fetch.js';
import { SrcacheCtx, activeCtx, skipped } from './state.js';

/*
 * srcache_store (ngx_http_srcache_header_filter / body_filter): a
 * response worth storing (a main request the access handler saw, not
 * served from the cache, its method, Content-Encoding, Cache-Control,
 * skip value, status and Content-Length as the module checks them, in its
 * order) is serialised as the module does it, the status line and the
 * headers the response has at this filter (before add_header's, which
 * runs after it), less the hidden ones, a blank line, then the body as it
 * passes through (after the range filter: a 206 is stored only with
 * srcache_store_ranges); once the body ends the store subrequest runs
 * with all of it as its request body (`$echo_request_body` in the store
 * location), after the client got its response. Its outcome never changes
 * that response; a failure is logged as the module logs it. Past
 * srcache_store_max_size nothing is stored.
 */

export const HIDE_DEFAULT = ['Connection', 'Keep-Alive', 'Proxy-Authenticate', 'Proxy-Authorization', 'TE', 'Trailers', 'Transfer-Encoding', 'Upgrade', 'Set-Cookie'];

/** the statuses stored when srcache_store_statuses is not given */
const DEFAULT_STATUSES = [200, 301, 302, 307, 308];

/*
 * ngx_http_srcache_response_no_cache: the response's Cache-Control lines
 * (`private`, `no-store`, `no-cache` as substrings, any case, unless
 * allowed; the first `max-age=` made of digits only, 0 refusing) and then,
 * without a max-age, its Expires (a date in the past refusing). True:
 * not stored; otherwise ctx.validSec is when it expires (0: not said).
 */
function refusedByCacheControl(r: HttpRequest, conf: SrcacheLocConf, ctx: SrcacheCtx): boolean {
  let expires: string | undefined;
  for (const [k, v] of r.headersOut) {
    if (k.length === 13 && k.toLowerCase() === 'cache-control') {
      const l = v.toLowerCase();
      if (!conf.storePrivate && l.includes('private')) return true;
      if (!conf.storeNoStore && l.includes('no-store')) return true;
      if (!conf.storeNoCache && l.includes('no-cache')) return true;
      if (ctx.validSec !== 0) continue;
      const at = l.indexOf('max-age=');
      if (at === -1) continue;
      let n = 0;
      for (let p = at + 8; p < l.length; p++) {
        const c = l.charCodeAt(p);
        if (c === 0x2c || c === 0x3b || c === 0x20) break;
        if (c < 0x30 || c > 0x39) return true;
        n = n * 10 + c - 0x30;
      }
      if (n === 0) return true;
      ctx.validSec = Math.floor(Date.now() / 1000) + n;
    } else if (k.length === 7 && k.toLowerCase() === 'expires') expires = v;
  }
  if (ctx.validSec === 0 && expires !== undefined) {
    const t = parseHttpTime(expires);
    if (t === -1 || t <= Math.floor(Date.now() / 1000)) return true;
    ctx.validSec = t;
  }
  return false;
}

/** the response's Content-Encoding value, '' when it has none */
function contentEncoding(r: HttpRequest): string {
  for (const [k, v] of r.headersOut) if (k.length === 16 && k.toLowerCase() === 'content-encoding') return v;
  return '';
}

/** the header filter: decide, and put the capturing body filter on the request */
export function storeHeaderFilter(r: HttpRequest, conf: SrcacheLocConf | undefined): void {
  const own = r.srcacheCtx as SrcacheCtx | undefined;
  if (own !== undefined && own.storeSub) return storeSubHeader(r as SubRequest);
  if (conf === undefined || conf.store === undefined || r.main !== r) return;
  const ctx = activeCtx(r);
  if (ctx === undefined || ctx.fetchStatus === 'HIT') return;
  // srcache_methods without HEAD (srcache_store_methods narrows it further)
  if (r.method === 'HEAD' || !conf.methods!.includes(r.method)) return;
  if (conf.storeMethods !== undefined && !conf.storeMethods.includes(r.method)) return;
  if (!conf.ignoreContentEncoding) {
    const ce = contentEncoding(r);
    if (ce !== '') {
      r.log('warn', `srcache_store skipped due to response header "Content-Encoding: ${ce}" (maybe you forgot to disable compression on the backend?)`);
      return;
    }
  }
  if (conf.responseCacheControl && refusedByCacheControl(r, conf, ctx)) return;
  if (conf.storeSkip !== undefined && skipped(evalComplexValue(r, conf.storeSkip))) return;
  if (!(conf.storeStatuses ?? DEFAULT_STATUSES).includes(r.status)) return;
  // a Content-Length already past the limit (15 bytes standing for the header, as the module guesses)
  if (conf.storeMaxSize > 0 && r.contentLength > 0 && r.contentLength + 15 > conf.storeMaxSize) return;

  const st = r.status;
  let head = `HTTP/1.1 ${r.statusLine ?? statusLine(st)}\r\n`;
  const ct = r.contentType ?? r.defaultContentType();
  if (ct && !conf.hideContentType) head += `Content-Type: ${ct}\r\n`;
  // the module's own copy of the header filter's rule: a Last-Modified time only for these statuses,
  // written unless a Last-Modified line of the list stands for it
  if (!conf.hideLastModified && r.lastModifiedTime !== -1 && r.lastModified === undefined && (st === 200 || st === 206 || st === 304 || st === 204)) {
    head += `Last-Modified: ${new Date(r.lastModifiedTime * 1000).toUTCString()}\r\n`;
  }
  // a response that allows ranges (a static file) says so for the HIT to allow them too
  if (r.allowRanges) head += 'X-SRCache-Allow-Ranges: 1\r\n';
  // the Location of a redirect is a line of nginx's header list, as set (relative: the header filter
  // makes it absolute later)
  if (r.location !== undefined && !conf.hidden.has('location')) head += `Location: ${r.location}\r\n`;
  for (const [k, v] of r.headersOut) {
    if (conf.hidden.has(k.toLowerCase())) continue;
    head += `${k}: ${v}\r\n`;
  }
  head += '\r\n';
  const headBuf = Buffer.from(head, 'latin1');
  if (conf.storeMaxSize > 0 && headBuf.length > conf.storeMaxSize) return;
  ctx.storeStatus = 'STORE';
  r.filter = new StoreFilter(r.filter, conf, ctx, headBuf, st);
}

/** the store subrequest's response header: nginx's debug line, unless it failed first */
function storeSubHeader(sr: SubRequest): void {
  if (sr.failRc !== undefined) return;
  const specs = sr.loc?.errorLog;
  const log = specs ? errorLogFor(specs) : getMainLog();
  if (log.enabled('debug')) log.write('debug', sr.connectionId, `srcache_store: subrequest returned status ${sr.status}`);
}

/* ngx_http_srcache_store_post_subrequest */
function stored(sr: SubRequest): void {
  const rc = sr.failRc;
  if (rc !== undefined) sr.log('error', `srcache_store subrequest failed: rc=${rc} status=${sr.failStatus}`);
  else if (sr.status >= 300) sr.log('error', `srcache_store subrequest failed: rc=0 status=${sr.status}`);
}

/** tees the response body; at its end, the store subrequest */
class StoreFilter implements BodyFilter {
  private readonly parts: Buffer[];
  private size: number;
  private bodySize = 0;
  private over = false;
  private checked = false;

  constructor(
    public next: BodyFilter | undefined,
    private readonly conf: SrcacheLocConf,
    private readonly ctx: SrcacheCtx,
    private readonly head: Buffer,
    /** the status the header was stored with */
    private readonly status: number,
  ) {
    this.parts = [head];
    this.size = head.length;
  }

  /* the range filter made a 206 of the stored 200: stored as a 206 with srcache_store_ranges, else not at all */
  private checkRanges(r: HttpRequest): void {
    this.checked = true;
    if (r.status !== 206 || this.status !== 200) return;
    if (!this.conf.storeRanges) {
      this.drop();
      return;
    }
    // `HTTP/1.1 200` becomes `HTTP/1.1 206`, the reason phrase kept (the module patches one digit)
    this.head[11] = 0x36;
  }

  private drop(): void {
    this.over = true;
    this.parts.length = 0;
    this.ctx.storeStatus = 'BYPASS';
  }

  body(r: HttpRequest, chunk: Buffer): boolean {
    if (!this.checked) this.checkRanges(r);
    if (!this.over && chunk.length) {
      const max = this.conf.storeMaxSize;
      if (max > 0 && this.size + chunk.length > max) this.drop();
      else {
        // the client's write may keep the buffer: a copy of what is stored
        this.parts.push(Buffer.from(chunk));
        this.size += chunk.length;
        this.bodySize += chunk.length;
      }
    }
    return nextBody(r, this.next, chunk);
  }

  last(r: HttpRequest): void {
    if (!this.checked) this.checkRanges(r);
    nextLast(r, this.next);
    if (this.over) return;
    if (r.contentLength > this.bodySize) {
      r.log('error', `srcache_store: skipped because response body truncated: ${r.contentLength} > ${this.bodySize}`);
      return this.drop();
    }
    if (r.status >= 300 && r.status !== this.status) {
      r.log('error', `srcache_store: skipped due to new error status code ${r.status} (old: ${this.status})`);
      return this.drop();
    }
    // the skip value once more, as the response ends (a handler may have set it meanwhile)
    const skip = this.conf.storeSkip;
    if (skip !== undefined) {
      const v = evalComplexValue(r, skip);
      if (skipped(v)) {
        const specs = r.loc?.errorLog;
        const log = specs ? errorLogFor(specs) : getMainLog();
        if (log.enabled('debug')) log.write('debug', r.connectionId, `srcache_store skipped due to the true value in srcache_store_skip: "${v}"`);
        return this.drop();
      }
    }
    const t = this.conf.store!;
    const to = target(r, t);
    // an empty or unsafe target: nothing stored, nothing logged (the module's NGX_ERROR there)
    if (to === undefined) return this.drop();
    const { uri, args } = to;
    const body = Buffer.concat(this.parts, this.size);
    this.parts.length = 0;
    // fresh variables, as the fetch's (ngx_http_srcache_adjust_subrequest)
    const sr = createSubrequest(r, uri, args, { method: t.method, ownVariables: true, body, inMemory: true, captureLimit: 0, detached: true, done: stored });
    if (sr !== undefined) {
      // its header filter writes the module's debug line (nginx's in_store_subrequest ctx)
      const c = new SrcacheCtx();
      c.storeSub = true;
      sr.srcacheCtx = c;
    }
  }
}
