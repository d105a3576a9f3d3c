import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startBackend } from './helpers/backend.js';
import { freePort, hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * proxy_pass's own HTTP/1.x client (lib/modules/proxy/try.ts, http1.ts)
 * where the connection matters: an upstream `keepalive` cache reuses the
 * backend connection exactly when nginx's does (counted by the backend),
 * chunked and close-delimited bodies, and an HTTPS backend (a real
 * `openssl s_server`). Against Debian's nginx where it is installed.
 */

const get = (path: string, close = true): string => `GET ${path} HTTP/1.1\r\nHost: h\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;

t.test('an upstream keepalive cache reuses backend connections as nginx does', { skip: hasNginx ? false : 'Debian nginx is not installed' }, async (t) => {
  const conf = (bp: number): string => `
    upstream ka { server 127.0.0.1:${bp}; keepalive 4; }
    upstream noka { server 127.0.0.1:${bp}; }
    server {
      listen 127.0.0.1:{port};
      location /ka11/ { proxy_pass http://ka/; proxy_http_version 1.1; proxy_set_header Connection ""; }
      location /ka10/ { proxy_pass http://ka/; }
      location /noka/ { proxy_pass http://noka/; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }`;
  const counts: Record<string, number[]> = {};
  for (const kind of ['nginx', 'redis2d'] as const) {
    const backend = await startBackend(t);
    const srv: Running = kind === 'nginx' ? await startNginx(conf(backend.port)) : await startRedis2d(conf(backend.port));
    t.teardown(() => srv.stop());
    const out: number[] = [];
    for (const path of ['/ka11/bytes?n=10', '/ka11/chunked?n=3', '/ka11/bytes?n=0', '/ka10/bytes?n=10', '/ka10/bytes?n=10', '/noka/bytes?n=10', '/noka/bytes?n=10']) {
      const before = await backend.connections();
      const resp = normalize(await raw(srv.port, get(path), 1500), srv.port);
      t.match(resp, /^HTTP\/1\.1 200 OK\r\n/, `${kind} ${path}`);
      out.push((await backend.connections()) - before);
    }
    counts[kind] = out;
    await backend.stop();
  }
  // HTTP/1.1 with Connection "": one connection for the three; the first HTTP/1.0 request (nginx's
  // default, with Connection: close) still takes the cached one, which the backend then closes; after
  // that, and without a cache, one connection each
  t.same(counts.redis2d, counts.nginx, `new backend connections per request, as nginx: ${JSON.stringify(counts)}`);
  t.same(counts.redis2d, [1, 0, 0, 0, 1, 1, 1]);
});

t.test('an HTTPS backend (openssl s_server)', { skip: hasNginx ? false : 'Debian nginx is not installed' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'proxy-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=backend.test'], { stdio: 'ignore' });
  const port = await freePort();
  // -www: answers every GET with an HTTP/1.0 200 text/html status page, then closes
  const ssl = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', join(dir, 'cert.pem'), '-key', join(dir, 'key.pem'), '-www', '-quiet'], { stdio: 'ignore' });
  t.teardown(() => ssl.kill('SIGKILL'));
  await new Promise((r) => setTimeout(r, 500));
  const conf = `server { listen 127.0.0.1:{port}; location / { proxy_pass https://127.0.0.1:${port}; } }`;
  const heads: string[] = [];
  for (const kind of ['nginx', 'redis2d'] as const) {
    const srv = kind === 'nginx' ? await startNginx(conf) : await startRedis2d(conf);
    t.teardown(() => srv.stop());
    const resp = normalize(await raw(srv.port, get('/'), 2000), srv.port);
    t.match(resp, /^HTTP\/1\.1 200 ok\r\n/, `${kind}: the backend's status line`);
    t.match(resp, /<HTML><BODY BGCOLOR="#ffffff">\n<pre>\n/, `${kind}: the backend's page`);
    heads.push(resp.slice(0, resp.indexOf('\r\n\r\n')).replace(/^Content-Length: \d+\r?$/m, 'Content-Length: N'));
  }
  t.equal(heads[1], heads[0], 'the same response header as nginx');
});
