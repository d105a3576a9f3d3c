import net from 'node:net';
import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { oracleLoad, readFixture, recordFixture } from './helpers/oracle.js';
import { silentServer, startRedis } from './helpers/redis.js';
import { normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * redis_pass as nginx 1.22.1 with ngx_http_redis 0.4.2 answers it, byte for
 * byte: hit, miss, HEAD, methods, types, $redis_db, $redis_auth, the gzip
 * flag, ranges, an escaped key, keep-alive, Redis's error and invalid
 * replies, Redis down; the access and error log lines. (A reply starting
 * with any other byte is left out: the module then logs its `line` before
 * setting it, uninitialized memory; redis2d quotes the line, see
 * httpredis-basic.test.ts.) Debian does not
 * package the module: the answers are recorded in
 * fixtures/oracle/httpredis.json from a build of it (NGINX_HTTPREDIS_MODULE,
 * t/helpers/oracle.ts) and redis2d is checked against the recording.
 */

const FIXTURE = 'httpredis.json';
const VERSION = (JSON.parse(readFileSync(join(import.meta.dirname, '../package.json'), 'utf8')) as { version: string }).version;

/** a fake Redis answering every read with `reply` */
async function fake(t: Test, reply: string): Promise<number> {
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    socks.add(s);
    s.on('error', () => {});
    s.on('close', () => socks.delete(s));
    s.on('data', () => s.write(Buffer.from(reply, 'latin1')));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => (socks.forEach((s) => s.destroy()), srv.close(() => r()))));
  return (srv.address() as net.AddressInfo).port;
}

const G = (path: string, extra = ''): string => `GET ${path} HTTP/1.0\r\n${extra}\r\n`;
const CASES: Array<[string, string]> = [
  ['a hit: type from types, add_header', G('/hello.html')],
  ['HEAD', 'HEAD /hello.html HTTP/1.0\r\n\r\n'],
  ['POST: 405', 'POST /hello.html HTTP/1.0\r\nContent-Length: 2\r\n\r\nab'],
  ['an empty value', G('/arg?k=empty')],
  ['a miss: 404', G('/arg?k=nothing')],
  ['a miss with error_page 404 =', G('/fb?k=nothing')],
  ['no $redis_key set: the empty key', G('/nokey')],
  ['$redis_db 2', G('/db?k=dbkey&db=2')],
  ['$redis_db 0 has no such key', G('/db?k=dbkey&db=0')],
  ['$redis_db not a number', G('/db?k=dbkey&db=x')],
  ['$redis_auth against a Redis without a password', G('/auth?k=empty')],
  ['redis_gzip_flag', G('/gz?k=empty')],
  ['one range: 206', G('/hello.html', 'Range: bytes=0-3\r\n')],
  ['two ranges: the whole value', G('/hello.html', 'Range: bytes=0-1,3-4\r\n')],
  ['a range past the end: 416', G('/hello.html', 'Range: bytes=100-\r\n')],
  ['If-Range does not match', G('/hello.html', 'Range: bytes=0-3\r\nIf-Range: "x"\r\n')],
  ['a key with a space and a percent', G('/arg?k=a%20b%25')],
  ['a key with CR LF in it', G('/arg?k=x%0d%0aSET%20y%20z')],
  ['keep-alive: two requests on one connection', 'GET /hello.html HTTP/1.1\r\nHost: a\r\n\r\nGET /arg?k=empty HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'],
  ['Redis error reply', G('/err')],
  ['Redis down: 502', G('/down')],
  ['Redis never answers: read timeout 504', G('/slow')],
];

interface Answers {
  replies: string[];
  access: string[];
  errors: string[];
}

/** an error page's size counts the server's name (`nginx/1.22.1`, `redis2d/0.1.0`): count it out */
function pageSizes(line: string, name: string): string {
  return line.replace(/^(".*" [3-5]\d\d )(\d+)( .*)$/, (_m, a: string, n: string, b: string) => (Number(n) > name.length ? `${a}${Number(n) - name.length}+S${b}` : _m));
}

async function answers(t: Test, start: (http: string) => Promise<Running>, name: string): Promise<Answers> {
  const redis = await startRedis(t);
  await redis.command(['SET', '/hello.html', '<p>hi</p>']);
  await redis.command(['SET', 'empty', '']);
  await redis.command(['SET', 'a b%', 'spaced']);
  await redis.command(['EVAL', "redis.call('select', 2); return redis.call('set', 'dbkey', 'in db 2')", '0']);
  const errPort = await fake(t, '-ERR something wrong\r\n');
  const slowPort = (await silentServer(t)).port;
  const dead = await new Promise<number>((res) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
  });
  const srv = await start(`
    types { text/html html; }
    default_type application/x-test;
    log_format st '"$request" $status $body_bytes_sent "$upstream_status"';
    access_log {dir}/access.log st;
    upstream rd { server ${redis.addr}; keepalive 4; }
    server { listen 127.0.0.1:{port};
      error_log {dir}/error.log info;
      location / { set $redis_key $uri; redis_pass rd; add_header X-Added yes; }
      location /arg { set $redis_key $arg_k; redis_pass rd; }
      location /fb { set $redis_key $arg_k; redis_pass rd; error_page 404 = /fallback; }
      location = /fallback { return 200 "fallback for $request_uri\\n"; }
      location /nokey { redis_pass rd; }
      location /db { set $redis_key $arg_k; set $redis_db $arg_db; redis_pass rd; }
      location /auth { set $redis_key $arg_k; set $redis_auth secret; redis_pass ${redis.addr}; }
      location /gz { set $redis_key $arg_k; redis_gzip_flag 1; redis_pass rd; }
      location /err { set $redis_key e; redis_pass 127.0.0.1:${errPort}; }
      location /down { set $redis_key e; redis_pass 127.0.0.1:${dead}; }
      location /slow { set $redis_key e; redis_read_timeout 300ms; redis_pass 127.0.0.1:${slowPort}; }
    }`);
  t.teardown(() => srv.stop());
  const ports = (s: string): string =>
    normalize(s, srv.port)
      .replaceAll(`:${redis.port}`, ':REDIS')
      .replaceAll(`:${errPort}`, ':ERR')
      .replaceAll(`:${slowPort}`, ':SLOW')
      .replaceAll(`:${dead}`, ':DEAD');
  const replies: string[] = [];
  for (const [, data] of CASES) replies.push(ports(await raw(srv.port, data, 1500)));
  const file = join(srv.dir, 'access.log');
  for (let i = 0; i < 100 && (existsSync(file) ? readFileSync(file, 'latin1').split('\n').length - 1 : 0) < CASES.length + 1; i++) await new Promise((r) => setTimeout(r, 20));
  const access = readFileSync(file, 'latin1')
    .split('\n')
    .filter(Boolean)
    .map((l) => pageSizes(ports(l), name));
  const errors = srv
    .errorLog()
    .split('\n')
    .filter((l) => /\[(error|warn|alert|crit)\]/.test(l) || l.includes('was not found by redis'))
    .map((l) => ports(l.replace(/^.*?\[(\w+)\] \d+#\d+: \*\d+ /, '[$1] ')));
  return { replies, access, errors };
}

t.test("nginx's answers (hand-built ngx_http_redis) are the recorded ones", async (t) => {
  const load = oracleLoad('httpredis');
  if (load === undefined) return t.skip('set NGINX_HTTPREDIS_MODULE (built for Debian nginx 1.22.1) to compare with nginx');
  const got = await answers(t, (h) => startNginx(h, load), 'nginx/1.22.1');
  if (recordFixture(FIXTURE, 'nginx 1.22.1 + ngx_http_redis 0.4.2, redis_pass answers', got)) t.comment(`recorded ${FIXTURE}`);
  t.same(got, readFixture<Answers>(FIXTURE));
});

t.test('redis2d answers redis_pass requests as recorded from nginx', async (t) => {
  const want = readFixture<Answers>(FIXTURE);
  if (want === undefined) return t.fail(`fixtures/oracle/${FIXTURE} is missing`);
  const got = await answers(t, (h) => startRedis2d(h), `redis2d/${VERSION}`);
  CASES.forEach(([name], i) => t.equal(got.replies[i], want.replies[i], name));
  t.same(got.access, want.access, 'the same access log lines');
  t.same(got.errors, want.errors, 'the same error log lines');
  if (process.env.DUMP) t.comment(JSON.stringify(got.errors, null, 1));
});
