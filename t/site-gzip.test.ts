import t from 'tap';
import { existsSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { startBackend, type Backend } from './helpers/backend.js';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * The gzip filter against Debian's nginx on one config: static files, error
 * pages, `return`, echo output (with subrequests), proxied responses from
 * a Node backend and from a location of the same server (its ETag,
 * Cache-Control, Expires and Content-Encoding). Each response's header
 * must be the same bytes (Date and the server's name masked); the body is
 * compared dechunked and, when gzipped, decompressed. Node bundles a zlib
 * of its own (Chromium's), whose deflate output differs from Debian's
 * zlib on long inputs: compressed bytes are compared for short bodies
 * only (`exact`), where both produce the same stream.
 */

const MODS = '/usr/lib/nginx/modules';
const LOAD = `load_module ${MODS}/ndk_http_module.so;\nload_module ${MODS}/ngx_http_echo_module.so;`;
const skip = !hasNginx || !existsSync(`${MODS}/ngx_http_echo_module.so`) ? 'Debian nginx with the echo module not installed' : false;

const HTTP = (backend: number): string => `
  types { text/html html; text/plain txt; text/css css; application/json json; image/png png; }
  default_type application/octet-stream;
  gzip on;
  server {
    listen 127.0.0.1:{port};
    root {dir}/html;
    location /vary/ { gzip_vary on; alias {dir}/html/; }
    location /min/ { gzip_min_length 200; alias {dir}/html/; }
    location /types/ { gzip_types text/plain application/json; alias {dir}/html/; }
    location /any/ { gzip_types *; alias {dir}/html/; }
    location /off/ { gzip off; gzip_vary on; alias {dir}/html/; }
    location /lvl/ { gzip_comp_level 9; gzip_window 4k; gzip_hash 2k; gzip_buffers 4 1k; alias {dir}/html/; }
    location /h10/ { gzip_http_version 1.0; alias {dir}/html/; }
    location /dis/ { gzip_disable "curl/[0-9]" msie6; gzip_vary on; alias {dir}/html/; }
    location /px/ { gzip_proxied any; alias {dir}/html/; }
    location /pxauth/ { gzip_proxied auth; alias {dir}/html/; }
    location /noetag/ { etag off; alias {dir}/html/; }
    location /addh/ { add_header X-A a; add_header Cache-Control "private"; alias {dir}/html/; }
    location = /ret { default_type text/html; return 200 "returned text, long enough to be compressed by gzip\\n"; }
    location = /ret403 { return 403; }
    location = /ratio { default_type text/html; echo_duplicate 200 "abcdefgh"; echo; }
    location = /echo { default_type text/html; echo "hello from echo, hello from echo"; echo_location /sub; echo after; }
    location = /sub { echo "sub hello sub hello sub hello"; }
    location = /empty { default_type text/html; echo -n ""; }
    location = /gif { empty_gif; }
    location = /gifz { gzip_types image/gif; empty_gif; }
    location /b/ { gzip_types text/plain application/octet-stream; proxy_pass http://127.0.0.1:${backend}/; }
    location /bpx/ { gzip_types text/plain; gzip_proxied expired no-cache no-store private no_last_modified no_etag; proxy_pass http://127.0.0.1:${backend}/; }
    location /self/ { gzip_vary on; gzip_proxied any; proxy_pass http://127.0.0.1:{port}/origin/; }
    location /selfpx/ { gzip_vary on; gzip_proxied no_etag; proxy_pass http://127.0.0.1:{port}/origin/; }
    location /selfcc/ { gzip_vary on; gzip_proxied no-cache; proxy_pass http://127.0.0.1:{port}/origin/; }
    location /origin/ {
      gzip off;
      default_type text/html;
      location /origin/etag { add_header ETag '"abc"'; return 200 "strong etag, long enough to gzip it\\n"; }
      location /origin/weak { add_header ETag 'W/"abc"'; return 200 "weak etag, long enough to gzip it!!\\n"; }
      location /origin/bad { add_header ETag 'abc'; return 200 "bad etag, long enough to gzip it!!!\\n"; }
      location /origin/ce { add_header Content-Encoding br; return 200 "already encoded, not to gzip again\\n"; }
      location /origin/cc { add_header Cache-Control "max-age=1, no-cache"; return 200 "no-cache, long enough to gzip it\\n"; }
    }
  }
`;

const MTIME = Date.UTC(2024, 0, 2, 3, 4, 5) / 1000;

/** a long text with some repetition: compresses, but not to nothing */
function bigText(n: number): string {
  let s = '';
  let x = 12345;
  const words = ['alpha', 'beta', 'gamma', 'delta', 'redis', 'nginx', '<p>', '</p>', '\n', 'zeta'];
  while (s.length < n) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += `${words[x % words.length]} `;
  }
  return s.slice(0, n);
}

const FILES: Record<string, string> = {
  'big.html': bigText(200000),
  'mid.html': bigText(3000),
  'small.html': 'a small page, thirty bytes..\n',
  'tiny.html': 'tiny\n',
  'x.txt': 'plain text, long enough to be worth compressing\n',
  'x.json': '{"a": "json text, long enough to be worth compressing"}\n',
  'x.css': 'body { color: red; } /* css, long enough to compress */\n',
  'x.png': 'not really a png, but long enough to compress it\n',
};

function setup(srv: Running): void {
  for (const [name, body] of Object.entries(FILES)) {
    const p = join(srv.dir, 'html', name);
    writeFileSync(p, body);
    utimesSync(p, MTIME, MTIME);
  }
}

interface Parsed {
  head: string;
  body: Buffer;
}

/** the header (normalised) and the body, dechunked */
function parse(resp: string, port: number): Parsed {
  const i = resp.indexOf('\r\n\r\n');
  if (i === -1) return { head: normalize(resp, port), body: Buffer.alloc(0) };
  const head = normalize(resp.slice(0, i + 2), port);
  let rest = resp.slice(i + 4);
  if (/\r\nTransfer-Encoding: chunked\r\n/.test(head)) {
    let out = '';
    let p = 0;
    for (;;) {
      const e = rest.indexOf('\r\n', p);
      if (e === -1) {
        out += '[bad chunking]';
        break;
      }
      const n = parseInt(rest.slice(p, e), 16);
      if (!(n > 0)) break;
      out += rest.slice(e + 2, e + 2 + n);
      p = e + 2 + n + 2;
    }
    rest = out;
  }
  return { head, body: Buffer.from(rest, 'latin1') };
}

/** the body as the client reads it (decompressed), an error page's footer masked */
function plain(p: Parsed): string {
  let s: string;
  if (!/\r\nContent-Encoding: gzip\r\n/.test(p.head)) s = p.body.toString('latin1');
  else {
    try {
      s = gunzipSync(p.body).toString('latin1');
    } catch (e) {
      s = `[gunzip failed: ${(e as Error).message}]`;
    }
  }
  return s.replace(/<hr><center>(nginx|redis2d)(\/[0-9.]+)?<\/center>/g, '<hr><center>S</center>');
}

const get = (path: string, ...headers: string[]): string =>
  `GET ${path} HTTP/1.1\r\nHost: h\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`;
const GZ = 'Accept-Encoding: gzip, deflate';

/** [name, request, compare the compressed bytes too] */
const CASES: Array<[string, string, boolean?]> = [
  ['big static file', get('/big.html', GZ)],
  ['mid static file', get('/mid.html', GZ)],
  ['small static file', get('/small.html', GZ), true],
  ['shorter than gzip_min_length 20', get('/tiny.html', GZ)],
  ['no Accept-Encoding', get('/mid.html')],
  ['Accept-Encoding gzip', get('/small.html', 'Accept-Encoding: gzip'), true],
  ['Accept-Encoding GZIP', get('/small.html', 'Accept-Encoding: GZIP'), true],
  ['Accept-Encoding deflate, gzip', get('/small.html', 'Accept-Encoding: deflate, gzip'), true],
  ['Accept-Encoding deflate,gzip', get('/small.html', 'Accept-Encoding: deflate,gzip'), true],
  ['Accept-Encoding x-gzip', get('/small.html', 'Accept-Encoding: x-gzip')],
  ['Accept-Encoding gzip;q=0', get('/small.html', 'Accept-Encoding: gzip;q=0')],
  ['Accept-Encoding gzip; q=0.000', get('/small.html', 'Accept-Encoding: gzip; q=0.000')],
  ['Accept-Encoding gzip;q=0.5', get('/small.html', 'Accept-Encoding: gzip;q=0.5'), true],
  ['Accept-Encoding gzip;q=1.0001', get('/small.html', 'Accept-Encoding: gzip;q=1.0001')],
  ['Accept-Encoding gzip;q=2', get('/small.html', 'Accept-Encoding: gzip;q=2')],
  ['Accept-Encoding gzipx', get('/small.html', 'Accept-Encoding: gzipx')],
  ['Accept-Encoding identity', get('/small.html', 'Accept-Encoding: identity')],
  ['Accept-Encoding twice', get('/small.html', 'Accept-Encoding: identity', 'Accept-Encoding: gzip')],
  ['text/plain not in the default types', get('/x.txt', GZ)],
  ['gzip_vary on, gzipped', get('/vary/small.html', GZ), true],
  ['gzip_vary on, no Accept-Encoding', get('/vary/small.html')],
  ['gzip_vary on, type not compressed', get('/vary/x.txt', GZ)],
  ['gzip off with gzip_vary on', get('/off/small.html', GZ)],
  ['gzip_min_length 200: shorter', get('/min/small.html', GZ)],
  ['gzip_min_length 200: longer', get('/min/mid.html', GZ)],
  ['gzip_types text/plain', get('/types/x.txt', GZ), true],
  ['gzip_types application/json', get('/types/x.json', GZ), true],
  ['gzip_types keeps text/html', get('/types/small.html', GZ), true],
  ['gzip_types text/css not listed', get('/types/x.css', GZ)],
  ['gzip_types *', get('/any/x.png', GZ), true],
  ['level 9, window 4k, hash 2k, buffers 4 1k', get('/lvl/mid.html', GZ)],
  ['level 9 small', get('/lvl/small.html', GZ), true],
  ['HTTP/1.0 with gzip_http_version 1.1', `GET /small.html HTTP/1.0\r\n${GZ}\r\n\r\n`],
  ['HTTP/1.0 with gzip_http_version 1.0', `GET /h10/small.html HTTP/1.0\r\n${GZ}\r\n\r\n`, true],
  ['HTTP/1.0 keep-alive, gzip_http_version 1.0', `GET /h10/small.html HTTP/1.0\r\nConnection: keep-alive\r\n${GZ}\r\n\r\n`, true],
  ['gzip_disable matches', get('/dis/small.html', GZ, 'User-Agent: curl/8.0')],
  ['gzip_disable case-insensitive', get('/dis/small.html', GZ, 'User-Agent: CURL/8.0')],
  ['gzip_disable no match', get('/dis/small.html', GZ, 'User-Agent: curl/x')],
  ['msie6', get('/dis/small.html', GZ, 'User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)')],
  ['msie6 SV1', get('/dis/small.html', GZ, 'User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)')],
  ['msie5', get('/dis/small.html', GZ, 'User-Agent: Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)')],
  ['msie7', get('/dis/small.html', GZ, 'User-Agent: Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)')],
  ['msie6 Opera', get('/dis/small.html', GZ, 'User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1) Opera 8.5')],
  ['msie6 without gzip_disable msie6', get('/small.html', GZ, 'User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)'), true],
  ['Via, gzip_proxied off', get('/small.html', GZ, 'Via: 1.1 proxy')],
  ['Via, gzip_proxied any', get('/px/small.html', GZ, 'Via: 1.1 proxy'), true],
  ['Via, gzip_proxied auth without Authorization', get('/pxauth/small.html', GZ, 'Via: 1.1 proxy')],
  ['Via, gzip_proxied auth with Authorization', get('/pxauth/small.html', GZ, 'Via: 1.1 proxy', 'Authorization: Basic eDp5'), true],
  ['HEAD', get('/mid.html', GZ).replace(/^GET/, 'HEAD')],
  ['Range is ignored when gzipping', get('/mid.html', GZ, 'Range: bytes=0-9')],
  ['Range without gzip', get('/mid.html', 'Range: bytes=0-9')],
  ['If-None-Match with the strong ETag', get('/mid.html', GZ, `If-None-Match: "${MTIME.toString(16)}-${(3000).toString(16)}"`)],
  ['etag off', get('/noetag/small.html', GZ), true],
  ['add_header and Cache-Control', get('/addh/small.html', GZ), true],
  ['404 page', get('/nope.html', GZ)],
  ['403', get('/ret403', GZ)],
  ['return text', get('/ret', GZ)],
  ['echo with a subrequest', get('/echo', GZ), true],
  ['echo_duplicate', get('/ratio', GZ), true],
  ['empty echo body', get('/empty', GZ)],
  ['empty_gif: image/gif not a gzip type', get('/gif', GZ)],
  ['empty_gif with gzip_types image/gif', get('/gifz', GZ)],
  ['proxied chunked', get('/b/chunked?n=50', GZ)],
  ['proxied bytes', get('/b/bytes?n=100000', GZ)],
  ['proxied 404 text/plain', get('/b/nowhere', GZ), true],
  ['proxied with Via, gzip_proxied off', get('/b/chunked?n=5', GZ, 'Via: 1.0 x')],
  ['proxied with Via, gzip_proxied lists', get('/bpx/chunked?n=5', GZ, 'Via: 1.0 x'), true],
  ['strong ETag made weak', get('/self/etag', GZ), true],
  ['weak ETag kept', get('/self/weak', GZ), true],
  ['unquoted ETag dropped', get('/self/bad', GZ), true],
  ['Content-Encoding already', get('/self/ce', GZ)],
  ['gzip_proxied no_etag, ETag', get('/selfpx/etag', GZ, 'Via: 1.1 p')],
  ['gzip_proxied no_etag, no ETag', get('/selfpx/ce', GZ, 'Via: 1.1 p')],
  ['gzip_proxied no-cache, Cache-Control no-cache', get('/selfcc/cc', GZ, 'Via: 1.1 p'), true],
  ['gzip_proxied no-cache, no Cache-Control', get('/selfcc/etag', GZ, 'Via: 1.1 p')],
];

t.test('gzip against Debian nginx', { skip }, async (t) => {
  const backend: Backend = await startBackend(t);
  const ng = await startNginx(HTTP(backend.port), LOAD);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(HTTP(backend.port), LOAD);
  t.teardown(() => rd.stop());
  setup(ng);
  setup(rd);
  for (const [name, req, exact] of CASES) {
    const a = parse(await raw(ng.port, req, 3000), ng.port);
    const b = parse(await raw(rd.port, req, 3000), rd.port);
    t.equal(b.head, a.head, `${name}: header`);
    t.equal(plain(b), plain(a), `${name}: body`);
    if (exact) t.equal(b.body.toString('hex'), a.body.toString('hex'), `${name}: compressed bytes`);
  }
  // the same content as the file, whatever the encoding
  const big = parse(await raw(rd.port, get('/big.html', GZ), 3000), rd.port);
  t.equal(plain(big), FILES['big.html'], 'big file decompresses to the file');
  t.match(big.head, /Content-Encoding: gzip/, 'big file is gzipped');
});

t.test('$gzip_ratio', { skip }, async (t) => {
  const http = `
    log_format r "$gzip_ratio";
    server {
      listen 127.0.0.1:{port};
      root {dir}/html;
      gzip on;
      access_log {dir}/access.log r;
    }`;
  const ng = await startNginx(http);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(http);
  t.teardown(() => rd.stop());
  setup(ng);
  setup(rd);
  for (const srv of [ng, rd]) {
    await raw(srv.port, get('/small.html', GZ), 3000);
    await raw(srv.port, get('/small.html'), 3000);
  }
  await new Promise((r) => setTimeout(r, 200));
  const { readFileSync } = await import('node:fs');
  const la = readFileSync(join(ng.dir, 'access.log'), 'latin1');
  const lb = readFileSync(join(rd.dir, 'access.log'), 'latin1');
  t.equal(lb, la, 'the same ratios');
  t.match(la, /^\d+\.\d\d\n-\n$/, 'a ratio, then none');
});

t.test('gzip_static against Debian nginx', { skip: hasNginx ? false : 'Debian nginx not installed' }, async (t) => {
  const http = `
    types { text/html html; text/plain txt; }
    server {
      listen 127.0.0.1:{port};
      root {dir}/html;
      location /on/ { gzip_static on; alias {dir}/html/; }
      location /vary/ { gzip_static on; gzip_vary on; alias {dir}/html/; }
      location /always/ { gzip_static always; gzip_vary on; alias {dir}/html/; }
      location /both/ { gzip_static on; gzip on; gzip_types text/plain; alias {dir}/html/; }
      location /h10/ { gzip_static on; gzip_http_version 1.0; alias {dir}/html/; }
      location /noetag/ { gzip_static on; etag off; alias {dir}/html/; }
      location /exp/ { gzip_static on; expires 1h; add_header X-A a; alias {dir}/html/; }
    }`;
  const ng = await startNginx(http);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(http);
  t.teardown(() => rd.stop());
  const { gzipSync } = await import('node:zlib');
  const { mkdirSync } = await import('node:fs');
  for (const srv of [ng, rd]) {
    const h = join(srv.dir, 'html');
    const put = (name: string, body: string | Buffer, mtime = MTIME): void => {
      writeFileSync(join(h, name), body);
      utimesSync(join(h, name), mtime, mtime);
    };
    put('a.txt', 'the plain file, long enough to be worth compressing\n');
    put('a.txt.gz', gzipSync('the precompressed twin of the file\n'), MTIME + 60);
    put('only.txt', 'no twin here, long enough to be worth compressing\n');
    put('empty.txt', 'x\n');
    put('empty.txt.gz', '');
    mkdirSync(join(h, 'd.txt.gz'));
    put('d.txt', 'the .gz next to it is a directory\n');
  }
  const GZ = 'Accept-Encoding: gzip';
  const cases: Array<[string, string]> = [
    ['on, gzip accepted', get('/on/a.txt', GZ)],
    ['on, not accepted', get('/on/a.txt')],
    ['on, no twin', get('/on/only.txt', GZ)],
    ['on, HEAD', get('/on/a.txt', GZ).replace(/^GET/, 'HEAD')],
    ['on, POST', `POST /on/a.txt HTTP/1.1\r\nHost: h\r\n${GZ}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`],
    ['on, Range', get('/on/a.txt', GZ, 'Range: bytes=0-3')],
    ['on, If-None-Match the .gz ETag', get('/on/a.txt', GZ, `If-None-Match: "${(MTIME + 60).toString(16)}-${gzipSync('the precompressed twin of the file\n').length.toString(16)}"`)],
    ['on, empty .gz', get('/on/empty.txt', GZ)],
    ['on, .gz is a directory', get('/on/d.txt', GZ)],
    ['on, a directory URI', get('/on/', GZ)],
    ['on, HTTP/1.0', `GET /on/a.txt HTTP/1.0\r\n${GZ}\r\n\r\n`],
    ['on, HTTP/1.0 with gzip_http_version 1.0', `GET /h10/a.txt HTTP/1.0\r\n${GZ}\r\n\r\n`],
    ['on, Via', get('/on/a.txt', GZ, 'Via: 1.1 p')],
    ['vary, accepted', get('/vary/a.txt', GZ)],
    ['vary, not accepted', get('/vary/a.txt')],
    ['vary, no twin', get('/vary/only.txt')],
    ['always, not accepted', get('/always/a.txt')],
    ['always, accepted', get('/always/a.txt', GZ)],
    ['with gzip on, twin', get('/both/a.txt', GZ)],
    ['etag off', get('/noetag/a.txt', GZ)],
    ['expires and add_header', get('/exp/a.txt', GZ)],
  ];
  for (const [name, req] of cases) {
    const a = normalize(await raw(ng.port, req, 3000), ng.port);
    const b = normalize(await raw(rd.port, req, 3000), rd.port);
    t.equal(b, a, name);
  }
  // with gzip on and no twin, the filter compresses: the same headers, the same text
  const a = parse(await raw(ng.port, get('/both/only.txt', GZ), 3000), ng.port);
  const b = parse(await raw(rd.port, get('/both/only.txt', GZ), 3000), rd.port);
  t.equal(b.head, a.head, 'with gzip on, no twin: header');
  t.equal(plain(b), plain(a), 'with gzip on, no twin: body');
});

/*
 * A long proxied body, gzipped: zlib's input side holds the proxy back
 * (the backend's socket pauses) while the backend's FIN arrives. (This
 * crashed the worker while proxy_pass ran on undici 7.)
 */
t.test('gzip of a long proxied body keeps the server up', async (t) => {
  const backend: Backend = await startBackend(t);
  const rd = await startRedis2d(`gzip on; gzip_types application/octet-stream;
    server { listen 127.0.0.1:{port}; location /b/ { proxy_pass http://127.0.0.1:${backend.port}/; } }`);
  t.teardown(() => rd.stop());
  let ok = 0;
  for (let i = 0; i < 3; i++) {
    const p = parse(await raw(rd.port, get(`/b/bytes?n=${3000000 + i}`, 'Accept-Encoding: gzip'), 1500), rd.port);
    if (plain(p).length === 3000000 + i) ok++;
  }
  t.equal(ok, 3, 'three 3 MB bodies gzipped whole');
  t.match(rd.stderr(), /^$/, 'no crash output');
});
