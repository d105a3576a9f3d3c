import t from 'tap';
import { existsSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * `expires` against Debian's nginx on one config: every kind of value
 * (time, negative, 0, epoch, max, off, modified, @daily, variables), the
 * statuses it applies to, a response's own Expires and Cache-Control
 * lines (proxied from a location of the same server), add_header after
 * it. Expires is written as its distance from the response's Date, so
 * both servers compare alike within one second; a pair straddling a
 * second boundary is asked again (at most 3 times).
 */

const MODS = '/usr/lib/nginx/modules';
const LOAD = `load_module ${MODS}/ndk_http_module.so;\nload_module ${MODS}/ngx_http_echo_module.so;`;
const skip = !hasNginx || !existsSync(`${MODS}/ngx_http_echo_module.so`) ? 'Debian nginx with the echo module not installed' : false;

const HTTP = `
  default_type text/plain;
  server {
    listen 127.0.0.1:{port};
    root {dir}/html;
    location /h1/ { expires 1h; alias {dir}/html/; }
    location /zero/ { expires 0; alias {dir}/html/; }
    location /neg/ { expires -1; alias {dir}/html/; }
    location /negd/ { expires -2d; alias {dir}/html/; }
    location /epoch/ { expires epoch; alias {dir}/html/; }
    location /max/ { expires max; alias {dir}/html/; }
    location /off/ { expires off; alias {dir}/html/; }
    location /mod/ { expires modified +1h; alias {dir}/html/; }
    location /modneg/ { expires modified -1h; alias {dir}/html/; }
    location /modbig/ { expires modified 1y; alias {dir}/html/; }
    location /daily/ { expires @15h30m; alias {dir}/html/; }
    location /daily0/ { expires @0; alias {dir}/html/; }
    location /var/ { expires $arg_e; alias {dir}/html/; }
    location /varmod/ { expires modified $arg_e; alias {dir}/html/; }
    location /inh/ {
      expires 30m;
      location /inh/in/ { alias {dir}/html/; }
      location /inh/off/ { expires off; alias {dir}/html/; }
    }
    location /addh/ { expires 1h; add_header Cache-Control private; add_header X-A a; alias {dir}/html/; }
    location = /ret { expires 1h; return 200 "ret\\n"; }
    location = /ret404 { expires 1h; return 404; }
    location = /ret302 { expires 1h; return 302 /x; }
    location = /ret500 { expires 1h; add_header X-B b always; return 500; }
    location = /echo { expires 2h; echo hello; echo_location /sub; }
    location = /sub { expires epoch; echo sub; }
    location /self/ { expires 1h; proxy_pass http://127.0.0.1:{port}/origin/; }
    location /selfmod/ { expires modified 1h; proxy_pass http://127.0.0.1:{port}/origin/; }
    location /origin/ {
      location /origin/cc { add_header Cache-Control "no-store"; add_header Cache-Control "must-revalidate"; add_header X-C c; return 200 "cc\\n"; }
      location /origin/ex { add_header Expires "Wed, 01 Jan 2020 00:00:00 GMT"; return 200 "ex\\n"; }
      location /origin/f.txt { alias {dir}/html/f.txt; }
    }
  }
`;

const MTIME = Date.UTC(2024, 0, 2, 3, 4, 5) / 1000;

function setup(srv: Running): void {
  const p = join(srv.dir, 'html', 'f.txt');
  writeFileSync(p, 'file\n');
  utimesSync(p, MTIME, MTIME);
}

/** Expires as its distance from Date, then the usual masks */
function shape(resp: string, port: number): string {
  const date = /\r\nDate: ([^\r]+)\r\n/.exec(resp);
  let s = resp;
  if (date) {
    const d = Date.parse(date[1]!) / 1000;
    s = s.replace(/\r\nExpires: ([^\r]+)\r\n/g, (m, v: string) => {
      const e = Date.parse(v) / 1000;
      return Number.isNaN(e) || /^(Thu, 01 Jan 1970|Thu, 31 Dec 2037|Wed, 01 Jan 2020)/.test(v) ? m : `\r\nExpires: Date${e - d >= 0 ? '+' : ''}${e - d}\r\n`;
    });
  }
  return normalize(s, port);
}

const get = (path: string, ...headers: string[]): string =>
  `GET ${path} HTTP/1.1\r\nHost: h\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`;

const CASES: Array<[string, string]> = [
  ['1h', get('/h1/f.txt')],
  ['0', get('/zero/f.txt')],
  ['-1', get('/neg/f.txt')],
  ['-2d', get('/negd/f.txt')],
  ['epoch', get('/epoch/f.txt')],
  ['max', get('/max/f.txt')],
  ['off', get('/off/f.txt')],
  ['modified +1h (a file of 2024)', get('/mod/f.txt')],
  ['modified -1h', get('/modneg/f.txt')],
  ['modified 1y', get('/modbig/f.txt')],
  ['modified without Last-Modified', get('/mod/nothing-here')],
  ['@15h30m', get('/daily/f.txt')],
  ['@0', get('/daily0/f.txt')],
  ['variable 1h', get('/var/f.txt?e=1h')],
  ['variable epoch', get('/var/f.txt?e=epoch')],
  ['variable max', get('/var/f.txt?e=max')],
  ['variable off', get('/var/f.txt?e=off')],
  ['variable -5m', get('/var/f.txt?e=-5m')],
  ['variable @1h', get('/var/f.txt?e=@1h')],
  ['variable @25h', get('/var/f.txt?e=@25h')],
  ['variable bad', get('/var/f.txt?e=bad')],
  ['variable empty', get('/var/f.txt')],
  ['modified variable 1d', get('/varmod/f.txt?e=1d')],
  ['modified variable epoch (a time there)', get('/varmod/f.txt?e=epoch')],
  ['modified variable @1h', get('/varmod/f.txt?e=@1h')],
  ['inherited', get('/inh/in/f.txt')],
  ['inherited, then off', get('/inh/off/f.txt')],
  ['add_header Cache-Control after', get('/addh/f.txt')],
  ['return 200', get('/ret')],
  ['404: none', get('/ret404')],
  ['302', get('/ret302')],
  ['500 with add_header always', get('/ret500')],
  ['static 404', get('/h1/missing')],
  ['301 for a directory', get('/h1')],
  ['304', get('/h1/f.txt', 'If-Modified-Since: Tue, 02 Jan 2024 03:04:05 GMT')],
  ['HEAD', get('/max/f.txt').replace(/^GET/, 'HEAD')],
  ['echo with a subrequest', get('/echo')],
  ['proxied Cache-Control lines', get('/self/cc')],
  ['proxied Expires', get('/self/ex')],
  ['proxied Last-Modified, modified', get('/selfmod/f.txt')],
];

t.test('expires against Debian nginx', { skip }, async (t) => {
  const ng = await startNginx(HTTP, LOAD);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(HTTP, LOAD);
  t.teardown(() => rd.stop());
  setup(ng);
  setup(rd);
  for (const [name, req] of CASES) {
    let a = '';
    let b = '';
    for (let i = 0; i < 3; i++) {
      const ra = await raw(ng.port, req, 3000);
      const rb = await raw(rd.port, req, 3000);
      a = shape(ra, ng.port);
      b = shape(rb, rd.port);
      const da = /\r\nDate: ([^\r]+)/.exec(ra)?.[1];
      const db = /\r\nDate: ([^\r]+)/.exec(rb)?.[1];
      if (a === b || da === db) break;
    }
    t.equal(b, a, name);
  }
});
