import type { ComplexValue } from '../http/script.js';
import type { PeerAddr } from './url.js';

/*
 * The typed upstream list the runtime reads (nginx's
 * ngx_http_upstream_main_conf_t / _srv_conf_t / _rr_peers_t). Filled in by
 * the `upstream {}` block, `server`, the balancer directives, and by
 * upstreamAdd() for implicit upstreams (`redis2_pass 127.0.0.1:6379`);
 * peers are built at the end of the http block, as
 * ngx_http_upstream_init_round_robin does.
 */

// ngx_http_upstream_srv_conf_t.flags: what `server` parameters are allowed.
export const UPSTREAM_CREATE = 0x0001;
export const UPSTREAM_WEIGHT = 0x0002;
export const UPSTREAM_MAX_FAILS = 0x0004;
export const UPSTREAM_FAIL_TIMEOUT = 0x0008;
export const UPSTREAM_DOWN = 0x0010;
export const UPSTREAM_BACKUP = 0x0020;
export const UPSTREAM_MAX_CONNS = 0x0100;

/** One `server` line of an upstream block (ngx_http_upstream_server_t). */
export interface UpstreamServer {
  /** the address as written (`127.0.0.1:6379`, `localhost:6379`) */
  name: string;
  addrs: PeerAddr[];
  weight: number;
  maxConns: number;
  maxFails: number;
  /** seconds */
  failTimeout: number;
  down: boolean;
  backup: boolean;
}

/** A peer the balancer picks from (ngx_http_upstream_rr_peer_t, config part). */
export interface UpstreamPeer {
  addr: PeerAddr;
  /** the `server` text it came from (`server` field of nginx's peer) */
  server: string;
  weight: number;
  maxConns: number;
  /** 0 = failures are never counted */
  maxFails: number;
  /** seconds */
  failTimeout: number;
  down: boolean;
}

/** ngx_http_upstream_rr_peers_t: the primary or the backup set. */
export interface UpstreamPeers {
  peers: UpstreamPeer[];
  /** sum of weights */
  totalWeight: number;
  /** some weight differs from 1 */
  weighted: boolean;
  /** peers not marked down (how many tries a request may make) */
  tries: number;
  /** exactly one peer and no backup set */
  single: boolean;
}

export type Balancer =
  | { kind: 'round_robin' }
  | { kind: 'hash'; key: ComplexValue; consistent: boolean }
  | { kind: 'ip_hash' }
  | { kind: 'least_conn' }
  | { kind: 'random'; two: boolean; leastConn: boolean }
  /** **extension** `redis_cluster [read_replicas]`: the servers are seeds (cluster/state.ts) */
  | { kind: 'cluster'; readReplicas: boolean };

/** ngx_http_upstream_keepalive_srv_conf_t */
export interface UpstreamKeepalive {
  /** `keepalive N`: idle connections cached per worker; 0 = no cache */
  maxCached: number;
  /**
   * false when a balancing directive came after `keepalive`: nginx then
   * replaces the keepalive init hook and the cache is never used (its docs
   * say the method must come first). maxCached stays set for the
   * duplicate check.
   */
  active: boolean;
  /** `keepalive_time`, ms (default 1h) */
  time: number;
  /** `keepalive_timeout`, ms (default 60s) */
  timeout: number;
  /** `keepalive_requests` (default 1000) */
  requests: number;
}

export interface UpstreamSrvConf {
  /** the block name, or the host of an implicit upstream (`127.0.0.1`, `[::1]`, `localhost`) */
  host: string;
  /** 0 for upstream blocks; the port of an implicit one */
  port: number;
  noPort: boolean;
  flags: number;
  /** where it was first created (nginx names this place in later errors) */
  file: string;
  line: number;
  /** `server` lines; undefined for an implicit upstream given by name */
  servers: UpstreamServer[] | undefined;
  /** balancing method, with whether a directive chose it (for the redefined warning) */
  balancer: Balancer;
  balancerSet: boolean;
  keepalive: UpstreamKeepalive;
  /** built at the end of the http block */
  peers: UpstreamPeers | undefined;
  backup: UpstreamPeers | undefined;
}

export interface UpstreamMainConf {
  /** every upstream, blocks and implicit ones, in creation order */
  upstreams: UpstreamSrvConf[];
}

/** `*_bind` value (ngx_http_upstream_local_t). */
export type UpstreamLocal = { kind: 'addr'; addr: PeerAddr } | { kind: 'complex'; value: ComplexValue };
