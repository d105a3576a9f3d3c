import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * The charset filter against Debian's nginx on one config, with the maps
 * redis2d ships (conf/koi-utf, win-utf, koi-win, from the encodings'
 * definitions) included by both: the `; charset=` parameter (types,
 * charset off, 301/302 left alone), recoding koi8-r → utf-8 (Content-Length
 * dropped), utf-8 → koi8-r (a character the map lacks as `&#N;`, invalid
 * UTF-8 as `?`), koi8-r → windows-1251 (8-bit: the length kept), a
 * variable charset (an unknown one logged), an upstream's own charset
 * (override_charset), subrequests recoded into the main request's
 * charset, and gzip after recoding. Bodies are compared byte for byte.
 */

const ROOT = resolve(import.meta.dirname, '..');
const MODS = '/usr/lib/nginx/modules';
const LOAD = `load_module ${MODS}/ndk_http_module.so;\nload_module ${MODS}/ngx_http_echo_module.so;`;
const skip = !hasNginx || !existsSync(`${MODS}/ngx_http_echo_module.so`) ? 'Debian nginx with the echo module not installed' : false;

const HTTP = `
  include ${ROOT}/conf/koi-utf;
  include ${ROOT}/conf/win-utf;
  include ${ROOT}/conf/koi-win;
  types { text/html html; text/plain txt; text/css css; image/png png; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:{port};
    root {dir}/html;
    location /u/ { charset utf-8; alias {dir}/html/; }
    location /upper/ { charset UTF-8; alias {dir}/html/; }
    location /types/ { charset utf-8; charset_types text/css; alias {dir}/html/; }
    location /any/ { charset utf-8; charset_types *; alias {dir}/html/; }
    location /off/ { charset utf-8; location /off/in/ { charset off; alias {dir}/html/; } }
    location /k2u/ { charset utf-8; source_charset koi8-r; alias {dir}/html/; }
    location /u2k/ { charset koi8-r; source_charset utf-8; alias {dir}/html/; }
    location /k2w/ { charset windows-1251; source_charset koi8-r; alias {dir}/html/; }
    location /w2k/ { charset koi8-r; source_charset windows-1251; alias {dir}/html/; }
    location /same/ { charset utf-8; source_charset UTF-8; alias {dir}/html/; }
    location /var/ { charset $arg_cs; source_charset koi8-r; alias {dir}/html/; }
    location /gz/ { charset utf-8; source_charset koi8-r; gzip on; alias {dir}/html/; }
    location = /r302 { charset utf-8; return 302 /x; }
    location = /r301 { charset utf-8; return 301 /x; }
    location = /ret { charset utf-8; default_type text/html; return 200 "text\\n"; }
    location = /r404 { charset utf-8; return 404; }
    location = /echo { charset utf-8; source_charset koi8-r; default_type text/html; echo_location /sub/win.txt; echo_location /sub/koi.txt; }
    location /sub/ { source_charset windows-1251; alias {dir}/html/; }
    location /px/ { charset utf-8; proxy_pass http://127.0.0.1:{port}/origin/; }
    location /pxover/ { charset windows-1251; override_charset on; proxy_pass http://127.0.0.1:{port}/origin/; }
    location /pxsame/ { charset koi8-r; override_charset on; proxy_pass http://127.0.0.1:{port}/origin/; }
    location /pxnoover/ { charset windows-1251; proxy_pass http://127.0.0.1:{port}/origin/; }
    location /pxplain/ { charset utf-8; proxy_pass http://127.0.0.1:{port}/plain/; }
    location /origin/ { default_type "text/html; charset=koi8-r"; alias {dir}/html/; }
    location /plain/ { types { } default_type "text/html; q=1"; alias {dir}/html/; }
  }
`;

/** "Привет, мир! ≤ ё Ё" and friends in koi8-r, windows-1251 and utf-8 */
const TEXT = 'Привет, мир! Ёлка ёж ≤ ─│ abc\n';

function setup(srv: Running): void {
  const h = join(srv.dir, 'html');
  const enc = (s: string, table: string): Buffer => {
    const d = new TextDecoder(table);
    const rev = new Map<string, number>();
    for (let b = 0; b < 256; b++) rev.set(d.decode(Uint8Array.of(b)), b);
    return Buffer.from([...s].map((c) => rev.get(c) ?? 0x3f));
  };
  writeFileSync(join(h, 'koi.txt'), enc(TEXT, 'koi8-r'));
  writeFileSync(join(h, 'koi.html'), enc(TEXT, 'koi8-r'));
  writeFileSync(join(h, 'win.txt'), enc(TEXT, 'windows-1251'));
  writeFileSync(join(h, 'x.css'), 'body {}\n');
  writeFileSync(join(h, 'x.png'), 'png\n');
  // utf-8 with a character koi8-r lacks (€, 😀), one it has (ё), and broken sequences
  writeFileSync(join(h, 'utf.txt'), Buffer.concat([Buffer.from('ёж € 😀 '), Buffer.from([0xd1, 0x41, 0xe2, 0x82, 0x20, 0xff, 0xc0, 0x80, 0x0a])]));
  // odd-sized: every read piece ends inside a two-byte character
  writeFileSync(join(h, 'big.txt'), Buffer.from('a' + 'ёж€'.repeat(40000) + '\n'));
  writeFileSync(join(h, 'cut.txt'), Buffer.concat([Buffer.from('ab'), Buffer.from('ё').subarray(0, 1)]));
}

const get = (path: string, ...headers: string[]): string =>
  `GET ${path} HTTP/1.1\r\nHost: h\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`;

const CASES: Array<[string, string]> = [
  ['charset utf-8 on text/html', get('/u/koi.html')],
  ['charset UTF-8 as written', get('/upper/koi.html')],
  ['text/plain', get('/u/koi.txt')],
  ['text/css not in charset_types', get('/u/x.css')],
  ['charset_types text/css', get('/types/x.css')],
  ['charset_types text/css drops the defaults', get('/types/koi.txt')],
  ['charset_types *', get('/any/x.png')],
  ['charset off inside', get('/off/in/koi.txt')],
  ['koi8-r to utf-8', get('/k2u/koi.txt')],
  ['koi8-r to utf-8, HEAD', get('/k2u/koi.txt').replace(/^GET/, 'HEAD')],
  ['koi8-r to utf-8, Range', get('/k2u/koi.txt', 'Range: bytes=0-3')],
  ['utf-8 to koi8-r', get('/u2k/utf.txt')],
  ['utf-8 to koi8-r, a cut character at the end', get('/u2k/cut.txt')],
  ['koi8-r to windows-1251', get('/k2w/koi.txt')],
  ['windows-1251 to koi8-r', get('/w2k/win.txt')],
  ['the same charset', get('/same/koi.txt')],
  ['a variable: windows-1251', get('/var/koi.txt?cs=windows-1251')],
  ['a variable: utf-8', get('/var/koi.txt?cs=utf-8')],
  ['a variable: koi8-r', get('/var/koi.txt?cs=KOI8-R')],
  ['a variable: unknown', get('/var/koi.txt?cs=latin9')],
  ['a variable: empty', get('/var/koi.txt')],
  ['302', get('/r302')],
  ['301', get('/r301')],
  ['return 200', get('/ret')],
  ['404', get('/r404')],
  ['a directory 301', get('/u')],
  ['subrequests into the main charset', get('/echo')],
  ['an upstream koi8-r page to utf-8', get('/px/koi.html')],
  ['override_charset: upstream koi8-r to windows-1251', get('/pxover/koi.html')],
  ['override_charset: the same charset', get('/pxsame/koi.html')],
  ['no override_charset: upstream charset kept', get('/pxnoover/koi.html')],
  ['an upstream type with another parameter', get('/pxplain/koi.html')],
];

t.test('charset against Debian nginx', { skip }, async (t) => {
  const ng = await startNginx(HTTP, LOAD);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(HTTP, LOAD);
  t.teardown(() => rd.stop());
  setup(ng);
  setup(rd);
  for (const [name, req] of CASES) {
    const a = normalize(await raw(ng.port, req, 3000), ng.port);
    const b = normalize(await raw(rd.port, req, 3000), rd.port);
    t.equal(b, a, name);
  }
  // recoded, then compressed
  const dechunked = (s: string): [string, string] => {
    const i = s.indexOf('\r\n\r\n');
    let rest = s.slice(i + 4);
    let out = '';
    for (let p = 0; ; ) {
      const e = rest.indexOf('\r\n', p);
      const n = parseInt(rest.slice(p, e), 16);
      if (!(n > 0)) break;
      out += rest.slice(e + 2, e + 2 + n);
      p = e + 2 + n + 2;
    }
    return [s.slice(0, i), out];
  };
  const body = (s: string): string => {
    const [head, out] = dechunked(s);
    return `${head}\n${gunzipSync(Buffer.from(out, 'latin1')).toString('latin1')}`;
  };
  // 280 KB, odd-sized: every piece read ends inside a two-byte character
  // (the servers cut their chunks at other places: the bytes are compared)
  const big = get('/u2k/big.txt');
  const bigA = dechunked(normalize(await raw(ng.port, big, 5000), ng.port));
  const bigB = dechunked(normalize(await raw(rd.port, big, 5000), rd.port));
  t.equal(bigB[0], bigA[0], 'utf-8 to koi8-r, 280 KB: the same header');
  t.equal(bigB[1].length, 1 + 40000 * (2 + 7) + 1, // 'a', then ё ж as two koi8-r bytes and € as &#8364;
    'utf-8 to koi8-r, 280 KB: the length nginx gives');
  t.ok(bigB[1] === bigA[1], 'utf-8 to koi8-r, 280 KB: characters cut between read pieces recoded as nginx');
  const a = body(normalize(await raw(ng.port, get('/gz/koi.html', 'Accept-Encoding: gzip'), 3000), ng.port));
  const b = body(normalize(await raw(rd.port, get('/gz/koi.html', 'Accept-Encoding: gzip'), 3000), rd.port));
  t.equal(b, a, 'recoded, then gzipped');
  t.match(b, /Привет/.source.length ? Buffer.from('Привет').toString('latin1') : '', 'the page is UTF-8 once decompressed');
  const logs = (s: Running): string[] => s.errorLog().split('\n').filter((l) => /charset/.test(l)).map((l) => l.replace(/^.*?\[/, '[').replace(/ \d+#\d+: \*\d+/, '').replaceAll(`:${s.port}`, ':PORT'));
  t.same(logs(rd), logs(ng), 'the same error log lines');
  if (process.env.DBG) console.error(JSON.stringify([logs(rd), logs(ng)], null, 1));
});
