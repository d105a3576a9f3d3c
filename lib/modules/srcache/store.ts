import { evalComplexValue } from '../../http/eval.js';
import { nextBody, nextLast, type BodyFilter, type HttpRequest } from '../../http/http_request.js';
import { statusLine } from '../../http/status.js';
import { createSubrequest } from '../../http/subrequest.js';
import type { SrcacheLocConf } from './conf.js';
import { target } from './fetch.js';
import { ctxOf, skipped } from './state.js';

/*
 * srcache_store (ngx_http_srcache_header_filter / body_filter): a
 * response worth storing (a main request not served from the cache, its
 * method and status in the lists, no skip, its Cache-Control allowing it)
 * is serialised as the module does it, the status line and the headers
 * the response has at this filter (before add_header's, which runs after
 * it), less the hidden ones, a blank line, then the body as it passes
 * through; once the body ends the store subrequest runs with all of it as
 * its request body (`$echo_request_body` in the store location), after the
 * client got its response. Its outcome never changes that response. Past
 * srcache_store_max_size nothing is stored.
 */

export const HIDE_DEFAULT = ['Connection', 'Keep-Alive', 'Proxy-Authenticate', 'Proxy-Authorization', 'TE', 'Trailers', 'Transfer-Encoding', 'Upgrade', 'Set-Cookie'];

/** Cache-Control / Expires of the response: false = not storable; else the expire in seconds */
function cacheControl(r: HttpRequest, conf: SrcacheLocConf): number | false {
  let expire = -1;
  for (const [k, v] of r.headersOut) {
    const key = k.toLowerCase();
    if (key === 'cache-control') {
      const l = v.toLowerCase();
      if (/\bno-store\b/.test(l) && !conf.storeNoStore) return false;
      if (/\bno-cache\b/.test(l) && !conf.storeNoCache) return false;
      if (/\bprivate\b/.test(l) && !conf.storePrivate) return false;
      const m = /\b(?:s-maxage|max-age)=(\d+)/.exec(l);
      if (m) expire = Number(m[1]);
    } else if (key === 'expires' && expire === -1) {
      const t = Date.parse(v);
      if (!Number.isNaN(t)) expire = Math.max(0, Math.floor((t - Date.now()) / 1000));
    }
  }
  return expire;
}

/** the header filter: decide, and put the capturing body filter on the request */
export function storeHeaderFilter(r: HttpRequest, conf: SrcacheLocConf | undefined): void {
  if (conf === undefined || conf.store === undefined || r.main !== r) return;
  const ctx = ctxOf(r);
  if (ctx.fetchStatus === 'HIT') return;
  if (!(conf.storeMethods ?? ['GET', 'HEAD']).includes(r.method)) return;
  if (!(conf.storeStatuses ?? [200, 301, 302]).includes(r.status)) return;
  if (conf.storeSkip !== undefined && skipped(evalComplexValue(r, conf.storeSkip))) return;
  let expire = conf.responseCacheControl ? cacheControl(r, conf) : -1;
  if (expire === false) return;
  if (expire === -1) expire = conf.defaultExpire;
  if (conf.maxExpire > 0 && expire > conf.maxExpire) expire = conf.maxExpire;
  ctx.expire = expire;

  let head = `HTTP/1.1 ${r.statusLine ?? statusLine(r.status)}\r\n`;
  const ct = r.contentType ?? r.defaultContentType();
  if (ct) head += `Content-Type: ${ct}\r\n`;
  // the module's own copy of the header filter's rule: a Last-Modified time only for these statuses
  const st = r.status;
  if (r.lastModifiedTime !== -1 && (st === 200 || st === 206 || st === 304 || st === 204)) {
    head += `Last-Modified: ${new Date(r.lastModifiedTime * 1000).toUTCString()}\r\n`;
  }
  // a response that allows ranges (a static file) says so for the HIT to allow them too
  if (r.allowRanges) head += 'X-SRCache-Allow-Ranges: 1\r\n';
  for (const [k, v] of r.headersOut) {
    if (conf.hidden.has(k.toLowerCase())) continue;
    head += `${k}: ${v}\r\n`;
  }
  head += '\r\n';
  const headBuf = Buffer.from(head, 'latin1');
  if (conf.storeMaxSize > 0 && headBuf.length > conf.storeMaxSize) return;
  ctx.storeStatus = 'STORE';
  r.filter = new StoreFilter(r.filter, conf, headBuf);
}

/** tees the response body; at its end, the store subrequest */
class StoreFilter implements BodyFilter {
  private readonly parts: Buffer[];
  private size: number;
  private over = false;

  constructor(
    public next: BodyFilter | undefined,
    private readonly conf: SrcacheLocConf,
    head: Buffer,
  ) {
    this.parts = [head];
    this.size = head.length;
  }

  body(r: HttpRequest, chunk: Buffer): boolean {
    if (!this.over && chunk.length) {
      const max = this.conf.storeMaxSize;
      if (max > 0 && this.size + chunk.length > max) {
        this.over = true;
        this.parts.length = 0;
        ctxOf(r).storeStatus = 'BYPASS';
      } else {
        // the client's write may keep the buffer: a copy of what is stored
        this.parts.push(Buffer.from(chunk));
        this.size += chunk.length;
      }
    }
    return nextBody(r, this.next, chunk);
  }

  last(r: HttpRequest): void {
    nextLast(r, this.next);
    if (this.over) return;
    const t = this.conf.store!;
    const { uri, args } = target(r, t);
    const body = Buffer.concat(this.parts, this.size);
    this.parts.length = 0;
    // fresh variables, as the fetch's (ngx_http_srcache_adjust_subrequest)
    createSubrequest(r, uri, args, { method: t.method, ownVariables: true, body, inMemory: true, captureLimit: 0, detached: true });
  }
}
