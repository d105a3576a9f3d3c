import { nowSec, peerUsable, type RtPeer, type RtPeers } from '../peer_state.js';

/*
 * nginx's round robin (ngx_http_upstream_round_robin.c), which every other
 * method falls back to: the smooth weighted choice (each live peer gains
 * its effective weight, the richest wins and pays the total), the `tried`
 * set of one request, the switch to the backup set when no primary is
 * left, and the failure accounting when a try ends.
 */

const NO_TRIED = new Uint8Array(1);

/** ngx_http_upstream_rr_peer_data_t: one request's view of the peers. */
export class RrPeerData {
  /** the set being tried: the primary one, then the backup one */
  peers: RtPeers;
  current: RtPeer | undefined;
  tried: Uint8Array;
  /** attempts left (nginx's pc->tries): live primaries + live backups */
  tries: number;

  constructor(peers: RtPeers) {
    this.peers = peers;
    this.current = undefined;
    // one peer and no backup set: `tried` is never read or written (nginx's single path)
    this.tried = peers.single ? NO_TRIED : new Uint8Array(Math.max(peers.peers.length, peers.next ? peers.next.peers.length : 0));
    this.tries = peers.tries + (peers.next ? peers.next.tries : 0);
  }
}

/** ngx_http_upstream_get_peer: the smooth weighted choice among untried live peers. */
function getPeer(rrp: RrPeerData): RtPeer | undefined {
  const now = nowSec();
  let best: RtPeer | undefined;
  let total = 0;
  for (const peer of rrp.peers.peers) {
    if (rrp.tried[peer.index] || !peerUsable(peer, now)) continue;
    peer.currentWeight += peer.effectiveWeight;
    total += peer.effectiveWeight;
    if (peer.effectiveWeight < peer.weight) peer.effectiveWeight++;
    if (best === undefined || peer.currentWeight > best.currentWeight) best = peer;
  }
  if (best === undefined) return undefined;
  rrp.current = best;
  rrp.tried[best.index] = 1;
  best.currentWeight -= total;
  if (now - best.checked > best.failTimeout) best.checked = now;
  return best;
}

/**
 * The backup switch every method shares: forget what was tried and run
 * `get` on the backup set. undefined = NGX_BUSY (no live upstreams).
 */
export function tryBackup(rrp: RrPeerData, get: (rrp: RrPeerData) => RtPeer | undefined): RtPeer | undefined {
  const next = rrp.peers.next;
  if (!next) return undefined;
  rrp.peers = next;
  rrp.tried.fill(0);
  return get(rrp);
}

/** ngx_http_upstream_get_round_robin_peer; undefined = no live upstreams. */
export function getRoundRobinPeer(rrp: RrPeerData): RtPeer | undefined {
  const peers = rrp.peers;
  let peer: RtPeer | undefined;
  if (peers.single) {
    const p = peers.peers[0]!;
    if (!p.down && !(p.conf.maxConns && p.conns >= p.conf.maxConns)) peer = p;
    if (peer) rrp.current = peer;
  } else {
    peer = getPeer(rrp);
  }
  if (peer) {
    peer.conns++;
    return peer;
  }
  return tryBackup(rrp, getRoundRobinPeer);
}

/**
 * ngx_http_upstream_free_round_robin_peer: the try on rrp.current ended;
 * `failed` is NGX_PEER_FAILED (the request goes through next-upstream).
 * Returns true when this failure disabled the peer (nginx warns then).
 */
export function freeRoundRobinPeer(rrp: RrPeerData, failed: boolean): boolean {
  const peer = rrp.current;
  if (!peer) return false;
  rrp.current = undefined;
  peer.conns--;
  if (rrp.peers.single) {
    rrp.tries = 0;
    return false;
  }
  let disabled = false;
  if (failed) {
    const now = nowSec();
    peer.fails++;
    peer.accessed = now;
    peer.checked = now;
    if (peer.maxFails) {
      peer.effectiveWeight -= Math.floor(peer.weight / peer.maxFails);
      if (peer.fails >= peer.maxFails) disabled = true;
    }
    if (peer.effectiveWeight < 0) peer.effectiveWeight = 0;
  } else if (peer.accessed < peer.checked) {
    // the trial after fail_timeout passed: the peer is live again
    peer.fails = 0;
  }
  if (rrp.tries) rrp.tries--;
  return disabled;
}

/**
 * the bookkeeping every balancer does on the peer it hands out (nginx
 * repeats it in each module): it becomes current, is counted and tried,
 * and its fail_timeout window restarts if it has run out
 */
export function takePeer(rrp: RrPeerData, peer: RtPeer, now: number): RtPeer {
  rrp.current = peer;
  if (now - peer.checked > peer.failTimeout) peer.checked = now;
  peer.conns++;
  rrp.tried[peer.index] = 1;
  return peer;
}

/** the index of the peer a point `w` in [0, totalWeight) falls on, peers laid end to end by weight */
export function pickByWeight(peers: RtPeers, w: number): number {
  const list = peers.peers;
  let p = 0;
  while (w >= list[p]!.weight) {
    w -= list[p]!.weight;
    p++;
  }
  return p;
}
