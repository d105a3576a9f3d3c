import t from 'tap';
import { existsSync, rmSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { hasNginx, normalize, raw, startNginx, startRedis2d } from './helpers/server.js';
import { dechunk } from './helpers/http_redis.js';
import { makeCerts, tlsRaw } from './helpers/tls.js';

/*
 * `listen ... ssl http2` (lib/http/h2.ts): HTTP/2 through node:http2 feeding
 * the same request engine, against Debian's nginx on the same config, both
 * asked over HTTP/2 (node:http2's client): statuses, response headers
 * (Date and Server aside) and body bytes, for echo, return, redirects,
 * error pages, HEAD, request bodies (with and without content-length), a
 * large body, many streams at once on one connection; HTTP/1.1 through
 * ALPN and plain HTTP (497) on the same port. A plain `listen ... http2`
 * (prior knowledge, h2c) is t/site-http2-h2c.test.ts.
 */

const MODS = '/usr/lib/nginx/modules';
const LOAD = `load_module ${MODS}/ngx_http_echo_module.so;`;
const skip = !hasNginx || !existsSync(`${MODS}/ngx_http_echo_module.so`) ? 'Debian nginx with the echo module is not installed' : false;

const certs = makeCerts(['h.test']);
t.teardown(() => rmSync(certs.dir, { recursive: true, force: true }));

const SITE = `
  access_log off;
  server {
    listen 127.0.0.1:{port} ssl http2;
    server_name h.test;
    ssl_certificate ${certs.dir}/h.test.crt;
    ssl_certificate_key ${certs.dir}/h.test.key;
    location /echo { echo "echo $uri $https $scheme"; echo_duplicate 3 "ab"; }
    location /big { echo_duplicate 100000 "0123456789"; }
    location /ret { return 200 "text $request_method $arg_a\\n"; }
    location /redir { return 301 /there; }
    location /gone { return 410; }
    location /post { client_body_buffer_size 1m; echo_read_request_body; echo "body=[$request_body] cl=[$http_content_length] m=$request_method"; }
    location /hdr { add_header X-Multi one; add_header X-Multi two; add_header Set-Cookie "a=1"; add_header Set-Cookie "b=2"; return 200 "ck=[$http_cookie] host=[$host] ua=[$http_user_agent]\n"; }
  }
`;


/** the port redis2d serves on (its error pages' footer is longer than nginx's) */
let ourPort = 0;

interface H2Reply {
  status: number;
  headers: Record<string, string | string[]>;
  body: string;
  alpn: string;
}

/** one request over a fresh HTTP/2 connection */
function h2req(port: number, headers: Record<string, string | string[]>, body?: string): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const s = h2connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'h.test' });
    s.on('error', reject);
    const req = s.request({ ':authority': 'h.test', ...headers }, { endStream: body === undefined });
    const out: H2Reply = { status: 0, headers: {}, body: '', alpn: '' };
    req.on('response', (h) => {
      out.status = Number(h[':status']);
      for (const [k, v] of Object.entries(h)) {
        if (k.startsWith(':') || k === 'date' || k === 'server' || v === undefined) continue;
        out.headers[k] = v as string | string[];
      }
    });
    req.on('data', (d: Buffer) => (out.body += d.toString('latin1')));
    req.on('end', () => {
      out.alpn = String(s.alpnProtocol);
      s.close();
      out.body = out.body.replaceAll('redis2d/0.1.0', 'S').replaceAll('nginx/1.22.1', 'S');
      // an error page's length counts the server's name in its footer; the Location names the port
      const cl = out.headers['content-length'];
      if (out.status >= 300 && out.headers['content-type'] === 'text/html' && typeof cl === 'string') {
        out.headers['content-length'] = `${Number(cl) - (port === ourPort ? 'redis2d/0.1.0' : 'nginx/1.22.1').length}+S`;
      }
      const loc = out.headers.location;
      if (typeof loc === 'string') out.headers.location = loc.replace(`:${port}`, ':PORT');
      resolve(out);
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

const CASES: Array<[string, Record<string, string | string[]>, string?]> = [
  ['echo', { ':path': '/echo' }],
  ['big', { ':path': '/big' }],
  ['return with args', { ':path': '/ret?a=1' }],
  ['redirect', { ':path': '/redir' }],
  ['410 page', { ':path': '/gone' }],
  ['404 page', { ':path': '/missing' }],
  ['HEAD', { ':path': '/ret?a=2', ':method': 'HEAD' }],
  ['HEAD of an error page', { ':path': '/missing', ':method': 'HEAD' }],
  ['POST with content-length', { ':path': '/post', ':method': 'POST', 'content-length': '7' }, 'hello=1'],
  ['POST without content-length', { ':path': '/post', ':method': 'POST' }, 'streamed body'],
  ['headers, cookies', { ':path': '/hdr', cookie: ['a=1', 'b=2'], 'user-agent': 'h2test' }],
];

t.test('HTTP/2 against nginx over HTTP/2', { skip }, async (t) => {
  const ours = await startRedis2d(SITE, LOAD);
  t.teardown(() => ours.stop());
  ourPort = ours.port;
  const theirs = await startNginx(SITE, LOAD);
  t.teardown(() => theirs.stop());
  for (const [name, headers, body] of CASES) {
    const a = await h2req(ours.port, headers, body);
    const b = await h2req(theirs.port, headers, body);
    t.equal(a.alpn, 'h2', `${name}: h2`);
    t.same(a, b, name);
  }

  await t.test('many streams on one connection', async (t) => {
    const run = (port: number): Promise<string[]> =>
      new Promise((resolve, reject) => {
        const s = h2connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'h.test' });
        s.on('error', reject);
        const paths = Array.from({ length: 20 }, (_, i) => (i % 4 === 0 ? '/big' : `/ret?a=${i}`));
        const got: string[] = new Array(paths.length).fill('');
        let left = paths.length;
        paths.forEach((p, i) => {
          const req = s.request({ ':path': p, ':authority': 'h.test' });
          req.on('response', (h) => (got[i] += `${h[':status']} `));
          req.on('data', (d: Buffer) => (got[i] += d.toString('latin1')));
          req.on('end', () => {
            if (--left === 0) {
              s.close();
              resolve(got);
            }
          });
          req.end();
        });
      });
    t.same(await run(ours.port), await run(theirs.port), 'same statuses and bodies');
  });

  await t.test('HTTP/1.1 through ALPN and plain HTTP on the same port', async (t) => {
    for (const port of [ours.port, theirs.port]) {
      const r = await h1get(port, '/ret?a=h1');
      t.equal(r.alpn, 'http/1.1');
      t.equal(r.body, 'text GET h1\n');
    }
    const plain = 'GET / HTTP/1.1\r\nHost: h.test\r\n\r\n';
    t.equal(normalize(await raw(ours.port, plain), ours.port), normalize(await raw(theirs.port, plain), theirs.port), '497 page');
  });
});

/** status and body over HTTP/1.1 with ALPN http/1.1 */
async function h1get(port: number, path: string): Promise<{ status: number; body: string; alpn: string }> {
  const r = await tlsRaw(port, `GET ${path} HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n`, { servername: 'h.test', ALPNProtocols: ['http/1.1'] });
  const headEnd = r.out.indexOf('\r\n\r\n');
  const head = r.out.slice(0, headEnd);
  const rest = r.out.slice(headEnd + 4);
  const body = /\r\nTransfer-Encoding: chunked/i.test(head) ? dechunk(rest).body : rest;
  return { status: Number(head.split(' ')[1]), body, alpn: r.alpn };
}

t.test('graceful stop with an HTTP/2 connection open: GOAWAY, then exit', async (t) => {
  const { alive } = await import('./helpers/proc.js');
  const srv = await startRedis2d(SITE.replace('load_module', '#'), '');
  t.teardown(() => srv.stop());
  const s = h2connect(`https://127.0.0.1:${srv.port}`, { rejectUnauthorized: false, servername: 'h.test' });
  s.on('error', () => {});
  const goaway = new Promise<boolean>((r) => {
    s.once('goaway', () => r(true));
    setTimeout(() => r(false), 5000).unref();
  });
  const body = await new Promise<string>((resolve) => {
    const req = s.request({ ':path': '/ret?a=q', ':authority': 'h.test' });
    let b = '';
    req.on('data', (d: Buffer) => (b += d.toString('latin1')));
    req.on('end', () => resolve(b));
    req.end();
  });
  t.equal(body, 'text GET q\n');
  process.kill(srv.pid, 'SIGQUIT');
  t.ok(await goaway, 'GOAWAY sent');
  const until = Date.now() + 5000;
  while (alive(srv.pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  t.notOk(alive(srv.pid), 'the process exited');
  s.destroy();
});
