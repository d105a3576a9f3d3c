import t from 'tap';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * The small site directives against Debian's nginx on one config:
 * empty_gif (GET, HEAD, 405, a 304 from its fixed Last-Modified, gzip
 * leaving image/gif alone), absolute_redirect, port_in_redirect and
 * server_name_in_redirect on a directory's 301, `return 301 /path` and
 * error_page's redirect, with and without Host (and a Host with a port);
 * conditional requests on a proxied 200 (nginx's upstream disables the
 * not-modified filter) and on the file itself.
 */

const HTTP = `
  gzip on;
  server {
    listen 127.0.0.1:{port};
    server_name first.example second.example;
    root {dir}/html;
    location = /gif { empty_gif; }
    location /abs/ { absolute_redirect off; }
    location /noport/ { port_in_redirect off; }
    location /sn/ { server_name_in_redirect on; }
    location /snnoport/ { server_name_in_redirect on; port_in_redirect off; }
    location = /ret { return 301 /target; }
    location = /retabs { absolute_redirect off; return 302 /target?a=1; }
    location = /retsn { server_name_in_redirect on; return 307 /t; }
    location = /retfull { absolute_redirect off; return 301 http://elsewhere/x; }
    location = /ep { absolute_redirect off; error_page 404 /nope; return 404; }
    location = /ep2 { error_page 404 =301 /there; return 404; }
    # an upstream's 200 is left alone by the not-modified filter (no cache: not cacheable)
    location /px/ {
      proxy_set_header If-None-Match ""; proxy_set_header If-Modified-Since ""; proxy_set_header If-Match "";
      proxy_set_header If-Unmodified-Since "";
      proxy_pass http://127.0.0.1:{port}/files/;
    }
    location /files/ { alias {dir}/html/; }
  }
  server {
    listen 127.0.0.1:{port};
    server_name ~^re(?<x>.+)$;
    location /sn/ { server_name_in_redirect on; }
  }
`;

function setup(srv: Running): void {
  for (const d of ['abs/d', 'noport/d', 'sn/d', 'snnoport/d']) mkdirSync(join(srv.dir, 'html', d), { recursive: true });
  writeFileSync(join(srv.dir, 'html', 'f.txt'), 'file\n');
  utimesSync(join(srv.dir, 'html', 'f.txt'), 1e9, 1e9);
}

const get = (path: string, ...headers: string[]): string =>
  `GET ${path} HTTP/1.1\r\nHost: h\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`;

const CASES: Array<[string, string]> = [
  ['empty_gif', get('/gif')],
  ['empty_gif HEAD', get('/gif').replace(/^GET/, 'HEAD')],
  ['empty_gif POST', 'POST /gif HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc'],
  ['empty_gif If-Modified-Since', get('/gif', 'If-Modified-Since: Mon, 28 Sep 1970 06:00:00 GMT')],
  ['empty_gif, gzip leaves image/gif alone', get('/gif', 'Accept-Encoding: gzip')],
  ['directory 301, absolute', get('/abs')],
  ['directory 301, absolute_redirect off', get('/abs/d')],
  ['directory 301 with args, absolute_redirect off', get('/abs/d?q=1')],
  ['port_in_redirect off', get('/noport/d')],
  ['server_name_in_redirect on', get('/sn/d')],
  ['server_name_in_redirect on, port off', get('/snnoport/d')],
  ['Host with a port', get('/noport/d').replace('Host: h', 'Host: h.example:8080')],
  ['no Host (HTTP/1.0)', 'GET /sn/d HTTP/1.0\r\n\r\n'],
  ['no Host, Host-less default', 'GET /noport/d HTTP/1.0\r\n\r\n'],
  ['return 301 /target', get('/ret')],
  ['return 302, absolute_redirect off', get('/retabs')],
  ['return 307, server_name_in_redirect', get('/retsn')],
  ['return 301 with a full URL, absolute_redirect off', get('/retfull')],
  ['error_page to a URI, absolute_redirect off', get('/ep')],
  ['error_page =301 /there', get('/ep2')],
  ['proxied, If-None-Match *', get('/px/f.txt', 'If-None-Match: *')],
  ['proxied, If-Modified-Since equal', get('/px/f.txt', 'If-Modified-Since: Sun, 09 Sep 2001 01:46:40 GMT')],
  ['proxied, If-Match other', get('/px/f.txt', 'If-Match: "zz"')],
  ['proxied, If-Unmodified-Since earlier', get('/px/f.txt', 'If-Unmodified-Since: Sun, 09 Sep 2001 01:46:39 GMT')],
  ['direct, If-Modified-Since equal', get('/files/f.txt', 'If-Modified-Since: Sun, 09 Sep 2001 01:46:40 GMT')],
  ['regex server_name, server_name_in_redirect', get('/sn/d').replace('Host: h', 'Host: reabc')],
];

t.test('post_action against Debian nginx', { skip: hasNginx ? false : 'Debian nginx not installed' }, async (t) => {
  const http = `
    log_format pa '$status "$request" $uri $body_bytes_sent';
    server {
      listen 127.0.0.1:{port};
      root {dir}/html;
      access_log {dir}/access.log pa;
      location /pa/ { post_action /track; alias {dir}/html/; }
      location /pan/ { post_action @named; alias {dir}/html/; }
      location /pamiss/ { post_action /nothing-here; alias {dir}/html/; }
      location /paret/ { post_action /track; return 200 "ret\\n"; }
      location = /track { proxy_pass http://127.0.0.1:{port}/seen; }
      location = /seen { return 204; }
      location @named { return 202 "named"; }
      location /chain/ { post_action /chain2; alias {dir}/html/; }
      location = /chain2 { post_action /seen; return 200 "c2"; }
    }`;
  const ng = await startNginx(http);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(http);
  t.teardown(() => rd.stop());
  for (const srv of [ng, rd]) writeFileSync(join(srv.dir, 'html', 'f.txt'), 'file\n');
  const reqs = ['/pa/f.txt', '/pan/f.txt', '/pamiss/f.txt', '/paret/', '/chain/f.txt', '/pa/missing.txt'];
  for (const path of reqs) {
    const req = get(path);
    const a = normalize(await raw(ng.port, req, 3000), ng.port);
    const b = normalize(await raw(rd.port, req, 3000), rd.port);
    t.equal(b, a, `${path}: the response`);
  }
  // keep-alive: the next request on the connection is served after the post action
  const two = `GET /pa/f.txt HTTP/1.1\r\nHost: h\r\n\r\nGET /pa/f.txt HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`;
  t.equal(normalize(await raw(rd.port, two, 3000), rd.port), normalize(await raw(ng.port, two, 3000), ng.port), 'keep-alive after a post action');
  await new Promise((r) => setTimeout(r, 300));
  const { readFileSync } = await import('node:fs');
  // redis2d's proxy speaks HTTP/1.1 to its peer (docs), and the error page's length counts the server's name
  const log = (s: Running): string[] =>
    readFileSync(join(s.dir, 'access.log'), 'latin1')
      .split('\n')
      .map((l) => l.replace('"GET /seen HTTP/1.0"', '"GET /seen HTTP/1.1"').replace(/^(404 .* \/track) \d+$/, '$1 N'))
      .sort();
  t.same(log(rd), log(ng), 'the same access log lines (the post actions\' own requests included)');
  const errs = (s: Running): string[] => s.errorLog().split('\n').filter((l) => /\[(error|crit)\]/.test(l)).map((l) => l.replace(/^.*?\[/, '[').replace(/ \d+#\d+: \*\d+/, '').replaceAll(s.dir, '{dir}').replaceAll(`:${s.port}`, ':PORT'));
  t.same(errs(rd), errs(ng), 'the same error log lines');
});

t.test('redirects and empty_gif against Debian nginx', { skip: hasNginx ? false : 'Debian nginx not installed' }, async (t) => {
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
});
