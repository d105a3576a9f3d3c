import t from 'tap';
import { startRedis2d, type Running } from './helpers/server.js';
import { httpGetter, pool, startCluster, redisCli, type RedisCluster } from './helpers/redis_cluster.js';
import { keySlot } from '../lib/upstream/cluster/slot.js';

/*
 * redis_cluster (docs/behaviour.md §cluster): a real 3 primaries + 3
 * replicas cluster; 10,000 keys set and read through redis2d, each on the
 * node owning its slot, no -MOVED reaching a client; hash tags, CROSSSLOT,
 * raw queries routed by their parsed commands, read_replicas.
 */

const { get, agent } = httpGetter();

let cluster: RedisCluster;
let srv: Running;

t.before(async () => {
  cluster = await startCluster(t);
  const seeds = cluster.ports.map((p) => `server 127.0.0.1:${p};`).join(' ');
  srv = await startRedis2d(`
    upstream cl { redis_cluster; ${seeds} keepalive 32; }
    upstream clr { redis_cluster read_replicas; ${seeds} keepalive 32; }
    upstream one { redis_cluster; server 127.0.0.1:${cluster.ports[0]}; }
    server {
      listen 127.0.0.1:{port};
      location /set { redis2_query set $arg_k $arg_v; redis2_pass cl; }
      location /get { redis2_query get $arg_k; redis2_pass cl; }
      location /get1 { redis2_query get $arg_k; redis2_pass one; }
      location /mget { redis2_query mget $arg_a $arg_b; redis2_pass cl; }
      location /two { redis2_query get $arg_a; redis2_query get $arg_b; redis2_pass cl; }
      location /raw { redis2_raw_queries 2 "get $arg_a\\r\\n*2\\r\\n$3\\r\\nget\\r\\n$1\\r\\nb\\r\\n"; redis2_pass cl; }
      location /ping { redis2_query ping; redis2_pass cl; }
      location /ro { redis2_query get $arg_k; redis2_pass clr; add_header X-Up $upstream_addr; }
      location /rw { redis2_query incr $arg_k; redis2_pass clr; }
      location /hr { set $redis_key $arg_k; redis_pass cl; }
      location /jmget { redis2d_output json; redis2_query mget $arg_a $arg_b; redis2_pass cl; }
      location /jtwo { redis2d_output json; redis2_query get $arg_a; redis2_query get $arg_b; redis2_pass cl; }
      location /hro { set $redis_key $arg_k; redis_pass clr; }
    }`);
});
t.teardown(async () => {
  agent.destroy();
  await srv?.stop();
});

t.test('10,000 keys set and read; each on the node owning its slot; no MOVED', async (t) => {
  const N = 10000;
  let bad = 0;
  let moved = 0;
  await pool(N, 16, async (i) => {
    const r = await get(srv.port, `/set?k=key:${i}&v=val${i}`);
    if (r.status !== 200 || r.body !== '+OK\r\n') bad++;
    if (r.body.includes('MOVED') || r.body.includes('ASK')) moved++;
  });
  t.equal(bad, 0, 'every SET answered +OK');
  await pool(N, 16, async (i) => {
    const r = await get(srv.port, `/get?k=key:${i}`);
    const want = `$${`val${i}`.length}\r\nval${i}\r\n`;
    if (r.status !== 200 || r.body !== want) bad++;
    if (r.body.includes('MOVED') || r.body.includes('ASK')) moved++;
  });
  t.equal(bad, 0, 'every GET read its value');
  t.equal(moved, 0, 'no -MOVED or -ASK reached a client');

  const nodes = await cluster.nodes();
  const primaries = nodes.filter((n) => n.primary);
  t.equal(primaries.length, 3);
  let total = 0;
  for (const p of primaries) {
    const size = Number((await redisCli(['-p', String(p.port), 'DBSIZE'])).trim());
    // the keys this node must hold: those whose slot it owns
    let mine = 0;
    for (let i = 0; i < N; i++) {
      const s = keySlot(Buffer.from(`key:${i}`));
      if (p.slots.some(([a, b]) => s >= a && s <= b)) mine++;
    }
    t.equal(size, mine, `node ${p.port} holds exactly the keys of its slots`);
    total += size;
  }
  t.equal(total, N, 'all keys stored once');
  // our slot function agrees with Redis's CLUSTER KEYSLOT
  for (const i of [0, 1, 17, 999, 4242, 9999]) {
    const k = `key:${i}`;
    const rs = Number((await redisCli(['-p', String(cluster.ports[0]), 'CLUSTER', 'KEYSLOT', k])).trim());
    t.equal(keySlot(Buffer.from(k)), rs, `slot of ${k}`);
  }
});

t.test('one seed: the map is read from it, every key still found', async (t) => {
  let bad = 0;
  for (let i = 0; i < 300; i++) {
    const r = await get(srv.port, `/get1?k=key:${i}`);
    if (r.body !== `$${`val${i}`.length}\r\nval${i}\r\n`) bad++;
  }
  t.equal(bad, 0);
});

t.test('hash tags, CROSSSLOT, several queries, raw queries', async (t) => {
  await get(srv.port, '/set?k={u1}.a&v=A');
  await get(srv.port, '/set?k={u1}.b&v=B');
  await get(srv.port, '/set?k=b&v=BB');
  t.same(await get(srv.port, '/mget?a={u1}.a&b={u1}.b'), { status: 200, body: '*2\r\n$1\r\nA\r\n$1\r\nB\r\n' }, 'hash tag keeps MGET on one slot');
  const cross = "-CROSSSLOT Keys in request don't hash to the same slot\r\n";
  t.same(await get(srv.port, '/mget?a=key:1&b=key:2'), { status: 200, body: cross }, 'MGET over two slots: Redis\'s -CROSSSLOT');
  t.same(await get(srv.port, '/two?a=key:1&b=key:2'), { status: 200, body: cross + cross }, 'two queries over two slots: one -CROSSSLOT per reply');
  t.same(await get(srv.port, '/two?a={u1}.a&b={u1}.b'), { status: 200, body: '$1\r\nA\r\n$1\r\nB\r\n' });
  // raw: an inline GET and a RESP GET of `b`; a is in b's slot only if tagged so: use b itself
  t.same(await get(srv.port, '/raw?a=b'), { status: 200, body: '$2\r\nBB\r\n$2\r\nBB\r\n' }, 'raw queries routed by their parsed commands');
  t.same(await get(srv.port, '/raw?a=key:1'), { status: 200, body: cross + cross });
  t.same(await get(srv.port, '/ping'), { status: 200, body: '+PONG\r\n' }, 'a keyless command goes to any primary');
  t.same(await get(srv.port, '/jmget?a={u1}.a&b={u1}.b'), { status: 200, body: '[["A","B"]]' }, 'JSON output over the cluster');
  t.same(
    await get(srv.port, '/jtwo?a=key:1&b=key:2'),
    { status: 200, body: '[{"error":"CROSSSLOT Keys in request don\'t hash to the same slot"},{"error":"CROSSSLOT Keys in request don\'t hash to the same slot"}]' },
    '-CROSSSLOT as JSON',
  );
});

t.test('redis_pass (HttpRedis) over the cluster', async (t) => {
  let bad = 0;
  for (let i = 0; i < 500; i++) {
    const r = await get(srv.port, `/hr?k=key:${i}`);
    if (r.status !== 200 || r.body !== `val${i}`) {
      if (bad++ === 0) t.comment(`key:${i}: ${r.status} ${JSON.stringify(r.body)} ${r.up} ${JSON.stringify(await cluster.nodes())}`);
    }
  }
  t.equal(bad, 0, 'every value found on its slot\'s node');
  t.equal((await get(srv.port, '/hr?k=nokey')).status, 404, 'a missing key is still nginx\'s 404');
  bad = 0;
  for (let i = 0; i < 200; i++) {
    const r = await get(srv.port, `/hro?k=key:${i}`);
    if (r.status !== 200 || r.body !== `val${i}`) bad++;
  }
  t.equal(bad, 0, 'read_replicas: values read from replicas (READONLY and SELECT replies dropped)');
  t.notMatch(srv.errorLog(), /\[(error|crit|alert)\]/, 'nothing logged at error level');
});

t.test('read_replicas: reads from replicas (READONLY), writes to primaries', async (t) => {
  const nodes = await cluster.nodes();
  const replicas = nodes.filter((n) => !n.primary);
  const before = await Promise.all(replicas.map(async (n) => statOf(n.port)));
  let bad = 0;
  for (let i = 0; i < 300; i++) {
    const r = await get(srv.port, `/ro?k=key:${i}`);
    if (r.body !== `$${`val${i}`.length}\r\nval${i}\r\n`) {
      if (bad++ === 0) t.comment(`key:${i}: ${r.status} ${JSON.stringify(r.body)} ${r.up} ${JSON.stringify(await cluster.nodes())}`);
    }
  }
  t.equal(bad, 0, 'every read answered, no READONLY reply or MOVED leaked');
  const after = await Promise.all(replicas.map(async (n) => statOf(n.port)));
  t.ok(after.every((a, i) => a - before[i]! >= 50), `each replica served reads (${before} → ${after})`);
  t.same(await get(srv.port, '/rw?k={u1}.n'), { status: 200, body: ':1\r\n' }, 'a write goes to the primary');
});

async function statOf(port: number): Promise<number> {
  const s = await redisCli(['-p', String(port), 'INFO', 'commandstats']);
  const m = /cmdstat_get:calls=(\d+)/.exec(s);
  return m ? Number(m[1]) : 0;
}
