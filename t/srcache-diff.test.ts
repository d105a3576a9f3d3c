import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { hasNginx, normalize, raw, startNginx, startRedis2d } from './helpers/server.js';

/*
 * srcache under Debian's nginx (libnginx-mod-http-srcache-filter) and
 * redis2d, with echo locations standing in for the cache: the fetch
 * location answers stored entries, the store location is access-logged
 * with its request body (log_subrequest), so the exact bytes srcache
 * stores are compared too. Redis itself comes in t/srcache-redis.
 */

// Debian's modules-enabled order (headers-more before srcache): srcache's filter then runs first,
// as redis2d's module list has it (the filter order follows the load order in nginx)
const MODULES = ['ndk_http_module', 'ngx_http_echo_module', 'ngx_http_set_misc_module', 'ngx_http_headers_more_filter_module', 'ngx_http_srcache_filter_module']
  .map((m) => `load_module /usr/lib/nginx/modules/${m}.so;`)
  .join('\n');

const ENTRY_CL = 'HTTP/1.1 201 Created\\r\\nContent-Type: text/plain\\r\\nX-From: cache\\r\\nContent-Length: 11\\r\\nSet-Cookie: a=b\\r\\n\\r\\ncached body';
const ENTRY = 'HTTP/1.1 200 OK\\r\\nContent-Type: text/html\\r\\n\\r\\nno length here';

const HTTP = `
  log_format stored escape=none '[$uri|$args|$request_body]';
  log_subrequest on;
  access_log {dir}/stored.log stored;
  server {
    listen 127.0.0.1:{port};
    location /store { internal; echo_read_request_body; echo "stored"; }
    location /fetch-miss { internal; return 404; }
    location /fetch-cl { internal; echo -n "${ENTRY_CL}"; }
    location /fetch-plain { internal; echo -n "${ENTRY}"; }
    location /fetch-bad { internal; echo -n "not a response"; }

    location /page {
      srcache_fetch GET /fetch-miss key=$uri;
      srcache_store PUT /store key=$uri&exptime=100;
      more_set_headers 'X-Fetch: $srcache_fetch_status' 'X-Store: $srcache_store_status';
      add_header X-Expire "$srcache_expire";
      default_type text/html;
      echo "hello page";
      echo "line two";
    }
    location /hit-cl { srcache_fetch GET /fetch-cl key=$uri; srcache_store PUT /store key=$uri; more_set_headers 'X-Fetch: $srcache_fetch_status'; echo "from backend"; }
    location /hit-plain { srcache_fetch GET /fetch-plain key=$uri; srcache_store PUT /store key=$uri; echo "from backend"; }
    location /bad-entry { srcache_fetch GET /fetch-bad key=$uri; srcache_store PUT /store key=$uri; echo "from backend"; }
    location /skip {
      srcache_fetch_skip $arg_nofetch;
      srcache_store_skip $arg_nostore;
      srcache_fetch GET /fetch-cl key=$uri;
      srcache_store PUT /store key=$uri;
      more_set_headers 'X-Fetch: $srcache_fetch_status' 'X-Store: $srcache_store_status';
      echo "fresh";
    }
    location /status404 { srcache_fetch GET /fetch-miss key=$uri; srcache_store PUT /store key=$uri; echo_status 404; echo "not found body"; }
    location /cc {
      srcache_fetch GET /fetch-miss key=$uri;
      srcache_store PUT /store key=$uri$is_args$args;
      srcache_max_expire 50;
      more_set_headers 'Cache-Control: $arg_cc';
      add_header X-Expire "$srcache_expire|$srcache_store_status";
      echo "cc";
    }
    location /methods { srcache_fetch GET /fetch-cl key=$uri; srcache_store PUT /store key=$uri; more_set_headers 'X-Fetch: $srcache_fetch_status' 'X-Store: $srcache_store_status'; echo "m"; }
  }
`;

const CASES: Array<[string, string]> = [
  ['MISS: the response, then the store', 'GET /page HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['HIT with a stored Content-Length', 'GET /hit-cl HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['HIT without one', 'GET /hit-plain HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['HIT to HTTP/1.0', 'GET /hit-plain HTTP/1.0\r\n\r\n'],
  ['HEAD HIT', 'HEAD /hit-cl HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['fetch skipped: BYPASS, stored', 'GET /skip?nofetch=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['store skipped', 'GET /skip?nofetch=1&nostore=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['skip "0" does not skip', 'GET /skip?nofetch=0 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['404 is not stored', 'GET /status404 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['max-age capped by srcache_max_expire', 'GET /cc?cc=max-age%3D100 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['max-age below the cap', 'GET /cc?cc=public,%20max-age%3D7 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['no-store is not stored', 'GET /cc?cc=no-store HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['private is not stored', 'GET /cc?cc=private HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['POST: no fetch, no store', 'POST /methods HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab'],
  ['keep-alive: a HIT then a MISS on one connection', 'GET /hit-plain HTTP/1.1\r\nHost: h\r\n\r\nGET /page HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
];

t.test('srcache: the same responses and stored entries as nginx', { skip: hasNginx ? false : 'Debian nginx is not installed' }, async (t) => {
  const ng = await startNginx(HTTP, MODULES);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(HTTP, MODULES);
  t.teardown(() => rd.stop());
  for (const [name, req] of CASES) {
    const a = normalize(await raw(ng.port, req, 1500), ng.port);
    const b = normalize(await raw(rd.port, req, 1500), rd.port);
    t.equal(b, a, name);
  }
  await new Promise((r) => setTimeout(r, 200));
  // nginx logs the main request after its store subrequest; the stored entries are what matter
  const stored = (dir: string): string[] =>
    readFileSync(join(dir, 'stored.log'), 'latin1')
      .split(']\n')
      .filter((l) => l.startsWith('[/store|'))
      .sort();
  t.same(stored(rd.dir), stored(ng.dir), 'the same entries stored, byte for byte');
});
