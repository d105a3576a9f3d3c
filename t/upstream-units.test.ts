import t from 'tap';
import { stateTag } from '../lib/modules/redis2/conn_state.js';
import { encodeCommands } from '../lib/modules/redis2/resp.js';
import { RrPeerData, freeRoundRobinPeer, getRoundRobinPeer } from '../lib/upstream/balancers/round_robin.js';
import { getLeastConnPeer } from '../lib/upstream/balancers/least_conn.js';
import { getRandom2Peer, getRandomPeer } from '../lib/upstream/balancers/random.js';
import { ipHashAddr } from '../lib/upstream/balancers/ip_hash.js';
import { peersOf, type RtPeers } from '../lib/upstream/peer_state.js';
import type { UpstreamPeers, UpstreamSrvConf } from '../lib/upstream/module.js';

/*
 * The pieces under the upstream runtime, without servers: the state tag of
 * queries (beyond nginx), failure accounting of round robin, least_conn and
 * random choices, ip_hash's address bytes.
 */

t.test('stateTag: state commands of RESP and inline queries', async (t) => {
  const resp = (...cmds: string[][]): Buffer => encodeCommands(cmds);
  t.equal(stateTag(resp(['get', 'k'])), '', 'plain query: no tag');
  t.equal(stateTag(resp(['get', 'select'])), '', 'select as an argument is not a command');
  t.equal(stateTag(resp(['selected'])), '');
  const sel = resp(['SeLeCt', '5']).toString('latin1');
  t.equal(stateTag(resp(['SeLeCt', '5'], ['get', 'k'])), sel, 'the SELECT command bytes');
  t.equal(stateTag(resp(['auth', 'pw'], ['get', 'k'], ['multi'])), resp(['auth', 'pw']).toString('latin1') + resp(['multi']).toString('latin1'));
  t.equal(stateTag(resp(['client', 'reply', 'off'])), resp(['client', 'reply', 'off']).toString('latin1'));
  t.equal(stateTag(Buffer.from('SELECT 6\r\nset k six\r\n', 'latin1')), 'SELECT 6\r\n', 'inline');
  t.equal(stateTag(Buffer.from('  select 6\nget k\n', 'latin1')), '  select 6\n', 'inline, LF only, leading blanks');
  t.equal(stateTag(Buffer.from('get k\r\nping\r\n', 'latin1')), '', 'inline without state');
  t.equal(stateTag(Buffer.from('*2\r\n$6\r\nselect\r\n$1\r\n5\r\n*1\r\n$4\r\nping\r\n', 'latin1')), '*2\r\n$6\r\nselect\r\n$1\r\n5\r\n', 'raw RESP');
  const broken = '*2\r\n$6\r\nselect\r\n$9\r\n5\r\n';
  t.equal(stateTag(Buffer.from(broken, 'latin1')), broken, 'unreadable: the whole query');
  t.equal(stateTag(Buffer.from('"select" 5\r\n', 'latin1')), '"select" 5\r\n', 'quoted inline: the whole query');
});

function upstream(weights: number[], opts: { maxFails?: number; failTimeout?: number; backup?: number } = {}): UpstreamSrvConf {
  const set = (ws: number[], base: number): UpstreamPeers => ({
    peers: ws.map((w, i) => ({
      addr: { family: 'inet', host: '127.0.0.1', port: base + i, name: `127.0.0.1:${base + i}` },
      server: `127.0.0.1:${base + i}`,
      weight: w,
      maxConns: 0,
      maxFails: opts.maxFails ?? 1,
      failTimeout: opts.failTimeout ?? 10,
      down: false,
    })),
    totalWeight: ws.reduce((a, b) => a + b, 0),
    weighted: ws.some((w) => w !== 1),
    tries: ws.length,
    single: ws.length === 1 && !opts.backup,
  });
  return {
    host: 'up',
    peers: set(weights, 1000),
    backup: opts.backup ? set([1], 2000) : undefined,
  } as unknown as UpstreamSrvConf;
}

t.test('round robin failure accounting (max_fails=2)', async (t) => {
  const peers: RtPeers = peersOf(upstream([1, 1], { maxFails: 2 }));
  const pick = (): string => {
    const rrp = new RrPeerData(peers);
    const p = getRoundRobinPeer(rrp)!;
    freeRoundRobinPeer(rrp, false);
    return p.name.slice(-1);
  };
  t.equal([pick(), pick(), pick(), pick()].join(''), '0101');
  // fail peer 0 on the next request that picks it; report whether that disabled it
  const p0 = peers.peers[0]!;
  const failOnP0 = (): boolean => {
    for (let i = 0; i < 4; i++) {
      const rrp = new RrPeerData(peers);
      if (getRoundRobinPeer(rrp) !== p0) {
        freeRoundRobinPeer(rrp, false);
        continue;
      }
      const disabled = freeRoundRobinPeer(rrp, true);
      t.equal(rrp.tries, 1, 'tries counted down');
      t.equal(getRoundRobinPeer(rrp)!.name, '127.0.0.1:1001', 'the next try goes to the untried peer');
      freeRoundRobinPeer(rrp, false);
      return disabled;
    }
    throw new Error('peer 0 never picked');
  };
  t.equal(failOnP0(), false, 'not disabled after one failure (max_fails=2)');
  t.equal(failOnP0(), true, 'the second failure disables it');
  for (let i = 0; i < 3; i++) {
    const r = new RrPeerData(peers);
    t.equal(getRoundRobinPeer(r)!.name, '127.0.0.1:1001', `disabled peer skipped (${i})`);
    freeRoundRobinPeer(r, false);
  }
  // after fail_timeout: one trial, and a success clears the failures
  p0.checked -= 11;
  p0.accessed -= 11;
  let trial = '';
  for (let i = 0; i < 4 && !trial; i++) {
    const r = new RrPeerData(peers);
    const p = getRoundRobinPeer(r)!;
    if (p === p0) trial = 'yes';
    freeRoundRobinPeer(r, false);
  }
  t.equal(trial, 'yes', 'the peer gets its trial');
  t.equal(p0.fails, 0, 'and the success made it live again');
});

t.test('backup set: used only when every primary is out, and tries cover both sets', async (t) => {
  const peers = peersOf(upstream([1, 1], { backup: 1 }));
  const rrp = new RrPeerData(peers);
  t.equal(rrp.tries, 3);
  const names: string[] = [];
  for (let p = getRoundRobinPeer(rrp); p; p = rrp.tries ? getRoundRobinPeer(rrp) : undefined) {
    names.push(p.name);
    freeRoundRobinPeer(rrp, true);
  }
  t.same(names, ['127.0.0.1:1000', '127.0.0.1:1001', '127.0.0.1:2000']);
  t.equal(getRoundRobinPeer(new RrPeerData(peers)), undefined, 'everything disabled: no live upstreams');
});

t.test('least_conn and random two prefer fewer connections; random only draws live peers', async (t) => {
  const peers = peersOf(upstream([1, 1, 1]));
  peers.peers[0]!.conns = 3;
  peers.peers[1]!.conns = 1;
  peers.peers[2]!.conns = 2;
  t.equal(getLeastConnPeer(new RrPeerData(peers))!.name, '127.0.0.1:1001');
  peers.peers[1]!.conns = 5;
  const counts = [0, 0, 0];
  for (let i = 0; i < 300; i++) {
    const p = getRandom2Peer(new RrPeerData(peers), { tries: 0 })!;
    counts[p.index]!++;
    p.conns--;
  }
  t.equal(counts[1], 0, 'random two never keeps the busiest of two when the other is idler');
  const dead = peersOf(upstream([1, 2, 1]));
  dead.peers[1]!.fails = 1;
  dead.peers[1]!.checked = Math.floor(Date.now() / 1000);
  const seen = new Set<number>();
  for (let i = 0; i < 300; i++) seen.add(getRandomPeer(new RrPeerData(dead), { tries: 0 })!.index);
  t.same([...seen].sort(), [0, 2], 'the failed peer is never drawn');
});

t.test('a `down` peer is never chosen and does not count as a try', async (t) => {
  const us = upstream([1, 1, 1]);
  us.peers!.peers[1]!.down = true;
  us.peers!.tries = 2;
  const peers = peersOf(us);
  const names = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const rrp = new RrPeerData(peers);
    t.equal(rrp.tries, 2);
    names.add(getRoundRobinPeer(rrp)!.name);
    freeRoundRobinPeer(rrp, false);
  }
  t.same([...names].sort(), ['127.0.0.1:1000', '127.0.0.1:1002']);
});

t.test('ip_hash address bytes', async (t) => {
  t.same([...ipHashAddr('10.1.2.3')], [10, 1, 2]);
  t.same([...ipHashAddr('::1')], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  t.same([...ipHashAddr('2001:db8::ff00:42:8329')], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0x00, 0x00, 0x42, 0x83, 0x29]);
  t.same([...ipHashAddr('::ffff:1.2.3.4')].slice(10), [0xff, 0xff, 1, 2, 3, 4]);
  t.same([...ipHashAddr('unix:')], [0, 0, 0], 'not an IP: three zero bytes');
});
