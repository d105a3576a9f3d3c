import t from 'tap';
import { createServer, type AddressInfo } from 'node:net';
import { hasNginx, normalize, raw, startNginx, startRedis2d } from './helpers/server.js';

/*
 * chunked_transfer_encoding and keepalive_disable against Debian's nginx:
 * a response without a length to an HTTP/1.1 client is chunked, or with
 * chunked_transfer_encoding off ends by closing the connection (the
 * pipelined second request is never answered); keepalive_disable closes
 * after a response to MSIE 6 (POST only) or Safari, `none` closes for
 * nobody. Bytes compared on one connection per case.
 */

const skip = hasNginx ? false : 'Debian nginx not installed';

const SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.1 Safari/605.1.15';
const CHROME = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36';
const MSIE6 = 'Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)';
const MSIE6SV1 = 'Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)';
const OPERA = 'Opera/9.80 (compatible; MSIE 6.0; Windows NT 5.1)';

t.test('chunked_transfer_encoding and keepalive_disable against nginx', { skip }, async (t) => {
  // an HTTP/1.0 backend that ends its body by closing: nginx's response has no length
  const backend = createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.end('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nno length here\n'));
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.teardown(() => backend.close());
  const bp = (backend.address() as AddressInfo).port;
  const http = `
    server {
      listen 127.0.0.1:{port};
      location /chunked { proxy_pass http://127.0.0.1:${bp}; }
      location /nochunk { chunked_transfer_encoding off; proxy_pass http://127.0.0.1:${bp}; }
      location /nochunk-len { chunked_transfer_encoding off; return 200 "has a length\\n"; }
      location /default { return 200 "default\\n"; }
      location /safari { keepalive_disable safari; return 200 "safari\\n"; }
      location /both { keepalive_disable msie6 safari; return 200 "both\\n"; }
      location /none { keepalive_disable none; return 200 "none\\n"; }
    }`;
  const ng = await startNginx(http);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(http);
  t.teardown(() => rd.stop());
  const req = (method: string, path: string, ua?: string, version = '1.1'): string =>
    `${method} ${path} HTTP/${version}\r\nHost: h\r\n${ua === undefined ? '' : `User-Agent: ${ua}\r\n`}${method === 'POST' ? 'Content-Length: 2\r\n\r\nab' : '\r\n'}`;
  const last = 'GET /default HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n';
  const cases: Array<[string, string]> = [
    ['chunked', req('GET', '/chunked')],
    ['chunked_transfer_encoding off', req('GET', '/nochunk')],
    ['chunked_transfer_encoding off, HTTP/1.0 keep-alive', req('GET', '/nochunk', undefined, '1.0').replace('\r\n\r\n', '\r\nConnection: keep-alive\r\n\r\n')],
    ['chunked_transfer_encoding off, a length', req('GET', '/nochunk-len')],
    ['MSIE 6 POST (default msie6)', req('POST', '/default', MSIE6)],
    ['MSIE 6 GET', req('GET', '/default', MSIE6)],
    ['MSIE 6 SV1 POST', req('POST', '/default', MSIE6SV1)],
    ['Opera as MSIE 6 POST', req('POST', '/default', OPERA)],
    ['Safari, default', req('GET', '/default', SAFARI)],
    ['Safari, keepalive_disable safari', req('GET', '/safari', SAFARI)],
    ['Chrome on a Mac, keepalive_disable safari', req('GET', '/safari', CHROME)],
    ['MSIE 6 POST, keepalive_disable safari', req('POST', '/safari', MSIE6)],
    ['MSIE 6 POST, both', req('POST', '/both', MSIE6)],
    ['Safari, both', req('GET', '/both', SAFARI)],
    ['MSIE 6 POST, none', req('POST', '/none', MSIE6)],
  ];
  for (const [name, first] of cases) {
    // the second request is answered only if the connection was kept
    const a = normalize(await raw(ng.port, first + last, 1500), ng.port);
    const b = normalize(await raw(rd.port, first + last, 1500), rd.port);
    t.equal(b, a, name);
  }
});

t.test('msie_refresh against nginx', { skip }, async (t) => {
  const http = `
    server {
      listen 127.0.0.1:{port};
      msie_refresh on;
      location = /r301 { return 301 "/to/a b\\"c'd<e>%41"; }
      location = /r302 { return 302 http://example.com/x?y=1; }
      location = /r307 { return 307 /to; }
      location = /ep { error_page 404 http://example.com/missing; return 404; }
      location = /ep301 { error_page 404 =301 /moved; return 404; }
      location = /off { msie_refresh off; return 301 /to; }
      location /dir { }
    }`;
  const ng = await startNginx(http);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(http);
  t.teardown(() => rd.stop());
  const { mkdirSync } = await import('node:fs');
  const { join } = await import('node:path');
  for (const s of [ng, rd]) mkdirSync(join(s.dir, 'html', 'dir'), { recursive: true });
  for (const ua of [MSIE6, 'Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1)', OPERA, CHROME, 'MSIE 9']) {
    for (const path of ['/r301', '/r302', '/r307', '/ep', '/ep301', '/off', '/dir']) {
      for (const method of ['GET', 'HEAD']) {
        const req = `${method} ${path} HTTP/1.1\r\nHost: h\r\nUser-Agent: ${ua}\r\nConnection: close\r\n\r\n`;
        t.equal(normalize(await raw(rd.port, req, 1500), rd.port), normalize(await raw(ng.port, req, 1500), ng.port), `${ua.slice(0, 30)} ${method} ${path}`);
      }
    }
  }
});
