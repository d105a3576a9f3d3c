import t from 'tap';
import { existsSync } from 'node:fs';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * map at request time, under Debian's nginx and redis2d: exact keys,
 * default, hostnames (wildcards, trailing dot), regex keys with positional
 * and named captures, values with variables, volatile vs cached maps, and
 * a map read inside a subrequest. Same requests, same bytes.
 */

const MODS = '/usr/lib/nginx/modules';
const LOAD = `load_module ${MODS}/ndk_http_module.so;\nload_module ${MODS}/ngx_http_set_misc_module.so;\nload_module ${MODS}/ngx_http_echo_module.so;`;
const skip = !hasNginx || !existsSync(`${MODS}/ngx_http_echo_module.so`) ? 'Debian nginx with echo not installed' : false;

const HTTP = `
  default_type text/plain;
  map $arg_h $kind {
    hostnames;
    default other;
    example.com exact;
    .example.org org-any;
    *.example.net net-sub;
    *.a.example.net a-net-sub;
    www.example.* www-tail;
  }
  map $uri $by_uri {
    default "def:$uri";
    /A upper-key;
    \\~tilde escaped;
    ~^/re/(?<word>[a-z]+)/(\\d+)$ "re $word $2";
    ~*^/CASE/ caseless;
    ~^/re/ second-regex;
    "" empty-key;
  }
  map $arg_v $vol { volatile; default "v=$arg_v"; }
  map $arg_v $cached { default "v=$arg_v"; }
  map $http_x_key $nodef { k1 one; }
  map $arg_k $backend { default redis-a; ~^user:(\\d+)$ "redis-$1"; }
  server {
    listen 127.0.0.1:{port};
    location /kind { echo "[$kind]"; }
    location / { echo "[$by_uri] [$word]"; }
    location /vol { echo "$vol $cached"; set $args v=changed; echo "$vol $cached"; }
    location /nodef { echo "[$nodef]"; }
    location /backend { set_unescape_uri $k $arg_k; echo "[$backend]"; }
    location /sub { echo "[$by_uri]"; echo_location /re/abc/9; echo "[$by_uri]"; }
  }
`;

const CASES: string[] = [
  '/kind?h=example.com', '/kind?h=EXAMPLE.com', '/kind?h=example.com.', '/kind?h=example.org', '/kind?h=a.example.org',
  '/kind?h=x.example.net', '/kind?h=b.a.example.net', '/kind?h=example.net', '/kind?h=www.example.de', '/kind?h=nothing',
  '/kind?h=', '/kind',
  '/A', '/a', '/~tilde', '/re/abc/42', '/re/ABC/42', '/case/x', '/CaSe/y', '/re/x', '/zzz',
  '/vol?v=1', '/nodef', '/backend?k=user:17', '/backend?k=user%3A18', '/backend?k=other', '/sub',
];

t.test('map answers like nginx', { skip }, async (t) => {
  let ours: Running | undefined;
  let theirs: Running | undefined;
  try {
    ours = await startRedis2d(HTTP, LOAD);
    theirs = await startNginx(HTTP, LOAD);
    for (const path of CASES) {
      const req = `GET ${path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\nX-Key: k1\r\n\r\n`;
      const [a, b] = await Promise.all([raw(ours.port, req, 600), raw(theirs.port, req, 600)]);
      t.equal(normalize(a, ours.port), normalize(b, theirs.port), path);
    }
  } finally {
    await ours?.stop();
    await theirs?.stop();
  }
});
