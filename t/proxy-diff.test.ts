import t from 'tap';
import { startBackend, type Backend } from './helpers/backend.js';
import { freePort, hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * proxy_pass under Debian's nginx and redis2d, in front of the same real
 * Node backend (t/helpers/backend_server.mjs): the client sees the same
 * bytes, the backend the same request (request line, every header line
 * in order and spelling, body), the error log the same lines.
 */

const CONF = (bp: number, dead: number): string => `
  upstream app { server 127.0.0.1:${bp}; }
  upstream two { server 127.0.0.1:${dead}; server 127.0.0.1:${bp}; }
  upstream dead { server 127.0.0.1:${dead}; }
  upstream twice { server 127.0.0.1:${bp}; server 127.0.0.1:${bp}; }
  server {
    listen 127.0.0.1:{port};
    location /a/ { proxy_pass http://app/echo/; proxy_set_header X-Foo bar; }
    location /echo { proxy_pass http://app; }
    location /lit/ { proxy_pass http://127.0.0.1:${bp}/echo/; }
    location /var/ { set $up app; proxy_pass http://$up; }
    location /varuri/ { proxy_pass http://127.0.0.1:${bp}/echo/fixed$is_args$args; }
    location /rw/ { rewrite ^/rw/(.*)$ /echo/$1 break; proxy_pass http://app/zzz/; }
    location /rwlast/ { rewrite ^/rwlast/(.*)$ /a/$1 last; }
    location ~ ^/re/(.*)$ { proxy_pass http://app; }
    location /hdr/ {
      proxy_pass http://app/echo/;
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Proxy "$proxy_host|$proxy_port";
      proxy_set_header User-Agent "";
    }
    location /nohdr/ { proxy_pass http://app/echo/; proxy_pass_request_headers off; }
    location /setbody/ { proxy_pass http://app/echo/; proxy_set_body "body for $uri"; proxy_method PUT; }
    location /r/ { proxy_pass http://app/; }
    location /r2/ { proxy_pass http://app/; proxy_redirect http://elsewhere/ /two/; }
    location /r3/ { proxy_pass http://app/; proxy_redirect ~^http://elsewhere/(.*)$ /three/$1; }
    location /roff/ { proxy_pass http://app/; proxy_redirect off; }
    location /ie/ { proxy_pass http://app/; proxy_intercept_errors on; error_page 404 = /fallback; }
    location = /fallback { return 200 "fallback $uri\\n"; }
    location /plain/ { proxy_pass http://app/; }
    location /two/ { proxy_pass http://two/; }
    location /dead/ { proxy_pass http://dead/; }
    location /slow/ { proxy_pass http://app/; proxy_read_timeout 300ms; }
    location /n503/ { proxy_pass http://twice/; proxy_next_upstream error timeout http_503; }
    location /hide/ { proxy_pass http://app/; proxy_hide_header Content-Type; proxy_pass_header Server; }
    location /cookie/ {
      proxy_pass http://app/;
      proxy_cookie_domain backend.example www.example.com;
      proxy_cookie_path /app/ /;
    }
    location /bind/ { proxy_pass http://app/echo/; proxy_bind 127.0.0.2; }
    location /nobody/ { proxy_pass http://app/echo/; proxy_pass_request_body off; proxy_set_header Content-Length ""; }
    location /ws/ {
      proxy_pass http://app/echo/;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header TE $http_te;
    }
  }
`;

/** requests whose responses must be byte-identical */
const RAW: Array<[string, string]> = [
  ['chunked backend response', 'GET /plain/chunked?n=4 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['chunked to an HTTP/1.0 client', 'GET /plain/chunked?n=2 HTTP/1.0\r\n\r\n'],
  ['content-length body', 'GET /plain/bytes?n=3000 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['HEAD', 'HEAD /plain/bytes?n=3000 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['a backend status and reason', 'GET /plain/status?code=503 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['204', 'GET /plain/status?code=204 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['proxy_redirect default', 'GET /r/redirect?to=http://app/echo HTTP/1.1\r\nHost: h.example\r\nConnection: close\r\n\r\n'],
  ['proxy_redirect default, relative', 'GET /r/redirect?to=/x/y HTTP/1.1\r\nHost: h.example\r\nConnection: close\r\n\r\n'],
  ['proxy_redirect explicit', 'GET /r2/redirect?to=http://elsewhere/p HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['proxy_redirect regex', 'GET /r3/redirect?to=http://elsewhere/q/r HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['proxy_redirect off', 'GET /roff/redirect?to=http://app/echo HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['intercepted 404 → error_page', 'GET /ie/status?code=404 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['not intercepted (no error_page for 503)', 'GET /ie/status?code=503 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['next upstream over a dead peer', 'GET /two/status?code=200 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['no live peer: 502', 'GET /dead/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['read timeout: 504', 'GET /slow/slow?delay=1500&n=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['next upstream on 503, then the last 503 passes', 'GET /n503/status?code=503 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['hide and pass headers', 'GET /hide/status?code=200 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['proxy_cookie_domain / proxy_cookie_path', 'GET /cookie/cookie?v=a%3D1%3B%20Domain%3D.backend.example%3B%20Path%3D%2Fapp%2Fx&v=b%3D2%3B%20path%3D%2Fother HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['auto_redirect: /a → /a/ (args kept)', 'GET /a?x=1 HTTP/1.1\r\nHost: h.example\r\nConnection: close\r\n\r\n'],
  ['keep-alive client, two requests', 'GET /plain/bytes?n=10 HTTP/1.1\r\nHost: h\r\n\r\nGET /plain/chunked?n=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
];

/** requests to /echo-backed locations: what the backend saw is compared */
const ECHO: Array<[string, string]> = [
  ['URI part replaces the location prefix', 'GET /a/x%20y/%41?q=1&r HTTP/1.1\r\nHost: h\r\nX-Client: 1\r\nCookie: a=b\r\nConnection: close\r\n\r\n'],
  ['no URI part: the request URI as sent', 'GET /echo/p%41th//x?x=%20 HTTP/1.0\r\n\r\n'],
  ['literal address with URI', 'GET /lit/k HTTP/1.0\r\n\r\n'],
  ['variables, upstream by name, no URI', 'GET /var/../echo/v?a=1 HTTP/1.0\r\n\r\n'],
  ['variables with a URI: used as is', 'GET /varuri/ignored?b=2 HTTP/1.0\r\n\r\n'],
  ['rewrite ... break: the changed URI, URI part ignored', 'GET /rw/one%20two?z HTTP/1.0\r\n\r\n'],
  ['rewrite ... last into a proxied location', 'GET /rwlast/deep?w HTTP/1.0\r\n\r\n'],
  ['regex location, no URI part', 'GET /re/../echo/x HTTP/1.0\r\n\r\n'],
  ['proxy_set_header', 'GET /hdr/h?1 HTTP/1.1\r\nHost: my.host\r\nX-Forwarded-For: 10.0.0.1\r\nUser-Agent: ua\r\nConnection: close\r\n\r\n'],
  ['proxy_pass_request_headers off', 'GET /nohdr/x HTTP/1.1\r\nHost: h\r\nX-Drop: 1\r\nConnection: close\r\n\r\n'],
  ['proxy_set_body and proxy_method', 'GET /setbody/sb HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['proxy_pass_request_body off, its length cleared', 'POST /nobody/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello'],
  ['Upgrade, Connection and TE set by proxy_set_header go out', 'GET /ws/x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nTE: trailers\r\nConnection: close\r\n\r\n'],
  ['POST body', 'POST /a/post HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nhello world'],
  ['chunked request body', 'POST /a/chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'],
  ['proxy_bind', 'GET /bind/b HTTP/1.0\r\n\r\n'],
  ['client TE/Expect-less hop-by-hop headers dropped', 'GET /a/hop HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nKeep-Alive: 5\r\nUpgrade: x\r\nConnection: close\r\n\r\n'],
];

interface Seen {
  method: string;
  url: string;
  httpVersion: string;
  body: string;
  /** the header lines as the backend received them: names as spelled, in order */
  headers: string[];
  /** the address the backend saw the connection come from */
  remote: string;
}

/* what the backend saw: the request line's parts, every header line in order, the body */
function seen(resp: string): Seen | string {
  const i = resp.indexOf('\r\n\r\n');
  const body = resp.slice(i + 4);
  let j: { method: string; url: string; httpVersion: string; body: string; rawHeaders: string[]; remote: string };
  try {
    j = JSON.parse(body.includes('{') ? body.slice(body.indexOf('{'), body.lastIndexOf('}') + 1) : body);
  } catch {
    return resp;
  }
  const headers: string[] = [];
  for (let k = 0; k < j.rawHeaders.length; k += 2) headers.push(`${j.rawHeaders[k]}: ${j.rawHeaders[k + 1]}`);
  return { method: j.method, url: j.url, httpVersion: j.httpVersion, body: j.body, headers, remote: j.remote };
}

/*
 * How a streamed body falls into chunks follows how the backend's writes
 * fell into reads, for nginx as for redis2d: the body is compared, with
 * the framing checked as well formed.
 */
function dechunked(resp: string): string {
  const i = resp.indexOf('\r\n\r\n');
  if (i === -1 || !/\r\nTransfer-Encoding: chunked\r\n/.test(resp.slice(0, i + 2))) return resp;
  let body = '';
  let p = i + 4;
  for (;;) {
    const e = resp.indexOf('\r\n', p);
    if (e === -1) return `${resp.slice(0, i + 4)}[bad chunking]${resp.slice(i + 4)}`;
    const n = parseInt(resp.slice(p, e), 16);
    if (n === 0) return `${resp.slice(0, i + 4)}[dechunked]${body}${resp.slice(e)}`;
    if (!(n > 0)) return `${resp.slice(0, i + 4)}[bad chunking]${resp.slice(i + 4)}`;
    body += resp.slice(e + 2, e + 2 + n);
    p = e + 2 + n + 2;
  }
}

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

t.test('proxy_pass: the same bytes, requests and log lines as nginx', { skip: hasNginx ? false : 'Debian nginx is not installed' }, async (t) => {
  const backend: Backend = await startBackend(t);
  const dead = await freePort();
  const conf = CONF(backend.port, dead);
  const ng = await startNginx(conf);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(conf);
  t.teardown(() => rd.stop());
  const ports = [backend.port, dead];

  for (const [name, req] of RAW) {
    const a = dechunked(normalize(await raw(ng.port, req, 2500), ng.port));
    const b = dechunked(normalize(await raw(rd.port, req, 2500), rd.port));
    t.equal(b, a, name);
  }
  for (const [name, req] of ECHO) {
    const a = seen(normalize(await raw(ng.port, req, 2500), ng.port));
    const b = seen(normalize(await raw(rd.port, req, 2500), rd.port));
    t.same(b, a, name);
  }
  // the log lines settle within the requests above; give the last writes a moment
  await new Promise((r) => setTimeout(r, 100));
  t.same(logLines(rd.errorLog(), rd, ports), logLines(ng.errorLog(), ng, ports), 'the same error-log lines');
});
