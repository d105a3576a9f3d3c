import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';
import { debianModules } from './helpers/site.js';

/*
 * What srcache_store decides and stores, under Debian's nginx (srcache,
 * lua, echo, headers-more) and under redis2d. Lua handlers make the
 * responses (their Cache-Control, Expires, Content-Encoding, ETag,
 * Content-Length as srcache's header filter sees them); the store
 * location is an echo that access-logs its request body
 * (log_subrequest), so every stored entry is compared byte for byte, with
 * the responses, the srcache lines of the error log, and the module's
 * debug lines (its store subrequest's status, a skip decided at the
 * body's end).
 */

const { load: MODULES, skip } = debianModules(
  'ndk_http_module',
  'ngx_http_lua_module',
  'ngx_http_echo_module',
  'ngx_http_headers_more_filter_module',
  'ngx_http_srcache_filter_module',
);

/* the lua handler: response headers from the query (cc, exp, ce, etag, cl, st), then a body; fixed dates, so both servers send the same bytes */
const LUA = `content_by_lua_block {
        local a = ngx.req.get_uri_args()
        if a.cc then ngx.header["Cache-Control"] = a.cc end
        if a.exp == "past" then ngx.header["Expires"] = "Sat, 01 Jan 2000 00:00:00 GMT" end
        if a.exp == "far" then ngx.header["Expires"] = "Fri, 01 Jan 2100 00:00:00 GMT" end
        if a.exp == "bad" then ngx.header["Expires"] = "not a date" end
        if a.ce then ngx.header["Content-Encoding"] = a.ce end
        if a.etag then ngx.header["ETag"] = '"' .. a.etag .. '"' end
        if a.lm then ngx.header["Last-Modified"] = "Sat, 01 Mar 2014 01:02:38 GMT" end
        if a.cl then ngx.header["Content-Length"] = tonumber(a.cl) end
        if a.st then ngx.status = tonumber(a.st) end
        ngx.header["Set-Cookie"] = "s=1"
        ngx.say("page body")
        if a.skipatend then ngx.var.skip = "1" end
      }`;

const HTTP = `
  log_format stored escape=none '[$uri|$args|$request_body]';
  log_subrequest on;
  access_log {dir}/stored.log stored;
  server {
    listen 127.0.0.1:{port};
    error_log {dir}/debug.log debug;
    root {dir}/html;
    location = /fetch-miss { internal; return 404; }
    location = /store { internal; echo_read_request_body; echo stored; }
    location = /store500 { internal; return 500; }
    location = /store-error { internal; content_by_lua_block { ngx.exit(ngx.ERROR) } }
    location = /store404 { internal; echo_status 404; echo_read_request_body; echo nope; }

    location /lua {
      set $skip "";
      srcache_store_skip $skip;
      srcache_fetch GET /fetch-miss;
      srcache_store PUT /store exp=$srcache_expire&key=$uri;
      srcache_max_expire 5000;
      more_set_headers 'X-Store: $srcache_store_status';
      default_type text/plain;
      ${LUA}
    }
    location /ce-ok {
      srcache_ignore_content_encoding on;
      srcache_store PUT /store key=$uri;
      ${LUA}
    }
    location /codes {
      srcache_store_statuses 404 200;
      srcache_store PUT /store key=$uri;
      ${LUA}
    }
    location /maxsize {
      srcache_store_max_size 100;
      srcache_store PUT /store key=$uri;
      more_set_headers 'X-Store: $srcache_store_status';
      ${LUA}
    }
    location /hide {
      srcache_store_hide_header Content-Type;
      srcache_store_hide_header Last-Modified;
      srcache_store_pass_header Set-Cookie;
      srcache_store PUT /store key=$uri;
      ${LUA}
    }
    location /methods {
      srcache_methods POST;
      srcache_store PUT /store key=$uri&m=$request_method;
      ${LUA}
    }
    location /rcc {
      srcache_request_cache_control on;
      srcache_fetch GET /fetch-miss;
      srcache_store PUT /store key=$uri;
      more_set_headers 'X-Fetch: $srcache_fetch_status' 'X-Store: $srcache_store_status';
      ${LUA}
    }
    location /redirect { srcache_store PUT /store key=$uri; return 307 /elsewhere; }
    location /file/ {
      srcache_store PUT /store key=$uri$http_range;
      more_set_headers 'X-Store: $srcache_store_status';
    }
    location /file-ranges/ {
      alias {dir}/html/file/;
      srcache_store_ranges on;
      srcache_store PUT /store key=$uri$http_range;
    }
    location /store-empty { set $x ""; srcache_store PUT $x; more_set_headers 'X-Store: $srcache_store_status'; echo "client answer"; }
    location /store-unsafe { srcache_store PUT /a/../../store; echo "client answer"; }
    location /store-escaped { srcache_store PUT /st%6Fre?from=uri; echo "client answer"; }
    location /fail500 { srcache_store PUT /store500; echo "client answer"; }
    location /failerror { srcache_store PUT /store-error; echo "client answer"; }
    location /fail404 { srcache_store PUT /store404; echo "client answer"; }
  }
`;

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: h\r\n${extra}Connection: close\r\n\r\n`;

const CASES: Array<[string, string]> = [
  ['no Cache-Control: stored, the default expiry', get('/lua/a')],
  ['max-age=0: not stored', get('/lua/a?cc=max-age%3D0')],
  ['public; max-age=0: not stored', get('/lua/a?cc=public%3B%20max-age%3D0')],
  ['max-age with a non-digit: not stored', get('/lua/a?cc=max-age%3D12abc')],
  ['max-age=30: expiry 30', get('/lua/a?cc=public,%20max-age%3D30')],
  ['s-maxage is not max-age: the default expiry', get('/lua/a?cc=s-maxage%3D30')],
  ['Private in capitals: not stored', get('/lua/a?cc=Private')],
  ['no-cache="Set-Cookie": not stored', get('/lua/a?cc=no-cache%3D%22Set-Cookie%22')],
  ['Expires in the past: not stored', get('/lua/a?exp=past')],
  ['Expires far ahead: capped by srcache_max_expire', get('/lua/a?exp=far')],
  ['Expires not a date: not stored', get('/lua/a?exp=bad')],
  ['max-age wins over Expires', get('/lua/a?exp=past&cc=max-age%3D40')],
  ['Content-Encoding: the warn line, not stored', get('/lua/a?ce=gzip')],
  ['Content-Encoding with srcache_ignore_content_encoding', get('/ce-ok/a?ce=gzip')],
  ['307 stored by default', get('/redirect')],
  ['a lua 308 stored by default', get('/lua/a?st=308')],
  ['303 not stored', get('/lua/a?st=303')],
  ['srcache_store_statuses 404 200: a 404 stored', get('/codes/a?st=404')],
  ['Content-Length + 15 over srcache_store_max_size', get('/maxsize/a?cl=90')],
  ['Content-Length + 15 within it', get('/maxsize/a?cl=10')],
  ['hidden Content-Type and Last-Modified, passed Set-Cookie', get('/hide/a?lm=1')],
  ['a Last-Modified of the list, stored once', get('/lua/a?lm=1')],
  ['HEAD: not stored', 'HEAD /lua/a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['srcache_methods POST: a POST stored', 'POST /methods/a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab'],
  ['PUT: not a cache method', 'PUT /methods/a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab'],
  ['request no-cache: no fetch, stored', get('/rcc/a', 'Cache-Control: no-cache\r\n')],
  ['request Pragma: no-cache: no fetch, stored', get('/rcc/a', 'Pragma: no-cache\r\n')],
  ['request no-cache, no-store: neither', get('/rcc/a', 'Cache-Control: no-cache, no-store\r\n')],
  ['request no-store alone: fetched and stored', get('/rcc/a', 'Cache-Control: no-store\r\n')],
  ['a 304 made of a MISS: not stored', get('/lua/a?etag=e1', 'If-None-Match: "e1"\r\n')],
  ['store skip set as the body ends: not stored, debug line', get('/lua/a?skipatend=1')],
  ['a static file: Last-Modified, ETag, the ranges mark', get('/file/f.txt')],
  ['a range of it, srcache_store_ranges off: not stored', get('/file/f.txt', 'Range: bytes=2-5\r\n')],
  ['a range of it, srcache_store_ranges on: stored as 206', get('/file-ranges/f.txt', 'Range: bytes=2-5\r\n')],
  ['two ranges, srcache_store_ranges on', get('/file-ranges/f.txt', 'Range: bytes=0-1,4-5\r\n')],
  ['HTTP/1.0: lua holds its output for a Content-Length, stored', 'GET /lua/a HTTP/1.0\r\n\r\n'],
  ['HTTP/1.0 and a length already set', 'GET /lua/a?cl=10 HTTP/1.0\r\n\r\n'],
  ['an empty store URI: nothing stored', get('/store-empty')],
  ['an unsafe store URI: nothing stored', get('/store-unsafe')],
  ['%XX and ? in the store URI', get('/store-escaped')],
  ['store subrequest returns 500: its rc logged', get('/fail500')],
  ['store subrequest exits with ngx.ERROR', get('/failerror')],
  ['store subrequest answers 404', get('/fail404')],
];

/* error-log lines of srcache (error.log at info, debug.log at debug), without time, pid and connection */
function srcacheLines(text: string, srv: Running): string[] {
  return text
    .split('\n')
    .filter((l) => l.includes('srcache'))
    .map((l) => l.replace(/^.*?\[(\w+)\] \d+#\d+: (\*\d+ )?/, '[$1] ').replaceAll(`:${srv.port}`, ':PORT'));
}

const read = (srv: Running, name: string): string => {
  try {
    return readFileSync(join(srv.dir, name), 'latin1');
  } catch {
    return '';
  }
};

/* the stored entries, whose multipart boundaries are each server's own counter */
const storedOf = (text: string): string[] =>
  text
    .split(']\n')
    .filter((l) => l.startsWith('[/store|'))
    .map((l) => l.replace(/\d{20}/g, 'BOUNDARY'));

t.test('srcache_store: the same decisions, entries and log lines as nginx', { skip }, async (t) => {
  const servers: Running[] = [];
  for (const start of [startNginx, startRedis2d]) {
    const s = await start(HTTP, MODULES);
    t.teardown(() => s.stop());
    servers.push(s);
  }
  const [ng, rd] = servers as [Running, Running];
  for (const s of servers) {
    const dir = join(s.dir, 'html', 'file');
    (await import('node:fs')).mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'f.txt'), 'abcdefghijklmnopqrstuvwxyz\n');
  }
  // the same file time on both (Last-Modified and ETag are stored)
  const { utimesSync } = await import('node:fs');
  for (const s of servers) utimesSync(join(s.dir, 'html', 'file', 'f.txt'), 1300000000, 1300000000);

  for (const [name, req] of CASES) {
    const at = servers.map((s) => [read(s, 'error.log').length, read(s, 'debug.log').length, read(s, 'stored.log').length]);
    const answers: string[] = [];
    for (const s of servers) answers.push(normalize(await raw(s.port, req, 1500), s.port).replace(/\d{20}/g, 'BOUNDARY'));
    t.equal(answers[1], answers[0], name);
    // the store subrequest runs after the response: its entry and log lines follow it by a moment
    await new Promise((r) => setTimeout(r, 250));
    const logs = servers.map((s, i) => [
      ...srcacheLines(read(s, 'error.log').slice(at[i]![0]), s),
      ...srcacheLines(read(s, 'debug.log').slice(at[i]![1]), s).filter((l) => /^\[debug\] srcache_store(: subrequest returned| skipped due to the true value in)/.test(l)),
    ]);
    t.same(logs[1], logs[0], `${name}: log`);
    t.same(storedOf(read(rd, 'stored.log').slice(at[1]![2])), storedOf(read(ng, 'stored.log').slice(at[0]![2])), `${name}: stored`);
  }
});
