import type { Request } from '../http/request.js';
import { evalComplexValue } from '../http/eval.js';
import type { UpstreamSrvConf } from './module.js';
import { chashStart, getChashPeer, getHashPeer, ringOf, type HashState, type Ring } from './balancers/hash.js';
import { getIpHashPeer, ipHashAddr, type IpHashState } from './balancers/ip_hash.js';
import { getLeastConnPeer } from './balancers/least_conn.js';
import { getRandom2Peer, getRandomPeer, type RandomState } from './balancers/random.js';
import { RrPeerData, freeRoundRobinPeer, getRoundRobinPeer } from './balancers/round_robin.js';
import { peersOf, type RtPeer } from './peer_state.js';
import { ClusterRoute } from './cluster/route.js';

/*
 * The balancer seen by one request (nginx's u->peer: init, get, free,
 * tries): `get` returns the next peer to try or undefined when no peer is
 * live (nginx's NGX_BUSY); `free` ends the try on the current peer, failed
 * or not, and counts down `tries`.
 */

const enum Kind {
  RoundRobin,
  Hash,
  Chash,
  IpHash,
  LeastConn,
  Random,
  Random2,
  Cluster,
}

/**
 * One request's balancer: a fixed-shape object with the method's state in
 * fields (no closures per request); round robin, the usual case, needs
 * nothing beyond its RrPeerData.
 */
export class PeerPicker {
  /** the upstream's name: $upstream_addr and the log's upstream when none is live */
  readonly name: string;
  private readonly rrp: RrPeerData;
  private readonly kind: Kind;
  private readonly hp: HashState | undefined;
  private readonly ring: Ring | undefined;
  private readonly ipst: IpHashState | undefined;
  private readonly rst: RandomState | undefined;
  /** `redis_cluster`: the request's route through the cluster (cluster/route.ts) */
  readonly cluster: ClusterRoute | undefined;

  constructor(r: Request, us: UpstreamSrvConf) {
    this.name = us.host;
    const rrp = (this.rrp = new RrPeerData(peersOf(us)));
    let kind = Kind.RoundRobin;
    let hp: HashState | undefined;
    let ring: Ring | undefined;
    let ipst: IpHashState | undefined;
    let rst: RandomState | undefined;
    let cluster: ClusterRoute | undefined;
    const b = us.balancer;
    switch (b.kind) {
      case 'hash': {
        const key = Buffer.from(evalComplexValue(r, b.key), 'latin1');
        hp = { key, tries: 0, rehash: 0, hash: 0 };
        if (b.consistent) {
          ring = ringOf(us, rrp.peers);
          hp.hash = chashStart(ring, key);
          kind = Kind.Chash;
        } else kind = Kind.Hash;
        break;
      }
      case 'ip_hash': {
        // the engine's requests carry their connection; the Request interface does not name it
        const remote = (r as Partial<{ conn: { remoteAddr: string } }>).conn?.remoteAddr ?? '';
        ipst = { addr: ipHashAddr(remote), hash: 89, tries: 0 };
        kind = Kind.IpHash;
        break;
      }
      case 'least_conn':
        kind = Kind.LeastConn;
        break;
      case 'random':
        rst = { tries: 0 };
        kind = b.two ? Kind.Random2 : Kind.Random;
        break;
      case 'cluster':
        cluster = new ClusterRoute(us, b.readReplicas);
        kind = Kind.Cluster;
        break;
      default:
    }
    this.kind = kind;
    this.hp = hp;
    this.ring = ring;
    this.ipst = ipst;
    this.rst = rst;
    this.cluster = cluster;
  }

  /** attempts left (nginx's pc->tries) */
  get tries(): number {
    return this.rrp.tries;
  }

  /** *_next_upstream_tries: at most `n` tries (nginx caps pc->tries so) */
  limitTries(n: number): void {
    if (n > 0 && this.rrp.tries > n) this.rrp.tries = n;
  }

  /** the next peer to try, undefined when no peer is live (nginx's NGX_BUSY) */
  get(): RtPeer | undefined {
    const rrp = this.rrp;
    switch (this.kind) {
      case Kind.Hash:
        return getHashPeer(rrp, this.hp!);
      case Kind.Chash:
        return getChashPeer(rrp, this.hp!, this.ring!);
      case Kind.IpHash:
        return getIpHashPeer(rrp, this.ipst!);
      case Kind.LeastConn:
        return getLeastConnPeer(rrp);
      case Kind.Random:
        return getRandomPeer(rrp, this.rst!);
      case Kind.Random2:
        return getRandom2Peer(rrp, this.rst!);
      case Kind.Cluster: {
        const p = this.cluster!.next();
        if (p === undefined) return undefined;
        rrp.current = p;
        p.conns++;
        return p;
      }
      default:
        return getRoundRobinPeer(rrp);
    }
  }

  /** end the try on the current peer; true when the failure just disabled the peer (max_fails reached) */
  free(failed: boolean): boolean {
    if (this.kind === Kind.Cluster) {
      // cluster nodes come and go with the map: no max_fails accounting, a try is a try
      const rrp = this.rrp;
      if (rrp.current !== undefined) rrp.current.conns--;
      rrp.current = undefined;
      if (rrp.tries) rrp.tries--;
      if (failed) this.cluster!.tryFailed();
      return false;
    }
    return freeRoundRobinPeer(this.rrp, failed);
  }

  /** a cached connection failed: that try does not count (nginx's tries++) */
  refund(): void {
    this.rrp.tries++;
  }
}

/** Where to connect for one peer (a host and port, or a unix socket path), and its name. */
export interface PeerAddress {
  /** `127.0.0.1:6379`, `[::1]:6379` or `unix:/path`: $upstream_addr and log text */
  name: string;
  host?: string;
  port?: number;
  /** unix socket path */
  path?: string;
}

/** A connect target and its `SCHEME://name` (the log's upstream), made once per peer and scheme. */
export interface PeerTarget extends PeerAddress {
  addr: string;
}

const targets = new WeakMap<RtPeer, Map<string, PeerTarget>>();

/** The connect target of a peer, as a protocol names it in the log (`redis2://...`). */
export function peerTarget(p: RtPeer, scheme: string): PeerTarget {
  let bySchema = targets.get(p);
  if (bySchema === undefined) targets.set(p, (bySchema = new Map()));
  let t = bySchema.get(scheme);
  if (t === undefined) {
    const a = p.conf.addr;
    const addr = `${scheme}://${a.name}`;
    t = a.family === 'unix' ? { name: a.name, path: a.host, addr } : { name: a.name, host: a.host, port: a.port, addr };
    bySchema.set(scheme, t);
  }
  return t;
}
