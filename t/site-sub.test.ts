import t from 'tap';
import { existsSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBackend } from './helpers/backend.js';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * sub_filter against Debian's nginx on one config: one and several
 * patterns, case-insensitive matching, sub_filter_once on and off,
 * overlapping and prefix patterns (nginx's scan order), variables in the
 * pattern and the replacement, sub_filter_types, sub_filter_last_modified,
 * and bodies that arrive in many pieces (echo, a slow proxied body) so a
 * pattern is cut by a piece's end. Whole responses, byte for byte.
 */

const MODS = '/usr/lib/nginx/modules';
const LOAD = `load_module ${MODS}/ndk_http_module.so;\nload_module ${MODS}/ngx_http_echo_module.so;`;
const skip = !hasNginx || !existsSync(`${MODS}/ngx_http_echo_module.so`) ? 'Debian nginx with the echo module not installed' : false;

const HTTP = (backend: number): string => `
  types { text/html html; text/plain txt; }
  server {
    listen 127.0.0.1:{port};
    root {dir}/html;
    location /one/ { sub_filter world THERE; alias {dir}/html/; }
    location /all/ { sub_filter world THERE; sub_filter_once off; alias {dir}/html/; }
    location /many/ { sub_filter ab X; sub_filter b Y; sub_filter abc Z; sub_filter_once off; alias {dir}/html/; }
    location /manyonce/ { sub_filter ab X; sub_filter b Y; sub_filter abc Z; alias {dir}/html/; }
    location /quirk/ { sub_filter a 1; sub_filter b 2; sub_filter_once off; alias {dir}/html/; }
    location /vars/ { sub_filter $arg_f "[$arg_t $uri]"; sub_filter_once off; alias {dir}/html/; }
    location /types/ { sub_filter world THERE; sub_filter_types text/plain; alias {dir}/html/; }
    location /lm/ { sub_filter world THERE; sub_filter_last_modified on; alias {dir}/html/; }
    location /empty/ { sub_filter world ""; sub_filter_once off; alias {dir}/html/; }
    location /inh/ {
      sub_filter world OUTER;
      location /inh/in/ { alias {dir}/html/; }
      location /inh/own/ { sub_filter hello HI; alias {dir}/html/; }
    }
    location = /echo {
      default_type text/html;
      sub_filter "<a href" "<A HREF"; sub_filter "needle" "pin"; sub_filter_once off;
      echo -n "xx<a "; echo_sleep 0.01; echo -n "hre"; echo_sleep 0.01; echo -n "f=1> nee";
      echo_sleep 0.01; echo -n "dle <a href"; echo_sleep 0.01; echo " end <a hr";
    }
    location = /echoend { default_type text/html; sub_filter abcdef X; echo -n "zzabc"; echo_sleep 0.01; echo -n "de"; }
    location = /sub { default_type text/html; sub_filter main MAIN; sub_filter_once off; echo "main before"; echo_location /inner; echo "main after"; }
    location = /inner { echo "inner main"; }
    location = /ret { default_type text/html; sub_filter ret RET; return 200 "ret ret\\n"; }
    location /slow/ { sub_filter "ip 2\ndr" "<X>"; sub_filter "DRIP 4" "last"; sub_filter_once off; sub_filter_types text/plain; proxy_pass http://127.0.0.1:${backend}/; }
    location = /r404 { sub_filter "not found" "Missing"; sub_filter_once off; return 404; }
  }
`;

const MTIME = Date.UTC(2022, 1, 3, 4, 5, 6) / 1000;

function setup(srv: Running): void {
  const put = (name: string, body: string): void => {
    writeFileSync(join(srv.dir, 'html', name), body);
    utimesSync(join(srv.dir, 'html', name), MTIME, MTIME);
  };
  put('a.html', 'Hello World, hello world, WORLD! worl wor\n');
  put('a.txt', 'Hello World, hello world\n');
  put('m.html', 'abcabc ab b abab bab xabcx aab\n');
  put('q.html', 'ba ab aabb baba\n');
  put('e.html', '');
}

const get = (path: string, ...headers: string[]): string =>
  `GET ${path} HTTP/1.1\r\nHost: h\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`;

const CASES: Array<[string, string]> = [
  ['once', get('/one/a.html')],
  ['all', get('/all/a.html')],
  ['several patterns', get('/many/m.html')],
  ['several patterns, once', get('/manyonce/m.html')],
  ['patterns one after the other', get('/quirk/q.html')],
  ['variables', get('/vars/a.html?f=HELLO&t=hi')],
  ['variables: an empty pattern', get('/vars/a.html?t=hi')],
  ['text/plain not a type', get('/one/a.txt')],
  ['sub_filter_types text/plain', get('/types/a.txt')],
  ['sub_filter_types keeps text/html', get('/types/a.html')],
  ['sub_filter_last_modified on', get('/lm/a.html')],
  ['empty replacement', get('/empty/a.html')],
  ['empty file', get('/one/e.html')],
  ['inherited', get('/inh/in/a.html')],
  ['own lines replace the parent\'s', get('/inh/own/a.html')],
  ['HEAD', get('/one/a.html').replace(/^GET/, 'HEAD')],
  ['304', get('/one/a.html', 'If-Modified-Since: Thu, 03 Feb 2022 04:05:06 GMT')],
  ['Range', get('/one/a.html', 'Range: bytes=0-4')],
  ['patterns cut across pieces', get('/echo')],
  ['a partial match at the end', get('/echoend')],
  ['subrequests', get('/sub')],
  ['return', get('/ret')],
  ['an error page', get('/r404')],
  ['HTTP/1.0', 'GET /all/a.html HTTP/1.0\r\n\r\n'],
  ['a slow proxied body, a pattern across reads', get('/slow/slow?ms=20&n=5')],
];

t.test('sub_filter against Debian nginx', { skip }, async (t) => {
  const backend = await startBackend(t);
  const ng = await startNginx(HTTP(backend.port), LOAD);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(HTTP(backend.port), LOAD);
  t.teardown(() => rd.stop());
  setup(ng);
  setup(rd);
  const dechunk = (s: string): string => {
    const i = s.indexOf('\r\n\r\n');
    if (i === -1 || !/Transfer-Encoding: chunked/.test(s.slice(0, i))) return s;
    let body = '';
    for (let p = i + 4; ; ) {
      const e = s.indexOf('\r\n', p);
      const n = parseInt(s.slice(p, e), 16);
      if (!(n > 0)) break;
      body += s.slice(e + 2, e + 2 + n);
      p = e + 2 + n + 2;
    }
    return `${s.slice(0, i + 4)}${body}`;
  };
  for (const [name, req] of CASES) {
    const a = normalize(dechunk(await raw(ng.port, req, 3000)), ng.port);
    const b = normalize(dechunk(await raw(rd.port, req, 3000)), rd.port);
    t.equal(b, a, name);
    if (name.startsWith('a slow proxied body')) t.match(b, /drip 0\ndrip 1\ndr<X>ip 3\nlast\n/, 'the pattern across reads was replaced');
  }
});
