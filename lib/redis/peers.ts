import type { UpstreamSrvConf } from '../modules/upstream.js';
import type { RedisPeer } from './upstream_request.js';

/*
 * The peers one request may try, in order. For now: every live primary
 * peer in configuration order, then the backup peers (nginx's round robin
 * with equal weights and nothing failed yet starts at the first peer).
 * The real balancers (weights, hash, max_fails) replace this seam later.
 */

export type PeerTry = RedisPeer;

export function peerTries(us: UpstreamSrvConf): PeerTry[] {
  const out: PeerTry[] = [];
  for (const set of [us.peers, us.backup]) {
    if (!set) continue;
    for (const p of set.peers) {
      if (p.down) continue;
      const a = p.addr;
      out.push(a.family === 'unix' ? { name: a.name, path: a.host } : { name: a.name, host: a.host, port: a.port });
    }
  }
  return out;
}
