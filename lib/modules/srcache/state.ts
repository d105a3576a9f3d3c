import type { HttpRequest } from '../../http/http_request.js';
import type { Request } from '../../http/request.js';
import type { SrcacheLocConf } from './conf.js';

/*
 * srcache's per-request state (its ngx_http_srcache_ctx_t): what the
 * fetch and the store decided, for $srcache_fetch_status,
 * $srcache_store_status and $srcache_expire. An internal redirect drops
 * it, as nginx clears r->ctx (the request's ctxEpoch moves).
 */

export class SrcacheCtx {
  fetchStatus: 'BYPASS' | 'MISS' | 'HIT' = 'BYPASS';
  storeStatus: 'BYPASS' | 'STORE' = 'BYPASS';
  /**
   * the access handler registered the request (nginx's ctx exists): the
   * store's header filter only considers such a request
   */
  active = false;
  /** when the response expires (seconds since the epoch; 0: not said, srcache_default_expire) */
  validSec = 0;
  /** the conf whose srcache_fetch runs (its subrequest's end reads it) */
  fetchConf: SrcacheLocConf | undefined = undefined;
  /** the request is a store subrequest (kept across its internal redirects, as the module resumes it) */
  storeSub = false;
  /** the request's ctxEpoch when this was made */
  epoch = 0;
}

/** r's state, made on first use (kept in the request's srcacheCtx field) */
export function ctxOf(r: Request): SrcacheCtx {
  const hr = r as HttpRequest;
  const c = hr.srcacheCtx as SrcacheCtx | undefined;
  if (c !== undefined && c.epoch === hr.ctxEpoch) return c;
  const n = new SrcacheCtx();
  n.epoch = hr.ctxEpoch;
  hr.srcacheCtx = n;
  return n;
}

/** r's state if the access handler made it (nginx's ngx_http_get_module_ctx), else undefined */
export function activeCtx(r: Request): SrcacheCtx | undefined {
  const hr = r as HttpRequest;
  const c = hr.srcacheCtx as SrcacheCtx | undefined;
  return c !== undefined && c.active && c.epoch === hr.ctxEpoch ? c : undefined;
}

/** r's state as the status variables read it: undefined when none was made (or an internal redirect dropped it) */
export function currentCtx(r: Request): SrcacheCtx | undefined {
  const hr = r as HttpRequest;
  const c = hr.srcacheCtx as SrcacheCtx | undefined;
  return c !== undefined && c.epoch === hr.ctxEpoch ? c : undefined;
}

/** a skip value: anything but "" and "0" skips (as the module's ngx_http_srcache_*_skip) */
export function skipped(v: string): boolean {
  return v.length > 0 && v !== '0';
}
