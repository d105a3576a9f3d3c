import { getRoundRobinPeer, takePeer, type RrPeerData } from './round_robin.js';
import { nowSec, peerUsable, type RtPeer, type RtPeers } from '../peer_state.js';

/*
 * nginx's random (ngx_http_upstream_random_module.c): a peer drawn with
 * probability proportional to its weight; `two` draws two distinct live
 * peers and keeps the one with fewer connections relative to weight (the
 * only criterion nginx 1.22 implements, `least_conn` being its default).
 * Dead or tried draws are retried up to 20 times, then round robin.
 */

export interface RandomState {
  tries: number;
}

const rangesCache = new WeakMap<RtPeers, number[]>();

/** ranges[k]: the sum of the weights before peer k (ngx_http_upstream_update_random). */
function rangesOf(peers: RtPeers): number[] {
  let r = rangesCache.get(peers);
  if (!r) {
    r = [];
    let total = 0;
    for (const p of peers.peers) {
      r.push(total);
      total += p.weight;
    }
    rangesCache.set(peers, r);
  }
  return r;
}

/** ngx_http_upstream_peek_random_peer: a weighted draw, by binary search of the ranges. */
function peek(peers: RtPeers): number {
  const x = Math.floor(Math.random() * peers.totalWeight);
  const ranges = rangesOf(peers);
  let i = 0;
  let j = ranges.length;
  while (j - i > 1) {
    const k = (i + j) >>> 1;
    if (x < ranges[k]!) j = k;
    else i = k;
  }
  return i;
}


export function getRandomPeer(rrp: RrPeerData, st: RandomState): RtPeer | undefined {
  const peers = rrp.peers;
  if (st.tries > 20 || peers.single) return getRoundRobinPeer(rrp);
  const now = nowSec();
  for (;;) {
    const peer = peers.peers[peek(peers)]!;
    if (!rrp.tried[peer.index] && peerUsable(peer, now)) return takePeer(rrp, peer, now);
    if (++st.tries > 20) return getRoundRobinPeer(rrp);
  }
}

export function getRandom2Peer(rrp: RrPeerData, st: RandomState): RtPeer | undefined {
  const peers = rrp.peers;
  if (st.tries > 20 || peers.single) return getRoundRobinPeer(rrp);
  const now = nowSec();
  let prev: RtPeer | undefined;
  for (;;) {
    const peer = peers.peers[peek(peers)]!;
    if (peer !== prev && !rrp.tried[peer.index] && peerUsable(peer, now)) {
      if (prev) {
        return takePeer(rrp, peer.conns * prev.weight > prev.conns * peer.weight ? prev : peer, now);
      }
      prev = peer;
    }
    if (++st.tries > 20) return getRoundRobinPeer(rrp);
  }
}
