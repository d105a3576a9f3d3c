import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { RedisServer, startRedis } from './helpers/redis.js';
import { hasNginx, startRedis2d } from './helpers/server.js';
import {
  FIXTURE_DIR,
  MAP_SERVERS,
  headerFromSources,
  headerOfAll,
  lockServers,
  mappingKeys,
  nginxChoices,
  readMapping,
  toDigits,
  writeMapping,
} from './helpers/upstream_mapping.js';

/*
 * Peer choice equal to nginx's: smooth weighted round robin (5/1/1 over 14
 * requests), `hash $arg_key` and `hash $arg_key consistent` over 10,000
 * keys. The expected choices are nginx's own, recorded in
 * fixtures/upstream-mapping/ and re-derived from Debian's nginx when it is
 * installed (REDIS2D_WRITE_FIXTURES=1 rewrites the files).
 */

interface Case {
  file: string;
  balancer: string;
  params: string[];
  paths: string[];
  /** client connections (1 where the order of requests matters) */
  connections: number;
}

const KEYS = mappingKeys(10000);
const keyPaths = KEYS.map((k) => `/?key=${k}`);
// ip_hash: clients from 256 /24 networks of the loopback range (127.N.M.1 as source)
const SOURCES = Array.from({ length: 256 }, (_, i) => `127.${(i * 37) % 256}.${(i * 101 + 7) % 256}.1`);
const CASES: Record<'rr' | 'leastConn' | 'ipHash' | 'hash' | 'chash', Case> = {
  rr: {
    file: 'rr-5-1-1.txt',
    balancer: '',
    params: ['weight=5', 'weight=1', 'weight=1'],
    paths: Array.from({ length: 14 }, (_, i) => `/?n=${i}`),
    connections: 1,
  },
  leastConn: {
    file: 'least-conn-5-1-1.txt',
    balancer: 'least_conn;',
    params: ['weight=5', 'weight=1', 'weight=1'],
    paths: Array.from({ length: 14 }, (_, i) => `/?n=${i}`),
    connections: 1,
  },
  ipHash: { file: 'ip-hash.txt', balancer: 'ip_hash;', params: ['', 'weight=3', ''], paths: SOURCES, connections: 1 },
  hash: { file: 'hash.txt', balancer: 'hash $arg_key;', params: ['', 'weight=2', ''], paths: keyPaths, connections: 8 },
  chash: { file: 'chash.txt', balancer: 'hash $arg_key consistent;', params: ['', '', ''], paths: keyPaths, connections: 8 },
};

// the fixed addresses of the ring (MAP_SERVERS) are used by one test run at a time
const release = await lockServers();
t.teardown(release);

t.test('nginx agrees with the recorded mappings', { skip: hasNginx ? false : 'no /usr/sbin/nginx' }, async (t) => {
  for (const [name, c] of Object.entries(CASES)) {
    const got = await nginxChoices(c.balancer, c.params, c.paths, (port) =>
      c === CASES.ipHash ? headerFromSources(port, SOURCES, 'x-up') : headerOfAll(port, c.paths, 'x-up', c.connections),
    );
    t.equal(got.length, c.paths.length, `${name}: one choice per request`);
    t.notOk(got.includes('-1'), `${name}: every $upstream_addr is a listed server`);
    if (process.env.REDIS2D_WRITE_FIXTURES === '1' || !existsSync(join(FIXTURE_DIR, c.file))) {
      const what =
        c.paths === keyPaths
          ? 'one request per key of mappingKeys(10000)'
          : c === CASES.ipHash
            ? 'one request from each address of SOURCES'
            : `${c.paths.length} requests in a row`;
      writeMapping(c.file, `nginx 1.22.1: upstream { ${`${c.balancer} `.trimStart()}${c.params.map((p, i) => `server S${i} ${p}`.trim()).join('; ')} }`, what, got);
    }
    t.equal(got, readMapping(c.file), `${name}: nginx's choices are the fixture's`);
  }
});

/** an upstream block over `servers` with the case's balancer and parameters */
function upstreamBlock(c: Case, servers: string[]): string {
  return `upstream up { ${c.balancer} ${servers.map((s, i) => `server ${s} ${c.params[i] ?? ''};`).join(' ')} }`;
}

t.test('smooth weighted round robin 5/1/1: the same 14 choices as nginx', async (t) => {
  const c = CASES.rr;
  const redis = [await startRedis(t), await startRedis(t), await startRedis(t)];
  const addrs = redis.map((r) => r.addr);
  const srv = await startRedis2d(`${upstreamBlock(c, addrs)}
    server { listen 127.0.0.1:{port}; add_header X-Up $upstream_addr always;
      location / { redis2_query ping; redis2_pass up; } }`);
  t.teardown(() => srv.stop());
  const got = toDigits(await headerOfAll(srv.port, c.paths, 'x-up', 1), addrs);
  t.equal(got, readMapping(c.file));
  t.equal(got, '00102000010200', 'a a b a c a a: the smooth sequence, twice');
});

t.test('least_conn 5/1/1 (sequential: the weighted round robin among equals) and ip_hash as nginx', async (t) => {
  const redis = [await startRedis(t), await startRedis(t), await startRedis(t)];
  const addrs = redis.map((r) => r.addr);
  const srv = await startRedis2d(`${upstreamBlock(CASES.leastConn, addrs).replace('upstream up', 'upstream lc')}
    ${upstreamBlock(CASES.ipHash, addrs).replace('upstream up', 'upstream ih')}
    server { listen 127.0.0.1:{port}; add_header X-Up $upstream_addr always;
      location / { redis2_query ping; redis2_pass ih; }
      location /lc { redis2_query ping; redis2_pass lc; } }`);
  t.teardown(() => srv.stop());
  const lc = toDigits(await headerOfAll(srv.port, CASES.leastConn.paths.map((p) => `/lc${p}`), 'x-up', 1), addrs);
  t.equal(lc, readMapping(CASES.leastConn.file), 'least_conn');
  const ih = toDigits(await headerFromSources(srv.port, SOURCES, 'x-up'), addrs);
  t.equal(ih, readMapping(CASES.ipHash.file), 'ip_hash of 256 client networks');
});

/** every key answered by nginx's server (X-Up), and each Redis holds exactly its share (DBSIZE) */
async function checkKeyMapping(t: Test, c: (typeof CASES)['hash'], port: number, redis: RedisServer[], addrs: string[]): Promise<void> {
  const want = readMapping(c.file);
  const got = toDigits(await headerOfAll(port, c.paths, 'x-up'), addrs);
  t.equal(got.length, KEYS.length);
  t.ok(got === want, 'every key on nginx\'s server');
  if (got !== want) {
    const i = [...got].findIndex((d, k) => d !== want[k]);
    t.comment(`first difference: key ${KEYS[i]} → ${got[i]}, nginx ${want[i]}`);
  }
  for (let s = 0; s < 3; s++) {
    const n = [...want].filter((d) => d === String(s)).length;
    t.equal(await redis[s]!.command(['DBSIZE']), `:${n}\r\n`, `server ${s} holds its ${n} keys`);
  }
}

t.test('hash $arg_key: 10,000 keys on the same servers as nginx', async (t) => {
  const c = CASES.hash;
  const redis = [await startRedis(t), await startRedis(t), await startRedis(t)];
  const addrs = redis.map((r) => r.addr);
  const srv = await startRedis2d(`${upstreamBlock(c, addrs)}
    server { listen 127.0.0.1:{port}; add_header X-Up $upstream_addr always;
      location / { redis2_query set $arg_key 1; redis2_pass up; } }`);
  t.teardown(() => srv.stop());
  await checkKeyMapping(t, c, srv.port, redis, addrs);
});

t.test('hash $arg_key consistent: 10,000 keys on the same servers as nginx', async (t) => {
  const c = CASES.chash;
  const redis = MAP_SERVERS.map((a) => new RedisServer(Number(a.split(':')[1]), { host: a.split(':')[0] }));
  t.teardown(() => Promise.all(redis.map((r) => r.cleanup())));
  for (const r of redis) await r.start();
  const srv = await startRedis2d(`${upstreamBlock(c, MAP_SERVERS)}
    server { listen 127.0.0.1:{port}; add_header X-Up $upstream_addr always;
      location / { redis2_query set $arg_key 1; redis2_pass up; } }`);
  t.teardown(() => srv.stop());
  await checkKeyMapping(t, c, srv.port, redis, MAP_SERVERS);
});
