import t from 'tap';
import { startRedis2d } from './helpers/server.js';
import { httpGetter, pool, redisCli, startCluster } from './helpers/redis_cluster.js';
import { keySlot } from '../lib/upstream/cluster/slot.js';

/*
 * redis_cluster during a live reshard: 1,000 slots moved from one primary
 * to another with `redis-cli --cluster reshard` while a bounded load loop
 * reads and writes keys through redis2d (pipelined and exclusive
 * locations). -MOVED and -ASK are followed inside redis2d: no client sees
 * one, and every read returns its value.
 */

const { get, agent } = httpGetter();
const N = 2000;

t.teardown(() => agent.destroy());

t.test('live reshard of 1,000 slots under load', async (t) => {
  const cluster = await startCluster(t);
  const seeds = cluster.ports.map((p) => `server 127.0.0.1:${p};`).join(' ');
  const srv = await startRedis2d(`
    upstream cl { redis_cluster; ${seeds} keepalive 32; }
    server {
      listen 127.0.0.1:{port};
      location /set { redis2_query set $arg_k $arg_v; redis2_pass cl; }
      location /get { redis2_query get $arg_k; redis2_pass cl; }
      location /xget { redis2d_pipeline off; redis2_query get $arg_k; redis2_pass cl; }
    }`);
  t.teardown(() => srv.stop());

  let bad = 0;
  await pool(N, 16, async (i) => {
    const r = await get(srv.port, `/set?k=k${i}&v=v${i}`);
    if (r.body !== '+OK\r\n') bad++;
  });
  t.equal(bad, 0, 'keys set');

  const nodes = await cluster.nodes();
  const prim = nodes.filter((n) => n.primary);
  const from = prim[0]!;
  const to = prim[1]!;
  const owned = (slots: Array<[number, number]>): number => slots.reduce((a, [x, y]) => a + y - x + 1, 0);

  let stop = false;
  let reqs = 0;
  let errors = 0;
  let redirects = 0;
  let firstError = '';
  // the load is bounded to 9 s (longer loops belong under the heavy lock); the reshard goes on after it
  const deadline = Date.now() + 9000;
  const load = async (w: number): Promise<void> => {
    let i = w * 97;
    while (!stop && Date.now() < deadline) {
      i = (i + 13) % N;
      const path = i % 3 === 0 ? `/set?k=k${i}&v=v${i}` : i % 3 === 1 ? `/get?k=k${i}` : `/xget?k=k${i}`;
      const want = i % 3 === 0 ? '+OK\r\n' : `$${`v${i}`.length}\r\nv${i}\r\n`;
      const r = await get(srv.port, path).catch((e: Error) => ({ status: 0, body: e.message }));
      reqs++;
      if (r.body.startsWith('-MOVED') || r.body.startsWith('-ASK')) redirects++;
      if (r.status !== 200 || r.body !== want) {
        if (errors++ === 0) firstError = `${path}: ${r.status} ${JSON.stringify(r.body)}`;
      }
    }
  };
  const loops = Array.from({ length: 6 }, (_, w) => load(w));
  const t0 = Date.now();
  await redisCli(
    ['--cluster', 'reshard', `127.0.0.1:${from.port}`, '--cluster-from', from.id, '--cluster-to', to.id, '--cluster-slots', '1000', '--cluster-yes'],
    40000,
  );
  const reshardMs = Date.now() - t0;
  const loadCovered = Date.now() < deadline;
  stop = true;
  await Promise.all(loops);
  t.comment(`reshard took ${reshardMs} ms (load ${loadCovered ? 'through all of it' : 'through its first 9 s'}); ${reqs} requests, ${errors} errors, ${redirects} redirects seen by clients`);
  t.ok(reqs > 100, 'the load ran through the reshard');
  // redis2d met the redirects and followed them: Redis counts the -MOVED / -ASK it sent, and the ASKINGs
  let movedSent = 0;
  let askSent = 0;
  let asking = 0;
  for (const p of cluster.ports) {
    const errs = await redisCli(['-p', String(p), 'INFO', 'errorstats']);
    movedSent += Number(/errorstat_MOVED:count=(\d+)/.exec(errs)?.[1] ?? 0);
    askSent += Number(/errorstat_ASK:count=(\d+)/.exec(errs)?.[1] ?? 0);
    const cmds = await redisCli(['-p', String(p), 'INFO', 'commandstats']);
    asking += Number(/cmdstat_asking:calls=(\d+)/.exec(cmds)?.[1] ?? 0);
  }
  t.comment(`Redis sent ${movedSent} -MOVED and ${askSent} -ASK; redis2d sent ${asking} ASKING`);
  t.ok(movedSent > 0, 'the load met -MOVED replies (and none reached a client)');
  t.equal(asking, askSent, 'every -ASK was followed with ASKING');
  t.equal(redirects, 0, 'no -MOVED / -ASK reached a client');
  t.equal(errors, 0, `every request answered as expected${firstError ? ` (first: ${firstError})` : ''}`);

  await cluster.waitOk();
  const after = await cluster.nodes();
  const to2 = after.find((n) => n.id === to.id)!;
  t.equal(owned(to2.slots), owned(to.slots) + 1000, '1,000 slots moved');

  // every key readable after, and stored on the node that owns its slot
  bad = 0;
  await pool(N, 16, async (i) => {
    const r = await get(srv.port, `/get?k=k${i}`);
    if (r.body !== `$${`v${i}`.length}\r\nv${i}\r\n`) bad++;
  });
  t.equal(bad, 0, 'every key read after the reshard');
  for (const p of after.filter((n) => n.primary)) {
    const size = Number((await redisCli(['-p', String(p.port), 'DBSIZE'])).trim());
    let mine = 0;
    for (let i = 0; i < N; i++) {
      const s = keySlot(Buffer.from(`k${i}`));
      if (p.slots.some(([a, b]) => s >= a && s <= b)) mine++;
    }
    t.equal(size, mine, `node ${p.port} holds exactly the keys of its slots`);
  }
});

t.test('a slot half migrated: -ASK followed with ASKING, then -MOVED once it is moved', async (t) => {
  const cluster = await startCluster(t);
  const seeds = cluster.ports.map((p) => `server 127.0.0.1:${p};`).join(' ');
  const srv = await startRedis2d(`
    upstream cl { redis_cluster; ${seeds} keepalive 8; }
    server {
      listen 127.0.0.1:{port};
      location /set { redis2_query set $arg_k $arg_v; redis2_pass cl; }
      location /get { redis2_query get $arg_k; redis2_pass cl; add_header X-Up "$upstream_addr / $upstream_status"; }
      location /hr { set $redis_key $arg_k; redis_pass cl; }
      location /two { redis2_query get $arg_a; redis2_query get $arg_b; redis2_pass cl; }
      location /tworaw { redis2_raw_queries 2 "get $arg_a\r\nget $arg_b\r\n"; redis2_pass cl; }
    }`);
  t.teardown(() => srv.stop());
  const slot = keySlot(Buffer.from('ask:1'));
  t.same(await get(srv.port, '/set?k=ask:1&v=one'), { status: 200, body: '+OK\r\n' });
  const nodes = await cluster.nodes();
  const src = nodes.find((n) => n.primary && n.slots.some(([a, b]) => slot >= a && slot <= b))!;
  const dst = nodes.find((n) => n.primary && n !== src)!;
  const cli = (port: number, ...args: string[]): Promise<string> => redisCli(['-p', String(port), ...args]);
  await cli(dst.port, 'CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', src.id);
  await cli(src.port, 'CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', dst.id);
  t.match(await cli(src.port, 'MIGRATE', '127.0.0.1', String(dst.port), 'ask:1', '0', '5000'), /OK/);

  t.same(
    await get(srv.port, '/get?k=ask:1'),
    { status: 200, body: '$3\r\none\r\n', up: `127.0.0.1:${src.port}, 127.0.0.1:${dst.port} / 200, 200` },
    'a migrated key: -ASK followed; both tries in $upstream_addr',
  );
  t.same(await get(srv.port, '/hr?k=ask:1'), { status: 200, body: 'one' }, 'redis_pass follows -ASK too');
  t.same(await get(srv.port, '/set?k={ask:1}.new&v=two'), { status: 200, body: '+OK\r\n' }, 'a new key of the migrating slot: created on the target');
  // (the importing node answers other clients' commands on the slot with -MOVED: count the slot's keys instead)
  t.equal((await cli(dst.port, 'CLUSTER', 'COUNTKEYSINSLOT', String(slot))).trim(), '2', 'the new key is on the target');
  const asking = /cmdstat_asking:calls=(\d+)/.exec(await cli(dst.port, 'INFO', 'commandstats'))?.[1];
  t.equal(Number(asking), 3, 'three ASKINGs sent to the target');
  // several commands after -ASK: ASKING before each (it covers one command), their replies dropped
  t.same(await get(srv.port, '/two?a=ask:1&b={ask:1}.new'), { status: 200, body: '$3\r\none\r\n$3\r\ntwo\r\n' }, 'two queries of a migrating slot');
  t.same(await get(srv.port, '/tworaw?a=ask:1&b={ask:1}.new'), { status: 200, body: '$3\r\none\r\n$3\r\ntwo\r\n' }, 'two raw inline queries of a migrating slot');

  // the migration ends: every node learns the new owner; the next request meets -MOVED
  for (const n of nodes.filter((x) => x.primary)) await cli(n.port, 'CLUSTER', 'SETSLOT', String(slot), 'NODE', dst.id);
  const after = await get(srv.port, '/get?k=ask:1');
  t.same({ status: after.status, body: after.body }, { status: 200, body: '$3\r\none\r\n' }, 'after the move: -MOVED followed');
  const neu = await get(srv.port, '/get?k={ask:1}.new');
  t.same({ status: neu.status, body: neu.body }, { status: 200, body: '$3\r\ntwo\r\n' });
  t.notMatch(srv.errorLog(), /\[(error|crit|alert)\]/);
});
