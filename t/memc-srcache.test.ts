import { existsSync } from 'node:fs';
import t from 'tap';
import { startBackend, type Backend } from './helpers/backend.js';
import { hasMemcached, startMemcached, type Memcached } from './helpers/memcached.js';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * The page cache of srcache's README ("Caching with memcached"): srcache
 * fetches from and stores to memc_pass locations in front of a real Node
 * HTTP backend (proxy_pass), on a real memcached. MISS, then HIT with the
 * backend not called again (its request count), the entry in memcached
 * being the whole response srcache serialises; the README's second shape
 * (set_unescape_uri, $srcache_expire as the exptime) too; memcached down:
 * the page still comes from the backend. Under Debian's nginx with the
 * srcache, memc, set-misc and headers-more modules the same requests give
 * the same bytes, and the entries either writes are the same.
 */

const DIR = '/usr/lib/nginx/modules';
const MODULES = ['ndk_http_module', 'ngx_http_set_misc_module', 'ngx_http_headers_more_filter_module', 'ngx_http_srcache_filter_module', 'ngx_http_memc_module'];
const LOAD = MODULES.map((m) => `load_module ${DIR}/${m}.so;`).join('\n');
const withNginx = hasNginx && MODULES.every((m) => existsSync(`${DIR}/${m}.so`));

const conf = (mport: number, bport: number): string => `
  upstream my_memcached { server 127.0.0.1:${mport}; keepalive 10; }
  server {
    listen 127.0.0.1:{port};
    location = /memc {
      internal;
      memc_connect_timeout 100ms;
      memc_send_timeout 100ms;
      memc_read_timeout 100ms;
      memc_ignore_client_abort on;
      set $memc_key $query_string;
      set $memc_exptime 300;
      memc_pass my_memcached;
    }
    location /foo {
      set $key $uri$args;
      srcache_fetch GET /memc $key;
      srcache_store PUT /memc $key;
      srcache_store_statuses 200 301 302 307 308;
      more_set_headers 'X-Fetch: $srcache_fetch_status' 'X-Store: $srcache_store_status';
      proxy_pass http://127.0.0.1:${bport}/bytes?n=300;
    }
    location = /memc2 {
      internal;
      memc_connect_timeout 100ms;
      memc_send_timeout 100ms;
      memc_read_timeout 100ms;
      memc_ignore_client_abort on;
      set_unescape_uri $memc_key $arg_key;
      set $memc_exptime $arg_exptime;
      memc_pass my_memcached;
    }
    location /bar {
      set_escape_uri $key $uri$args;
      srcache_fetch GET /memc2 key=$key;
      srcache_store PUT /memc2 key=$key&exptime=$srcache_expire;
      more_set_headers 'X-Fetch: $srcache_fetch_status' 'X-Store: $srcache_store_status';
      proxy_pass http://127.0.0.1:${bport}/chunked?n=4;
    }
  }`;

const GET = (p: string): string => `GET ${p} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`;

/* what differs run to run: Date lines (the backend's inside the entry too) */
const stable = (s: string): string => s.replace(/Date: [^\r]*\r\n/g, 'Date: X\r\n');

/** the store runs after the response: wait (bounded) for memcached to hold the key */
async function stored(m: Memcached, key: string): Promise<string | undefined> {
  for (let i = 0; i < 100; i++) {
    const e = await m.get(key);
    if (e !== undefined) return e.value;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

interface Seen {
  miss: string;
  hit: string;
  entry: string | undefined;
  calls: number[];
}

async function missThenHit(srv: Running, m: Memcached, b: Backend, path: string, key: string): Promise<Seen> {
  await m.flush();
  const c0 = await b.count();
  const miss = await raw(srv.port, GET(path), 400);
  const entry = await stored(m, key);
  const c1 = await b.count();
  const hit = await raw(srv.port, GET(path), 400);
  const c2 = await b.count();
  return { miss: stable(normalize(miss, srv.port)), hit: stable(normalize(hit, srv.port)), entry: entry === undefined ? undefined : stable(entry), calls: [c1 - c0, c2 - c1] };
}

t.test('srcache + memc: MISS, then HIT from memcached', { skip: !hasMemcached && 'memcached is not installed' }, async (t) => {
  const m = await startMemcached(t);
  const b = await startBackend(t);
  const http = conf(m.port, b.port);
  const ours = await startRedis2d(http);
  t.teardown(() => ours.stop());

  const foo = await missThenHit(ours, m, b, '/foo?a=1', '/fooa=1');
  t.same(foo.calls, [1, 0], 'the backend is called for the MISS only');
  t.match(foo.miss, /^HTTP\/1\.1 200 OK\r\n[^]*X-Fetch: MISS\r\nX-Store: STORE\r\n/, 'MISS, stored');
  t.match(foo.hit, /^HTTP\/1\.1 200 OK\r\n[^]*X-Fetch: HIT\r\nX-Store: BYPASS\r\n/, 'HIT');
  t.equal(foo.hit.slice(foo.hit.indexOf('\r\n\r\n')), foo.miss.slice(foo.miss.indexOf('\r\n\r\n')), 'the HIT body is the MISS body');
  t.match(foo.entry, /^HTTP\/1\.1 200 OK\r\n/, 'memcached holds the serialised response');
  t.ok(foo.entry?.endsWith('a'.repeat(0) + foo.miss.slice(foo.miss.indexOf('\r\n\r\n') + 4)), 'ending with the body');

  const bar = await missThenHit(ours, m, b, '/bar?x=%201', '/bar?x=%201');
  t.same(bar.calls, [1, 0], 'set_unescape_uri shape: the backend is called for the MISS only');
  t.match(bar.hit, /X-Fetch: HIT\r\n/, 'HIT');

  // memcached gone: the backend answers every request, the fetch's failure logged
  await m.stop();
  const c0 = await b.count();
  const down = await raw(ours.port, GET('/foo?a=2'), 400);
  t.match(down, /^HTTP\/1\.1 200 OK\r\n[^]*X-Fetch: MISS\r\n/, 'memcached down: served by the backend');
  t.equal((await b.count()) - c0, 1, 'the backend was called');
  t.match(ours.errorLog(), /connect\(\) failed \(111: Connection refused\) while connecting to upstream, client: 127\.0\.0\.1, server: , request: "GET \/foo\?a=2 HTTP\/1\.1", subrequest: "\/memc", upstream: "memcached:\/\/127\.0\.0\.1:\d+"/, 'the fetch failure is logged');
});

t.test('srcache + memc: the same under Debian nginx', { skip: (!hasMemcached && 'memcached is not installed') || (!withNginx && 'Debian nginx with srcache, memc, set-misc, headers-more is not installed') }, async (t) => {
  const m = await startMemcached(t);
  const b = await startBackend(t);
  const http = conf(m.port, b.port);
  const ngx = await startNginx(http, LOAD);
  t.teardown(() => ngx.stop());
  const ours = await startRedis2d(http);
  t.teardown(() => ours.stop());
  for (const [path, key] of [
    ['/foo?a=1', '/fooa=1'],
    ['/bar?x=%201', '/bar?x=%201'],
  ] as const) {
    const theirs = await missThenHit(ngx, m, b, path, key);
    const mine = await missThenHit(ours, m, b, path, key);
    t.same(theirs.calls, [1, 0], `${path}: nginx calls the backend once`);
    t.same(mine.calls, theirs.calls, `${path}: backend calls`);
    t.equal(mine.miss, theirs.miss, `${path}: MISS response`);
    t.equal(mine.hit, theirs.hit, `${path}: HIT response`);
    t.equal(mine.entry, theirs.entry, `${path}: the stored entry`);
  }
  // an entry nginx wrote is served by redis2d
  await m.flush();
  await raw(ngx.port, GET('/foo?a=3'), 400);
  t.ok(await stored(m, '/fooa=3'), 'nginx stored it');
  const c0 = await b.count();
  const hit = await raw(ours.port, GET('/foo?a=3'), 400);
  t.match(hit, /X-Fetch: HIT\r\n/, "redis2d serves nginx's entry");
  t.equal((await b.count()) - c0, 0, 'without the backend');
});
