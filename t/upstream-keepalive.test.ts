import t from 'tap';
import { opened, startRedis, type RedisServer } from './helpers/redis.js';
import { startRedis2d } from './helpers/server.js';
import { leaveMidReply, request } from './helpers/http_redis.js';

/*
 * The upstream keepalive cache: at most N idle connections per worker, no
 * request ever waits for one, reuse only after complete replies without
 * extra bytes, keepalive_requests / keepalive_timeout, idle connections
 * closed by Redis are dropped, and (beyond nginx) SELECT never leaks into a
 * request served later on a reused connection.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** wait until CLIENT LIST (minus us) settles at `n`, or give up after ~2 s */
async function clientsSettle(redis: RedisServer, n: number): Promise<number> {
  let c = -1;
  for (let i = 0; i < 100; i++) {
    c = await redis.clientCount();
    if (c === n) break;
    await sleep(20);
  }
  return c;
}

t.test('keepalive 8 with 50 concurrent clients: nobody waits, 8 stay idle, then reused', async (t) => {
  const redis = await startRedis(t);
  const srv = await startRedis2d(`
    upstream ka { server ${redis.addr}; keepalive 8; }
    server { listen 127.0.0.1:{port};
      location /block { redis2_query blpop nolist 0.3; redis2_pass ka; }
      location /ping { redis2_query ping; redis2_pass ka; } }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  // every request holds its Redis connection for 300 ms (BLPOP times out)
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await redis.clientCount());
      await sleep(20);
    }
  })();
  const t0 = Date.now();
  const replies = await Promise.all(Array.from({ length: 50 }, () => request(p, '/block')));
  const took = Date.now() - t0;
  sampling = false;
  await sampler;
  t.ok(replies.every((r) => r.status === 200 && r.body === '*-1\r\n'), '50 answers');
  t.ok(peak > 8, `more connections than the cache size while busy (${peak})`);
  t.ok(took < 2000, `no request waited for a pooled connection (50 x 300 ms took ${took} ms; 8 at a time would take >= 2.1 s)`);
  t.equal(await clientsSettle(redis, 8), 8, 'after the burst CLIENT LIST shows 8 idle connections');

  t.equal(await opened(redis, async () => {
    for (let i = 0; i < 10; i++) t.equal((await request(p, '/ping')).body, '+PONG\r\n');
  }), 0, 'sequential requests reuse the cached connections');
  t.equal(await redis.clientCount(), 8, 'still 8');
});

t.test('never reused after extra bytes or a client leaving mid-reply', async (t) => {
  const redis = await startRedis(t);
  t.equal(await redis.command(['SET', 'big', 'x'.repeat(8 * 1024 * 1024)]), '+OK\r\n');
  const srv = await startRedis2d(`
    upstream ka { server ${redis.addr}; keepalive 8; }
    server { listen 127.0.0.1:{port};
      location /ping { redis2_query ping; redis2_pass ka; }
      location /extra { redis2_raw_queries 1 "ping\\r\\nping\\r\\n"; redis2_pass ka; }
      location /big { redis2_query get big; redis2_pass ka; } }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  t.equal(await opened(redis, () => request(p, '/ping')), 1);
  t.equal(await clientsSettle(redis, 1), 1, 'one idle connection');
  t.equal(await opened(redis, async () => {
    for (let i = 0; i < 3; i++) t.equal((await request(p, '/extra')).body, '+PONG\r\n');
  }), 2, 'the first /extra took the idle connection, the others needed new ones');
  t.equal(await clientsSettle(redis, 0), 0, 'connections that returned extra bytes were closed');
  t.match(srv.errorLog(), 'Redis server returned extra bytes: "+PONG\r\n" (len 7)');

  t.equal(await opened(redis, () => request(p, '/ping')), 1);
  t.equal(await clientsSettle(redis, 1), 1);
  // a client leaving mid-reply takes the idle connection with it
  await leaveMidReply(p, '/big');
  t.equal(await clientsSettle(redis, 0), 0, 'the half-read connection was closed, not cached');
  t.equal(await opened(redis, () => request(p, '/ping')), 1, 'the next request connects anew');
  const n = 8 * 1024 * 1024;
  t.equal((await request(p, '/big')).body.length, `$${n}\r\n`.length + n + 2, 'a full read of the big value is fine');
  t.equal(await clientsSettle(redis, 1), 1, 'and its connection is cached');
});

t.test('keepalive_requests, keepalive_timeout, and idle connections Redis closes', async (t) => {
  const redis = await startRedis(t);
  const srv = await startRedis2d(`
    upstream three { server ${redis.addr}; keepalive 4; keepalive_requests 3; }
    upstream brief { server ${redis.addr}; keepalive 4; keepalive_timeout 300ms; }
    server { listen 127.0.0.1:{port};
      location /three { redis2_query ping; redis2_pass three; }
      location /brief { redis2_query ping; redis2_pass brief; } }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  t.equal(await opened(redis, async () => {
    for (let i = 0; i < 7; i++) await request(p, '/three');
  }), 3, '7 requests, 3 per connection: 3 connections');

  await clientsSettle(redis, 1);
  await request(p, '/brief');
  t.equal(await clientsSettle(redis, 2), 2, 'one idle in each cache');
  await sleep(500);
  t.equal(await clientsSettle(redis, 1), 1, 'keepalive_timeout closed the idle one');

  // Redis drops every idle client: the cache must notice, and the next request connects anew without errors
  await redis.command(['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']);
  t.equal(await clientsSettle(redis, 0), 0);
  const before = srv.errorLog();
  t.equal(await opened(redis, async () => t.equal((await request(p, '/three')).body, '+PONG\r\n')), 1);
  t.equal(srv.errorLog().slice(before.length).match(/\[(error|warn)\]/g), null, 'no error logged');
});

t.test('beyond nginx: SELECT never leaks into a later request on a reused connection', async (t) => {
  const redis = await startRedis(t);
  await redis.command(['SET', 'k', 'zero']);
  const srv = await startRedis2d(`
    upstream ka { server ${redis.addr}; keepalive 8; }
    server { listen 127.0.0.1:{port};
      location /sel { redis2_query select 5; redis2_query set k five; redis2_pass ka; }
      location /rawsel { redis2_raw_queries 2 "SELECT 6\\r\\nset k six\\r\\n"; redis2_pass ka; }
      location /get { redis2_query get k; redis2_pass ka; } }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  t.equal((await request(p, '/sel')).body, '+OK\r\n+OK\r\n');
  t.equal((await request(p, '/rawsel')).body, '+OK\r\n+OK\r\n');
  for (let i = 0; i < 3; i++) t.equal((await request(p, '/get')).body, '$4\r\nzero\r\n', `database 0 (${i})`);
  t.equal(await redis.command(['CLIENT', 'LIST']).then((l) => (l.match(/ db=[56] /g) ?? []).length), 2, 'the SELECTed connections stay cached');
  t.equal(await opened(redis, async () => {
    t.equal((await request(p, '/sel')).body, '+OK\r\n+OK\r\n');
    t.equal((await request(p, '/get')).body, '$4\r\nzero\r\n');
    t.equal((await request(p, '/rawsel')).body, '+OK\r\n+OK\r\n');
  }), 0, 'each request reused a connection set up as it needs');
});
