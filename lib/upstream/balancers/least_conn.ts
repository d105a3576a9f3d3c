import { getRoundRobinPeer, takePeer, tryBackup, type RrPeerData } from './round_robin.js';
import { nowSec, peerUsable, type RtPeer } from '../peer_state.js';

/*
 * nginx's least_conn (ngx_http_upstream_least_conn_module.c): the live
 * untried peer with the fewest connections relative to its weight
 * (conns_a * weight_b < conns_b * weight_a); several equal ones are settled
 * by smooth weighted round robin among them. Connections are counted per
 * worker, as nginx without a shared zone.
 */

export function getLeastConnPeer(rrp: RrPeerData): RtPeer | undefined {
  const peers = rrp.peers;
  if (peers.single) return getRoundRobinPeer(rrp);
  const now = nowSec();
  let best: RtPeer | undefined;
  let many = false;
  for (const peer of peers.peers) {
    if (rrp.tried[peer.index] || !peerUsable(peer, now)) continue;
    if (best === undefined || peer.conns * best.weight < best.conns * peer.weight) {
      best = peer;
      many = false;
    } else if (peer.conns * best.weight === best.conns * peer.weight) {
      many = true;
    }
  }
  if (best === undefined) return tryBackup(rrp, getLeastConnPeer);

  if (many) {
    let total = 0;
    const first = best;
    for (let i = first.index; i < peers.peers.length; i++) {
      const peer = peers.peers[i]!;
      if (rrp.tried[i] || peer.conns * first.weight !== first.conns * peer.weight) continue;
      if (!peerUsable(peer, now)) continue;
      peer.currentWeight += peer.effectiveWeight;
      total += peer.effectiveWeight;
      if (peer.effectiveWeight < peer.weight) peer.effectiveWeight++;
      if (peer.currentWeight > best.currentWeight) best = peer;
    }
    best.currentWeight -= total;
  }
  return takePeer(rrp, best, now);
}
