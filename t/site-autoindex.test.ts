import t from 'tap';
import { mkdirSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * autoindex against Debian's nginx on one directory tree (the same names,
 * sizes and mtimes under both servers): HTML with long, escaped, UTF-8
 * and directory names, exact and rounded sizes, localtime; JSON, JSONP
 * (good, missing, bad and long callbacks) and XML; HEAD, POST, index
 * files winning over the listing, a missing directory, gzip of the page.
 * The whole response is compared byte for byte.
 */

const HTTP = `
  server {
    listen 127.0.0.1:{port};
    root {dir}/html;
    location /l/ { autoindex on; alias {dir}/html/tree/; }
    location /round/ { autoindex on; autoindex_exact_size off; alias {dir}/html/tree/; }
    location /local/ { autoindex on; autoindex_localtime on; alias {dir}/html/tree/; }
    location /json/ { autoindex on; autoindex_format json; alias {dir}/html/tree/; }
    location /jsonp/ { autoindex on; autoindex_format jsonp; alias {dir}/html/tree/; }
    location /xml/ { autoindex on; autoindex_format xml; alias {dir}/html/tree/; }
    location /idx/ { autoindex on; alias {dir}/html/withindex/; }
    location /gz/ { autoindex on; gzip on; alias {dir}/html/tree/; }
    location /utf/ { autoindex on; charset utf-8; alias {dir}/html/tree/; }
    location /koi/ { autoindex on; charset koi8-r; alias {dir}/html/tree/; }
    location /off/ { alias {dir}/html/tree/; }
    location /missing/ { autoindex on; alias {dir}/html/nothere/; }
  }
`;

const T = Date.UTC(2023, 5, 7, 8, 9, 10) / 1000;

function setup(srv: Running): void {
  const root = join(srv.dir, 'html', 'tree');
  mkdirSync(root, { recursive: true });
  const file = (name: string, size: number, mtime = T): void => {
    const p = join(root, name);
    writeFileSync(p, '');
    if (size) truncateSync(p, size);
    utimesSync(p, mtime, mtime);
  };
  file('plain.txt', 12);
  file('exactly-fifty-characters-long-name-0123456789.txt', 9999);
  file('a-name-that-is-longer-than-fifty-characters-for-sure.txt', 10000);
  file('x'.repeat(49), 10240);
  file('<b>&"quoted"<\b>.html', 512 * 1024);
  file('<a-long-escaped-name>&-longer-than-fifty-characters-total.txt', 1024 * 1024 - 1);
  file('with space and %.txt', 1024 * 1024 + 512 * 1024);
  file('caf\u00e9-utf8.txt', 3 * 1024 * 1024 * 1024, T - 86400 * 400);
  file('\u65e5\u672c\u8a9e\u306e\u540d\u524d\u304c\u3068\u3066\u3082\u9577\u3044\u30d5\u30a1\u30a4\u30eb\u540d\u3067\u3059\u3088\u3002\u3082\u3063\u3068\u9577\u304f\u3057\u307e\u3057\u3087\u3046\u304b\u3002\u3053\u308c\u3067\u5341\u5206\u3067\u3057\u3087\u3046\u304b\u306d\u3002.txt', 1);
  file('.hidden', 5);
  file('Z-upper', 0);
  file('tab\there', 3);
  mkdirSync(join(root, 'subdir'));
  utimesSync(join(root, 'subdir'), T, T);
  mkdirSync(join(root, 'a-directory-whose-name-has-exactly-forty-nine-chr'));
  utimesSync(join(root, 'a-directory-whose-name-has-exactly-forty-nine-chr'), T, T);
  mkdirSync(join(root, 'a-directory-whose-name-is-longer-than-fifty-characters'));
  utimesSync(join(root, 'a-directory-whose-name-is-longer-than-fifty-characters'), T, T);
  symlinkSync('plain.txt', join(root, 'link-to-plain'));
  symlinkSync('nowhere', join(root, 'dangling'));
  const idx = join(srv.dir, 'html', 'withindex');
  mkdirSync(idx);
  writeFileSync(join(idx, 'index.html'), 'the index\n');
}

const get = (path: string, ...headers: string[]): string =>
  `GET ${path} HTTP/1.1\r\nHost: h\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`;

const CASES: Array<[string, string]> = [
  ['html', get('/l/')],
  ['html, subdir', get('/l/subdir/')],
  ['html, charset utf-8: names counted in characters', get('/utf/')],
  ['html, charset koi8-r: names counted in bytes', get('/koi/')],
  ['html, rounded sizes', get('/round/')],
  ['html, localtime', get('/local/')],
  ['json', get('/json/')],
  ['jsonp with callback', get('/jsonp/?callback=my.cb_1')],
  ['jsonp, callback among args', get('/jsonp/?a=1&CallBack=x')],
  ['jsonp without callback', get('/jsonp/')],
  ['jsonp, empty callback', get('/jsonp/?callback=')],
  ['jsonp, bad callback', get('/jsonp/?callback=alert(1)')],
  ['jsonp, long callback', get(`/jsonp/?callback=${'c'.repeat(129)}`)],
  ['xml', get('/xml/')],
  ['HEAD', get('/l/').replace(/^GET/, 'HEAD')],
  ['POST', 'POST /l/ HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab'],
  ['index file wins', get('/idx/')],
  ['autoindex off', get('/off/')],
  ['missing directory', get('/missing/')],
  ['a file, not a directory', get('/l/plain.txt')],
  ['HTTP/1.0', 'GET /l/subdir/ HTTP/1.0\r\n\r\n'],
];

t.test('autoindex against Debian nginx', { skip: hasNginx ? false : 'Debian nginx not installed' }, async (t) => {
  const ng = await startNginx(HTTP);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(HTTP);
  t.teardown(() => rd.stop());
  setup(ng);
  setup(rd);
  for (const [name, req] of CASES) {
    const a = normalize(await raw(ng.port, req, 3000), ng.port);
    const b = normalize(await raw(rd.port, req, 3000), rd.port);
    t.equal(b, a, name);
  }
  // the gzipped page: the same header, the same page once decompressed
  const { gunzipSync } = await import('node:zlib');
  const split = (s: string): [string, Buffer] => {
    const i = s.indexOf('\r\n\r\n');
    let body = s.slice(i + 4);
    let out = '';
    for (let p = 0; ; ) {
      const e = body.indexOf('\r\n', p);
      const n = parseInt(body.slice(p, e), 16);
      if (!(n > 0)) break;
      out += body.slice(e + 2, e + 2 + n);
      p = e + 2 + n + 2;
    }
    body = out;
    return [s.slice(0, i), Buffer.from(body, 'latin1')];
  };
  const [ha, ba] = split(normalize(await raw(ng.port, get('/gz/', 'Accept-Encoding: gzip'), 3000), ng.port));
  const [hb, bb] = split(normalize(await raw(rd.port, get('/gz/', 'Accept-Encoding: gzip'), 3000), rd.port));
  t.equal(hb, ha, 'gzip: header');
  t.equal(gunzipSync(bb).toString('latin1'), gunzipSync(ba).toString('latin1'), 'gzip: page');
  const logs = (s: Running): string[] => s.errorLog().split('\n').filter((l) => /\[(error|crit|info)\].*(callback|opendir|forbidden|stat)/.test(l)).map((l) => l.replace(/^.*?\[/, '[').replace(/:\d+/g, ':N').replace(/ \d+#\d+: \*\d+/, '').replaceAll(s.dir, '{dir}'));
  t.same(logs(rd), logs(ng), 'the same error log lines');
});
