import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * auto_redirect: a location whose name ends in `/` and whose content is an
 * upstream (redis2_pass here; memcached_pass and proxy_pass under Debian's
 * nginx, which has no redis2) answers the URI without that slash with 301
 * to the location's escaped name, args kept; an exact or prefix location
 * for the URI itself wins, a regex does not. Also the static module's
 * directory redirect, with the URI escaped. Bytes compared with nginx.
 */

function conf(pass: (i: number) => string): string {
  return `
  server {
    listen 127.0.0.1:{port};
    root {dir}/html;
    location /dir/ { ${pass(0)} }
    location = /eq/ { ${pass(1)} }
    location = /ex { return 200 "exact wins\\n"; }
    location /ex/ { ${pass(0)} }
    location /pre { return 200 "prefix wins $uri\\n"; }
    location /pre/ { ${pass(1)} }
    location ~ ^/reg { return 200 "regex loses\\n"; }
    location /reg/ { ${pass(0)} }
    location /a/ {
      location /a/b/ { ${pass(1)} }
      return 200 "a $uri\\n";
    }
    location "/sp ace/" { ${pass(0)} }
    location /plain/ { return 200 "no upstream\\n"; }
  }`;
}

const OURS = conf(() => 'redis2_pass 127.0.0.1:1; redis2_query ping;');
const THEIRS = conf((i) => (i === 0 ? 'set $memcached_key k; memcached_pass 127.0.0.1:1;' : 'proxy_pass http://127.0.0.1:1;'));

const CASES: Array<[string, string]> = [
  ['prefix, no args', 'GET /dir HTTP/1.1\r\nHost: h.example\r\nConnection: close\r\n\r\n'],
  ['args kept', 'GET /dir?x=1&y=%20 HTTP/1.1\r\nHost: h.example:8080\r\nConnection: close\r\n\r\n'],
  ['HTTP/1.0 without Host', 'GET /dir HTTP/1.0\r\n\r\n'],
  ['HEAD', 'HEAD /dir HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['exact location with the slash', 'GET /eq HTTP/1.0\r\n\r\n'],
  ['an exact location of the URI wins', 'GET /ex HTTP/1.0\r\n\r\n'],
  ['a prefix location of the URI wins', 'GET /pre HTTP/1.0\r\n\r\n'],
  ['before regexes', 'GET /reg HTTP/1.0\r\n\r\n'],
  ['nested', 'GET /a/b HTTP/1.0\r\n\r\n'],
  ['escaped name', 'GET /sp%20ace?q HTTP/1.0\r\n\r\n'],
  ['no upstream: no redirect', 'GET /plain HTTP/1.0\r\n\r\n'],
  ['two slashes short: no redirect', 'GET /di HTTP/1.0\r\n\r\n'],
  ['static directory, escaped', 'GET /d%20ir?a=b HTTP/1.0\r\n\r\n'],
  ['static directory', 'GET /sub HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
];

async function play(srv: Running): Promise<string[]> {
  mkdirSync(join(srv.dir, 'html/d ir'), { recursive: true });
  mkdirSync(join(srv.dir, 'html/sub'), { recursive: true });
  writeFileSync(join(srv.dir, 'html/sub/index.html'), 'x');
  const out: string[] = [];
  for (const [, req] of CASES) {
    const res = normalize(await raw(srv.port, req, 300), srv.port);
    // a HEAD error page's length still counts the server's name in the page it did not send
    out.push(req.startsWith('HEAD') ? res.replace(/^Content-Length: \d+\r$/m, 'Content-Length: N\r') : res);
  }
  return out;
}

t.test('auto_redirect as nginx', async (t) => {
  const ours = await startRedis2d(OURS);
  t.teardown(() => ours.stop());
  const mine = await play(ours);
  t.match(mine[0], /^HTTP\/1\.1 301 Moved Permanently\r\n[^]*\r\nLocation: http:\/\/h\.example:PORT\/dir\/\r\n/);
  t.match(mine[1], /\r\nLocation: http:\/\/h\.example:PORT\/dir\/\?x=1&y=%20\r\n/);
  t.match(mine[9], /\r\nLocation: http:\/\/127\.0\.0\.1:PORT\/sp%20ace\/\?q\r\n/);
  t.match(mine[5], /exact wins/);
  if (!hasNginx) return;
  const ngx = await startNginx(THEIRS);
  t.teardown(() => ngx.stop());
  const theirs = await play(ngx);
  CASES.forEach(([name], i) => t.equal(mine[i], theirs[i], name));
});
