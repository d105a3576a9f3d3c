import { isIPv4, isIPv6 } from 'node:net';
import { getRoundRobinPeer, pickByWeight, takePeer, type RrPeerData } from './round_robin.js';
import { nowSec, peerUsable, type RtPeer } from '../peer_state.js';

/*
 * nginx's ip_hash (ngx_http_upstream_ip_hash_module.c): the first three
 * octets of an IPv4 client (all 16 bytes of IPv6; three zero bytes for
 * anything else) fold into hash = (hash * 113 + byte) % 6271 starting from
 * 89; the hash modulo the total weight walks the weights. A dead or tried
 * peer folds the bytes in again, up to 20 times, then round robin.
 */

export interface IpHashState {
  addr: Uint8Array;
  hash: number;
  tries: number;
}

const PSEUDO = new Uint8Array(3);

/** The client address bytes ip_hash uses. */
export function ipHashAddr(remote: string): Uint8Array {
  if (isIPv4(remote)) return Uint8Array.from(remote.split('.').slice(0, 3).map(Number));
  if (isIPv6(remote)) return ipv6Bytes(remote);
  return PSEUDO;
}

function ipv6Bytes(text: string): Uint8Array {
  const out = new Uint8Array(16);
  let s = text;
  // an embedded IPv4 tail (::ffff:1.2.3.4)
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    s = s.slice(0, -v4[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const hs = head ? head.split(':') : [];
  const ts = tail ? tail.split(':') : [];
  const groups = [...hs, ...new Array<string>(8 - hs.length - ts.length).fill('0'), ...ts];
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

export function getIpHashPeer(rrp: RrPeerData, st: IpHashState): RtPeer | undefined {
  const peers = rrp.peers;
  if (st.tries > 20 || peers.single) return getRoundRobinPeer(rrp);
  const now = nowSec();
  let hash = st.hash;
  for (;;) {
    for (const b of st.addr) hash = (hash * 113 + b) % 6271;
    const p = pickByWeight(peers, hash % peers.totalWeight);
    const peer = peers.peers[p]!;
    if (!rrp.tried[p] && peerUsable(peer, now)) {
      st.hash = hash;
      return takePeer(rrp, peer, now);
    }
    if (++st.tries > 20) return getRoundRobinPeer(rrp);
  }
}
