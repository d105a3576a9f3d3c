import t from 'tap';
import { startRedis2d } from './helpers/server.js';
import { httpGetter, pool, startCluster } from './helpers/redis_cluster.js';
import { keySlot } from '../lib/upstream/cluster/slot.js';

/*
 * redis_cluster when a primary dies: its replica is promoted by the
 * cluster (cluster-node-timeout 1000 ms here); redis2d follows within one
 * map refresh. Requests for the dead primary's slots fail as nginx fails
 * them (502 after redis2_next_upstream's tries) until then, never with a
 * -MOVED body; other slots are served throughout. Reports the error count
 * and the recovery time (kill → last failed request).
 */

const { get, agent } = httpGetter();
const N = 1000;
t.teardown(() => agent.destroy());

t.test('a primary killed under load: errors, recovery, no MOVED', async (t) => {
  const cluster = await startCluster(t);
  const seeds = cluster.ports.map((p) => `server 127.0.0.1:${p};`).join(' ');
  const srv = await startRedis2d(`
    upstream cl { redis_cluster; ${seeds} keepalive 16; }
    server {
      listen 127.0.0.1:{port};
      redis2_connect_timeout 1s;
      redis2_read_timeout 2s;
      location /set { redis2_query set $arg_k $arg_v; redis2_pass cl; }
      location /get { redis2_query get $arg_k; redis2_pass cl; }
      location /hr { set $redis_key $arg_k; redis_pass cl; redis_connect_timeout 1s; redis_read_timeout 2s; }
    }`);
  t.teardown(() => srv.stop());
  let bad = 0;
  await pool(N, 16, async (i) => {
    if ((await get(srv.port, `/set?k=f${i}&v=v${i}`)).body !== '+OK\r\n') bad++;
  });
  t.equal(bad, 0, 'keys set');
  // replication is asynchronous: wait until the replicas have every key
  await new Promise((r) => setTimeout(r, 500));

  const nodes = await cluster.nodes();
  const victim = nodes.find((n) => n.primary)!;
  const onVictim = (i: number): boolean => {
    const s = keySlot(Buffer.from(`f${i}`));
    return victim.slots.some(([a, b]) => s >= a && s <= b);
  };

  const statuses = new Map<number, number>();
  let moved = 0;
  let wrong = 0;
  let otherShardErrors = 0;
  let victimErrors = 0;
  let lastError = 0;
  let tKill = 0;
  let stop = false;
  const deadline = Date.now() + 9000;
  const load = async (w: number): Promise<void> => {
    let i = w * 131;
    while (!stop && Date.now() < deadline) {
      i = (i + 7) % N;
      const hr = i % 4 === 0;
      const r = await get(srv.port, hr ? `/hr?k=f${i}` : `/get?k=f${i}`).catch(() => ({ status: 0, body: '' }));
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (r.body.includes('MOVED') || r.body.includes('-ASK')) moved++;
      if (r.status === 200) {
        if (r.body !== (hr ? `v${i}` : `$${`v${i}`.length}\r\nv${i}\r\n`) && wrong++ === 0) t.comment(`first wrong: f${i} ${hr} ${JSON.stringify(r.body)} at ${Date.now() - tKill}`);
        continue;
      }
      if (onVictim(i)) victimErrors++;
      else if (otherShardErrors++ === 0) t.comment(`first other-shard error: f${i} ${hr} ${r.status} at ${Date.now() - tKill}`);
      lastError = Date.now();
    }
  };
  const loops = Array.from({ length: 6 }, (_, w) => load(w));
  await new Promise((r) => setTimeout(r, 1000));
  tKill = Date.now();
  await cluster.server(victim.port).kill();
  // the load goes on until the cluster has promoted the replica and redis2d served it for a while
  await cluster.waitOk(15000);
  const tOk = Date.now();
  await new Promise((r) => setTimeout(r, Math.max(0, Math.min(2000, deadline - Date.now()))));
  stop = true;
  await Promise.all(loops);
  const recovery = lastError > tKill ? lastError - tKill : 0;
  t.comment(
    `statuses ${JSON.stringify([...statuses])}; ${victimErrors} errors on the dead primary's slots, ${otherShardErrors} elsewhere; ` +
      `cluster ok ${tOk - tKill} ms after the kill; last failed request ${recovery} ms after the kill`,
  );
  t.equal(moved, 0, 'no -MOVED / -ASK body reached a client');
  t.equal(wrong, 0, 'every 200 carried the key\'s value');
  t.equal(otherShardErrors, 0, 'the other shards were served throughout');
  t.ok([...statuses.keys()].every((s) => s === 200 || s === 502 || s === 504), 'failures are nginx\'s 502 / 504');
  t.ok(lastError <= tOk + 1000, 'no failure later than one refresh after the cluster recovered');

  // after: every key readable from the promoted replica
  bad = 0;
  await pool(N, 16, async (i) => {
    const r = await get(srv.port, `/get?k=f${i}`);
    if (r.body !== `$${`v${i}`.length}\r\nv${i}\r\n`) bad++;
  });
  t.equal(bad, 0, 'every key read after the failover');
  t.match(srv.errorLog(), /connect\(\) failed \(111: Connection refused\) while connecting to upstream/, 'the failed tries are logged as nginx logs them');
});
