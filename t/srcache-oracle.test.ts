import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { oracleLoad, readFixture, recordFixture } from './helpers/oracle.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * The page cache shared between nginx and redis2d: the shape
 * (srcache_fetch through redis_pass, srcache_store through redis2 with
 * $echo_request_body, headers-more statuses) in front of a static page,
 * run by Debian's nginx with its srcache, echo, set-misc and headers-more
 * and the hand-built redis2 and ngx_http_redis (NGINX_REDIS2_MODULE,
 * NGINX_HTTPREDIS_MODULE), and by redis2d, on one Redis. The entry nginx
 * writes is the entry redis2d writes, byte for byte, and each serves the
 * other's entry as a HIT with the same bytes. nginx's entry and answers
 * are recorded in fixtures/oracle/srcache-redis.json; without the modules
 * (CI) redis2d is checked against the recording: it stores the recorded
 * entry and serves it.
 */

const FIXTURE = 'srcache-redis.json';
const DEBIAN = ['ndk_http_module', 'ngx_http_echo_module', 'ngx_http_set_misc_module', 'ngx_http_headers_more_filter_module', 'ngx_http_srcache_filter_module']
  .map((m) => `load_module /usr/lib/nginx/modules/${m}.so;`)
  .join('\n');
const PAGE = Array.from({ length: 200 }, (_, i) => `<p>line ${i} of the cached page</p>\n`).join('');
const KEY = 'nginx-cache:httpGETsite/p/page.html';
const MTIME = new Date('2024-01-02T03:04:05Z');

const http = (redisPort: number): string => `
  server {
    listen 127.0.0.1:{port};
    root {dir}/html;
    location /redis-fetch { internal; set $redis_key $args; redis_pass 127.0.0.1:${redisPort}; }
    location /redis-store {
      internal;
      set_unescape_uri $exptime $arg_exptime;
      set_unescape_uri $key $arg_key;
      redis2_query set $key $echo_request_body;
      redis2_query expire $key $exptime;
      redis2_pass 127.0.0.1:${redisPort};
    }
    location /p/ {
      set $key "nginx-cache:$scheme$request_method$host$request_uri";
      srcache_response_cache_control off;
      set_escape_uri $escaped_key $key;
      srcache_fetch GET /redis-fetch $key;
      srcache_store PUT /redis-store key=$escaped_key&exptime=14400;
      more_set_headers 'X-SRCache-Fetch-Status $srcache_fetch_status';
      more_set_headers 'X-SRCache-Store-Status $srcache_store_status';
    }
  }`;

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: site\r\nConnection: close\r\n\r\n`;

interface Recorded {
  /** the entry in Redis after the MISS */
  entry: string;
  miss: string;
  hit: string;
  /** a HIT asked for a range: the entry says the page allowed ranges */
  range: string;
}

async function serve(t: Test, start: (http: string) => Promise<Running>, redis: RedisServer): Promise<Running> {
  const srv = await start(http(redis.port));
  t.teardown(() => srv.stop());
  mkdirSync(join(srv.dir, 'html', 'p'), { recursive: true });
  const file = join(srv.dir, 'html', 'p', 'page.html');
  writeFileSync(file, PAGE);
  utimesSync(file, MTIME, MTIME);
  return srv;
}

/** the stored entry (raw bytes as latin1), once the store subrequest wrote it */
async function entry(redis: RedisServer): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const r = await redis.command(['GET', KEY]);
    if (r !== '$-1\r\n') return r.replace(/^\$\d+\r\n/, '').replace(/\r\n$/, '');
    await new Promise((res) => setTimeout(res, 20));
  }
  return '';
}

async function missThenHit(srv: Running, redis: RedisServer): Promise<Recorded> {
  await redis.command(['FLUSHALL']);
  const miss = normalize(await raw(srv.port, get('/p/page.html'), 1500), srv.port);
  const stored = await entry(redis);
  const hit = normalize(await raw(srv.port, get('/p/page.html'), 1500), srv.port);
  const range = normalize(await raw(srv.port, get('/p/page.html').replace('\r\n\r\n', '\r\nRange: bytes=5-20\r\n\r\n'), 1500), srv.port);
  return { entry: stored, miss, hit, range };
}

/** a HIT on an entry put in Redis by the other server */
async function hitOn(srv: Running, redis: RedisServer, stored: string): Promise<string> {
  await redis.command(['FLUSHALL']);
  await redis.command(['SET', KEY, stored]);
  return normalize(await raw(srv.port, get('/p/page.html'), 1500), srv.port);
}

t.test('nginx and redis2d share the page cache both ways', async (t) => {
  const load = oracleLoad('redis2', 'httpredis');
  if (load === undefined) return t.skip('set NGINX_REDIS2_MODULE and NGINX_HTTPREDIS_MODULE (built for Debian nginx 1.22.1) to run nginx with the same config');
  const redis = await startRedis(t);
  const ngx = await serve(t, (h) => startNginx(h, `${DEBIAN}\n${load}`), redis);
  const mine = await serve(t, (h) => startRedis2d(h), redis);
  const theirs = await missThenHit(ngx, redis);
  t.match(theirs.miss, /\r\nX-SRCache-Fetch-Status: MISS\r\n/, 'nginx: MISS');
  t.match(theirs.hit, /\r\nX-SRCache-Fetch-Status: HIT\r\n/, 'nginx: HIT');
  t.ok(theirs.entry.startsWith('HTTP/1.1 200 OK\r\n') && theirs.entry.endsWith(PAGE), 'nginx stored the page');
  if (recordFixture(FIXTURE, 'nginx 1.22.1 + srcache, echo, set-misc, headers-more (Debian) + redis2 0.15 + ngx_http_redis 0.4.2: the entry stored and the MISS and HIT answers', theirs)) t.comment(`recorded ${FIXTURE}`);
  t.same(theirs, readFixture<Recorded>(FIXTURE), 'nginx gives the recorded entry and answers');
  const ours = await missThenHit(mine, redis);
  t.equal(ours.entry, theirs.entry, 'redis2d stores the entry nginx stores, byte for byte');
  t.equal(ours.miss, theirs.miss, 'the same MISS');
  t.equal(ours.hit, theirs.hit, 'the same HIT');
  t.equal(ours.range, theirs.range, 'the same 206 from the cache');
  t.equal(await hitOn(mine, redis, theirs.entry), theirs.hit, "redis2d serves nginx's entry as nginx does");
  t.equal(await hitOn(ngx, redis, ours.entry), theirs.hit, "nginx serves redis2d's entry as it serves its own");
});

t.test('redis2d stores and serves the entry recorded from nginx', async (t) => {
  const want = readFixture<Recorded>(FIXTURE);
  if (want === undefined) return t.fail(`fixtures/oracle/${FIXTURE} is missing`);
  const redis = await startRedis(t);
  const mine = await serve(t, (h) => startRedis2d(h), redis);
  const ours = await missThenHit(mine, redis);
  t.equal(ours.entry, want.entry, 'the entry nginx stored, byte for byte');
  t.equal(ours.miss, want.miss, "nginx's MISS");
  t.equal(ours.hit, want.hit, "nginx's HIT");
  t.equal(ours.range, want.range, "nginx's 206 from the cache");
  t.equal(await hitOn(mine, redis, want.entry), want.hit, "nginx's entry read back as nginx reads it");
});

/* the srcache README's "Caching with Redis" example (HttpRedis fetch, redis2 store), as written there */
const README_FIXTURE = 'srcache-readme-redis.json';
const readme = (redisPort: number): string => `
  server {
    listen 127.0.0.1:{port};
    root {dir}/html;
    location /api {
      default_type text/css;
      set $key $uri;
      set_escape_uri $escaped_key $key;
      srcache_fetch GET /redis $key;
      srcache_store PUT /redis2 key=$escaped_key&exptime=120;
    }
    location = /redis { internal; set_md5 $redis_key $args; redis_pass 127.0.0.1:${redisPort}; }
    location = /redis2 {
      internal;
      set_unescape_uri $exptime $arg_exptime;
      set_unescape_uri $key $arg_key;
      set_md5 $key;
      redis2_query set $key $echo_request_body;
      redis2_query expire $key $exptime;
      redis2_pass 127.0.0.1:${redisPort};
    }
  }`;
// md5("/api/style.css"), the key set_md5 makes of $uri
const README_KEY = '4851a94b4b49e30dc2008cf37540e560';

interface ReadmeRecorded {
  first: string;
  entry: string;
  ttl: string;
  /** the file gone: the page from Redis */
  cached: string;
}

async function readmeRun(t: Test, start: (http: string) => Promise<Running>, redis: RedisServer): Promise<ReadmeRecorded> {
  await redis.command(['FLUSHALL']);
  const srv = await start(readme(redis.port));
  t.teardown(() => srv.stop());
  mkdirSync(join(srv.dir, 'html', 'api'), { recursive: true });
  const file = join(srv.dir, 'html', 'api', 'style.css');
  writeFileSync(file, 'body { color: red }\n');
  utimesSync(file, MTIME, MTIME);
  const first = normalize(await raw(srv.port, get('/api/style.css'), 1500), srv.port);
  let entry = '';
  for (let i = 0; i < 100 && entry === ''; i++) {
    const keys = await redis.command(['KEYS', '*']);
    const k = /\$32\r\n([0-9a-f]{32})\r\n/.exec(keys)?.[1];
    if (k !== undefined) entry = `${k}\n${(await redis.command(['GET', k])).replace(/^\$\d+\r\n/, '')}`;
    else await new Promise((r) => setTimeout(r, 20));
  }
  const ttl = (await redis.command(['TTL', entry.slice(0, 32)])).trim();
  rmSync(file);
  const cached = normalize(await raw(srv.port, get('/api/style.css'), 1500), srv.port);
  return { first, entry, ttl: /^:1(19|20)$/.test(ttl) ? 'about 120' : ttl, cached };
}

t.test("the srcache README's Redis example under nginx and redis2d", async (t) => {
  const redis = await startRedis(t);
  const load = oracleLoad('redis2', 'httpredis');
  if (load !== undefined) {
    const theirs = await readmeRun(t, (h) => startNginx(h, `${DEBIAN}\n${load}`), redis);
    if (recordFixture(README_FIXTURE, "nginx 1.22.1 + Debian's srcache, echo, set-misc + redis2 0.15 + ngx_http_redis 0.4.2: the srcache README's Redis example", theirs)) t.comment(`recorded ${README_FIXTURE}`);
    t.same(theirs, readFixture<ReadmeRecorded>(README_FIXTURE), 'nginx gives the recorded answers');
  }
  const want = readFixture<ReadmeRecorded>(README_FIXTURE);
  if (want === undefined) return t.fail(`fixtures/oracle/${README_FIXTURE} is missing`);
  t.ok(want.entry.startsWith(`${README_KEY}\n`), 'stored under md5($uri)');
  t.equal(want.ttl, 'about 120', 'exptime 120');
  const ours = await readmeRun(t, (h) => startRedis2d(h), redis);
  t.equal(ours.first, want.first, 'the file, as nginx sends it');
  t.equal(ours.entry, want.entry, 'the entry nginx stores, under the same key');
  t.equal(ours.ttl, want.ttl, 'the same expiry');
  t.equal(ours.cached, want.cached, 'the file gone: the same page from Redis');
});
