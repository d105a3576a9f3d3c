import t from 'tap';
import { startBackend } from './helpers/backend.js';
import { phpFpmMissing, startPhpFpm } from './helpers/php_fpm.js';
import { ROOT } from './helpers/proc.js';
import { startRedis } from './helpers/redis.js';
import { raw, startRedis2d } from './helpers/server.js';

/*
 * The Redis page cache as deployed (the WordPress/Drupal shape): srcache
 * fetches through HttpRedis (`redis_pass`), stores through redis2
 * (`redis2_query set/expire` of `$echo_request_body`), headers-more reports
 * the statuses, and the application behind is a real Node backend or
 * php-fpm. MISS then HIT with the same bytes and the backend not called
 * again; the WordPress skip rules; no store for POST or a 404; the expiry
 * from Cache-Control with srcache_max_expire; Redis down: the page still
 * comes from the application.
 */

const cacheLocations = (redisPort: number): string => `
    location /redis-fetch { internal; set $redis_key $args; redis_pass 127.0.0.1:${redisPort}; }
    location /redis-store {
      internal;
      set_unescape_uri $exptime $arg_exptime;
      set_unescape_uri $key $arg_key;
      redis2_query set $key $echo_request_body;
      redis2_query expire $key $exptime;
      redis2_pass 127.0.0.1:${redisPort};
    }`;

const cached = `
      set $key "nginx-cache:$scheme$request_method$host$request_uri";
      srcache_fetch_skip $skip_cache;
      srcache_store_skip $skip_cache;
      srcache_response_cache_control off;
      set_escape_uri $escaped_key $key;
      srcache_fetch GET /redis-fetch $key;
      srcache_store PUT /redis-store key=$escaped_key&exptime=14400;
      more_set_headers 'X-SRCache-Fetch-Status $srcache_fetch_status';
      more_set_headers 'X-SRCache-Store-Status $srcache_store_status';`;

const skipRules = `
    set $skip_cache 0;
    if ($request_method = POST) { set $skip_cache 1; }
    if ($http_cookie ~* "wordpress_logged_in") { set $skip_cache 1; }`;

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: site\r\n${extra}Connection: close\r\n\r\n`;
/** the body, chunked framing undone (a page PHP streamed comes back from Redis with its length) */
function body(resp: string): string {
  const i = resp.indexOf('\r\n\r\n');
  const rest = resp.slice(i + 4);
  if (!/\r\nTransfer-Encoding: chunked\r\n/i.test(resp.slice(0, i + 2))) return rest;
  let out = '';
  let p = 0;
  for (;;) {
    const e = rest.indexOf('\r\n', p);
    const n = parseInt(rest.slice(p, e), 16);
    if (!(n > 0)) return out;
    out += rest.slice(e + 2, e + 2 + n);
    p = e + 2 + n + 2;
  }
}
const header = (resp: string, name: string): string | undefined => new RegExp(`^${name}: (.*)\\r$`, 'mi').exec(resp)?.[1];
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 150));

t.test('in front of a Node backend: MISS then HIT, skip rules, statuses, expiry, Redis down', async (t) => {
  const redis = await startRedis(t);
  const backend = await startBackend(t);
  const srv = await startRedis2d(`
  server {
    listen 127.0.0.1:{port};
    ${skipRules}
    ${cacheLocations(redis.port)}
    location /app/ {
      ${cached}
      proxy_pass http://127.0.0.1:${backend.port}/;
    }
    location /maxexp/ {
      srcache_fetch GET /redis-fetch $uri;
      srcache_store PUT /redis-store key=$uri&exptime=$srcache_expire;
      srcache_max_expire 30;
      proxy_pass http://127.0.0.1:${backend.port}/;
    }
  }`);
  t.teardown(() => srv.stop());

  const first = await raw(srv.port, get('/app/bytes?n=3000'), 1500);
  t.match(first, /^HTTP\/1\.1 200 OK\r\n/, 'the first answer');
  t.equal(header(first, 'X-SRCache-Fetch-Status'), 'MISS');
  t.equal(header(first, 'X-SRCache-Store-Status'), 'STORE');
  await settle();
  const key = 'nginx-cache:httpGETsite/app/bytes?n=3000';
  const entry = await redis.command(['GET', key]);
  t.match(entry, /^\$\d+\r\nHTTP\/1\.1 200 OK\r\nContent-Type: application\/octet-stream\r\n\r\n/, 'the entry, as srcache serialises it');
  t.match(await redis.command(['TTL', key]), /^:14(399|400)\r\n$/, 'expire 14400');
  const count = await backend.count();

  const second = await raw(srv.port, get('/app/bytes?n=3000'), 1500);
  t.equal(header(second, 'X-SRCache-Fetch-Status'), 'HIT');
  t.equal(body(second), body(first), 'the same body from Redis');
  t.equal(await backend.count(), count, 'the backend was not called again');

  // the WordPress rule: a logged-in cookie bypasses the cache both ways
  const loggedIn = await raw(srv.port, get('/app/bytes?n=3000', 'Cookie: wordpress_logged_in_abc=1\r\n'), 1500);
  t.equal(header(loggedIn, 'X-SRCache-Fetch-Status'), 'BYPASS', 'logged in: no fetch');
  t.equal(header(loggedIn, 'X-SRCache-Store-Status'), 'BYPASS', 'logged in: no store');
  t.equal(await backend.count(), count + 1, 'logged in: the backend answered');

  // POST is never fetched nor stored; a 404 is not stored
  const post = await raw(srv.port, 'POST /app/echo HTTP/1.1\r\nHost: site\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi', 1500);
  t.equal(header(post, 'X-SRCache-Store-Status'), 'BYPASS', 'POST: no store');
  await raw(srv.port, get('/app/status?code=404'), 1500);
  await settle();
  t.equal(await redis.command(['EXISTS', 'nginx-cache:httpPOSTsite/app/echo']), ':0\r\n', 'nothing stored for the POST');
  t.equal(await redis.command(['EXISTS', 'nginx-cache:httpGETsite/app/status?code=404']), ':0\r\n', 'nothing stored for the 404');

  // srcache_max_expire caps the expiry the response would give ($srcache_expire: default 60 → 30)
  await raw(srv.port, get('/maxexp/bytes?n=10'), 1500);
  await settle();
  t.match(await redis.command(['TTL', '/maxexp/bytes']), /^:(29|30)\r\n$/, 'the expiry capped at 30 s');

  // Redis down: the page still comes from the application
  await redis.kill();
  const down = await raw(srv.port, get('/app/bytes?n=5'), 1500);
  t.match(down, /^HTTP\/1\.1 200 OK\r\n/, 'Redis down: 200 from the backend');
  t.equal(body(down), 'abcde');
  await settle();
  t.match(srv.errorLog(), /connect\(\) failed \(111: Connection refused\) while connecting to upstream, client: [^,]+, server: , request: "GET \/app\/bytes\?n=5 HTTP\/1\.1", subrequest: "\/redis-fetch"/, "the fetch's connect() line names the subrequest");
});

t.test('in front of php-fpm: MISS then HIT with the same bytes', { skip: phpFpmMissing() ?? false }, async (t) => {
  const redis = await startRedis(t);
  const fpm = await startPhpFpm(t);
  const srv = await startRedis2d(`
  server {
    listen 127.0.0.1:{port};
    root ${fpm.root};
    ${skipRules}
    ${cacheLocations(redis.port)}
    location ~ \\.php$ {
      ${cached}
      include ${ROOT}/conf/fastcgi.conf;
      fastcgi_pass 127.0.0.1:${fpm.port};
    }
  }`);
  t.teardown(() => srv.stop());
  const first = await raw(srv.port, get('/index.php?p=1'), 2000);
  t.equal(header(first, 'X-SRCache-Fetch-Status'), 'MISS');
  await settle();
  const second = await raw(srv.port, get('/index.php?p=1'), 2000);
  t.equal(header(second, 'X-SRCache-Fetch-Status'), 'HIT');
  t.equal(body(second), body(first), 'the page from Redis is the page PHP made');
  t.equal(header(second, 'X-Powered-By'), header(first, 'X-Powered-By'), "PHP's own header came back from the cache");
});

t.test("the srcache README's Redis example: a static file cached under md5 keys", async (t) => {
  const redis = await startRedis(t);
  const srv = await startRedis2d(`
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
    location = /redis { internal; set_md5 $redis_key $args; redis_pass 127.0.0.1:${redis.port}; }
    location = /redis2 {
      internal;
      set_unescape_uri $exptime $arg_exptime;
      set_unescape_uri $key $arg_key;
      set_md5 $key;
      redis2_query set $key $echo_request_body;
      redis2_query expire $key $exptime;
      redis2_pass 127.0.0.1:${redis.port};
    }
  }`);
  t.teardown(() => srv.stop());
  const { mkdirSync, writeFileSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  mkdirSync(join(srv.dir, 'html', 'api'), { recursive: true });
  writeFileSync(join(srv.dir, 'html', 'api', 'style'), 'body { color: red }\n');
  const first = await raw(srv.port, get('/api/style'), 1500);
  t.match(first, /^HTTP\/1\.1 200 OK\r\n/, 'the file');
  await settle();
  // md5("/api/style") is the key, as set_md5 makes it
  const { createHash } = await import('node:crypto');
  const key = createHash('md5').update('/api/style').digest('hex');
  t.match(await redis.command(['GET', key]), /HTTP\/1\.1 200 OK\r\nContent-Type: text\/css\r\n/, 'stored under md5($uri)');
  t.match(await redis.command(['TTL', key]), /^:1(19|20)\r\n$/, 'exptime 120');
  rmSync(join(srv.dir, 'html', 'api', 'style'));
  const second = await raw(srv.port, get('/api/style'), 1500);
  t.match(second, /^HTTP\/1\.1 200 OK\r\n/, 'still served with the file gone: from Redis');
  t.equal(body(second), 'body { color: red }\n');
});
