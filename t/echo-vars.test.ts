import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * The echo module's variables and its flow directives, under Debian's
 * nginx with the echo module and under redis2d: the same raw requests,
 * the same bytes ($echo_timer_elapsed, which depends on the clock, is
 * checked by shape on both).
 */

const MODS = '/usr/lib/nginx/modules';
const LOAD = `load_module ${MODS}/ndk_http_module.so;\nload_module ${MODS}/ngx_http_echo_module.so;`;
const skip = !hasNginx || !existsSync(`${MODS}/ngx_http_echo_module.so`) ? 'Debian nginx with the echo module not installed' : false;

const HTTP = `
  default_type text/plain;
  server {
    listen 127.0.0.1:{port};
    server_name localhost;
    location /methods { echo "[$echo_request_method] [$echo_client_request_method]"; echo_location /m; echo_subrequest PROPFIND /m; echo_subrequest FOO /m; }
    location /m { echo "sub [$echo_request_method] [$echo_client_request_method]"; }
    location /uris { echo "$echo_request_uri $echo_cacheable_request_uri"; echo_location /u1; echo_location_async /u2; }
    location /u1 { echo "$echo_request_uri $echo_cacheable_request_uri"; }
    location /u2 { echo "$echo_request_uri $echo_cacheable_request_uri"; }
    location /rewritten { rewrite ^ /uri-after break; echo "$echo_request_uri|$echo_cacheable_request_uri|$uri"; }
    location /incr { echo "main pre: $echo_incr"; echo_location_async /incr-sub; echo_location_async /incr-sub; echo "main post: $echo_incr"; }
    location /incr-sub { echo "sub: $echo_incr"; }
    location /incr-noctx { return 200 "[$echo_incr]"; }
    location /status { echo "status: [$echo_response_status]"; }
    location /status-after { echo_after_body "after: $echo_response_status"; return 404; }
    location /headers { echo -n $echo_client_request_headers; }
    location /headers-sub { echo_location /headers; echo_location_async /headers; }
    location /headers-body { echo -n $echo_client_request_headers; echo_read_request_body; echo "[$echo_request_body]"; }
    location /body-unread { echo "[$echo_request_body]"; echo_request_body; echo end; }
    location /body-read { echo_read_request_body; echo "[$echo_request_body]"; echo_request_body; echo end; }
    location /body-sleep { echo_read_request_body; echo_sleep 0.01; echo "[$echo_request_body]"; }
    location /body-file { client_body_buffer_size 5; echo_read_request_body; echo "[$echo_request_body]"; echo_request_body; }
    location /body-1k { client_body_buffer_size 1k; echo_read_request_body; echo_request_body; echo done; }
    location /body-sub { echo_location /body-unread; }
    location /it { echo "[$echo_it]"; echo_foreach_split , a,b; echo "in: $echo_it"; echo_end; echo "[$echo_it]"; }
    location /timer { echo "t0 $echo_timer_elapsed"; echo_sleep 0.05; echo "t1 $echo_timer_elapsed"; echo_reset_timer; echo "t2 $echo_timer_elapsed"; }
    location /timer-blocking { echo_blocking_sleep 0.05; echo "b $echo_timer_elapsed"; }
    location /timer-return { return 200 "$echo_timer_elapsed"; }
    location /timer-set { set $t $echo_timer_elapsed; echo_sleep 0.05; echo "set $t now $echo_timer_elapsed"; }
  }
`;

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n${extra}\r\n`;
const post = (path: string, body: string, extra = ''): string => `POST ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`;

const CASES: Array<[string, string]> = [
  ['$echo_request_method and $echo_client_request_method', post('/methods', 'x')],
  ['HEAD method', `HEAD /m HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`],
  ['$echo_request_uri and $echo_cacheable_request_uri', get('/uris?a=1')],
  ['uris after rewrite', get('/rewritten')],
  ['$echo_incr', get('/incr')],
  ['$echo_incr without an echo context', get('/incr-noctx')],
  ['$echo_response_status in the handler', get('/status')],
  ['$echo_response_status in echo_after_body', get('/status-after')],
  ['$echo_client_request_headers', get('/headers', 'Foo: bar\r\nX-Y:  spaced  \r\n')],
  ['$echo_client_request_headers, LF only', 'GET /headers HTTP/1.1\nHost: localhost\nConnection: close\nFoo: bar\n\n'],
  ['$echo_client_request_headers, mixed line ends', 'GET /headers HTTP/1.1\r\nHost: localhost\nConnection: close\r\n\n'],
  ['$echo_client_request_headers, leading CRLF', `\r\n${get('/headers')}`],
  ['$echo_client_request_headers, HTTP/1.0', 'GET /headers HTTP/1.0\r\n\r\n'],
  ['$echo_client_request_headers in subrequests', get('/headers-sub')],
  ['$echo_client_request_headers with a body', post('/headers-body', 'body here\nhaha')],
  ['$echo_request_body of a body not read', post('/body-unread', 'hello')],
  ['$echo_request_body once read', post('/body-read', 'hello')],
  ['$echo_request_body after a sleep', post('/body-sleep', 'hello')],
  ['$echo_request_body of a body in a temp file', post('/body-file', `${'a'.repeat(2048)}b`)],
  ['a small body with a 1k buffer', post('/body-1k', 'hello world')],
  ['a big body with a 1k buffer', post('/body-1k', `${'a'.repeat(4096)}end`)],
  ['$echo_request_body in a subrequest', post('/body-sub', 'hello')],
  ['$echo_it', get('/it')],
  ['keep-alive with an unread body', `POST /body-unread HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello${get('/status')}`],
];

/**
 * An error page inside a chunked body: its chunk size counts the server
 * name in the footer; count the name out, as normalize() does for
 * Content-Length.
 */
function chunkNames(s: string): string {
  return s.replace(/\r\n([0-9a-f]+)\r\n(<html>[^]*?<hr><center>)((?:nginx|redis2d)(?:\/[0-9.]+)?)<\/center>/g, (_m, n: string, mid: string, name: string) => `\r\n${parseInt(n, 16) - name.length}+S\r\n${mid}${name}</center>`);
}
const norm = (s: string, port: number): string => normalize(chunkNames(s), port);

/** the debug lines of nginx's own log are many: keep those of levels the suite looks at */
const serious = (log: string): string[] => log.split('\n').filter((l) => / \[(error|alert|crit|emerg)\] /.test(l));

t.test('echo variables answer like nginx, byte for byte', { skip }, async (t) => {
  let ours: Running | undefined;
  let theirs: Running | undefined;
  try {
    ours = await startRedis2d(HTTP, LOAD);
    theirs = await startNginx(HTTP, LOAD);
    for (const [name, req] of CASES) {
      const [a, b] = await Promise.all([raw(ours.port, req, 800), raw(theirs.port, req, 800)]);
      t.equal(norm(a, ours.port), norm(b, theirs.port), name);
    }
    t.strictSame(serious(ours.errorLog()), [], 'redis2d logged no error');
    t.strictSame(serious(theirs.errorLog()), [], 'nginx logged no error');
  } finally {
    await ours?.stop();
    await theirs?.stop();
  }
});

t.test('$echo_timer_elapsed counts from the request start or echo_reset_timer', { skip }, async (t) => {
  let ours: Running | undefined;
  let theirs: Running | undefined;
  try {
    ours = await startRedis2d(HTTP, LOAD);
    theirs = await startNginx(HTTP, LOAD);
    const body = (s: string): string => s.slice(s.indexOf('\r\n\r\n') + 4);
    for (const srv of [ours, theirs]) {
      const who = srv === ours ? 'redis2d' : 'nginx';
      const t1 = body(await raw(srv.port, get('/timer'), 800));
      // the sleep counts (50 ms), a reset starts again (loose bounds: the machine may be busy)
      t.match(t1, /^9\r\nt0 0\.0[0-3]\d\n\r\n9\r\nt1 0\.(?:0[4-9]|1\d)\d\n\r\n9\r\nt2 0\.0[0-3]\d\n\r\n0\r\n\r\n$/, `${who}: sleep, then reset`);
      const t2 = body(await raw(srv.port, get('/timer-blocking'), 800));
      t.match(t2, /^b 0\.(?:0[4-9]|1\d)\d\n/m, `${who}: echo_blocking_sleep counts`);
      const t3 = await raw(srv.port, get('/timer-return'), 800);
      t.match(t3, /Content-Length: 5\r\n[^]*\r\n\r\n0\.0[0-3]\d$/, `${who}: in return's text`);
      const t4 = body(await raw(srv.port, get('/timer-set'), 800));
      t.match(t4, /set 0\.0[0-3]\d now 0\.(?:0[4-9]|1\d)\d\n/, `${who}: set keeps the value it read`);
    }
  } finally {
    await ours?.stop();
    await theirs?.stop();
  }
});

/** the http block with a debug log of its own ({dir}/debug.log) */
const DEBUG_HTTP = `
  default_type text/plain;
  error_log {dir}/debug.log debug;
  server {
    listen 127.0.0.1:{port};
    location /filtered { echo world; echo_after_body hello; }
    location /plain { echo plain; }
  }
`;

t.test('the echo filters exist only when a location uses them, with their debug lines', { skip }, async (t) => {
  for (const [label, http] of [
    ['used', DEBUG_HTTP],
    ['unused', DEBUG_HTTP.replace('echo_after_body hello;', '')],
  ] as const) {
    let ours: Running | undefined;
    let theirs: Running | undefined;
    try {
      ours = await startRedis2d(http, LOAD);
      theirs = await startNginx(http, LOAD);
      for (const path of ['/filtered?blah', '/plain?x=1']) {
        const [a, b] = await Promise.all([raw(ours.port, get(path), 600), raw(theirs.port, get(path), 600)]);
        t.equal(normalize(a, ours.port), normalize(b, theirs.port), `${label}: ${path}`);
      }
      const lines = (srv: Running): string[] =>
        readFileSync(join(srv.dir, 'debug.log'), 'latin1')
          .split('\n')
          .map((l) => /\[debug\] \d+#\d+: \*\d+ (echo (?:header|body) filter, uri ".*")$/.exec(l)?.[1])
          .filter((l): l is string => l !== undefined);
      const mine = [...new Set(lines(ours))].sort();
      const nginx = [...new Set(lines(theirs))].sort();
      t.strictSame(mine, nginx, `${label}: the same debug lines`);
      if (label === 'used') t.ok(mine.includes('echo header filter, uri "/filtered?blah"') && mine.includes('echo body filter, uri "/plain?x=1"'), 'every request passes the filters');
      else t.strictSame(mine, [], 'no filter, no line');
    } finally {
      await ours?.stop();
      await theirs?.stop();
    }
  }
});
