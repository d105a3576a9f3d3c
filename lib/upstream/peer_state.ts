import type { UpstreamPeer, UpstreamPeers, UpstreamSrvConf } from './module.js';

/*
 * The per-worker runtime state of an upstream's peers (the mutable half of
 * nginx's ngx_http_upstream_rr_peer_t): smooth-round-robin weights, open
 * connections, and the failure accounting of max_fails/fail_timeout. nginx
 * without a `zone` keeps it per worker process; so do we (module state of
 * the worker). It is keyed by the config object, so a reload (new config
 * objects) starts afresh, as nginx's new cycle does.
 */

export interface RtPeer {
  readonly conf: UpstreamPeer;
  /** $upstream_addr text: `127.0.0.1:6379`, `[::1]:6379`, `unix:/path` */
  readonly name: string;
  /** the `server` line text (the consistent-hash ring is built from it) */
  readonly server: string;
  /** position in its set (the `tried` bit nginx keeps per request) */
  readonly index: number;
  readonly weight: number;
  readonly maxFails: number;
  /** seconds */
  readonly failTimeout: number;
  readonly down: boolean;
  effectiveWeight: number;
  currentWeight: number;
  /** connections in use (least_conn, random two) */
  conns: number;
  fails: number;
  /** seconds (ngx_time()) of the last failure */
  accessed: number;
  /** seconds: start of the current fail_timeout window / trial */
  checked: number;
}

export interface RtPeers {
  readonly peers: RtPeer[];
  readonly totalWeight: number;
  /** peers not marked `down` */
  readonly tries: number;
  /** one peer and no backup set: no failure accounting at all (nginx) */
  readonly single: boolean;
  /** the upstream's name, shown when no peer is live */
  readonly name: string;
  /** the backup set (only on the primary set) */
  readonly next: RtPeers | undefined;
}

function rtPeers(set: UpstreamPeers, name: string, next: RtPeers | undefined, backup = false): RtPeers {
  const peers = set.peers.map(
    (p, index): RtPeer => ({
      conf: p,
      name: p.addr.name,
      server: p.server,
      index,
      weight: p.weight,
      maxFails: p.maxFails,
      failTimeout: p.failTimeout,
      down: p.down,
      effectiveWeight: p.weight,
      currentWeight: 0,
      conns: 0,
      fails: 0,
      accessed: 0,
      checked: 0,
    }),
  );
  // nginx clears `single` on both sets when a backup set exists
  return { peers, totalWeight: set.totalWeight, tries: set.tries, single: set.single && !backup && !next, name, next };
}

const states = new WeakMap<UpstreamSrvConf, RtPeers>();

/** The primary set (with its backup set) of `us`, created on first use. */
export function peersOf(us: UpstreamSrvConf): RtPeers {
  let s = states.get(us);
  if (!s) {
    if (!us.peers) throw new Error(`upstream "${us.host}" has no peers`);
    const backup = us.backup ? rtPeers(us.backup, us.host, undefined, true) : undefined;
    s = rtPeers(us.peers, us.host, backup);
    states.set(us, s);
  }
  return s;
}

/** ngx_time(): nginx's failure accounting works in whole seconds. */
export function nowSec(): number {
  return Math.floor(Date.now() / 1000);
}

/** The check every balancer makes before choosing a peer. */
export function peerUsable(p: RtPeer, now: number): boolean {
  if (p.down) return false;
  if (p.maxFails && p.fails >= p.maxFails && now - p.checked <= p.failTimeout) return false;
  // max_conns needs a shared zone to mean anything across workers; per worker, as nginx without zone
  if (p.conf.maxConns && p.conns >= p.conf.maxConns) return false;
  return true;
}
