import { join } from 'node:path';
import t from 'tap';
import { phpFpmMissing, startPhpFpm } from './helpers/php_fpm.js';
import { ROOT } from './helpers/proc.js';
import { freePort, hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * fastcgi_pass under Debian's nginx and redis2d, in front of the same real
 * php-fpm (t/helpers/php_fpm.ts, its own instance on a loopback port), with
 * the bundled conf/fastcgi.conf: the same response bytes and the same
 * error-log lines.
 */

const CONF = (fpm: number, root: string, dead: number): string => `
  upstream php { server 127.0.0.1:${fpm}; }
  upstream phpka { server 127.0.0.1:${fpm}; keepalive 4; }
  server {
    listen 127.0.0.1:{port};
    root ${root};
    location ~ [^/]\\.php(/|$) {
      fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
      include ${join(ROOT, 'conf', 'fastcgi.conf')};
      fastcgi_param PATH_INFO $fastcgi_path_info;
      fastcgi_param HTTP_X_SET "from the config";
      fastcgi_param EMPTY_SKIPPED "" if_not_empty;
      fastcgi_index index.php;
      fastcgi_pass php;
    }
    location /ka/ {
      rewrite ^/ka(/.*)$ $1 break;
      include ${join(ROOT, 'conf', 'fastcgi.conf')};
      fastcgi_keep_conn on;
      fastcgi_pass phpka;
    }
    location /ie/ {
      rewrite ^/ie(/.*)$ $1 break;
      include ${join(ROOT, 'conf', 'fastcgi.conf')};
      fastcgi_intercept_errors on;
      error_page 404 = /fallback;
      fastcgi_pass php;
    }
    location = /fallback { return 200 "fallback $uri\\n"; }
    location /dead/ {
      include ${join(ROOT, 'conf', 'fastcgi.conf')};
      fastcgi_pass 127.0.0.1:${dead};
    }
  }
`;

const CASES: Array<[string, string]> = [
  ['GET with a query', 'GET /index.php?a=1&b=%20 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['PATH_INFO from fastcgi_split_path_info', 'GET /index.php/extra/path?q HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['POST body', 'POST /index.php HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\nConnection: close\r\n\r\na=1&b=2'],
  ['chunked request body', 'POST /index.php HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n'],
  ['header() and a status from the script', 'GET /header.php HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['HTTP/1.0 client', 'GET /index.php HTTP/1.0\r\n\r\n'],
  ['HEAD', 'HEAD /index.php HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['a missing script', 'GET /nope.php HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['STDERR from the script', 'GET /stderr.php HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['a large body', 'GET /big.php?n=100000 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['keepalive with fastcgi_keep_conn', 'GET /ka/index.php?k HTTP/1.1\r\nHost: h\r\n\r\nGET /ka/index.php?k2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['intercepted 404', 'GET /ie/header.php HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['dead peer: 502', 'GET /dead/index.php HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
];

function logLines(log: string, srv: Running, ports: number[]): string[] {
  return log
    .split('\n')
    .filter((l) => /\[(error|warn|crit|alert)\]/.test(l))
    .map((l) => {
      let s = l.replace(/^.*?\[(\w+)\] \d+#\d+: (\*\d+ )?/, '[$1] ');
      s = s.replaceAll(`:${srv.port}`, ':PORT');
      for (const p of ports) s = s.replaceAll(`:${p}`, `:P${ports.indexOf(p)}`);
      return s;
    });
}

/* the chunk framing of a streamed body depends on how php-fpm's writes fell into reads: compare the body */
function dechunked(resp: string): string {
  const i = resp.indexOf('\r\n\r\n');
  if (i === -1 || !/\r\nTransfer-Encoding: chunked\r\n/.test(resp.slice(0, i + 2))) return resp;
  let body = '';
  let p = i + 4;
  for (;;) {
    const e = resp.indexOf('\r\n', p);
    if (e === -1) break;
    const n = parseInt(resp.slice(p, e), 16);
    if (!(n > 0)) break;
    body += resp.slice(e + 2, e + 2 + n);
    p = e + 2 + n + 2;
  }
  return `${resp.slice(0, i + 4)}[dechunked]${body}`;
}

const skip = !hasNginx ? 'Debian nginx is not installed' : phpFpmMissing() ?? false;

t.test('fastcgi_pass to php-fpm: the same bytes and log lines as nginx', { skip }, async (t) => {
  const fpm = await startPhpFpm(t);
  const dead = await freePort();
  const conf = CONF(fpm.port, fpm.root, dead);
  const ng = await startNginx(conf);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(conf);
  t.teardown(() => rd.stop());
  for (const [name, req] of CASES) {
    const a = dechunked(normalize(await raw(ng.port, req, 2500), ng.port));
    const b = dechunked(normalize(await raw(rd.port, req, 2500), rd.port));
    t.equal(b, a, name);
  }
  await new Promise((r) => setTimeout(r, 100));
  t.same(logLines(rd.errorLog(), rd, [fpm.port, dead]), logLines(ng.errorLog(), ng, [fpm.port, dead]), 'the same error-log lines');
});
