import type { Request } from '../../http/request.js';

/*
 * srcache's per-request state (its ngx_http_srcache_ctx_t): what the
 * fetch and the store decided, for $srcache_fetch_status,
 * $srcache_store_status and $srcache_expire.
 */

export interface SrcacheCtx {
  fetchStatus: 'BYPASS' | 'MISS' | 'HIT';
  storeStatus: 'BYPASS' | 'STORE';
  /** seconds, from the response's Cache-Control / Expires (undefined: not decided) */
  expire: number | undefined;
}

const ctxs = new WeakMap<Request, SrcacheCtx>();

export function ctxOf(r: Request): SrcacheCtx {
  let c = ctxs.get(r);
  if (c === undefined) {
    c = { fetchStatus: 'BYPASS', storeStatus: 'BYPASS', expire: undefined };
    ctxs.set(r, c);
  }
  return c;
}

/** a skip value: anything but "" and "0" skips (as the module's ngx_http_srcache_*_skip) */
export function skipped(v: string): boolean {
  return v.length > 0 && v !== '0';
}
