import t, { type Test } from 'tap';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { opened, startRedis } from './helpers/redis.js';
import { startRedis2d } from './helpers/server.js';
import { request, type Reply } from './helpers/http_redis.js';

/*
 * redis2d_pipeline (extension, lib/upstream/pipelined_conn.ts): shareable requests
 * arriving together share few Redis connections, each gets exactly its own
 * replies, failures reach every request with the exclusive path's status
 * and log line, a slow client stalls only what README documents, and
 * `redis2d_pipeline off` restores a connection per request in flight.
 */

const ROOT = resolve(import.meta.dirname, '..');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** distinct value per key: sizes from 0 to ~30 KiB, bytes that differ per key */
function valueOf(i: number): string {
  const size = (i * 7919) % 30000;
  const unit = `<${i}:` + String.fromCharCode(33 + (i % 90)) + '>';
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

const bulk = (v: string): string => `$${v.length}\r\n${v}\r\n`;

t.test('200 concurrent requests with distinct keys share few connections and get their own replies', async (t) => {
  const redis = await startRedis(t);
  for (let i = 0; i < 200; i++) await redis.command(['SET', `k${i}`, valueOf(i)]);
  await redis.command(['SET', 'notnum', 'abc']);
  const srv = await startRedis2d(`
    redis2d_pipeline on;
    upstream ka { server ${redis.addr}; keepalive 8; }
    server { listen 127.0.0.1:{port};
      location /get { redis2_query get $arg_key; redis2_pass ka; }
      location /two { redis2_query get $arg_a; redis2_query get $arg_b; redis2_pass ka; }
      location /bad { redis2_query incr notnum; redis2_pass ka; }
      location /off { redis2d_pipeline off; redis2_query get $arg_key; redis2_pass ka; } }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  let replies: Reply[] = [];
  const n = await opened(redis, async () => {
    replies = await Promise.all(Array.from({ length: 200 }, (_, i) => request(p, `/get?key=k${i}`)));
  });
  let wrong = 0;
  replies.forEach((r, i) => {
    if (r.status !== 200 || !r.complete || r.body !== bulk(valueOf(i))) wrong++;
  });
  t.equal(wrong, 0, 'every request got exactly its own key\'s value');
  t.ok(n >= 1 && n <= 8, `200 concurrent requests opened ${n} connection(s)`);

  // mixed: two-reply requests, error replies and single gets interleaved
  const mixed = await Promise.all(
    Array.from({ length: 150 }, (_, i) =>
      i % 3 === 0 ? request(p, `/two?a=k${i}&b=k${i + 1}`) : i % 3 === 1 ? request(p, '/bad') : request(p, `/get?key=k${i}`),
    ),
  );
  let bad = 0;
  mixed.forEach((r, i) => {
    const want =
      i % 3 === 0 ? bulk(valueOf(i)) + bulk(valueOf(i + 1)) : i % 3 === 1 ? '-ERR value is not an integer or out of range\r\n' : bulk(valueOf(i));
    if (r.status !== 200 || r.body !== want) bad++;
  });
  t.equal(bad, 0, 'error replies and two-reply requests do not disturb their neighbours');
  t.notMatch(srv.errorLog(), /\[(error|warn)\]/, 'nothing logged');

  // redis2d_pipeline off: a connection per request in flight, as nginx (the cache keeps 8)
  await redis.command(['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']);
  await sleep(50);
  let offReplies: Reply[] = [];
  const m = await opened(redis, async () => {
    offReplies = await Promise.all(Array.from({ length: 100 }, (_, i) => request(p, `/off?key=k${i}`)));
  });
  t.ok(offReplies.every((r, i) => r.body === bulk(valueOf(i))), 'off: right bodies');
  t.ok(m > n, `off: ${m} connections for 100 requests (on: ${n} for 200)`);
});

t.test('CLIENT LIST while requests wait on a stopped Redis: one shared connection, then every request gets its reply', async (t) => {
  const redis = await startRedis(t);
  await redis.command(['SET', 'k', 'v']);
  const srv = await startRedis2d(`
    redis2d_pipeline on;
    upstream ka { server ${redis.addr}; keepalive 8; }
    server { listen 127.0.0.1:{port};
      location /get { redis2_query get $arg_key; redis2_pass ka; }
      location /block { redis2_query blpop nolist 0.3; redis2_pass ka; }
      location /raw { redis2_raw_query "get k\\r\\n"; redis2_pass ka; }
      location /get2 { redis2d_pipeline on 2; redis2_query get $arg_key; redis2_pass ka2; } }
    upstream ka2 { server ${redis.addr}; keepalive 8; }`);
  t.teardown(() => srv.stop());
  const p = srv.port;
  t.equal((await request(p, '/get?key=k')).body, '$1\r\nv\r\n');
  const pid = redis.proc!.pid!;
  process.kill(pid, 'SIGSTOP');
  const pending = Promise.all(Array.from({ length: 50 }, () => request(p, '/get?key=k')));
  await sleep(300);
  process.kill(pid, 'SIGCONT');
  const count = await redis.clientCount();
  const all = await pending;
  t.ok(all.every((r) => r.body === '$1\r\nv\r\n'), '50 answers');
  t.ok(count <= 2, `CLIENT LIST right after the stop: ${count} connection(s) from redis2d (one shared; 50 without pipelining)`);

  // redis2d_pipeline on 2: two connections share the burst
  process.kill(pid, 'SIGSTOP');
  const two = Promise.all(Array.from({ length: 50 }, () => request(p, '/get2?key=k')));
  await sleep(300);
  process.kill(pid, 'SIGCONT');
  const count2 = await redis.clientCount();
  t.ok((await two).every((r) => r.body === '$1\r\nv\r\n'), '50 answers over two connections');
  t.equal(count2 - count, 2, 'redis2d_pipeline on 2: two more connections (the first burst\'s one is idle in ka\'s cache)');

  // blocking commands and raw queries keep exclusive connections: 10 BLPOPs of 300 ms run side by side
  const t0 = Date.now();
  const blocks = await Promise.all(Array.from({ length: 10 }, () => request(p, '/block')));
  t.ok(blocks.every((r) => r.body === '*-1\r\n'), 'blpop answers');
  t.ok(Date.now() - t0 < 1500, `10 blpop 0.3 took ${Date.now() - t0} ms (sharing one connection would take 3 s)`);
  const raws = await Promise.all(Array.from({ length: 20 }, () => request(p, '/raw')));
  t.ok(raws.every((r) => r.body === '$1\r\nv\r\n'), 'raw queries');
});

/** statuses and the log's error lines (request-specific parts kept) of a burst against a Redis killed mid-burst */
async function killedMidBurst(t: Test, pipeline: 'on' | 'off', kill = true): Promise<{ statuses: string; lines: string[] }> {
  const redis = await startRedis(t);
  await redis.command(['SET', 'k', 'v']);
  const srv = await startRedis2d(`
    redis2d_pipeline ${pipeline};
    upstream ka { server ${redis.addr}; keepalive 8; }
    server { listen 127.0.0.1:{port};
      location /get { redis2_read_timeout 400ms; redis2_query get $arg_key; redis2_pass ka; } }`);
  t.teardown(() => srv.stop());
  const pid = redis.proc!.pid!;
  process.kill(pid, 'SIGSTOP');
  const pending = Promise.all(Array.from({ length: 30 }, (_, i) => request(srv.port, `/get?key=k&i=${i}`)));
  await sleep(kill ? 200 : 600);
  if (kill) await redis.kill();
  const replies = await pending;
  const statuses = [...new Set(replies.map((r) => r.status))].join(',');
  const lines = srv
    .errorLog()
    .split('\n')
    .filter((l) => /\[(error|warn)\]/.test(l))
    .map((l) => l.replace(/^.*?\[/, '[').replace(/ \d+#\d+: \*\d+ /, ' ').replace(`:${redis.port}"`, ':PORT"'));
  return { statuses, lines };
}

t.test('Redis killed mid-burst: every request gets the exclusive path\'s status and log line', async (t) => {
  const on = await killedMidBurst(t, 'on');
  const off = await killedMidBurst(t, 'off');
  t.equal(on.statuses, '502', 'pipelining on: all 502');
  t.equal(off.statuses, '502', 'pipelining off: all 502');
  t.equal(on.lines.length, 30, 'one error line per request');
  t.same(on.lines.sort(), off.lines.sort(), 'the same lines as on exclusive connections');
  t.match(on.lines[0], /^\[error\] (recv\(\) failed \(104: Connection reset by peer\)|upstream prematurely closed connection) while reading response header from upstream, client: 127\.0\.0\.1, server: , request: "GET \/get\?key=k&i=\d+ HTTP\/1\.1", upstream: "redis2:\/\/127\.0\.0\.1:PORT", host: "x"$/);
});

t.test('Redis stopped past redis2_read_timeout: every request gets the exclusive path\'s 504 and log line', async (t) => {
  const on = await killedMidBurst(t, 'on', false);
  const off = await killedMidBurst(t, 'off', false);
  t.equal(on.statuses, '504', 'pipelining on: all 504');
  t.equal(off.statuses, '504', 'pipelining off: all 504');
  t.equal(on.lines.length, 30, 'one error line per request');
  t.same(on.lines.sort(), off.lines.sort(), 'the same lines as on exclusive connections');
  t.match(on.lines[0], /^\[error\] upstream timed out \(110: Connection timed out\) while reading response header from upstream, client: 127\.0\.0\.1, server: , request: "GET \/get\?key=k&i=\d+ HTTP\/1\.1", upstream: "redis2:\/\/127\.0\.0\.1:PORT", host: "x"$/);
});

t.test('a slow client stalls only requests queued behind it; others go on', async (t) => {
  const redis = await startRedis(t);
  const size = 8 * 1024 * 1024;
  await redis.command(['SET', 'big', 'x'.repeat(size)]);
  await redis.command(['SET', 'k', 'v']);
  const srv = await startRedis2d(`
    redis2d_pipeline on;
    upstream ka { server ${redis.addr}; keepalive 8; }
    server { listen 127.0.0.1:{port};
      location /get { redis2_query get $arg_key; redis2_pass ka; } }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  // a client that asks for 8 MiB and does not read
  const slow = net.connect(p, '127.0.0.1');
  slow.pause();
  slow.write('GET /get?key=big HTTP/1.1\r\nHost: x\r\n\r\n');
  await sleep(300);
  const t0 = Date.now();
  const others = await Promise.all(Array.from({ length: 50 }, () => request(p, '/get?key=k')));
  const took = Date.now() - t0;
  t.ok(others.every((r) => r.body === '$1\r\nv\r\n'), '50 other requests answered');
  t.ok(took < 2000, `while the slow client holds its connection: ${took} ms`);

  // it then reads everything: its body is complete
  let got = 0;
  const ended = new Promise<void>((res) => slow.on('end', () => res()));
  slow.on('data', (d) => {
    got += d.length;
    if (got >= size) slow.end();
  });
  slow.resume();
  await Promise.race([ended, sleep(5000)]);
  t.ok(got > size, `the slow client got its ${size} bytes (${got} with headers and chunks)`);
  slow.destroy();

  // a client leaving mid-reply: requests queued after it still get their replies
  const leaver = net.connect(p, '127.0.0.1');
  leaver.write('GET /get?key=big HTTP/1.1\r\nHost: x\r\n\r\n');
  const after = Promise.all(Array.from({ length: 20 }, () => request(p, '/get?key=k')));
  await new Promise<void>((res) => leaver.once('data', () => res()));
  leaver.destroy();
  t.ok((await after).every((r) => r.body === '$1\r\nv\r\n'), 'requests after a leaving client answered');
  t.equal((await request(p, '/get?key=k')).body, '$1\r\nv\r\n', 'the next request is fine');
  t.notMatch(srv.errorLog(), /\[(error|warn)\]/, 'nothing logged');
});

t.test('requests queued behind a client that stops reading wait for it (head-of-line), then get their replies', async (t) => {
  const redis = await startRedis(t);
  await redis.command(['SET', 'big', 'x'.repeat(8 * 1024 * 1024)]);
  for (let i = 0; i < 20; i++) await redis.command(['SET', `k${i}`, valueOf(i)]);
  const srv = await startRedis2d(`
    redis2d_pipeline on;
    upstream ka { server ${redis.addr}; keepalive 8; }
    server { listen 127.0.0.1:{port};
      location /get { redis2_query get $arg_key; redis2_pass ka; } }`);
  t.teardown(() => srv.stop());
  const p = srv.port;
  t.equal((await request(p, '/get?key=k1')).body, bulk(valueOf(1)), 'a connection is cached');

  // Redis stopped: the big request and 20 others queue on the shared connection, in this order
  const pid = redis.proc!.pid!;
  process.kill(pid, 'SIGSTOP');
  const slow = net.connect(p, '127.0.0.1');
  slow.pause();
  slow.on('error', () => {});
  slow.write('GET /get?key=big HTTP/1.1\r\nHost: x\r\n\r\n');
  await sleep(100);
  let done = 0;
  const behind = Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      request(p, `/get?key=k${i}`).then((r) => {
        done++;
        return r;
      }),
    ),
  );
  await sleep(100);
  process.kill(pid, 'SIGCONT');
  await sleep(500);
  t.equal(done, 0, 'the requests queued behind it wait');
  const clients = await redis.clientCount();
  slow.destroy();
  const replies = await behind;
  t.ok(replies.every((r, i) => r.status === 200 && r.body === bulk(valueOf(i))), 'once it left, each got its own reply');
  t.equal(clients, 1, 'all on one connection');
  await sleep(100);
  t.equal(await redis.clientCount(), 1, 'the rest of the big value was read and dropped: the connection stays');
  t.equal((await request(p, '/get?key=k2')).body, bulk(valueOf(2)));
  t.notMatch(srv.errorLog(), /\[(error|warn)\]/, 'nothing logged');

  // after a large value the location runs exclusive for a while: 10 requests, 10 connections
  process.kill(pid, 'SIGSTOP');
  const burst = Promise.all(Array.from({ length: 10 }, (_, i) => request(p, `/get?key=k${i}`)));
  await sleep(300);
  process.kill(pid, 'SIGCONT');
  const during = await redis.clientCount();
  t.ok((await burst).every((r, i) => r.body === bulk(valueOf(i))), 'answers');
  t.ok(during > 5, `after a large value: ${during} connections for 10 requests in flight (shared: 1)`);
});

t.test('redis2d_pipeline: contexts, values, duplicates (redis2d -t)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'redis2d-pipeline-'));
  const check = (body: string): { code: number | null; err: string } => {
    const file = join(dir, 'n.conf');
    writeFileSync(file, `events {}\nhttp {\n${body}\n}\n`);
    const r = spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', 'node', join(ROOT, 'bin/redis2d'), '-t', '-c', file], { encoding: 'latin1' });
    return { code: r.status, err: r.stderr.replace(file, 'F') };
  };
  t.equal(check('redis2d_pipeline off; server { redis2d_pipeline on 2; location / { redis2d_pipeline off; } }').code, 0);
  let r = check('redis2d_pipeline maybe;');
  t.equal(r.code, 1);
  t.match(r.err, 'redis2d: [emerg] invalid value "maybe" in "redis2d_pipeline" directive, it must be "on" or "off" in F:3');
  r = check('redis2d_pipeline on 0;');
  t.match(r.err, 'redis2d: [emerg] invalid number of connections "0" in "redis2d_pipeline" directive in F:3');
  r = check('redis2d_pipeline on; redis2d_pipeline off;');
  t.match(r.err, 'redis2d: [emerg] "redis2d_pipeline" directive is duplicate in F:3');
  r = check('redis2d_pipeline on 1 2;');
  t.match(r.err, 'redis2d: [emerg] invalid number of arguments in "redis2d_pipeline" directive in F:3');
});
