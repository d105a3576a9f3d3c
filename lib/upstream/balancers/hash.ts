import { crc32 } from 'node:zlib';
import type { UpstreamSrvConf } from '../module.js';
import { getRoundRobinPeer, pickByWeight, takePeer, type RrPeerData } from './round_robin.js';
import { nowSec, peerUsable, type RtPeer, type RtPeers } from '../peer_state.js';

/*
 * nginx's `hash KEY` and `hash KEY consistent`
 * (ngx_http_upstream_hash_module.c), so that a key lands on the same Redis
 * server as under nginx.
 *
 * hash: ((crc32([REHASH] KEY) >> 16) & 0x7fff) summed over attempts,
 * modulo the total weight, walked through the weights; a dead or tried
 * peer rehashes with the attempt number prefixed, up to 20 times, then
 * round robin takes over.
 *
 * consistent: a ketama ring of 160 points per weight unit for each peer,
 * point j = crc32(HOST "\0" PORT prev) where prev is the previous point's
 * value as 4 little-endian bytes (0 for the first); sorted, duplicates
 * dropped. A key goes to the first point >= crc32(KEY); a dead server moves
 * on to the next point, up to 20 times.
 */

/** Per-request state of both hash methods (ngx_http_upstream_hash_peer_data_t). */
export interface HashState {
  key: Buffer;
  tries: number;
  rehash: number;
  /** hash: the running sum; consistent: the ring position */
  hash: number;
}

export function getHashPeer(rrp: RrPeerData, hp: HashState): RtPeer | undefined {
  const peers = rrp.peers;
  if (hp.tries > 20 || peers.single || hp.key.length === 0) return getRoundRobinPeer(rrp);
  const now = nowSec();
  for (;;) {
    let h = hp.rehash > 0 ? crc32(String(hp.rehash)) : 0;
    h = crc32(hp.key, h);
    // ngx_uint_t arithmetic: the sum stays far below 2^53
    hp.hash += (h >>> 16) & 0x7fff;
    hp.rehash++;

    const p = pickByWeight(peers, hp.hash % peers.totalWeight);
    const peer = peers.peers[p]!;
    if (!rrp.tried[p] && peerUsable(peer, now)) return takePeer(rrp, peer, now);
    if (++hp.tries > 20) return getRoundRobinPeer(rrp);
  }
}

/** One point of the ring: its hash and the `server` text it belongs to. */
export interface Ring {
  hashes: Uint32Array;
  servers: string[];
}

const rings = new WeakMap<UpstreamSrvConf, Ring>();

/** HOST and PORT of a `server` text as ngx_http_upstream_init_chash splits it. */
function hostPort(server: Buffer): [Buffer, Buffer] {
  if (server.length >= 5 && server.toString('latin1', 0, 5).toLowerCase() === 'unix:') {
    return [server.subarray(5), server.subarray(0, 0)];
  }
  for (let j = 0; j < server.length; j++) {
    const c = server[server.length - j - 1]!;
    if (c === 0x3a) return [server.subarray(0, server.length - j - 1), server.subarray(server.length - j)];
    if (c < 0x30 || c > 0x39) break;
  }
  return [server, server.subarray(0, 0)];
}

/** ngx_http_upstream_init_chash: the ring of the primary peers. */
function buildRing(peers: RtPeers): Ring {
  const pts: Array<[number, string]> = [];
  const prev = Buffer.alloc(4);
  const zero = Buffer.alloc(1);
  for (const peer of peers.peers) {
    const [host, port] = hostPort(Buffer.from(peer.server, 'latin1'));
    const base = crc32(port, crc32(zero, crc32(host)));
    prev.writeUInt32LE(0, 0);
    const n = peer.weight * 160;
    for (let j = 0; j < n; j++) {
      const h = crc32(prev, base);
      pts.push([h, peer.server]);
      prev.writeUInt32LE(h, 0);
    }
  }
  // ngx_qsort is not stable, but equal hashes collapse to the first kept one
  // below; which server wins a tie then depends on qsort's order. Ties are
  // 1 in ~2^32/points: we keep the earliest peer, as glibc's merge sort does.
  pts.sort((a, b) => a[0] - b[0]);
  const hashes: number[] = [];
  const servers: string[] = [];
  for (const [h, s] of pts) {
    if (hashes.length && hashes[hashes.length - 1] === h) continue;
    hashes.push(h);
    servers.push(s);
  }
  return { hashes: Uint32Array.from(hashes), servers };
}

export function ringOf(us: UpstreamSrvConf, peers: RtPeers): Ring {
  let ring = rings.get(us);
  if (!ring) {
    ring = buildRing(peers);
    rings.set(us, ring);
  }
  return ring;
}

/** ngx_http_upstream_find_chash_point: the first point >= hash. */
export function findChashPoint(ring: Ring, hash: number): number {
  const p = ring.hashes;
  let i = 0;
  let j = p.length;
  while (i < j) {
    const k = (i + j) >>> 1;
    if (hash > p[k]!) i = k + 1;
    else if (hash < p[k]!) j = k;
    else return k;
  }
  return i;
}

/** ngx_http_upstream_init_chash_peer's starting point for a key. */
export function chashStart(ring: Ring, key: Buffer): number {
  return findChashPoint(ring, crc32(key));
}

export function getChashPeer(rrp: RrPeerData, hp: HashState, ring: Ring): RtPeer | undefined {
  const peers = rrp.peers;
  if (hp.tries > 20 || peers.single || hp.key.length === 0) return getRoundRobinPeer(rrp);
  const now = nowSec();
  for (;;) {
    const server = ring.servers[hp.hash % ring.hashes.length]!;
    // several peers share a server (a name with several addresses): weighted round robin among them
    let best: RtPeer | undefined;
    let total = 0;
    for (const peer of peers.peers) {
      if (rrp.tried[peer.index] || !peerUsable(peer, now) || peer.server !== server) continue;
      peer.currentWeight += peer.effectiveWeight;
      total += peer.effectiveWeight;
      if (peer.effectiveWeight < peer.weight) peer.effectiveWeight++;
      if (best === undefined || peer.currentWeight > best.currentWeight) best = peer;
    }
    if (best) {
      best.currentWeight -= total;
      return takePeer(rrp, best, now);
    }
    hp.hash++;
    hp.tries++;
    if (hp.tries > 20) return getRoundRobinPeer(rrp);
  }
}
