import t from 'tap';
import { existsSync, rmSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { hasNginx, startNginx, startRedis2d } from './helpers/server.js';
import { dechunk } from './helpers/http_redis.js';
import { makeCerts, tlsRaw } from './helpers/tls.js';

/*
 * `listen ... ssl http2`: redis2d does not implement HTTP/2. It accepts the
 * parameter (noted once: `the "listen ... http2" directive has no effect in
 * redis2d`) and negotiates HTTP/1.1 through ALPN, where nginx negotiates h2.
 * What a client gets is then compared by status and body bytes: nginx's
 * over HTTP/2 (node:http2), redis2d's over HTTP/1.1 on the same config.
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
  }
`;

const PATHS = ['/echo', '/big', '/ret?a=1', '/redir', '/gone', '/missing'];

/** status and body over HTTP/2 */
function h2get(port: number, path: string): Promise<{ status: number; body: string; alpn: string }> {
  return new Promise((resolve, reject) => {
    const s = h2connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'h.test' });
    s.on('error', reject);
    const req = s.request({ ':path': path, ':authority': 'h.test' });
    let status = 0;
    let body = '';
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (d: Buffer) => (body += d.toString('latin1')));
    req.on('end', () => {
      const alpn = String(s.alpnProtocol);
      s.close();
      resolve({ status, body, alpn });
    });
    req.end();
  });
}

/** status and body over HTTP/1.1 with ALPN offering h2 first (what browsers and curl --http2 send) */
async function h1get(port: number, path: string): Promise<{ status: number; body: string; alpn: string }> {
  const r = await tlsRaw(port, `GET ${path} HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n`, { servername: 'h.test', ALPNProtocols: ['h2', 'http/1.1'] });
  const headEnd = r.out.indexOf('\r\n\r\n');
  const head = r.out.slice(0, headEnd);
  const raw = r.out.slice(headEnd + 4);
  const body = /\r\nTransfer-Encoding: chunked/i.test(head) ? dechunk(raw).body : raw;
  return { status: Number(head.split(' ')[1]), body, alpn: r.alpn };
}

t.test('http2 listen: HTTP/1.1 through ALPN, the bodies and statuses of nginx over h2', { skip }, async (t) => {
  const ours = await startRedis2d(SITE, LOAD);
  t.teardown(() => ours.stop());
  const theirs = await startNginx(SITE, LOAD);
  t.teardown(() => theirs.stop());
  for (const path of PATHS) {
    const a = await h1get(ours.port, path);
    const b = await h2get(theirs.port, path);
    t.equal(a.alpn, 'http/1.1', `${path}: redis2d negotiates HTTP/1.1`);
    t.equal(b.alpn, 'h2', `${path}: nginx negotiates h2`);
    t.equal(a.status, b.status, `${path}: status`);
    t.equal(a.body.replaceAll('redis2d/0.1.0', 'S').replaceAll(/nginx\/1\.22\.1/g, 'S'), b.body.replaceAll('nginx/1.22.1', 'S'), `${path}: body`);
  }
  t.match(ours.stderr() + ours.errorLog(), /the "listen \.\.\. http2" directive has no effect in redis2d/, 'noted once at start');
});
