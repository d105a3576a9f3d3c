import type { Request } from '../http/request.js';
import { evalComplexValue } from '../http/eval.js';
import type { UpstreamSrvConf } from '../modules/upstream.js';
import { chashStart, getChashPeer, getHashPeer, ringOf, type HashState } from './balancer_hash.js';
import { getIpHashPeer, ipHashAddr, type IpHashState } from './balancer_ip_hash.js';
import { getLeastConnPeer } from './balancer_least_conn.js';
import { getRandom2Peer, getRandomPeer, type RandomState } from './balancer_random.js';
import { RrPeerData, freeRoundRobinPeer, getRoundRobinPeer } from './balancer_rr.js';
import { peersOf, type RtPeer } from './peer_state.js';
import type { RedisPeer } from './upstream_request.js';

/*
 * The balancer seen by one request (nginx's u->peer: init, get, free,
 * tries): `get` returns the next peer to try or undefined when no peer is
 * live (nginx's NGX_BUSY); `free` ends the try on the current peer, failed
 * or not, and counts down `tries`.
 */

export interface PeerPicker {
  /** attempts left (nginx's pc->tries) */
  readonly tries: number;
  /** the upstream's name: $upstream_addr and the log's upstream when none is live */
  readonly name: string;
  get(): RtPeer | undefined;
  /** true when the failure just disabled the peer (max_fails reached) */
  free(failed: boolean): boolean;
  /** a cached connection failed: that try does not count (nginx's tries++) */
  refund(): void;
}

export function createPicker(r: Request, us: UpstreamSrvConf): PeerPicker {
  const rrp = new RrPeerData(peersOf(us));
  let get: () => RtPeer | undefined;
  const b = us.balancer;
  switch (b.kind) {
    case 'hash': {
      const key = Buffer.from(evalComplexValue(r, b.key), 'latin1');
      const hp: HashState = { key, tries: 0, rehash: 0, hash: 0 };
      if (b.consistent) {
        const ring = ringOf(us, rrp.peers);
        hp.hash = chashStart(ring, key);
        get = () => getChashPeer(rrp, hp, ring);
      } else {
        get = () => getHashPeer(rrp, hp);
      }
      break;
    }
    case 'ip_hash': {
      // the engine's requests carry their connection; the Request interface does not name it
      const remote = (r as Partial<{ conn: { remoteAddr: string } }>).conn?.remoteAddr ?? '';
      const st: IpHashState = { addr: ipHashAddr(remote), hash: 89, tries: 0 };
      get = () => getIpHashPeer(rrp, st);
      break;
    }
    case 'least_conn':
      get = () => getLeastConnPeer(rrp);
      break;
    case 'random': {
      const st: RandomState = { tries: 0 };
      get = b.two ? () => getRandom2Peer(rrp, st) : () => getRandomPeer(rrp, st);
      break;
    }
    default:
      get = () => getRoundRobinPeer(rrp);
  }
  return {
    get tries() {
      return rrp.tries;
    },
    name: us.host,
    get,
    free: (failed) => freeRoundRobinPeer(rrp, failed),
    refund: () => void rrp.tries++,
  };
}

/** The connect target of a peer. */
export function redisPeer(p: RtPeer): RedisPeer {
  const a = p.conf.addr;
  return a.family === 'unix' ? { name: a.name, path: a.host } : { name: a.name, host: a.host, port: a.port };
}
