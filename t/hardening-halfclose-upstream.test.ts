import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { startBackend } from './helpers/backend.js';
import { oracleLoad, readFixture, recordFixture } from './helpers/oracle.js';
import { startRedis } from './helpers/redis.js';
import { phpFpmMissing, startPhpFpm } from './helpers/php_fpm.js';
import { halfClose, hasNginx, normalize, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * Half-closing clients (shutdown(SHUT_WR) after the request) on upstream
 * locations, as nginx 1.22.1 with the real modules answers them: redis2
 * hard-codes ignore_client_abort on, so the request runs to its end and the
 * response is written to the half-closed client (pipelined requests
 * included); ngx_http_redis leaves it off, as proxy and fastcgi do unless
 * *_ignore_client_abort is on: the FIN seen while the upstream works ends
 * the request 499 with the epoll_wait() info line. nginx's answers are
 * recorded in fixtures/oracle/halfclose-upstream.json from the hand-built
 * modules (NGINX_REDIS2_MODULE, NGINX_HTTPREDIS_MODULE; t/helpers/oracle.ts),
 * and redis2d is checked against the recording everywhere.
 */

const ROOT = join(import.meta.dirname, '..');
const FIXTURE = 'halfclose-upstream.json';
/*
 * Whether nginx handles the FIN's event before or after the loopback
 * connect's is a race (measured: either, run to run), so the line's action
 * is one of the two.
 */
const RACE = /while (connecting to upstream|sending request to upstream)(?=,)/;

async function waitLines(file: string, n: number, ms = 5000): Promise<string[]> {
  const until = Date.now() + ms;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'latin1') : '';
    const lines = text.split('\n').filter(Boolean);
    if (lines.length >= n || Date.now() > until) return lines;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** a Redis stand-in answering any request `$2\r\nhi\r\n` after 300 ms */
async function slowRedis(t: Test): Promise<number> {
  const fake = net.createServer((s) => {
    s.on('error', () => {});
    s.on('data', () => setTimeout(() => s.destroyed || s.write('$2\r\nhi\r\n'), 300));
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
  t.teardown(() => fake.close());
  return (fake.address() as net.AddressInfo).port;
}

const R = (p: string): string => `GET ${p} HTTP/1.1\r\nHost: a\r\n\r\n`;
const CASES: Array<[string, string, number?]> = [
  ['redis2: a request, then FIN', 'GET /get?key=a HTTP/1.0\r\n\r\n'],
  ['redis2: a reply that takes a second (blpop), FIN at once', 'GET /ex HTTP/1.0\r\n\r\n'],
  ['redis2: a pipelined burst, then FIN', R('/get?key=a') + R('/ex') + R('/get?key=b')],
  ['redis_pass: a reply after 300 ms, FIN at once', 'GET /hr?key=a HTTP/1.0\r\n\r\n'],
  ['redis_pass: the FIN 100 ms after the request, the reply at 300 ms', 'GET /hr?key=b HTTP/1.0\r\n\r\n', 100],
  ['proxy_pass: a response after 300 ms, FIN at once', 'GET /px HTTP/1.0\r\n\r\n'],
  ['proxy_pass: the FIN 100 ms after the request', 'GET /pxl HTTP/1.0\r\n\r\n', 100],
  ['proxy_pass with proxy_ignore_client_abort on', 'GET /pxi HTTP/1.0\r\n\r\n'],
];

interface Answers {
  replies: string[];
  access: string[];
  info: string[];
  /** of 200 half-closed redis2 requests, how many got their whole response */
  answered: number;
  /** responses to a burst of 50 pipelined redis2 requests, then FIN */
  burst: number;
}

async function answers(t: Test, start: (http: string) => Promise<Running>): Promise<Answers> {
  const redis = await startRedis(t);
  await redis.command(['SET', 'a', 'hello']);
  const fake = await slowRedis(t);
  const be = await startBackend(t);
  const srv = await start(`
    log_format st '"$request" $status $body_bytes_sent';
    access_log {dir}/access.log st;
    upstream ka { server ${redis.addr}; keepalive 8; }
    server { listen 127.0.0.1:{port};
      error_log {dir}/error.log info;
      location /get { redis2_query get $arg_key; redis2_pass ka; }
      location /ex { redis2_query blpop nothing 1; redis2_pass ${redis.addr}; }
      location /hr { set $redis_key $arg_key; redis_pass 127.0.0.1:${fake}; }
      location /px { proxy_pass http://127.0.0.1:${be.port}/slow?delay=300&n=1; }
      location /pxl { proxy_pass http://127.0.0.1:${be.port}/slow?delay=300&n=1; }
      location /pxi { proxy_ignore_client_abort on; proxy_pass http://127.0.0.1:${be.port}/slow?delay=300&n=1; }
    }`);
  t.teardown(() => srv.stop());
  const ports = (s: string): string =>
    normalize(s, srv.port).replaceAll(`:${redis.port}`, ':REDIS').replaceAll(`:${fake}`, ':FAKE').replaceAll(`:${be.port}`, ':BACKEND');
  const replies: string[] = [];
  for (const [, data, finAfter] of CASES) replies.push(ports(await halfClose(srv.port, data, 4000, finAfter)));
  const access = await waitLines(join(srv.dir, 'access.log'), CASES.length + 2);
  const info = srv
    .errorLog()
    .split('\n')
    .filter((l) => /\[(info|error|warn)\]/.test(l) && l.includes('client'))
    .map((l) => ports(l.replace(/^.*?\[(\w+)\] \d+#\d+: \*\d+ /, '[$1] ')))
    // the race only where the FIN came with the request; a later FIN is after the connect
    .map((l) => (/request: "GET \/(hr\?key=a|px) /.test(l) ? l.replace(RACE, 'while CONNECTING|SENDING') : l));
  let answered = 0;
  for (let batch = 0; batch < 10; batch++) {
    const outs = await Promise.all(Array.from({ length: 20 }, (_, i) => halfClose(srv.port, `GET /get?key=a&n=${batch * 20 + i} HTTP/1.0\r\n\r\n`, 4000)));
    answered += outs.filter((o) => /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n\$5\r\nhello\r\n$/.test(o)).length;
  }
  const b = await halfClose(srv.port, Array.from({ length: 50 }, (_, i) => R(`/get?key=a&b=${i}`)).join(''), 4000);
  const burst = b.split('HTTP/1.1 200 OK').length - 1;
  return { replies, access, info, answered, burst };
}

t.test("nginx's answers (hand-built modules) are the recorded ones", async (t) => {
  const load = oracleLoad('redis2', 'httpredis');
  if (load === undefined) return t.skip('set NGINX_REDIS2_MODULE and NGINX_HTTPREDIS_MODULE (built for Debian nginx 1.22.1) to compare with nginx');
  const got = await answers(t, (h) => startNginx(h, load));
  if (recordFixture(FIXTURE, 'nginx 1.22.1 + redis2 0.15 + ngx_http_redis 0.4.2, half-closed clients on upstream locations', got)) t.comment(`recorded ${FIXTURE}`);
  t.same(got, readFixture<Answers>(FIXTURE));
});

t.test('redis2d answers half-closed clients as recorded from nginx', async (t) => {
  const want = readFixture<Answers>(FIXTURE);
  if (want === undefined) return t.fail(`fixtures/oracle/${FIXTURE} is missing`);
  const got = await answers(t, (h) => startRedis2d(h));
  CASES.forEach(([name], i) => t.equal(got.replies[i], want.replies[i], name));
  t.same(got.access, want.access, 'the same access log lines');
  t.same(got.info, want.info, 'the same error log lines');
  t.equal(got.answered, want.answered, `${want.answered} of 200 half-closed redis2 requests answered`);
  t.equal(got.burst, want.burst, `a burst of 50, then FIN: ${want.burst} responses`);
  t.equal(want.answered, 200, 'nginx answers them all');
});

t.test('a client that is really gone (RST) frees its Redis connection at once', async (t) => {
  const redis = await startRedis(t);
  const srv = await startRedis2d(`
    log_format st '"$request" $status $body_bytes_sent';
    access_log {dir}/access.log st;
    server { listen 127.0.0.1:{port};
      location /ex { redis2_query blpop nothing 2; redis2_pass ${redis.addr}; } }`);
  t.teardown(() => srv.stop());
  const base = await redis.clientCount();
  const socks = Array.from({ length: 10 }, () => {
    const c = net.connect(srv.port, '127.0.0.1');
    c.on('error', () => {});
    c.write('GET /ex HTTP/1.0\r\n\r\n');
    return c;
  });
  let held = 0;
  for (let i = 0; i < 100 && held < base + 10; i++) {
    held = await redis.clientCount();
    await new Promise((r) => setTimeout(r, 10));
  }
  t.equal(held, base + 10, 'ten Redis connections waiting on blpop');
  const t0 = Date.now();
  for (const c of socks) c.resetAndDestroy();
  let clients = held;
  for (let i = 0; i < 150 && clients > base; i++) {
    await new Promise((r) => setTimeout(r, 10));
    clients = await redis.clientCount();
  }
  t.equal(clients, base, 'every Redis connection closed');
  t.ok(Date.now() - t0 < 1500, `within ${Date.now() - t0} ms of the resets, before blpop's 2 s end`);
  const lines = await waitLines(join(srv.dir, 'access.log'), 10);
  t.equal(lines.length, 10, 'each request logged once');
  t.same(new Set(lines), new Set(['"GET /ex HTTP/1.0" 499 0']), 'as 499');
});

const FCGI_FIXTURE = 'halfclose-fastcgi.json';
const FCGI_CASES: Array<[string, string, number?]> = [
  ['fastcgi_pass: a response after 300 ms, FIN at once', 'GET /fc HTTP/1.0\r\n\r\n'],
  ['fastcgi_pass: the FIN 100 ms after the request', 'GET /fcl HTTP/1.0\r\n\r\n', 100],
  ['fastcgi_pass with fastcgi_ignore_client_abort on', 'GET /fci HTTP/1.0\r\n\r\n'],
];

async function fcgiAnswers(t: Test, start: (http: string) => Promise<Running>): Promise<{ replies: string[]; access: string[]; info: string[] }> {
  const php = await startPhpFpm(t);
  writeFileSync(join(php.root, 'sleep.php'), '<?php usleep(300000); header("Content-Type: text/plain"); echo "slept\\n";');
  const srv = await start(`
    log_format st '"$request" $status $body_bytes_sent';
    access_log {dir}/access.log st;
    server { listen 127.0.0.1:{port};
      error_log {dir}/error.log info;
      include ${join(ROOT, 'conf', 'fastcgi_params')};
      fastcgi_param SCRIPT_FILENAME ${php.root}/sleep.php;
      location /fc { fastcgi_pass 127.0.0.1:${php.port}; }
      location /fcl { fastcgi_pass 127.0.0.1:${php.port}; }
      location /fci { fastcgi_ignore_client_abort on; fastcgi_pass 127.0.0.1:${php.port}; }
    }`);
  t.teardown(() => srv.stop());
  const ports = (s: string): string => normalize(s, srv.port).replaceAll(`:${php.port}`, ':PHP');
  const replies: string[] = [];
  for (const [, data, finAfter] of FCGI_CASES) replies.push(ports(await halfClose(srv.port, data, 4000, finAfter)));
  const access = await waitLines(join(srv.dir, 'access.log'), FCGI_CASES.length);
  const info = srv
    .errorLog()
    .split('\n')
    .filter((l) => /\[(info|error|warn)\]/.test(l) && l.includes('client'))
    .map((l) => ports(l.replace(/^.*?\[(\w+)\] \d+#\d+: \*\d+ /, '[$1] ')))
    .map((l) => (/request: "GET \/fc /.test(l) ? l.replace(RACE, 'while CONNECTING|SENDING') : l));
  return { replies, access, info };
}

t.test('fastcgi_pass: nginx and redis2d as recorded', { skip: phpFpmMissing() ?? false }, async (t) => {
  if (hasNginx) {
    const got = await fcgiAnswers(t, (h) => startNginx(h));
    if (recordFixture(FCGI_FIXTURE, 'nginx 1.22.1, half-closed clients on fastcgi_pass (php-fpm sleeping 300 ms)', got)) t.comment(`recorded ${FCGI_FIXTURE}`);
    t.same(got, readFixture(FCGI_FIXTURE), "nginx's answers are the recorded ones");
  }
  const want = readFixture<{ replies: string[]; access: string[]; info: string[] }>(FCGI_FIXTURE);
  if (want === undefined) return t.fail(`fixtures/oracle/${FCGI_FIXTURE} is missing`);
  const got = await fcgiAnswers(t, (h) => startRedis2d(h));
  FCGI_CASES.forEach(([name], i) => t.equal(got.replies[i], want.replies[i], name));
  t.same(got.access, want.access, 'the same access log lines');
  t.same(got.info, want.info, 'the same error log lines');
});
