import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type Backend } from './helpers/backend.js';
import { BIN } from './helpers/proc.js';
import { NGINX, hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * headers-more (more_set_headers, more_clear_headers, more_set_input_headers,
 * more_clear_input_headers) under Debian's nginx with the module loaded and
 * under redis2d: the same raw requests, the same bytes (Date and the
 * server's name normalised). Input headers are seen through echo.
 */

const MODS = '/usr/lib/nginx/modules';
const LOAD = [
  `load_module ${MODS}/ndk_http_module.so;`,
  `load_module ${MODS}/ngx_http_set_misc_module.so;`,
  `load_module ${MODS}/ngx_http_echo_module.so;`,
  `load_module ${MODS}/ngx_http_headers_more_filter_module.so;`,
].join('\n');
const skip =
  !hasNginx || !existsSync(`${MODS}/ngx_http_echo_module.so`) || !existsSync(`${MODS}/ngx_http_headers_more_filter_module.so`)
    ? 'Debian nginx with echo/headers-more not installed'
    : false;

/** a folder both servers read files from */
const FILES = new URL('../fixtures/conf/', import.meta.url).pathname;

const HTTP = `
  default_type text/plain;
  types { text/html html; }
  more_set_headers 'X-Http: h';
  more_set_input_headers 'X-In-Http: h';
  server {
    listen 127.0.0.1:{port};
    more_set_headers 'X-Srv: s';

    # order against add_header: headers-more runs first
    location /order { add_header X-A a1; more_set_headers 'X-M: m1'; echo hi; }
    location /add-set { add_header X-A a1; more_set_headers 'X-A: replaced'; echo hi; }
    location /add-clear { add_header X-A a1; more_clear_headers X-A; echo hi; }

    # the fields nginx prints itself
    location /server { more_set_headers 'Server: foo'; echo hi; }
    location /server-low { more_set_headers 'server: low' 'content-type: a/b'; echo hi; }
    location /noserver { more_clear_headers Server Date; echo hi; }
    location /date { more_set_headers 'Date: today'; echo hi; }
    location /ctype { more_set_headers 'Content-Type: text/x; charset=y'; echo hi; }
    location /noctype { more_clear_headers Content-Type; echo hi; }
    location /noctype2 { more_set_headers 'Content-Type: '; echo hi; }
    location /clen { more_set_headers 'Content-Length: 3'; echo hi; }
    location /clen-ret { more_set_headers 'Content-Length: 10'; return 200 "abcdefghij"; }
    location /clen-twice { more_set_headers 'Content-Length: 9' 'Content-Length: 4'; return 200 "abcd"; }
    location /noclen { more_clear_headers Content-Length; return 200 "abc"; }
    location /clen-bad { more_set_headers 'Content-Length: 2x'; echo hi; }
    location /loc-200 { more_set_headers 'Location: /there'; echo hi; }
    location /loc-302 { more_set_headers 'Location: http://x/y' 'X-After: 1'; return 302 /z; }
    location /loc-rel { more_set_headers 'Location: /rel'; return 301 http://else/; }
    location /loc-other { more_set_headers 'Location: elsewhere' 'X-After: 1'; echo hi; }
    location /noloc { more_clear_headers Location; return 302 /z; }
    location /hop { more_set_headers 'Connection: foo' 'Transfer-Encoding: bar' 'Keep-Alive: baz'; echo hi; }

    # replace in place, clear, wildcards
    location /case { more_set_headers 'x-low: 1'; more_set_headers 'X-LOW: 2'; echo hi; }
    location /replace { more_set_headers 'A: 1'; more_set_headers 'a: 2' 'B: 3'; more_set_headers 'A: 4'; echo hi; }
    location /wild { more_set_headers 'X-Foo-A: 1' 'X-Foo-B: 2' 'X-Bar: 3'; more_clear_headers 'X-Foo-*'; echo hi; }
    location /wild-set { more_set_headers 'X-P-1: 1' 'X-P-2: 2'; more_set_headers 'X-P-*: v'; echo hi; }
    location /wild-new { more_set_headers 'X-P-*: v' 'X-Q: 1'; more_set_headers 'X-Q*:'; echo hi; }
    location /wild-builtin { more_clear_headers 'Ser*' 'Content-*' 'X-*'; more_set_headers 'X-Z: 1'; echo hi; }
    location /wild-prefix { more_set_headers 'X-A: 1' 'X-AB: 2' 'Y: 3'; more_clear_headers 'x-a*'; echo hi; }
    location /clear-forms { more_set_headers 'X-A: 1' 'X-B: 2' 'X-C: 3' 'X-D: 4'; more_clear_headers 'X-A: b' ' X-B' 'X-C junk'; more_set_headers 'X-D'; echo hi; }
    location /vars { more_set_headers 'X-V: $uri-$arg_a' 'X-E: e'; more_set_headers 'X-E: $arg_none'; echo hi; }
    location /parse { more_set_headers '::v' 'a::b' ' L: sp' ' LONG: x' 'Q :  :x' 'C:  d  ' 'D:	e' 'Multi: a: b:c' ':'; echo hi; }

    # -s and -t
    location /status { more_set_headers -s 404 'X-S: only404'; more_set_headers -s '200 201' 'X-T: ok'; echo hi; }
    location /status-multi { more_set_headers -s 200 -s 404 'X-S: a' -s 500 'X-S2: b'; more_set_headers -s '' 'X-E: empty list'; echo hi; }
    location /e404 { return 404; more_set_headers -s 404 'X-S: only404'; more_set_headers -s 200 'X-No: 1'; }
    location /static404 { more_set_headers -s 404 'X-E: e'; }
    location /errpage { error_page 404 /err; more_set_headers 'X-F: f'; }
    location /err { more_set_headers -s 404 'X-Err: e'; echo "err page"; }
    location /type { more_set_headers -t 'text/html text/plain' 'X-T: typed'; more_set_headers -t TEXT/PLAIN 'X-Up: 1'; more_set_headers -t 'a/b;text/plain;' 'X-Semi: 1'; echo hi; }
    location /type-set { more_set_headers 'Content-Type: Text/Plain ; x=y'; more_set_headers -t Text/Plain 'X-1: a'; more_set_headers -t 'Text/Plain ' 'X-2: b'; echo hi; }
    location /type-case { more_set_headers 'Content-Type: Text/Plain'; more_set_headers -t Text/Plain 'X-1: a'; more_set_headers -t text/plain 'X-2: b'; echo hi; }
    location /type-none { more_clear_headers Content-Type; more_set_headers -t text/plain 'X-1: a'; echo hi; }
    location /type-both { more_set_headers -s 200 -t text/plain 'X-1: a'; more_set_headers -s 404 -t text/plain 'X-2: a'; echo hi; }
    location /type.html { more_set_headers -t text/html 'X-1: html'; return 204; }
    location /type-ret { more_set_headers -t text/plain 'X-1: a'; return 200; }
    location /type-err { more_set_headers -t text/html 'X-1: html page'; return 403; }

    # a static file: Last-Modified, ETag, Accept-Ranges from the file
    location /file/ { alias ${FILES}; more_set_headers 'ETag: "e"' 'X-F: f'; more_clear_headers Accept-Ranges; }
    location /file-lm/ { alias ${FILES}; more_set_headers 'Last-Modified: yesterday'; }
    location /file-nolm/ { alias ${FILES}; more_clear_headers Last-Modified ETag; }

    # levels: http + server + location (joined), nested locations, if
    location /inherit { more_set_headers 'X-Loc: l'; echo hi; }
    location /inherit-clear { more_clear_headers X-Srv; echo hi; }
    location /inherit-replace { more_set_headers 'X-Srv: replaced' 'X-Http: r'; echo hi; }
    location /outer { more_set_headers 'X-G: g'; location /outer/in { more_set_headers 'X-In: i'; echo nested; } }
    location /if { if ($arg_x) { more_set_headers 'X-If: i'; } more_set_headers 'X-Loc: l'; echo hi; }

    # request headers
    location /in { more_set_input_headers 'X-Foo: new' 'X-Bar: $arg_b'; echo "[$http_x_foo] [$http_x_bar] [$http_x_in_http]"; }
    location /in-r { more_set_input_headers -r 'X-Foo: new' 'X-Bar: bar'; echo "[$http_x_foo] [$http_x_bar]"; }
    location /in-clear { more_clear_input_headers 'X-Foo' 'X-B*'; echo "[$http_x_foo] [$http_x_bar] [$http_x_baz] [$http_x_q]"; }
    location /in-set-before { set $before $http_x_foo; more_set_input_headers 'X-Foo: after'; echo "[$before] [$http_x_foo] [$http_x_other]"; }
    location /in-type { more_set_input_headers -t 'text/plain' 'X-Foo: typed'; more_set_input_headers -t '' 'X-Any: any'; echo "[$http_x_foo] [$http_x_any]"; }
    location /in-host { more_set_input_headers 'Host: NewHost.Example.:81' 'User-Agent: ua2' 'Cookie: c=1'; echo "[$http_host] [$host] [$http_user_agent] [$cookie_c] [$http_cookie]"; }
    location /in-nohost { more_clear_input_headers Host; echo "[$http_host] [$host]"; }
    location /in-badhost { more_set_input_headers 'Host: bad/host'; echo "[$http_host] [$host]"; }
    location /in-badlen { more_set_input_headers 'Content-Length: 5x'; echo unreached; }
    location /in-wild { more_set_input_headers 'X-P-*: w'; echo "[$http_x_p_1] [$http_x_p_2]"; }
    location /in-wild-clear { more_set_input_headers 'X-P-*:'; echo "[$http_x_p_1] [$http_x_p_2] [$http_x_q]"; }
    location /in-empty { more_set_input_headers 'X-Foo:'; echo "[$http_x_foo]"; }
    location /in-ctype { more_set_input_headers 'Content-Type: text/x'; echo "[$content_type] [$http_content_type]"; }
    location /in-xff { more_set_input_headers 'X-Forwarded-For: 9.9.9.9'; echo "[$http_x_forwarded_for]"; }
    location /in-sub { more_set_input_headers 'X-Foo: v'; echo_location /in-child; echo "main [$http_x_foo]"; }
    location /in-child { echo "sub [$http_x_foo]"; }
    location /in-if { more_set_input_headers 'X-Foo: 1'; if ($arg_x) { more_set_input_headers 'X-Bar: 2'; } echo "[$http_x_foo] [$http_x_bar]"; }
    location /in-twice { more_set_input_headers 'X-Foo: first'; more_set_input_headers 'X-Foo: second'; echo "[$http_x_foo]"; }
    location /in-rewrite { more_set_input_headers 'X-Foo: rewritten'; rewrite ^ /in-show last; }
    location /in-show { echo "[$http_x_foo] [$http_x_in_http]"; }
    location /in-return { more_set_input_headers 'X-Foo: never'; return 200 "[$http_x_foo]"; }
  }
  server {
    listen 127.0.0.1:{port};
    server_name other;
    location / { echo hi; }
  }
`;

const get = (path: string, v = '1.1', extra = ''): string =>
  v === '1.0' ? `GET ${path} HTTP/1.0\r\n${extra}\r\n` : `GET ${path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n${extra}\r\n`;

const CASES: Array<[string, string]> = [
  ['before add_header', get('/order')],
  ['add_header not replaced', get('/add-set')],
  ['add_header not cleared', get('/add-clear')],
  ['Server set', get('/server')],
  ['Server and Content-Type by any case', get('/server-low')],
  ['Server and Date cleared', get('/noserver')],
  ['Date set', get('/date')],
  ['Content-Type set', get('/ctype')],
  ['Content-Type cleared', get('/noctype')],
  ['Content-Type emptied', get('/noctype2')],
  ['Content-Length set (1.1, not chunked)', get('/clen')],
  ['Content-Length set (1.0)', get('/clen', '1.0')],
  ['Content-Length on return', get('/clen-ret')],
  ['Content-Length twice', get('/clen-twice')],
  ['Content-Length cleared: chunked', get('/noclen')],
  ['Content-Length cleared: 1.0', get('/noclen', '1.0')],
  ['Location on 200', get('/loc-200')],
  ['Location replaced on 302', get('/loc-302')],
  ['Location made relative', get('/loc-rel')],
  ['Location not a path', get('/loc-other')],
  ['Location cleared', get('/noloc')],
  ['hop-by-hop names added', get('/hop')],
  ['name case kept', get('/case')],
  ['replaced in place', get('/replace')],
  ['wildcard clear', get('/wild')],
  ['wildcard set', get('/wild-set')],
  ['wildcard set, nothing to match', get('/wild-new')],
  ['wildcards and built-in fields', get('/wild-builtin')],
  ['wildcard prefix', get('/wild-prefix')],
  ['clear argument forms', get('/clear-forms')],
  ['variables, empty value clears', get('/vars?a=5')],
  ['argument parsing', get('/parse')],
  ['-s', get('/status')],
  ['-s repeated', get('/status-multi')],
  ['-s 404 on return 404', get('/e404')],
  ['-s 404 on the static 404', get('/static404')],
  ['error_page location', get('/errpage')],
  ['-t', get('/type')],
  ['-t against a set Content-Type', get('/type-set')],
  ['-t is case-sensitive', get('/type-case')],
  ['-t without Content-Type', get('/type-none')],
  ['-s and -t', get('/type-both')],
  ['-t on 204', get('/type.html')],
  ['-t on return 200', get('/type-ret')],
  ['-t on an error page', get('/type-err')],
  ['static file', get('/file/hm-ok.conf')],
  ['levels joined', get('/inherit')],
  ['inherited cleared', get('/inherit-clear')],
  ['inherited replaced', get('/inherit-replace')],
  ['nested location', get('/outer/in')],
  ['if false', get('/if')],
  ['if true', get('/if?x=1')],
  ['other server: http level only', 'GET / HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n'],
  ['HEAD', 'HEAD /clen HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['keep-alive', 'GET /clen-ret HTTP/1.1\r\nHost: h\r\n\r\nGET /noclen HTTP/1.1\r\nHost: h\r\n\r\nGET /ctype HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],

  ['input set', get('/in?b=B')],
  ['input -r', get('/in-r', '1.1', 'X-Foo: old\r\nx-foo: old2\r\n')],
  ['input -r, nothing to replace', get('/in-r')],
  ['input clear, wildcard', get('/in-clear', '1.1', 'X-Foo: 1\r\nX-Bar: 2\r\nX-Baz: 3\r\nx-q: 4\r\n')],
  ['input -t', get('/in-type', '1.1', 'Content-Type: text/plain\r\n')],
  ['input -t with parameters', get('/in-type', '1.1', 'Content-Type: text/plain; charset=utf8\r\n')],
  ['input -t case', get('/in-type', '1.1', 'Content-Type: Text/Plain\r\n')],
  ['input -t no type', get('/in-type')],
  ['input Host, User-Agent, Cookie', get('/in-host', '1.1', 'Cookie: c=0\r\nCookie: d=2\r\n')],
  ['input Host cleared', get('/in-nohost')],
  ['input wildcard not for set', get('/in-wild', '1.1', 'X-P-1: a\r\nX-P-2: b\r\n')],
  ['input wildcard clears', get('/in-wild-clear', '1.1', 'X-P-1: a\r\nX-P-2: b\r\nX-Q: q\r\n')],
  ['input empty value', get('/in-empty', '1.1', 'X-Foo: a\r\nX-Foo: b\r\n')],
  ['input Content-Type', get('/in-ctype', '1.1', 'Content-Type: a/b\r\n')],
  ['input X-Forwarded-For', get('/in-xff', '1.1', 'X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n')],
  ['input seen by subrequests', get('/in-sub')],
  ['input if false', get('/in-if')],
  ['input if true', get('/in-if?x=1')],
  ['input twice', get('/in-twice')],
  ['input before rewrite last', get('/in-rewrite')],
  ['input after return', get('/in-return', '1.1', 'X-Foo: orig\r\n')],
];

/*
 * nginx caches a $http_* variable once read (here by `set`, before the
 * input headers change at the end of the rewrite phase): echo then shows
 * the old value. redis2d re-reads request-header variables on every use
 * (lib/http/core_variables.ts flags them NOCACHEABLE), so echo shows the
 * new one. Kept as a todo.
 */
const CACHED: Array<[string, string]> = [['input after set', get('/in-set-before', '1.1', 'X-Foo: orig\r\n')]];

/*
 * Where a static file's headers sit. nginx's range filter adds
 * Accept-Ranges after every header filter above it (headers-more's and
 * add_header's); redis2d's static handler adds it with Last-Modified and
 * ETag, before them. And a Last-Modified set by more_set_headers is a
 * header of nginx's list (printed after Connection), while redis2d prints
 * every `Last-Modified` entry in the status line's block. Kept as todos.
 */
const STATIC_ORDER: Array<[string, string]> = [
  ['static file, Last-Modified set', get('/file-lm/hm-ok.conf')],
  ['static file, Last-Modified and ETag cleared', get('/file-nolm/hm-ok.conf')],
];

/** nginx closes these without a byte: the module's handler or filter failed */
const CLOSED: Array<[string, string]> = [
  ['bad Content-Length', get('/clen-bad')],
  ['invalid Host', get('/in-badhost')],
  ['bad input Content-Length', get('/in-badlen')],
];

t.test('headers-more answers like nginx, byte for byte', { skip }, async (t) => {
  let ours: Running | undefined;
  let theirs: Running | undefined;
  try {
    ours = await startRedis2d(HTTP, LOAD);
    theirs = await startNginx(HTTP, LOAD);
    for (const [name, req] of CASES) {
      const [a, b] = await Promise.all([raw(ours.port, req, 400), raw(theirs.port, req, 400)]);
      t.equal(normalize(a, ours.port), normalize(b, theirs.port), name);
    }
    for (const [name, req] of CACHED) {
      const [a, b] = await Promise.all([raw(ours.port, req, 400), raw(theirs.port, req, 400)]);
      t.equal(normalize(a, ours.port), normalize(b, theirs.port), name, { todo: 'request-header variables are not cached by redis2d' });
    }
    for (const [name, req] of STATIC_ORDER) {
      const [a, b] = await Promise.all([raw(ours.port, req, 400), raw(theirs.port, req, 400)]);
      t.equal(normalize(a, ours.port), normalize(b, theirs.port), name, { todo: 'static Accept-Ranges / Last-Modified placement' });
    }
    for (const [name, req] of CLOSED) {
      const [a, b] = await Promise.all([raw(ours.port, req, 400), raw(theirs.port, req, 400)]);
      t.equal(b, '', `${name}: nginx sends nothing`);
      t.equal(a, '', `${name}: redis2d sends nothing`);
    }
  } finally {
    await ours?.stop();
    await theirs?.stop();
  }
});

/* ------------------------------------------------ in front of a backend */

const PROXY = (bp: number): string => `
  upstream app { server 127.0.0.1:${bp}; }
  server {
    listen 127.0.0.1:{port};
    location /in/ {
      more_set_input_headers 'X-Foo: new' 'X-New: n' 'Host: Other.Host:8';
      more_clear_input_headers X-Gone 'X-Drop-*';
      proxy_set_header Host $host;
      proxy_pass http://app/echo/;
    }
    location /in-r/ { more_set_input_headers -r 'X-Foo: r' 'X-Absent: a'; proxy_pass http://app/echo/; }
    location /out/ {
      proxy_pass http://app/;
      more_set_headers 'Server: mine' 'X-Powered: p' 'Content-Type: text/x';
      more_clear_headers Date;
    }
    location /out-len/ { proxy_pass http://app/; more_clear_headers Content-Length; }
    location /out-cookie/ { proxy_pass http://app/; more_set_headers 'Set-Cookie: one=1'; }
    location /out-404/ { proxy_pass http://app/; more_set_headers -s 404 'X-Missing: yes'; more_set_headers -s 200 'X-Ok: yes'; }
    location /out-type/ { proxy_pass http://app/; more_set_headers -t text/plain 'X-Plain: yes'; more_set_headers -t text/html 'X-Html: no'; }
  }
`;

/** what the backend saw: request line parts and header lines (undici frames host, connection, content-length its own way) */
function seen(resp: string): string {
  const body = resp.slice(resp.indexOf('\r\n\r\n') + 4);
  let j: { method: string; url: string; rawHeaders: string[] };
  try {
    j = JSON.parse(body.slice(body.indexOf('{'), body.lastIndexOf('}') + 1)) as typeof j;
  } catch {
    return resp;
  }
  const lines = [`${j.method} ${j.url}`];
  for (let k = 0; k < j.rawHeaders.length; k += 2) {
    const name = j.rawHeaders[k]!.toLowerCase();
    if (name === 'connection' || name === 'content-length') continue;
    lines.push(`${name}: ${j.rawHeaders[k + 1]}`);
  }
  return lines.join('\n');
}

const SEEN: Array<[string, string]> = [
  ['input headers reach the backend', 'GET /in/x HTTP/1.1\r\nHost: h\r\nX-Foo: old\r\nX-Gone: g\r\nX-Drop-1: d\r\nX-Keep: k\r\nx-foo: old2\r\nConnection: close\r\n\r\n'],
  ['input -r', 'GET /in-r/x HTTP/1.1\r\nHost: h\r\nx-FOO: old\r\nConnection: close\r\n\r\n'],
];

const PROXIED: Array<[string, string]> = [
  ['backend Server and Date', 'GET /out/status?code=200 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['backend Content-Length cleared', 'GET /out-len/bytes?n=5 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['backend Set-Cookie lines replaced', 'GET /out-cookie/cookie?v=a%3D1&v=b%3D2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['backend status for -s', 'GET /out-404/nothing HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['backend type for -t', 'GET /out-type/cookie?v=c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
];

t.test('headers-more in front of a backend', { skip }, async (t) => {
  const backend: Backend = await startBackend(t);
  const conf = PROXY(backend.port);
  const ng = await startNginx(conf, LOAD);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(conf, LOAD);
  t.teardown(() => rd.stop());
  for (const [name, req] of SEEN) {
    const [a, b] = await Promise.all([raw(rd.port, req, 1500), raw(ng.port, req, 1500)]);
    t.equal(seen(a), seen(b), name);
  }
  for (const [name, req] of PROXIED) {
    const [a, b] = await Promise.all([raw(rd.port, req, 1500), raw(ng.port, req, 1500)]);
    // the backend's own Date differs from one response to the next
    const date = (s: string): string => s.replace(/^Date: .*\r$/gm, 'Date: X\r');
    t.equal(date(normalize(a, rd.port)), date(normalize(b, ng.port)), name);
  }
});

/* ------------------------------------------------ -t messages */

const FIXTURES = FILES;

/** run a program to its end: exit code and stderr */
function judge(cmd: string, args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
    c.on('close', (status) => resolve({ status, stderr }));
  });
}

/*
 * conf-diff.test.ts compares [emerg] and [warn] lines only; the module
 * reports its argument errors at [error]: every hm-* fixture's whole
 * output, compared with nginx -t's.
 */
t.test('headers-more fixtures: nginx -t says the same', { skip: hasNginx ? false : 'Debian nginx is not installed' }, async (t) => {
  const prefix = mkdtempSync(join(tmpdir(), 'hm-conf-'));
  mkdirSync(join(prefix, 'logs'));
  t.teardown(() => rmSync(prefix, { recursive: true, force: true }));
  const files = readdirSync(FIXTURES).filter((f) => f.startsWith('hm-') && f.endsWith('.conf')).sort();
  t.ok(files.length >= 10, 'the hm-* fixtures');
  for (const f of files) {
    const conf = join(FIXTURES, f);
    const [ours, theirs] = await Promise.all([
      // through env -u: tap's loaders (in NODE_OPTIONS) cannot load bin/redis2d
      judge('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, '-t', '-p', `${prefix}/`, '-c', conf]),
      judge(NGINX, ['-t', '-e', '/dev/null', '-p', `${prefix}/`, '-c', conf]),
    ]);
    t.equal(ours.status, theirs.status, `${f}: exit code`);
    t.equal(ours.stderr.replace(/^redis2d: /gm, 'P: '), theirs.stderr.replace(/^nginx: /gm, 'P: '), `${f}: messages`);
  }
});
