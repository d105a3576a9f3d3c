import net from 'node:net';
import t, { type Test } from 'tap';
import { request } from './helpers/http_redis.js';
import { blackholePort, freePort, opened, silentServer, startRedis } from './helpers/redis.js';
import { raw, startRedis2d } from './helpers/server.js';

/*
 * redis_pass and the generic upstream (lib/upstream/): Redis down, the
 * three timeouts, redis_next_upstream (error, invalid_response, not_found,
 * off), the keepalive cache, redis_bind, and replies nginx's parser
 * rejects, from scripted fake servers: each with nginx's status and log
 * line (ngx_http_upstream.c's wording; the module's own lines as its
 * source has them).
 */

/** a fake Redis: `script` gets each connection and what it sent first; counts connections */
async function fake(t: Test, script: (s: net.Socket, first: string) => void): Promise<{ port: number; conns: () => number }> {
  let conns = 0;
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    conns++;
    socks.add(s);
    s.on('error', () => {});
    s.on('close', () => socks.delete(s));
    s.once('data', (d) => script(s, d.toString('latin1')));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        srv.close(() => r());
      }),
  );
  const a = srv.address();
  return { port: typeof a === 'object' && a ? a.port : 0, conns: () => conns };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function logHas(log: () => string, re: RegExp | string): Promise<string> {
  const test = (s: string): boolean => (typeof re === 'string' ? s.includes(re) : re.test(s));
  for (let i = 0; i < 50 && !test(log()); i++) await sleep(20);
  return log();
}

t.test('Redis down: 502 with connect() failed; the next server when there is one', async (t) => {
  const redis = await startRedis(t);
  t.equal(await redis.command(['SET', 'k', 'live']), '+OK\r\n');
  const dead = await freePort();
  const srv = await startRedis2d(`
    upstream two { server 127.0.0.1:${dead}; server ${redis.addr}; }
    upstream strict { server 127.0.0.1:${dead}; server ${redis.addr}; }
    server { listen 127.0.0.1:{port};
      location /down { set $redis_key k; redis_pass 127.0.0.1:${dead}; }
      location /two { set $redis_key k; redis_pass two; add_header X-Up $upstream_addr; add_header X-St $upstream_status; }
      location /off { set $redis_key k; redis_pass strict; redis_next_upstream off; }
    }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  t.equal((await request(p, '/down')).status, 502);
  t.match(
    await logHas(srv.errorLog, 'connect() failed'),
    new RegExp(`\\[error\\] \\d+#\\d+: \\*\\d+ connect\\(\\) failed \\(111: Connection refused\\) while connecting to upstream, client: 127\\.0\\.0\\.1, server: , request: "GET /down HTTP/1\\.1", upstream: "redis://127\\.0\\.0\\.1:${dead}", host: "x"`),
  );

  const two = await request(p, '/two');
  t.equal(two.status, 200, 'the live server answers');
  t.equal(two.body, 'live');
  t.match(two.head, new RegExp(`X-Up: 127\\.0\\.0\\.1:${dead}, ${redis.addr}\\r\\nX-St: 502, 200`), 'both tries in $upstream_addr and $upstream_status');

  t.equal((await request(p, '/off')).status, 502, 'redis_next_upstream off: the first failure is the answer');
});

t.test('timeouts: connect, read before the header (504), read mid-value (cut short)', async (t) => {
  const hole = await blackholePort(t);
  const silent = await silentServer(t);
  const midway = await fake(t, (s) => s.write('+OK\r\n$10\r\nabc'));
  const srv = await startRedis2d(`
    server { listen 127.0.0.1:{port};
      redis_connect_timeout 300ms; redis_read_timeout 300ms; redis_send_timeout 300ms;
      location /connect { set $redis_key k; redis_pass 127.0.0.1:${hole}; }
      location /read { set $redis_key k; redis_pass 127.0.0.1:${silent.port}; }
      location /mid { set $redis_key k; redis_pass 127.0.0.1:${midway.port}; }
    }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  t.equal((await request(p, '/connect')).status, 504);
  t.match(await logHas(srv.errorLog, 'while connecting'), /\[error\] .* upstream timed out \(110: Connection timed out\) while connecting to upstream, client: .*request: "GET \/connect HTTP\/1\.1", upstream: "redis:\/\/127\.0\.0\.1:\d+"/);

  t.equal((await request(p, '/read')).status, 504);
  t.match(await logHas(srv.errorLog, 'while reading response header'), /upstream timed out \(110: Connection timed out\) while reading response header from upstream, client: .*"GET \/read HTTP\/1\.1"/);
  t.ok(silent.received() > 0, 'the command was sent');

  const mid = await raw(p, 'GET /mid HTTP/1.1\r\nHost: x\r\n\r\n', 3000);
  t.match(mid, /^HTTP\/1\.1 200 OK\r\n[^]*Content-Length: 10\r\n[^]*\r\n\r\nabc$/, 'the header and the bytes that came, then the connection closes');
  t.match(await logHas(srv.errorLog, 'while reading upstream'), /upstream timed out \(110: Connection timed out\) while reading upstream, client: .*"GET \/mid HTTP\/1\.1"/);
});

t.test('invalid replies: 502, or the next server under invalid_response', async (t) => {
  const redis = await startRedis(t);
  t.equal(await redis.command(['SET', 'k', 'good']), '+OK\r\n');
  const garbage = await fake(t, (s) => s.write('HELLO\r\n'));
  const badLen = await fake(t, (s) => s.write('+OK\r\n$abc\r\n'));
  const bigHead = await fake(t, (s) => s.write(`+OK\r\n-${'x'.repeat(5000)}\r\n`));
  const early = await fake(t, (s) => s.end('+OK\r\n'));
  const cut = await fake(t, (s) => s.end('+OK\r\n$10\r\nabc'));
  const trailer = await fake(t, (s) => s.write('+OK\r\n$3\r\nabcXY'));
  const srv = await startRedis2d(`
    upstream retry { server 127.0.0.1:${garbage.port}; server ${redis.addr}; }
    upstream noretry { server 127.0.0.1:${garbage.port}; server ${redis.addr}; }
    server { listen 127.0.0.1:{port};
      location /retry { set $redis_key k; redis_pass retry; redis_next_upstream error timeout invalid_response; }
      location /noretry { set $redis_key k; redis_pass noretry; }
      location /badlen { set $redis_key k; redis_pass 127.0.0.1:${badLen.port}; }
      location /big4k { set $redis_key k; redis_pass 127.0.0.1:${bigHead.port}; }
      location /big8k { set $redis_key k; redis_buffer_size 8k; redis_pass 127.0.0.1:${bigHead.port}; }
      location /early { set $redis_key k; redis_pass 127.0.0.1:${early.port}; }
      location /cut { set $redis_key k; redis_pass 127.0.0.1:${cut.port}; }
      location /trailer { set $redis_key k; redis_pass 127.0.0.1:${trailer.port}; }
    }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  const retry = await request(p, '/retry');
  t.equal(retry.status, 200, 'invalid_response: the next server answers');
  t.equal(retry.body, 'good');
  t.match(await logHas(srv.errorLog, '"HELLO"'), /\[error\] .* redis sent invalid response: "HELLO" while reading response header from upstream, client: .*upstream: "redis:\/\/127\.0\.0\.1:\d+"/);
  t.equal((await request(p, '/noretry')).status, 502, 'by default an invalid reply is the answer: 502');

  t.equal((await request(p, '/badlen')).status, 502);
  t.match(await logHas(srv.errorLog, 'invalid length'), 'redis sent invalid length in response "+OK\r\n$abc" for key "k" while reading response header from upstream, client');

  t.equal((await request(p, '/big4k')).status, 502, 'a header beyond redis_buffer_size');
  t.match(await logHas(srv.errorLog, 'too big header'), /upstream sent too big header while reading response header from upstream, client: .*"GET \/big4k/);
  t.equal((await request(p, '/big8k')).status, 502, 'within 8k the line is read, and is invalid');
  // nginx cuts an error line at NGX_MAX_ERROR_STR (2048 bytes): the quoted reply is cut there too
  const prefix = 'redis sent invalid response: "+OK\r\n-';
  const log = await logHas(srv.errorLog, prefix);
  const xs = /^x*/.exec(log.slice(log.indexOf(prefix) + prefix.length))![0].length;
  t.ok(xs >= 1000 && xs < 2048, `the reply quoted as read, cut at nginx's line limit (${xs} of 5000 bytes)`);

  t.equal((await request(p, '/early')).status, 502);
  t.match(await logHas(srv.errorLog, 'prematurely'), /upstream prematurely closed connection while reading response header from upstream, client: .*"GET \/early/);

  const cutResp = await raw(p, 'GET /cut HTTP/1.1\r\nHost: x\r\n\r\n', 3000);
  t.match(cutResp, /Content-Length: 10\r\n[^]*\r\n\r\nabc$/, 'a value cut short: the connection closes after what came');
  t.match(await logHas(srv.errorLog, 'while reading upstream'), /upstream prematurely closed connection while reading upstream, client: .*"GET \/cut/);

  const tr = await request(p, '/trailer');
  t.equal(tr.status, 200, 'a bad trailer still answers the value');
  t.equal(tr.body, 'abc');
  t.match(await logHas(srv.errorLog, 'invalid trailer'), /\[error\] .* redis sent invalid trailer, client: .*"GET \/trailer/);
});

t.test('redis_next_upstream not_found; a 404 keeps its connection', async (t) => {
  const a = await startRedis(t);
  const b = await startRedis(t);
  t.equal(await b.command(['SET', 'k', 'from b']), '+OK\r\n');
  const srv = await startRedis2d(`
    upstream nf { server ${a.addr}; server ${b.addr}; keepalive 4; }
    upstream plain { server ${a.addr}; server ${b.addr}; }
    upstream ka { server ${a.addr}; keepalive 4; }
    server { listen 127.0.0.1:{port};
      location /nf { set $redis_key k; redis_pass nf; redis_next_upstream not_found; add_header X-St $upstream_status; }
      location /plain { set $redis_key k; redis_pass plain; }
      location /ka { set $redis_key missing; redis_pass ka; }
    }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  const nf = await request(p, '/nf');
  t.equal(nf.status, 200, 'a miss on a goes on to b');
  t.equal(nf.body, 'from b');
  t.match(nf.head, /X-St: 404, 200/);
  t.equal((await request(p, '/plain')).status, 404, 'without not_found the first miss is the answer');

  t.equal(await opened(a, () => request(p, '/ka')), 1);
  t.equal(
    await opened(a, async () => {
      for (let i = 0; i < 5; i++) t.equal((await request(p, '/ka')).status, 404);
    }),
    0,
    'misses reuse the cached connection',
  );
});

t.test('keepalive: sequential hits share one connection; concurrent ones each get one', async (t) => {
  const redis = await startRedis(t);
  t.equal(await redis.command(['SET', 'k', 'v'.repeat(1000)]), '+OK\r\n');
  const srv = await startRedis2d(`
    upstream ka { server ${redis.addr}; keepalive 2; }
    upstream none { server ${redis.addr}; }
    server { listen 127.0.0.1:{port};
      location /ka { set $redis_key k; redis_pass ka; }
      location /none { set $redis_key k; redis_pass none; }
    }`);
  t.teardown(() => srv.stop());
  const p = srv.port;
  t.equal(
    await opened(redis, async () => {
      for (let i = 0; i < 10; i++) t.equal((await request(p, '/ka')).body.length, 1000);
    }),
    1,
    '10 requests, one connection',
  );
  t.equal(
    await opened(redis, async () => {
      for (let i = 0; i < 5; i++) t.equal((await request(p, '/none')).status, 200);
    }),
    5,
    'without keepalive: one each',
  );
  const burst = await Promise.all(Array.from({ length: 6 }, () => request(p, '/ka')));
  t.ok(burst.every((r) => r.status === 200 && r.body.length === 1000), 'a burst of 6 answers');
  t.equal(
    await opened(redis, async () => {
      for (let i = 0; i < 4; i++) await request(p, '/ka');
    }),
    0,
    'the cache kept (at most 2) of them',
  );
});

t.test('redis_bind: the connection comes from that address and is not cached', async (t) => {
  const from: string[] = [];
  const peer = await fake(t, (s) => {
    from.push(s.remoteAddress ?? '');
    s.write('+OK\r\n$5\r\nbound\r\n');
  });
  const srv = await startRedis2d(`
    upstream ka { server 127.0.0.1:${peer.port}; keepalive 4; }
    server { listen 127.0.0.1:{port};
      location / { set $redis_key k; redis_bind 127.0.0.2; redis_pass ka; }
      location /bad { set $redis_key k; redis_bind 192.0.2.1; redis_pass ka; }
    }`);
  t.teardown(() => srv.stop());
  const p = srv.port;
  for (let i = 0; i < 3; i++) t.equal((await request(p, '/')).body, 'bound');
  t.same(from, ['127.0.0.2', '127.0.0.2', '127.0.0.2'], 'three requests, three connections from 127.0.0.2');

  t.equal((await request(p, '/bad')).status, 500, 'an address that cannot be bound: 500');
  t.match(await logHas(srv.errorLog, 'bind('), /\[crit\] .* bind\(192\.0\.2\.1\) failed \(99: Cannot assign requested address\) while connecting to upstream/);
});
