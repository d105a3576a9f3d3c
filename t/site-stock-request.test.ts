import t from 'tap';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * Request parsing switches of ngx_http_core_module against Debian's nginx
 * on one config: merge_slashes (on by default; off keeps every `/` of the
 * path, so locations see them), underscores_in_headers (a name with `_` is
 * kept), ignore_invalid_headers (off keeps a name with any other odd byte;
 * on drops it with nginx's info line). Bytes of the answers and the
 * error-log lines compared.
 */

const skip = hasNginx ? false : 'Debian nginx not installed';

const HTTP = `
  server {
    listen 127.0.0.1:{port};
    server_name a;
    location / { return 200 "$uri|$request_uri|$http_x_foo|$http_x_a_b|$http_x_bad_\\n"; }
    location = /x/y { return 200 "exact $uri\\n"; }
  }
  server {
    listen 127.0.0.1:{port2};
    merge_slashes off;
    underscores_in_headers on;
    location / { return 200 "$uri|$http_x_foo|$http_x_a_b\\n"; }
    location = /x//y { return 200 "exact $uri\\n"; }
  }
  server {
    listen 127.0.0.1:{port3};
    ignore_invalid_headers off;
    location / { return 200 "$uri|$http_x_foo|$http_x_a_b|$http_x_bad_\\n"; }
  }
  server {
    listen 127.0.0.1:{port4};
    recursive_error_pages on;
    error_page 404 /e404;
    error_page 403 /e403;
    location = /e404 { return 403; }
    location = /e403 { return 200 "the 403 page of $request_uri\\n"; }
    location /loop/ { error_page 404 /loop/again; return 404; }
    location /off/ { recursive_error_pages off; error_page 404 /e404; return 404; }
  }
  server {
    listen 127.0.0.1:{port5};
    error_page 404 /e404;
    error_page 403 /e403;
    location = /e404 { return 403; }
    location = /e403 { return 200 "the 403 page\\n"; }
    location /loop/ { error_page 404 /loop/again; return 404; }
  }
`;

const get = (path: string, ...headers: string[]): string =>
  `GET ${path} HTTP/1.1\r\nHost: h\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`;

const CASES: Array<[string, string]> = [
  ['double slashes merged', get('//x///y')],
  ['slashes with dots', get('/a//./b//../c')],
  ['encoded slashes', get('/x%2F%2Fy')],
  ['args keep their slashes', get('/a//b?c//d')],
  ['underscore header dropped', get('/h', 'X_Foo: 1', 'X-Foo: 2')],
  ['underscore inside a name', get('/h', 'X-A_B: 3')],
  ['odd byte in a name', get('/h', 'X-Bad.: 4', 'X-Foo: 5')],
  ['odd byte, empty value', get('/h', 'X@Y:')],
];

const ERROR_CASES: Array<[string, string]> = [
  ['an error page that errs', get('/missing')],
  ['an error page that errs, HEAD', get('/missing').replace('GET', 'HEAD')],
  ['error_page to itself', get('/loop/x')],
  ['recursive_error_pages off in a location', get('/off/x')],
];

async function both(http: string): Promise<[Running, Running]> {
  const ports = async (s: string): Promise<string> => {
    const { freePort } = await import('./helpers/server.js');
    let out = s;
    for (const n of [2, 3, 4, 5]) out = out.replaceAll(`{port${n}}`, String(await freePort()));
    return out;
  };
  const ng = await startNginx(await ports(http));
  const rd = await startRedis2d(await ports(http));
  return [ng, rd];
}

t.test('merge_slashes, underscores_in_headers, ignore_invalid_headers against nginx', { skip }, async (t) => {
  const [ng, rd] = await both(HTTP);
  t.teardown(() => ng.stop());
  t.teardown(() => rd.stop());
  const portsOf = (s: Running): number[] => {
    const conf = readConf(s);
    return [...conf.matchAll(/listen 127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
  };
  const pn = portsOf(ng);
  const pr = portsOf(rd);
  for (let i = 0; i < 5; i++) {
    for (const [name, req] of i < 3 ? CASES : ERROR_CASES) {
      const a = normalize(await raw(pn[i]!, req, 2000), pn[i]!);
      const b = normalize(await raw(pr[i]!, req, 2000), pr[i]!);
      t.equal(b, a, `server ${i + 1}: ${name}`);
    }
  }
  await new Promise((r) => setTimeout(r, 200));
  const lines = (s: Running, ports: number[]): string[] =>
    s.errorLog().split('\n').filter((l) => l.includes('invalid header line')).map((l) => l.replace(/^.*?\[info\] \d+#\d+: \*\d+ /, '').replace(/:\d+/g, ':PORT').replaceAll(String(ports[0]), 'PORT'));
  const want = lines(ng, pn);
  t.ok(want.length >= 4, 'nginx logged the dropped headers');
  t.same(lines(rd, pr), want, 'the info lines of dropped headers');
  const cycles = (s: Running): string[] =>
    s.errorLog().split('\n').filter((l) => l.includes('[error]')).map((l) => l.replace(/^.*?\[error\] \d+#\d+: \*\d+ /, '').replace(/:\d+/g, ':PORT').replace(/\/tmp\/srv-(nginx|redis2d)-\w+/g, 'DIR'));
  const wantCycles = cycles(ng);
  t.ok(wantCycles.some((l) => l.includes('rewrite or internal redirection cycle')), 'nginx logged the cycle');
  t.same(cycles(rd), wantCycles, 'the error lines (redirection cycles)');
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
function readConf(s: Running): string {
  return readFileSync(join(s.dir, 'nginx.conf'), 'latin1');
}
