import type { HttpRequest } from '../../http/http_request.js';
import type { Request } from '../../http/request.js';
import type { SrcacheLocConf } from './conf.js';

/*
 * srcache's per-request state (its ngx_http_srcache_ctx_t): what the
 * fetch and the store decided, for $srcache_fetch_status,
 * $srcache_store_status and $srcache_expire.
 */

export class SrcacheCtx {
  fetchStatus: 'BYPASS' | 'MISS' | 'HIT' = 'BYPASS';
  storeStatus: 'BYPASS' | 'STORE' = 'BYPASS';
  /** seconds, from the response's Cache-Control / Expires (undefined: not decided) */
  expire: number | undefined = undefined;
  /** the conf whose srcache_fetch runs (its subrequest's end reads it) */
  fetchConf: SrcacheLocConf | undefined = undefined;
}

/** r's state, made on first use (kept in the request's srcacheCtx field) */
export function ctxOf(r: Request): SrcacheCtx {
  const hr = r as HttpRequest;
  const c = hr.srcacheCtx;
  if (c !== undefined) return c as SrcacheCtx;
  return (hr.srcacheCtx = new SrcacheCtx());
}

/** a skip value: anything but "" and "0" skips (as the module's ngx_http_srcache_*_skip) */
export function skipped(v: string): boolean {
  return v.length > 0 && v !== '0';
}
