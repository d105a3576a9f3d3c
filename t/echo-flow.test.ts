import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * The echo module's flow directives (echo_foreach_split/echo_end,
 * echo_exec, echo_flush, echo_blocking_sleep, echo_abort_parent,
 * echo_read_request_body, echo_subrequest's methods and options) and how
 * requests end (HEAD through echo_location, unsafe targets), under
 * Debian's nginx with the echo module and under redis2d: the same raw
 * requests, the same bytes.
 */

const MODS = '/usr/lib/nginx/modules';
const LOAD = `load_module ${MODS}/ndk_http_module.so;\nload_module ${MODS}/ngx_http_echo_module.so;`;
const skip = !hasNginx || !existsSync(`${MODS}/ngx_http_echo_module.so`) ? 'Debian nginx with the echo module not installed' : false;

const HTTP = `
  default_type text/plain;
  error_log {dir}/debug.log debug;
  server {
    listen 127.0.0.1:{port};
    server_name localhost;
    location /split { echo_foreach_split '&' $query_string; echo "[$echo_it]"; echo_end; echo done; }
    location /split-dash { echo_foreach_split -- '-' $arg_x; echo "<$echo_it>"; echo_end; }
    location /split-long { echo_foreach_split '--' $arg_x; echo "<$echo_it>"; echo_end; echo after; }
    location /split-sub { echo_foreach_split ',' $arg_list; echo_location_async "/sub/$echo_it"; echo "/* end */"; echo_end; }
    location /split-nested { echo_foreach_split ',' a,b; echo_foreach_split ',' c,d; echo_end; echo_end; }
    location /end-alone { echo a; echo_end; }
    location ~ ^/sub/(.*) { echo "sub $1"; }
    location /exec { echo_exec /target?a=1; echo never; }
    location /exec-args { echo_exec /target "b=2"; }
    location /exec-named { echo_exec @named?a=32; }
    location /exec-named-plain { echo_reset_timer; echo_exec @named; }
    location /exec-after-sleep { echo_sleep 0.01; echo_exec @named; }
    location /exec-empty { echo_exec ''; }
    location /exec-unsafe { echo_exec /../x; }
    location /exec-in-sub { echo_location /exec; echo_location /exec-named-plain; }
    location /target { echo "target [$echo_request_uri] [$args] [$arg_a$arg_b]"; }
    location @named { echo "named [$uri] [$args] [$echo_request_uri]"; }
    location /flush { echo_flush; echo a; echo_flush; echo b; }
    location /blocking { echo_blocking_sleep 0.01; echo slept; echo_blocking_sleep bad; }
    location /abort { echo a; echo_abort_parent; echo b; }
    location /abort-first { echo_abort_parent; }
    location /read { echo_read_request_body; echo_request_body; echo; echo_location /show; }
    location /show { echo "sub [$echo_request_body] [$request_body] [$http_content_length]"; }
    location /loc-reads { echo_location /show; echo_request_body; }
    location /async-reads { echo_location_async /show; echo "[$echo_request_body]"; }
    location /methods {
      echo_subrequest GET /show;
      echo_subrequest POST /show -b 'a body';
      echo_subrequest PUT /show -q a=1 -b '';
      echo_subrequest_async DELETE /show -b x;
      echo_subrequest MKCOL /m; echo_subrequest TRACE /m; echo_subrequest OPTIONS /m;
      echo_subrequest PROPPATCH /m; echo_subrequest UNLOCK /m; echo_subrequest COPY /m;
      echo_subrequest MOVE /m; echo_subrequest LOCK /m; echo_subrequest get /m; echo_subrequest XYZ /m -q z=9;
    }
    location /m { echo "$echo_request_method $request_method $args"; }
    location /sub-file { echo_subrequest POST /file-body -f {dir}/body.txt; echo_subrequest POST /show -f {dir}/body.txt; }
    location /sub-file-rel { echo_subrequest POST /file-body -f body.txt; }
    location /file-body { echo_request_body; echo "[$echo_request_body]"; }
    location /sub-opt-last { echo_subrequest GET /m -q; }
    location /head-loc { echo_location /m; echo after; }
    location /head-sub { echo_subrequest GET /m; echo after; }
    location /head-async { echo_location_async /m; echo after; }
    location /sub-head { echo_subrequest HEAD /m; echo after; }
    location /expect { echo "[$echo_request_body]"; }
    location /expect-read { echo_read_request_body; echo "[$echo_request_body]"; }
    location /unsafe { echo_location '/../foo'; }
    location /unsafe-async { echo_location_async '/../foo'; }
    location /unsafe-sub { echo_subrequest GET '/a/%2e%2e/b'; }
    location /unsafe-after { echo a; echo_location '/x/..'; }
  }
`;

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n${extra}\r\n`;
const post = (path: string, body: string): string => `POST ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
const head = (path: string, conn = 'close'): string => `HEAD ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: ${conn}\r\n\r\n`;

const CASES: Array<[string, string]> = [
  ['echo_foreach_split', get('/split?a&b&&c')],
  ['echo_foreach_split, nothing to split', get('/split')],
  ['echo_foreach_split, only delimiters', get('/split?&&&')],
  ['echo_foreach_split, a dash delimiter after --', get('/split-dash?x=-a--b-c-')],
  ['echo_foreach_split, a long delimiter', get('/split-long?x=a--b----c-')],
  ['echo_foreach_split with subrequests', get('/split-sub?list=cat,dog,mouse')],
  ['nested echo_foreach_split', get('/split-nested')],
  ['echo_exec', get('/exec')],
  ['echo_exec with args', get('/exec-args')],
  ['echo_exec to a named location drops the query', get('/exec-named')],
  ['echo_exec clears the context', get('/exec-named-plain?q=1')],
  ['echo_exec after a sleep', get('/exec-after-sleep')],
  ['echo_exec empty', get('/exec-empty')],
  ['echo_exec in subrequests', get('/exec-in-sub')],
  ['echo_flush', get('/flush')],
  ['echo_abort_parent first', get('/abort-first')],
  ['echo_read_request_body', post('/read', 'hello')],
  ['echo_location reads the body', post('/loc-reads', 'hello')],
  ['echo_location_async reads the body', post('/async-reads', 'hello')],
  ['echo_location reads a chunked body', `POST /loc-reads HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`],
  ['echo_subrequest methods and options', post('/methods', 'main body')],
  ['echo_subrequest -f', get('/sub-file')],
  ['echo_subrequest -f relative to the prefix', get('/sub-file-rel')],
  ['echo_subrequest option without a value', get('/sub-opt-last')],
  ['HEAD through echo_location', head('/head-loc')],
  ['HEAD through echo_subrequest', head('/head-sub')],
  ['HEAD through echo_location_async', head('/head-async')],
  ['HEAD through echo_location, keep-alive', head('/head-loc', 'keep-alive') + get('/m')],
  ['echo_subrequest HEAD', get('/sub-head')],
  // the body left unread is discarded after the response: Expect is answered then
  ['Expect, body unread, close', `POST /expect HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n`],
  ['Expect, no body, close', get('/expect', 'Expect: 100-continue\r\n')],
  ['Expect, body unread, keep-alive', `POST /expect HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc${get('/expect')}`],
  ['Expect, body read', `POST /expect-read HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc`],
  ['Expect, HEAD through echo_location', head('/head-loc').replace('\r\n\r\n', '\r\nExpect: 100-continue\r\n\r\n')],
];

/**
 * requests that fail after a little output: nginx still held it (its
 * write filter waits for postpone_output bytes) and closes with nothing
 * sent; redis2d had written it, the response is cut short (no last chunk)
 */
const CUT: Array<[string, string, string]> = [
  ['echo_end alone', '/end-alone', '[error] Found a echo_end that has no corresponding echo_foreach before it.'],
  ['echo_blocking_sleep, bad duration', '/blocking', '[error] invalid sleep duration "bad"'],
  ['echo_abort_parent', '/abort', '[error] unknown opcode: 17'],
];

/** requests nginx drops (NGX_ERROR): nothing reaches the client from it */
const DROPPED: Array<[string, string, string]> = [
  ['echo_location unsafe', '/unsafe', 'echo_location sees unsafe uri: "/../foo"'],
  ['echo_location_async unsafe', '/unsafe-async', 'echo_location_async sees unsafe uri: "/../foo"'],
  ['echo_subrequest unsafe once decoded', '/unsafe-sub', 'echo_subrequest sees unsafe uri: "/a/../b"'],
  ['echo_exec unsafe', '/exec-unsafe', 'echo_exec sees unsafe uri: "/../x"'],
];

const log = (srv: Running): string => readFileSync(join(srv.dir, 'debug.log'), 'latin1');
const serious = (log: string): string[] => log.split('\n').filter((l) => / \[(error|alert|crit|emerg|warn)\] /.test(l)).map((l) => l.replace(/^.*? \[/, '[').replace(/\d+#\d+: \*\d+ /, ''));

t.test('echo flow directives answer like nginx, byte for byte', { skip }, async (t) => {
  let ours: Running | undefined;
  let theirs: Running | undefined;
  try {
    ours = await startRedis2d(HTTP, LOAD);
    theirs = await startNginx(HTTP, LOAD);
    for (const srv of [ours, theirs]) {
      writeFileSync(join(srv.dir, 'body.txt'), 'file body\n');
    }
    for (const [name, req] of CASES) {
      const [a, b] = await Promise.all([raw(ours.port, req, 800), raw(theirs.port, req, 800)]);
      t.equal(normalize(a, ours.port), normalize(b, theirs.port), name);
    }
    for (const [name, path, line] of DROPPED) {
      const [a, b] = await Promise.all([raw(ours.port, get(path), 800), raw(theirs.port, get(path), 800)]);
      t.equal(b, '', `${name}: nginx sends nothing`);
      // redis2d writes as it goes: the header it had sent stays, then the connection closes
      t.match(a, /^(HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n)?$/, `${name}: no body, closed`);
      for (const srv of [ours, theirs]) {
        t.ok(log(srv).includes(`[debug] `), 'a debug log');
        t.ok(log(srv).includes(line), `${name}: ${srv === ours ? 'redis2d' : 'nginx'} logs ${line}`);
      }
    }
    for (const [name, path, line] of CUT) {
      const [a, b] = await Promise.all([raw(ours.port, get(path), 800), raw(theirs.port, get(path), 800)]);
      t.equal(b, '', `${name}: nginx sends nothing`);
      t.match(a, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n[0-9a-f]+\r\n[^]*\r\n$/, `${name}: the response is cut, then closed`);
      t.notMatch(a, /0\r\n\r\n$/, `${name}: no last chunk`);
      for (const srv of [ours, theirs]) t.ok(serious(log(srv)).some((l) => l.startsWith(line)), `${name}: ${srv === ours ? 'redis2d' : 'nginx'} logs ${line}`);
    }
    // the [warn]/[error] lines both wrote, in order
    t.strictSame(serious(log(ours)), serious(log(theirs)), 'the same error lines');
    t.ok(serious(log(ours)).some((l) => l.startsWith('[warn] querystring a=32 ignored when exec\'ing named location @named, client: 127.0.0.1')), 'the named-location warning');
  } finally {
    await ours?.stop();
    await theirs?.stop();
  }
});
