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
  const deadline = Date.now() + 40000;
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
  const loops = Array.from({ length: 8 }, (_, w) => load(w));
  const t0 = Date.now();
  await redisCli(
    ['--cluster', 'reshard', `127.0.0.1:${from.port}`, '--cluster-from', from.id, '--cluster-to', to.id, '--cluster-slots', '1000', '--cluster-yes'],
    40000,
  );
  const reshardMs = Date.now() - t0;
  stop = true;
  await Promise.all(loops);
  t.comment(`reshard took ${reshardMs} ms; ${reqs} requests during it, ${errors} errors, ${redirects} redirects seen by clients`);
  t.ok(reqs > 100, 'the load ran through the reshard');
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
