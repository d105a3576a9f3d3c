import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { hasNginx, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * worker_connections, per worker, as nginx counts it: the listening socket,
 * every client connection and every upstream connection hold a slot. When
 * none is free nginx closes idle clients (waiting for a request, or
 * keep-alive) to make room, oldest first, with `[warn] N worker_connections
 * are not enough, reusing connections` once a second; with nothing idle
 * left it closes the new client at once (`[alert] N worker_connections are
 * not enough`), or fails an upstream connect with 500. At start it warns
 * when worker_connections exceed RLIMIT_NOFILE (or worker_rlimit_nofile).
 */

const MEMC = '/usr/lib/nginx/modules/ngx_http_memc_module.so';

function logLines(srv: Running): string[] {
  return srv
    .errorLog()
    .split('\n')
    .filter((l) => /\[(warn|alert|emerg)\]/.test(l))
    .map((l) => l.replace(/^.*?\[(\w+)\] \d+#\d+: (\*\d+ )?/, '[$1] '));
}

/** open `n` connections one after the other; `send` written on each; resolves the sockets and a close counter */
async function flood(port: number, n: number, send = ''): Promise<{ socks: net.Socket[]; closed: () => number }> {
  const socks: net.Socket[] = [];
  let closed = 0;
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.on('error', () => {});
      c.on('close', () => closed++);
      c.once('connect', () => {
        socks.push(c);
        if (send) c.write(send);
        setTimeout(resolve, 2);
      });
      c.once('error', () => resolve());
    });
  }
  return { socks, closed: () => closed };
}

async function timedRequest(port: number): Promise<{ out: string; ms: number }> {
  const t0 = Date.now();
  const out = await raw(port, 'GET / HTTP/1.0\r\n\r\n', 2000);
  return { out, ms: Date.now() - t0 };
}

const HTTP = `server { listen 127.0.0.1:{port}; location / { return 200 "ok\\n"; } }`;

for (const [name, start] of [
  ['redis2d', startRedis2d],
  ['nginx', startNginx],
] as const) {
  t.test(`${name}: 200 idle connections with worker_connections 64`, { skip: name === 'nginx' && !hasNginx && 'no nginx' }, async (t) => {
    const srv = await start(HTTP, '', 'worker_connections 64;');
    t.teardown(() => srv.stop());
    const idle = await flood(srv.port, 200);
    t.teardown(() => idle.socks.forEach((s) => s.destroy()));
    await new Promise((r) => setTimeout(r, 300));
    const held = idle.socks.length - idle.closed();
    t.ok(held <= 63, `at most 63 clients held besides the listening socket (${held})`);
    t.ok(held > 0, 'some are');
    const { out, ms } = await timedRequest(srv.port);
    t.match(out, /^HTTP\/1\.1 200 OK\r\n/, 'a new client is answered: idle ones made room');
    t.ok(ms < 1500, `at once (${ms} ms)`);
    t.ok(logLines(srv).includes('[warn] 64 worker_connections are not enough, reusing connections'));
  });

  t.test(`${name}: nothing idle to close: the new client is closed, then served once room is back`, { skip: name === 'nginx' && !hasNginx && 'no nginx' }, async (t) => {
    const srv = await start(HTTP, '', 'worker_connections 16;');
    t.teardown(() => srv.stop());
    // connections that started a request are not idle: they cannot be closed for room
    const busy = await flood(srv.port, 30, 'GET / HTTP/1.1\r\n');
    await new Promise((r) => setTimeout(r, 300));
    const refused = await timedRequest(srv.port);
    t.equal(refused.out, '', 'no answer: closed at once');
    t.ok(logLines(srv).includes('[alert] 16 worker_connections are not enough'));
    for (const s of busy.socks) s.destroy();
    await new Promise((r) => setTimeout(r, 300));
    t.match((await timedRequest(srv.port)).out, /^HTTP\/1\.1 200 OK\r\n/, 'served again');
  });
}

t.test('an upstream connection needs a slot too: 500 and the alert', async (t) => {
  // a Redis that answers after 20 ms
  const fake = net.createServer((s) => {
    s.on('error', () => {});
    s.on('data', () => setTimeout(() => s.destroyed || s.write('$2\r\nhi\r\n'), 20));
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
  t.teardown(() => fake.close());
  const fp = (fake.address() as net.AddressInfo).port;
  const srv = await startRedis2d(`server { listen 127.0.0.1:{port};
      location /p { redis2_query get a; redis2_pass 127.0.0.1:${fp}; }
      location /x { redis2d_pipeline off; redis2_query get a; redis2_pass 127.0.0.1:${fp}; }
      location /rp { set $redis_key a; redis_pass 127.0.0.1:${fp}; }
      location /rx { redis2d_pipeline off; set $redis_key a; redis_pass 127.0.0.1:${fp}; } }`, '', 'worker_connections 2;');
  t.teardown(() => srv.stop());
  for (const path of ['/p', '/x', '/rp', '/rx']) {
    // (the previous client's slot is free once the server saw it close)
    await new Promise((r) => setTimeout(r, 100));
    const out = await raw(srv.port, `GET ${path} HTTP/1.0\r\n\r\n`, 2000);
    t.match(out, /^HTTP\/1\.1 500 Internal Server Error\r\n/, `${path}: 500`);
  }
  t.match(
    logLines(srv).find((l) => l.startsWith('[alert]')) ?? '',
    /^\[alert\] 2 worker_connections are not enough while connecting to upstream, client: 127\.0\.0\.1, server: , request: "GET \/p HTTP\/1\.0", upstream: "redis2:\/\/127\.0\.0\.1:\d+"$/,
  );
  // redis_pass, shared and exclusive connections alike
  const alerts = logLines(srv).filter((l) => l.startsWith('[alert]'));
  t.equal(alerts.length, 4, 'one alert a request');
  for (const path of ['/rp', '/rx']) {
    t.ok(
      alerts.some((l) => l.includes(`request: "GET ${path} HTTP/1.0", upstream: "redis://127.0.0.1:${fp}"`) && l.startsWith('[alert] 2 worker_connections are not enough while connecting to upstream')),
      `${path}: the alert`,
    );
  }
  if (hasNginx && existsSync(MEMC)) {
    // nginx's own upstream says the same (memc: the same hard-coded upstream settings as redis2)
    const ngx = await startNginx(`server { listen 127.0.0.1:{port}; location /m { set $memc_cmd get; set $memc_key a; memc_pass 127.0.0.1:${fp}; } }`, `load_module ${MEMC};`, 'worker_connections 2;');
    t.teardown(() => ngx.stop());
    t.match(await raw(ngx.port, 'GET /m HTTP/1.0\r\n\r\n', 2000), /^HTTP\/1\.1 500 Internal Server Error\r\n/);
    t.match(logLines(ngx).find((l) => l.startsWith('[alert]')) ?? '', /^\[alert\] 2 worker_connections are not enough while connecting to upstream, client: 127\.0\.0\.1, server: , request: "GET \/m HTTP\/1\.0", upstream: "memcached:/);
  }
});

t.test('start-up checks: fewer slots than listening sockets; more than the open file limit', async (t) => {
  await t.rejects(startRedis2d(HTTP, '', 'worker_connections 1;'), /exited/, 'worker_connections 1 with one listening socket: no start');
  const limits = readFileSync('/proc/self/limits', 'latin1');
  const soft = Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1] ?? 0);
  if (!soft || soft >= 1000000) return;
  const srv = await startRedis2d(HTTP, '', 'worker_connections 1000000;');
  t.teardown(() => srv.stop());
  t.ok(logLines(srv).includes(`[warn] 1000000 worker_connections exceed open file resource limit: ${soft}`));
  t.match(srv.stderr(), `[warn] 1000000 worker_connections exceed open file resource limit: ${soft}`, 'also on stderr at start');
  const srv2 = await startRedis2d(HTTP, 'worker_rlimit_nofile 2000000;', 'worker_connections 1000000;');
  t.teardown(() => srv2.stop());
  t.notOk(logLines(srv2).some((l) => l.includes('exceed open file resource limit')), 'worker_rlimit_nofile covers them: no warning');
});

/** open `n` idle connections, `batch` at a time; the sockets and a close counter */
async function floodFast(port: number, n: number, batch = 200): Promise<{ socks: net.Socket[]; closed: () => number; failed: () => number }> {
  const socks: net.Socket[] = [];
  let closed = 0;
  let failed = 0;
  for (let i = 0; i < n; i += batch) {
    await Promise.all(
      Array.from(
        { length: Math.min(batch, n - i) },
        () =>
          new Promise<void>((resolve) => {
            const c = net.connect(port, '127.0.0.1');
            c.on('error', () => {});
            c.on('close', () => closed++);
            c.once('connect', () => {
              socks.push(c);
              resolve();
            });
            c.once('error', () => {
              failed++;
              resolve();
            });
          }),
      ),
    );
  }
  return { socks, closed: () => closed, failed: () => failed };
}

// Node raises its soft RLIMIT_NOFILE to the hard limit, and the servers inherit it
const nofile = Number(/^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'latin1'))?.[1] ?? 0);
const fewFiles = nofile < 12000 && `the open file limit (${nofile}) is under the 12,000 this test needs: raise it (ulimit -Hn) to run it`;

for (const [name, start] of [
  ['redis2d', startRedis2d],
  ['nginx', startNginx],
] as const) {
  t.test(`${name}: 10,000 idle connections with worker_connections 1024`, { skip: fewFiles || (name === 'nginx' && !hasNginx && 'no nginx'), timeout: 60000 }, async (t) => {
    const t0 = Date.now();
    const srv = await start(HTTP, '', 'worker_connections 1024;');
    t.teardown(() => srv.stop());
    let served = 0;
    let asked = 0;
    // normal requests throughout the flood, one every 50 ms
    let flooding = true;
    const probe = (async () => {
      while (flooding) {
        asked++;
        if (/^HTTP\/1\.1 200 OK\r\n/.test((await timedRequest(srv.port)).out)) served++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const idle = await floodFast(srv.port, 10000);
    t.teardown(() => idle.socks.forEach((s) => s.destroy()));
    flooding = false;
    await probe;
    await new Promise((r) => setTimeout(r, 500));
    const held = idle.socks.length - idle.closed();
    t.equal(idle.socks.length + idle.failed(), 10000, `10,000 connects (${idle.failed()} failed)`);
    t.ok(held <= 1023, `at most 1023 clients held besides the listening socket (${held})`);
    t.ok(held >= 512, `and most of them (${held})`);
    t.equal(served, asked, `every normal request during the flood answered (${served} of ${asked})`);
    t.ok(asked > 0, 'some were asked');
    const after = await timedRequest(srv.port);
    t.match(after.out, /^HTTP\/1\.1 200 OK\r\n/, 'and after it');
    t.ok(logLines(srv).includes('[warn] 1024 worker_connections are not enough, reusing connections'));
    t.comment(`${name}: ${Date.now() - t0} ms, ${held} held, ${served} served during the flood`);
  });
}
