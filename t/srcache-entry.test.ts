import { existsSync } from 'node:fs';
import t from 'tap';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * How a cached entry is read back and served, under Debian's nginx with
 * the srcache module and under redis2d: echo locations stand in for the
 * cache and answer hand-made entries (good, odd and broken ones). The
 * answers are compared byte for byte, and so are the error log's srcache
 * lines: a HIT goes through the whole filter chain (If-None-Match and
 * If-Modified-Since give a 304, a Range a 206 when the entry allows
 * ranges), the stored Date and Server stand for nginx's own, the reason
 * phrase is nginx's, and a broken entry is a MISS with the module's words
 * (what it read before the break stays on the response).
 */

const MODS = '/usr/lib/nginx/modules';
const MODULES = ['ndk_http_module', 'ngx_http_echo_module', 'ngx_http_headers_more_filter_module', 'ngx_http_srcache_filter_module']
  .map((m) => `load_module ${MODS}/${m}.so;`)
  .join('\n');
const skip = !hasNginx || !existsSync(`${MODS}/ngx_http_srcache_filter_module.so`) ? 'Debian nginx with the srcache module not installed' : false;

/* entries as the fetch location answers them (nginx's config string escapes: \r \n \t) */
const ENTRIES: Record<string, string> = {
  etag: 'HTTP/1.1 200 OK\\r\\nContent-Type: text/css\\r\\nETag: \\"v1\\"\\r\\nLast-Modified: Sat, 01 Mar 2014 01:02:38 GMT\\r\\n\\r\\nhello entry\\n',
  ranges: 'HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nX-SRCache-Allow-Ranges: 1\\r\\nETag: \\"r1\\"\\r\\n\\r\\nabcdefghijklmnopqrstuvwxyz',
  rangescl: 'HTTP/1.1 200 OK\\r\\nX-SRCache-Allow-Ranges: 1\\r\\nContent-Length: 10\\r\\n\\r\\n0123456789',
  noranges: 'HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\nabcdefghij',
  dateserver: 'HTTP/1.1 200 OK\\r\\nX-A: 1\\r\\nServer: cached-server\\r\\nConnection: keep-alive\\r\\nKeep-Alive: timeout=5\\r\\nDate: Thu, 01 Jan 2015 00:00:00 GMT\\r\\n\\r\\nbody',
  reason: 'HTTP/1.1 200 Fine Thanks\\r\\n\\r\\nok',
  gone: 'HTTP/1.0 410 Gone Away\\r\\nX-Why: old\\r\\n\\r\\nnot here',
  twospaces: 'HTTP/1.1  201\\r\\n\\r\\nmade',
  spaces: 'HTTP/1.1 200 OK\\r\\nX-Trail:   padded  value   \\r\\nX-Tab: \\tv\\t\\r\\nNoColon\\r\\nX-Empty:\\r\\n\\r\\nb',
  lf: 'HTTP/1.1 200 OK\\nX-Lf: 1\\n\\nbody lf',
  redirect: 'HTTP/1.1 302 Moved Temporarily\\r\\nLocation: /elsewhere\\r\\n\\r\\nmoved',
  fits: 'HTTP/1.1 200 OK\\r\\nContent-Type: foo/bar\\r\\n\\r\\nhello',
  toolong: 'HTTP/1.1 200 OK\\r\\nContent-Type: foo/bars\\r\\n\\r\\nhello',
  badstatus: 'HTTX/1.1 200 OK\\r\\n\\r\\nx',
  badversion: 'HTTP/0.9 200 OK\\r\\n\\r\\nx',
  partial: 'HTTP/1.1 200 OK\\r\\nX-Partial: yes',
  partialstatus: 'HTTP/1.1 20',
  badheader: 'HTTP/1.1 404 Not Found\\r\\nX-Before: 1\\r\\nBad Name: x\\r\\n\\r\\nb',
  empty: '',
};

const fetchLocations = Object.entries(ENTRIES)
  .map(([k, v]) => `    location = /e/${k} { internal; echo -n "${v}"; }`)
  .join('\n');

const HTTP = `
  access_log off;
  server {
    listen 127.0.0.1:{port};
${fetchLocations}
    location = /e/missing { internal; return 404; }
    location /c/ {
      srcache_fetch GET /e/$arg_e;
      more_set_headers 'X-Fetch: $srcache_fetch_status';
      default_type text/html;
      echo "from backend";
    }
    location = /t/empty { set $x ""; srcache_fetch GET $x; echo "from backend"; }
    location = /t/unsafe { srcache_fetch GET /e/../e/etag; echo "from backend"; }
    location = /t/query { srcache_fetch GET /e/etag?from=uri; echo "from backend"; }
    location = /t/escaped { srcache_fetch GET /e/et%61g; echo "from backend"; }
    location /small/ {
      srcache_header_buffer_size 23;
      srcache_fetch GET /e/$arg_e;
      echo "from backend";
    }
  }
`;

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: h\r\n${extra}Connection: close\r\n\r\n`;
const head = (path: string): string => `HEAD ${path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`;

const CASES: Array<[string, string]> = [
  ['ETag and Last-Modified kept on a HIT', get('/c/a?e=etag')],
  ['If-None-Match matching: 304', get('/c/a?e=etag', 'If-None-Match: "v1"\r\n')],
  ['If-None-Match not matching: the entry', get('/c/a?e=etag', 'If-None-Match: "v2"\r\n')],
  ['If-Modified-Since at Last-Modified: 304', get('/c/a?e=etag', 'If-Modified-Since: Sat, 01 Mar 2014 01:02:38 GMT\r\n')],
  ['If-Modified-Since earlier: the entry', get('/c/a?e=etag', 'If-Modified-Since: Fri, 28 Feb 2014 01:02:38 GMT\r\n')],
  ['If-Match not matching: 412', get('/c/a?e=etag', 'If-Match: "zz"\r\n')],
  ['a HIT allowing ranges, no Range: Accept-Ranges', get('/c/a?e=ranges')],
  ['one range of a HIT', get('/c/a?e=ranges', 'Range: bytes=2-5\r\n')],
  ['a suffix range', get('/c/a?e=ranges', 'Range: bytes=-3\r\n')],
  ['a range past the end: 416', get('/c/a?e=ranges', 'Range: bytes=100-\r\n')],
  ['If-Range with the ETag', get('/c/a?e=ranges', 'Range: bytes=0-0\r\nIf-Range: "r1"\r\n')],
  ['If-Range with another ETag: the whole entry', get('/c/a?e=ranges', 'Range: bytes=0-0\r\nIf-Range: "xx"\r\n')],
  ['a range of an entry with its Content-Length', get('/c/a?e=rangescl', 'Range: bytes=1-3\r\n')],
  ['a Range on an entry without the mark: the whole entry', get('/c/a?e=noranges', 'Range: bytes=1-3\r\n')],
  ['304 of an entry with its Content-Length', get('/c/a?e=rangescl', 'If-None-Match: *\r\n')],
  ['HEAD of a HIT', head('/c/a?e=etag')],
  ['the stored Date and Server go out, Connection and Keep-Alive do not', get('/c/a?e=dateserver')],
  ["nginx's reason phrase, not the entry's", get('/c/a?e=reason')],
  ['a 410 entry, HTTP/1.0', get('/c/a?e=gone')],
  ['two spaces before the status, no phrase', get('/c/a?e=twospaces')],
  ['values lose their spaces, not their tabs; a line without a colon', get('/c/a?e=spaces')],
  ['LF-only lines', get('/c/a?e=lf')],
  ['a 302 entry: its Location as stored', get('/c/a?e=redirect')],
  ['each line within srcache_header_buffer_size: HIT', get('/small/a?e=fits')],
  ['a line past it: MISS', get('/small/a?e=toolong')],
  ['invalid status line: MISS', get('/c/a?e=badstatus')],
  ['HTTP/0.9 status line: MISS', get('/c/a?e=badversion')],
  ['entry ends inside the headers: MISS with what was read', get('/c/a?e=partial')],
  ['entry ends inside the status line', get('/c/a?e=partialstatus')],
  ['invalid header line: MISS with the status and headers before it', get('/c/a?e=badheader')],
  ['empty entry', get('/c/a?e=empty')],
  ['fetch answers 404: MISS', get('/c/a?e=missing')],
  ['an empty fetch URI: the connection closes', get('/t/empty')],
  ['an unsafe fetch URI: the connection closes', get('/t/unsafe')],
  ['a ? in the fetch URI', get('/t/query')],
  ['%XX in the fetch URI decoded', get('/t/escaped')],
];

/* srcache's error-log lines, without time, pid and connection number */
function srcacheLines(log: string, srv: Running): string[] {
  return log
    .split('\n')
    .filter((l) => l.includes('srcache'))
    .map((l) => l.replace(/^.*?\[(\w+)\] \d+#\d+: (\*\d+ )?/, '[$1] ').replaceAll(`:${srv.port}`, ':PORT'));
}

/* a multipart boundary is a counter of each server's own */
const boundaries = (s: string): string => s.replace(/\d{20}/g, 'BOUNDARY');

t.test('srcache: entries read back as nginx reads them', { skip }, async (t) => {
  const ng = await startNginx(HTTP, MODULES);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(HTTP, MODULES);
  t.teardown(() => rd.stop());
  for (const [name, req] of CASES) {
    const at = [ng.errorLog().length, rd.errorLog().length];
    const a = boundaries(normalize(await raw(ng.port, req, 1500), ng.port));
    const b = boundaries(normalize(await raw(rd.port, req, 1500), rd.port));
    t.equal(b, a, name);
    await new Promise((r) => setTimeout(r, 30));
    t.same(srcacheLines(rd.errorLog().slice(at[1]), rd), srcacheLines(ng.errorLog().slice(at[0]), ng), `${name}: log`);
  }
});

t.test('a multipart range answer of a HIT has the parts nginx sends', { skip }, async (t) => {
  const ng = await startNginx(HTTP, MODULES);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(HTTP, MODULES);
  t.teardown(() => rd.stop());
  const req = get('/c/a?e=ranges', 'Range: bytes=0-1,4-5\r\n');
  const a = boundaries(normalize(await raw(ng.port, req, 1500), ng.port));
  const b = boundaries(normalize(await raw(rd.port, req, 1500), rd.port));
  t.match(a, /^HTTP\/1\.1 206 /, 'nginx: 206');
  t.equal(b, a, 'the same parts');
});
