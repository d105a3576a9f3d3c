import t from 'tap';
import { existsSync } from 'node:fs';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * echo (and subrequests) under Debian's nginx with the echo module and
 * under redis2d: the same raw requests, the same bytes (Date and the
 * server's name normalised). HTTP/1.1 cases compare chunk framing too.
 */

const MODS = '/usr/lib/nginx/modules';
const LOAD = `load_module ${MODS}/ndk_http_module.so;\nload_module ${MODS}/ngx_http_set_misc_module.so;\nload_module ${MODS}/ngx_http_echo_module.so;`;
const skip = !hasNginx || !existsSync(`${MODS}/ngx_http_echo_module.so`) || !existsSync(`${MODS}/ngx_http_set_misc_module.so`) ? 'Debian nginx with echo/set_misc not installed' : false;

/** a small file both servers can read for echo_subrequest -f */
const FILE = new URL('../fixtures/conf/echo-ok.conf', import.meta.url).pathname;

const HTTP = `
  default_type text/plain;
  types { text/html html; }
  server {
    listen 127.0.0.1:{port};
    location /hello { echo hello world; }
    location /n { echo -n a; echo -n b; echo; }
    location /opts { echo -n -- -n; echo -- -x; echo - dash; echo -x -n still-newline; echo "" lead; echo trail ""; }
    location /empty { echo ""; }
    location /nothing { echo -n; }
    location /vars { echo "[$arg_a] [$uri] [$args] [$request_method]"; echo -n $arg_b; echo; }
    location /varopt { echo $arg_o x; }
    location /page.html { echo html type; }
    location /status { echo_status 404; echo not found but echoed; }
    location /status201 { echo_status 201; echo created; }
    location /dup { echo_duplicate 3 ab; echo_duplicate 1_0 -; echo; echo_duplicate 0 x; }
    location /dupbad { echo_duplicate x2 ab; }
    location /sleep { echo a; echo_sleep 0.05; echo b; }
    location /sleepbad { echo_sleep 1.2345; echo never; }
    location /sleepbad2 { echo_sleep abc; }
    location /body { echo_read_request_body; echo_request_body; echo; echo "[$echo_request_body]"; }
    location /nobody { echo_request_body; echo "[$echo_request_body]"; }
    location /a { echo -n a; echo " body"; }
    location /b { set $x bee; echo "b $x [$arg_q] $echo_request_body"; }
    location /seq { set $x main; echo_location /a; echo_location /b "q=1"; echo "x=$x"; }
    location /seqargs { echo_location "/b?q=inline"; echo_location "/b?q=ignored" "q=given"; }
    location /async { echo start; echo_location_async /s1; echo_location_async /s2; echo end; }
    location /s1 { echo_sleep 0.2; echo s1; }
    location /s2 { echo_sleep 0.05; echo s2; }
    location /first { echo_location /a; echo after; }
    location /nest1 { echo n1-begin; echo_location /nest2; echo n1-end; }
    location /nest2 { echo n2-begin; echo_location_async /s2; echo_location /a; echo n2-end; }
    location /leak { set $v parent; echo_location /setv; echo "parent sees [$v]"; }
    location /setv { set $v child; echo "child [$v]"; }
    location /missing { echo before; echo_location /zz/nope; echo after; }
    location /errsub { echo x; echo_location /e500; echo y; }
    location /e500 { return 500; }
    location /ret { echo_location /rettext; echo_location /rettext; }
    location /rettext { return 200 "returned $uri\\n"; }
    location /unsafe { echo_location /a/../b; echo unreached; }
    location /emptyloc { echo_location ""; }
    location /sub { echo_subrequest POST /method -b hello; echo_subrequest PUT /method -q a=1; echo_subrequest_async DELETE /method; echo_subrequest GET /method -b ''; }
    location /method { echo "$request_method $args [$echo_request_body] $http_content_length $content_length"; }
    location /subfile { echo_subrequest POST /method -f ${FILE}; echo_subrequest PUT /filebody -f ${FILE}; }
    location /filebody { echo_request_body; }
    location /subfile-missing { echo_subrequest POST /method -f /nonexistent/x; }
    location /loop { echo_location /loop; }
    location /subbad { echo_subrequest GET /method -z x; }
    location /subhead { echo_subrequest HEAD /a; echo done; }
    location /filter { echo_before_body before; echo_after_body after; echo mid; }
    location /filter-empty { echo_before_body -n B; echo_after_body -n A; echo -n; }
    location /filter-ret { echo_before_body pre; echo_after_body post; return 200 "ret\\n"; }
    location /filter-404 { echo_before_body pre; echo_after_body post; return 404; }
    location /filter-sub { echo_before_body pre; echo_after_body post; echo_location /a; echo_location_async /s2; echo own; }
    location /filter-child { echo_location /filter; echo_location /filter-ret; }
    location /internal-only { internal; echo internal ok; }
    location /via-internal { echo_location /internal-only; }
    location /deny { deny all; echo denied?; }
    location /sub-deny { echo_location /deny; }
    location /rw { echo_location /rw-src; }
    location /rw-src { rewrite ^ /a last; }
    location /if {
      if ($arg_x = 1) { echo in-if; }
      echo outside-if;
    }
    location /headonly { echo head only; }
    location /args-enc { echo_location /b "q=a%20b&r=+"; }
  }
`;

/**
 * An error page inside a chunked body: its chunk size counts the server
 * name in the footer; count the name out, as normalize() does for
 * Content-Length.
 */
function chunkNames(s: string): string {
  return s.replace(/\r\n([0-9a-f]+)\r\n(<html>[^]*?<hr><center>)((?:nginx|redis2d)(?:\/[0-9.]+)?)<\/center>/g, (_m, n: string, mid: string, name: string) => `\r\n${parseInt(n, 16) - name.length}+S\r\n${mid}${name}</center>`);
}
const norm = (s: string, port: number): string => normalize(chunkNames(s), port);

/**
 * Requests the module answers with NGX_ERROR: nginx closes the connection
 * and, as its write filter still held the small header (postpone_output),
 * the client gets nothing. redis2d writes as it goes, so the header it
 * had sent stays; the body is empty and the connection closes. Compared
 * separately: nginx's empty answer, our header-only one.
 */
const TERMINATED: Array<[string, string]> = [];

const get = (path: string, v = '1.1'): string => (v === '1.0' ? `GET ${path} HTTP/1.0\r\n\r\n` : `GET ${path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`);

TERMINATED.push(
  ['unsafe uri', '/unsafe'],
  ['empty location', '/emptyloc'],
  ['echo_subrequest bad option', '/subbad'],
  ['echo_subrequest -f missing file', '/subfile-missing'],
  ['subrequest cycle', '/loop'],
);

const CASES: Array<[string, string]> = [
  ['echo', get('/hello')],
  ['echo 1.0', get('/hello', '1.0')],
  ['-n', get('/n')],
  ['options', get('/opts')],
  ['empty arg', get('/empty')],
  ['only -n', get('/nothing')],
  ['variables', get('/vars?a=1&b=%41+')],
  ['variable never an option', get('/varopt?o=-n')],
  ['content type by extension', get('/page.html')],
  ['echo_status', get('/status')],
  ['echo_status 201', get('/status201')],
  ['echo_duplicate', get('/dup')],
  ['echo_duplicate bad', get('/dupbad')],
  ['echo_sleep', get('/sleep')],
  ['echo_sleep 4 decimals', get('/sleepbad')],
  ['echo_sleep junk', get('/sleepbad2')],
  ['request body', 'POST /body HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello'],
  ['chunked request body', 'POST /body HTTP/1.1\r\nHost: h\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n'],
  ['no request body', get('/nobody')],
  ['echo_location in order', get('/seq')],
  ['echo_location 1.0', get('/seq', '1.0')],
  ['echo_location args', get('/seqargs')],
  ['echo_location_async ordering', get('/async')],
  ['echo_location_async 1.0', get('/async', '1.0')],
  ['echo_location first', get('/first')],
  ['nested subrequests', get('/nest1')],
  ['set does not leak', get('/leak')],
  ['subrequest 404 page', get('/missing')],
  ['subrequest 500 page', get('/errsub')],
  ['subrequest return text', get('/ret')],
  ['echo_subrequest', 'POST /sub?z=9 HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbody'],
  ['echo_subrequest HEAD', get('/subhead')],
  ['echo_subrequest -f', get('/subfile')],
  ['before/after body', get('/filter')],
  ['before/after body 1.0', get('/filter', '1.0')],
  ['before/after empty body', get('/filter-empty')],
  ['before/after around return', get('/filter-ret')],
  ['before/after around error page', get('/filter-404')],
  ['before/after with subrequests', get('/filter-sub')],
  ['filters in subrequests', get('/filter-child')],
  ['HEAD filter', 'HEAD /filter HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['internal location via subrequest', get('/via-internal')],
  ['internal location direct', get('/internal-only')],
  ['access skipped in subrequests', get('/sub-deny')],
  ['deny direct', get('/deny')],
  ['rewrite in subrequest', get('/rw')],
  ['if true', get('/if?x=1')],
  ['if false', get('/if?x=2')],
  ['HEAD echo', 'HEAD /headonly HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['HEAD echo_location', 'HEAD /seq HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['encoded args', get('/args-enc')],
  ['keep-alive after subrequests', 'GET /async HTTP/1.1\r\nHost: h\r\n\r\nGET /seq HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
];

t.test('echo and subrequests answer like nginx, byte for byte', { skip }, async (t) => {
  let ours: Running | undefined;
  let theirs: Running | undefined;
  try {
    ours = await startRedis2d(HTTP, LOAD);
    theirs = await startNginx(HTTP, LOAD);
    for (const [name, req] of CASES) {
      const [a, b] = await Promise.all([raw(ours.port, req, 600), raw(theirs.port, req, 600)]);
      t.equal(norm(a, ours.port), norm(b, theirs.port), name);
    }
    for (const [name, path] of TERMINATED) {
      const [a, b] = await Promise.all([raw(ours.port, get(path), 600), raw(theirs.port, get(path), 600)]);
      t.equal(b, '', `${name}: nginx sends nothing`);
      t.match(a, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n$/, `${name}: redis2d sends the header only, then closes`);
      t.notMatch(a, /unreached/);
    }
    // the error lines the module writes, with the subrequest context
    const log = ours.errorLog();
    t.match(log, /\[error\] \d+#\d+: \*\d+ invalid size specified: "x2", client: 127\.0\.0\.1, server: , request: "GET \/dupbad HTTP\/1\.1", host: "h"/);
    t.match(log, /\[error\] \d+#\d+: \*\d+ invalid sleep duration "1\.2345", client: 127\.0\.0\.1/);
    t.match(log, /\[error\] \d+#\d+: \*\d+ open\(\) "\/nonexistent\/x" failed \(2: No such file or directory\), client: 127\.0\.0\.1, server: , request: "GET \/subfile-missing HTTP\/1\.1", host: "h"/);
    t.match(log, /\[error\] \d+#\d+: \*\d+ subrequests cycle while processing "\/loop", client: 127\.0\.0\.1, server: , request: "GET \/loop HTTP\/1\.1", subrequest: "\/loop", host: "h"/);
    t.match(theirs.errorLog(), /subrequests cycle while processing "\/loop", client: 127\.0\.0\.1, server: , request: "GET \/loop HTTP\/1\.1", subrequest: "\/loop", host: "h"/);
    t.match(log, /\[error\] \d+#\d+: \*\d+ unknown option for echo_subrequest\*: -z, client/);
    t.match(log, /open\(\) "[^"]*\/html\/zz\/nope" failed \(2: No such file or directory\), client: 127\.0\.0\.1, server: , request: "GET \/missing HTTP\/1\.1", subrequest: "\/zz\/nope", host: "h"/);
  } finally {
    await ours?.stop();
    await theirs?.stop();
  }
});
