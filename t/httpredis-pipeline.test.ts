import net from 'node:net';
import t, { type Test } from 'tap';
import { request, type Reply } from './helpers/http_redis.js';
import { opened, startRedis } from './helpers/redis.js';
import { startRedis2d } from './helpers/server.js';

/*
 * redis_pass on shared connections (redis2d_pipeline, lib/modules/redis/
 * pipelined.ts, lib/upstream/pipelined_conn.ts): requests arriving together
 * share few Redis connections and each gets exactly what it gets on a
 * connection of its own (`redis2d_pipeline off`, nginx's model): the same
 * status, head, body and error-log lines; a Redis killed mid-burst, a slow
 * client among fast ones and a big value among small ones.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** distinct value per key: sizes from 0 to ~30 KiB, bytes that differ per key */
function valueOf(i: number): string {
  const size = (i * 7919) % 30000;
  const unit = `<${i}:` + String.fromCharCode(33 + (i % 90)) + '>';
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

/** the error log's error/warn lines, connection numbers and port cut out, sorted */
function errorLines(log: string, port: number): string[] {
  return log
    .split('\n')
    .filter((l) => /\[(error|warn|info)\]/.test(l) && /redis|upstream/.test(l))
    .map((l) => l.replace(/^.*?\[/, '[').replace(/ \d+#\d+: \*\d+ /, ' ').replace(`:${port}"`, ':PORT"'))
    .sort();
}

const conf = (addr: string, pipeline: string): string => `
    redis2d_pipeline ${pipeline};
    error_log {dir}/error.log info;
    upstream rd { server ${addr}; keepalive 8; }
    server { listen 127.0.0.1:{port};
      location /k { set $redis_key $arg_k; redis_pass rd; }
      location /db1 { set $redis_key $arg_k; set $redis_db 1; redis_pass rd; }
      location /fb { set $redis_key $arg_k; redis_pass rd; error_page 404 = /fallback; }
      location = /fallback { return 200 "fallback $arg_k\\n"; }
    }`;

t.test('several clients at once: few connections, each request its own answer, the same as on connections of their own', async (t) => {
  const redis = await startRedis(t);
  for (let i = 0; i < 120; i++) await redis.command(['SET', `k${i}`, valueOf(i)]);
  await redis.command(['SET', 'same', 'db0']);
  await redis.command(['COPY', 'k7', 'same', 'DB', '1']);
  await redis.command(['RPUSH', 'list', 'a']);
  const on = await startRedis2d(conf(redis.addr, 'on'));
  t.teardown(() => on.stop());
  const off = await startRedis2d(conf(redis.addr, 'off'));
  t.teardown(() => off.stop());

  let replies: Reply[] = [];
  const n = await opened(redis, async () => {
    replies = await Promise.all(Array.from({ length: 120 }, (_, i) => request(on.port, `/k?k=k${i}`)));
  });
  let wrong = 0;
  replies.forEach((r, i) => {
    const v = valueOf(i);
    if (r.status !== 200 || r.body !== v || !r.head.includes(`\r\nContent-Length: ${v.length}\r\n`)) wrong++;
  });
  t.equal(wrong, 0, "every request got exactly its own key's value");
  t.ok(n >= 1 && n <= 8, `120 concurrent requests opened ${n} connection(s)`);
  // Redis stopped while the requests arrive: all of them are in flight at once
  const pid = redis.proc!.pid!;
  const burst = async (port: number): Promise<number> =>
    opened(redis, async () => {
      process.kill(pid, 'SIGSTOP');
      const pending = Promise.all(Array.from({ length: 120 }, (_, i) => request(port, `/k?k=k${i}`)));
      await sleep(300);
      process.kill(pid, 'SIGCONT');
      const all = await pending;
      t.ok(all.every((r, i) => r.status === 200 && r.body === valueOf(i)), 'a stopped Redis: 120 answers once it goes on');
    });
  const nOn = await burst(on.port);
  t.ok(nOn <= 1, `pipelining on: ${nOn} new connection(s) for 120 requests in flight (the idle one is reused)`);
  const nOff = await burst(off.port);
  t.ok(nOff > 100, `redis2d_pipeline off: ${nOff} new connections (one per request in flight, as nginx)`);

  // a mix of hits, misses, HEAD, ranges, another database, an error_page fallback and a WRONGTYPE error
  const mix = (i: number): [string, { method?: string; headers?: string[] }] => {
    switch (i % 8) {
      case 0:
        return [`/k?k=k${i}`, {}];
      case 1:
        return [`/k?k=missing${i}`, {}];
      case 2:
        return [`/k?k=k${i}`, { method: 'HEAD' }];
      case 3:
        return [`/k?k=k${i}`, { headers: ['Range: bytes=3-10'] }];
      case 4:
        return ['/db1?k=same', {}];
      case 5:
        return [`/fb?k=nothing${i}`, {}];
      case 6:
        return ['/k?k=list', {}];
      default:
        return ['/k?k=same', {}];
    }
  };
  const N = 80;
  const concurrent = await Promise.all(Array.from({ length: N }, (_, i) => request(on.port, ...mix(i))));
  const alone: Reply[] = [];
  for (let i = 0; i < N; i++) alone.push(await request(off.port, ...mix(i)));
  let differ = 0;
  for (let i = 0; i < N; i++) {
    const a = concurrent[i]!;
    const b = alone[i]!;
    if (a.status !== b.status || a.head.replace(/:\d+/g, '') !== b.head.replace(/:\d+/g, '') || a.body !== b.body) differ++;
  }
  t.equal(differ, 0, 'the mix answered on shared connections as on connections of their own (status, head, body)');
  t.equal(concurrent[4]!.body, valueOf(7), '$redis_db 1 reads database 1 on its own shared connection');
  t.equal(concurrent[7]!.body, 'db0');
  t.equal(concurrent[6]!.status, 502, 'WRONGTYPE: 502');
  await sleep(200);
  const onLines = errorLines(on.errorLog(), redis.port);
  const offLines = errorLines(off.errorLog(), redis.port);
  t.same(onLines, offLines, 'the same error-log lines');
  t.ok(onLines.some((l) => l.includes('redis sent invalid response: "+OK\r')), 'the WRONGTYPE line is there (its CR LF raw, as nginx writes it)');
  t.ok(onLines.some((l) => /key: "missing\d+" was not found by redis/.test(l)), 'the not-found info lines are there');
});

t.test('Redis killed mid-burst: every request gets a complete answer or the exclusive path\'s status and log line; then Redis is back', async (t) => {
  const redis = await startRedis(t);
  const big = 'v'.repeat(300 * 1024);
  for (let i = 0; i < 40; i++) await redis.command(['SET', `k${i}`, i % 4 === 0 ? big : valueOf(i)]);
  const srv = await startRedis2d(conf(redis.addr, 'on'));
  t.teardown(() => srv.stop());
  const pid = redis.proc!.pid!;
  process.kill(pid, 'SIGSTOP');
  const pending = Promise.all(Array.from({ length: 40 }, (_, i) => request(srv.port, `/k?k=k${i}`)));
  await sleep(200);
  await redis.kill();
  const replies = await pending;
  t.ok(
    replies.every((r) => r.status === 502),
    `every request got 502 (${[...new Set(replies.map((r) => r.status))].join(',')})`,
  );
  await sleep(100);
  const lines = errorLines(srv.errorLog(), redis.port).filter((l) => l.startsWith('[error]'));
  t.equal(lines.length, 40, 'one error line per request');
  t.ok(
    lines.every((l) =>
      /^\[error\] (recv\(\) failed \(104: Connection reset by peer\)|upstream prematurely closed connection) while reading response header from upstream, client: 127\.0\.0\.1, server: , request: "GET \/k\?k=k\d+ HTTP\/1\.1", upstream: "redis:\/\/127\.0\.0\.1:PORT", host: "x"$/.test(l),
    ),
    lines[0],
  );

  // Redis back: the pool's dead connection is not reused, bursts are answered again
  await redis.start();
  for (let i = 0; i < 8; i++) await redis.command(['SET', `k${i}`, valueOf(i)]);
  const again = await Promise.all(Array.from({ length: 8 }, (_, i) => request(srv.port, `/k?k=k${i}`)));
  t.ok(again.every((r, i) => r.status === 200 && r.body === valueOf(i)), 'answers after the restart');
});

t.test('Redis killed while values stream: each answer complete, cut short or 502, each incomplete one with its log line', async (t) => {
  const redis = await startRedis(t);
  // larger than what the paused clients' socket buffers can absorb: the values are still streaming at the kill
  const big = 'b'.repeat(24 << 20);
  await redis.command(['SET', 'big', big]);
  const srv = await startRedis2d(conf(redis.addr, 'on'));
  t.teardown(() => srv.stop());
  // slow readers keep the values in flight while Redis dies
  const socks: net.Socket[] = [];
  const got: number[] = [];
  for (let i = 0; i < 3; i++) {
    const s = net.connect(srv.port, '127.0.0.1');
    s.on('error', () => {});
    s.pause();
    got.push(0);
    s.on('data', (d) => (got[i]! += d.length));
    s.write('GET /k?k=big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    socks.push(s);
  }
  t.teardown(() => socks.forEach((s) => s.destroy()));
  await sleep(300);
  await redis.kill();
  const ends = socks.map((s) => new Promise<void>((r) => s.on('close', () => r())));
  socks.forEach((s) => s.resume());
  await Promise.race([Promise.all(ends), sleep(5000)]);
  // the value's head is ~170 bytes, nginx's 502 page with its head ~310
  const full = got.filter((n) => n > big.length).length;
  const bad = got.filter((n) => n > 0 && n < 1000).length;
  const short = got.filter((n) => n >= 1000 && n < big.length).length;
  t.equal(full + bad + short, 3, `every client got a complete value, a 502 page or a value cut short: ${got.join(',')}`);
  t.ok(short + bad > 0, 'the kill reached some');
  await sleep(100);
  const lines = errorLines(srv.errorLog(), redis.port).filter((l) => l.startsWith('[error]'));
  t.equal(lines.length, 3 - full, 'one error line per request not answered in full');
  t.equal(
    lines.filter((l) => /^\[error\] (recv\(\) failed \(104: Connection reset by peer\)|upstream prematurely closed connection) while reading upstream, /.test(l)).length,
    short,
    'the ones cut short: `while reading upstream`',
  );
  t.equal(
    lines.filter((l) => /^\[error\] (recv\(\) failed \(104: Connection reset by peer\)|upstream prematurely closed connection) while reading response header from upstream, /.test(l)).length,
    bad,
    'the 502s: `while reading response header from upstream`',
  );
});

/** a slow client: asks for `path` and reads nothing until `drain` is called */
function slowClient(t: Test, port: number, path: string): { drain: () => Promise<number> } {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.pause();
  s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  t.teardown(() => s.destroy());
  return {
    drain: () =>
      new Promise<number>((res) => {
        let got = 0;
        s.on('data', (d) => (got += d.length));
        s.on('close', () => res(got));
        s.resume();
      }),
  };
}

t.test('a slow client among fast ones: the fast ones go on, the slow one gets every byte when it reads', async (t) => {
  const redis = await startRedis(t);
  const big = 'B'.repeat(3 << 20);
  await redis.command(['SET', 'big', big]);
  for (let i = 0; i < 30; i++) await redis.command(['SET', `k${i}`, valueOf(i)]);
  const srv = await startRedis2d(conf(redis.addr, 'on'));
  t.teardown(() => srv.stop());

  const slow = slowClient(t, srv.port, '/k?k=big');
  await sleep(200);
  const t0 = Date.now();
  for (let round = 0; round < 3; round++) {
    const fast = await Promise.all(Array.from({ length: 30 }, (_, i) => request(srv.port, `/k?k=k${i}`)));
    t.ok(fast.every((r, i) => r.status === 200 && r.body === valueOf(i)), `round ${round}: 30 fast requests answered in full`);
  }
  const took = Date.now() - t0;
  t.ok(took < 2500, `while the slow client holds its value: ${took} ms`);
  const got = await slow.drain();
  const head = 'HTTP/1.1 200 OK\r\nServer: redis2d\r\n'.length;
  t.ok(got > big.length + head, `the slow client got its ${big.length} bytes (${got} with the head)`);
});

t.test('a big value among small ones: every answer exact', async (t) => {
  const redis = await startRedis(t);
  const big = Buffer.alloc(1 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
  await redis.command(['SET', 'small', 'tiny']);
  const bigText = big.toString('latin1');
  await redis.command(['SET', 'big', bigText]);
  const srv = await startRedis2d(conf(redis.addr, 'on'));
  t.teardown(() => srv.stop());
  for (let round = 0; round < 2; round++) {
    const all = await Promise.all(Array.from({ length: 40 }, (_, i) => request(srv.port, i % 10 === 5 ? '/k?k=big' : `/k?k=small&i=${i}`)));
    let wrong = 0;
    all.forEach((r, i) => {
      const want = i % 10 === 5 ? bigText : 'tiny';
      if (r.status !== 200 || r.body !== want) wrong++;
    });
    t.equal(wrong, 0, `round ${round}: 4 values of 1 MiB among 36 small ones, every body exact`);
  }
});

t.test('a client leaving mid-value among others on the connection: the others get their answers, the connection goes on', async (t) => {
  const redis = await startRedis(t);
  const big = 'L'.repeat(2 << 20);
  await redis.command(['SET', 'big', big]);
  for (let i = 0; i < 20; i++) await redis.command(['SET', `k${i}`, valueOf(i)]);
  const srv = await startRedis2d(conf(redis.addr, 'on'));
  t.teardown(() => srv.stop());
  {
    // the leaver's GET and the others' arrive together; the others join it or, once the big value streams, go elsewhere
    const leaver = new Promise<void>((resolve) => {
      const c = net.connect(srv.port, '127.0.0.1');
      let got = 0;
      c.on('data', (d) => {
        got += d.length;
        if (got > 100000) {
          c.destroy();
          resolve();
        }
      });
      c.on('error', () => resolve());
      c.on('close', () => resolve());
      c.write('GET /k?k=big HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    const others = Promise.all(Array.from({ length: 20 }, (_, i) => request(srv.port, `/k?k=k${i}`)));
    await leaver;
    const all = await others;
    t.ok(all.every((r, i) => r.status === 200 && r.body === valueOf(i)), 'the 20 others got their values');
  }
  const after = await Promise.all(Array.from({ length: 10 }, (_, i) => request(srv.port, `/k?k=k${i}`)));
  t.ok(after.every((r, i) => r.status === 200 && r.body === valueOf(i)), 'later requests are answered');
});

t.test('redis_next_upstream not_found on shared connections: each peer its own connection, the key found on the second', async (t) => {
  const a = await startRedis(t);
  const b = await startRedis(t);
  for (let i = 0; i < 30; i++) await b.command(['SET', `k${i}`, valueOf(i)]);
  await a.command(['SET', 'k0', 'from a']);
  const srv = await startRedis2d(`
    error_log {dir}/error.log info;
    upstream two { server ${a.addr}; server ${b.addr}; keepalive 8; }
    server { listen 127.0.0.1:{port};
      location /k { set $redis_key $arg_k; redis_next_upstream not_found; redis_pass two; } }`);
  t.teardown(() => srv.stop());
  const all = await Promise.all(Array.from({ length: 30 }, (_, i) => request(srv.port, `/k?k=k${i}`)));
  t.ok(
    all.every((r, i) => r.status === 200 && r.body === (i === 0 ? 'from a' : valueOf(i)) || (i === 0 && r.body === valueOf(0))),
    'every key answered, from a or else from b',
  );
  t.ok(all.slice(1).every((r, i) => r.body === valueOf(i + 1)), 'keys only on b answered from b');
});
