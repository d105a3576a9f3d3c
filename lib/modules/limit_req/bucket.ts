import { slabChunk, zoneOp, type ZoneStore, type ZoneValue } from '../../core/zones.js';

/*
 * limit_req's leaky bucket, run at the zone's owner (lib/core/zones.ts):
 * ngx_http_limit_req_lookup, _account, _unlock and _expire. A node is
 * [excess, last, count]: excess in 1/1000 requests, last the ms of its
 * last update, count the lookups in flight that will account it later (a
 * request under several limits). The arithmetic is nginx's, integer ms.
 */

/** [excess, last, count] */
type Node = [number, number, number];

/** nginx's node: the rbtree node up to `color` (32 bytes) + the limit_req node header (48) + the key */
export const nodeBytes = (keyLen: number): number => slabChunk(32 + 48 + keyLen);

export const enum Rc {
  Ok = 0,
  Again = 1,
  Busy = 2,
  Error = 3,
}

export interface LookupArg {
  /** requests per 1000 s (nginx's rate in 1/1000 r/s) */
  rate: number;
  /** burst in 1/1000 */
  burst: number;
  /** the last limit of the request: account at once */
  account: boolean;
}

/** ms since `last`, as nginx bounds it: a clock that went far back counts as 1 ms, a little as 0 */
function elapsed(now: number, last: number): number {
  const ms = now - last;
  if (ms < -60000) return 1;
  return ms < 0 ? 0 : ms;
}

/**
 * ngx_http_limit_req_expire: n = 1 drops up to two idle nodes from the
 * LRU end; n = 0 first drops the oldest by force
 */
function expire(z: ZoneStore, rate: number, now: number, n: number): void {
  while (n < 3) {
    const key = z.oldest();
    if (key === undefined) return;
    const node = z.map.get(key)!.value as Node;
    // a node with lookups in flight: nothing older can be dropped either
    if (node[2]) return;
    if (n++ !== 0) {
      const ms = Math.abs(now - node[1]);
      if (ms < 60000) return;
      if (node[0] - Math.floor((rate * ms) / 1000) > 0) return;
    }
    z.remove(key);
  }
}

/** register the ops (module.ts, at load: every process that may own a zone has them) */
export function registerLimitReqOps(): void {
  /** ngx_http_limit_req_lookup: [rc, excess] */
  zoneOp('limit_req', (z, key, a, now): ZoneValue => {
    const { rate, burst, account } = a as unknown as LookupArg;
    const e = z.get(key, now);
    if (e !== undefined) {
      const node = e.value as Node;
      const ms = elapsed(now, node[1]);
      let excess = node[0] - Math.floor((rate * ms) / 1000) + 1000;
      if (excess < 0) excess = 0;
      if (excess > burst) return [Rc.Busy, excess];
      if (account) {
        node[0] = excess;
        if (ms) node[1] = now;
        return [Rc.Ok, excess];
      }
      node[2]++;
      return [Rc.Again, excess];
    }
    const bytes = nodeBytes(key.length);
    expire(z, rate, now, 1);
    if (!z.fits(bytes)) {
      expire(z, rate, now, 0);
      if (!z.fits(bytes)) return [Rc.Error, 0];
    }
    const node: Node = account ? [0, now, 0] : [0, 0, 1];
    z.put(key, node, 0, bytes);
    return [account ? Rc.Ok : Rc.Again, 0];
  });

  /** ngx_http_limit_req_account for one earlier limit: the node's new excess */
  zoneOp('limit_req_account', (z, key, a, now): ZoneValue => {
    const rate = a as number;
    const e = z.map.get(key);
    if (e === undefined) return 0;
    const node = e.value as Node;
    const ms = elapsed(now, node[1]);
    let excess = node[0] - Math.floor((rate * ms) / 1000) + 1000;
    if (excess < 0) excess = 0;
    if (ms) node[1] = now;
    node[0] = excess;
    node[2]--;
    return excess;
  });

  /** ngx_http_limit_req_unlock for one earlier limit */
  zoneOp('limit_req_unlock', (z, key): ZoneValue => {
    const e = z.map.get(key);
    if (e !== undefined) (e.value as Node)[2]--;
    return null;
  });
}
