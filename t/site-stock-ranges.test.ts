import t from 'tap';
import { createServer, type AddressInfo } from 'node:net';
import { hasNginx, normalize, raw, startNginx, startRedis2d } from './helpers/server.js';

/*
 * proxy_force_ranges and fastcgi_force_ranges against Debian's nginx: the
 * backend's 200 with a length is answered as a static file would be, one
 * range at most (r->single_range): 206 with the bytes cut from the stream,
 * 416, or the whole body with Accept-Ranges (the backend's own
 * Accept-Ranges not copied); without the directive, no ranges at all.
 */

const skip = hasNginx ? false : 'Debian nginx not installed';

const BODY = Array.from({ length: 5000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');

t.test('force_ranges against nginx', { skip }, async (t) => {
  // the body in several writes, so the cut spans chunks
  const http = createServer((s) => {
    s.on('error', () => {});
    s.once('data', async () => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length}\r\nAccept-Ranges: none\r\nETag: "e1"\r\nConnection: close\r\n\r\n`);
      for (let i = 0; i < BODY.length; i += 1500) {
        s.write(BODY.slice(i, i + 1500));
        await new Promise((r) => setTimeout(r, 5));
      }
      s.end();
    });
  });
  const rec = (type: number, b: Buffer): Buffer => {
    const h = Buffer.alloc(8);
    h[0] = 1;
    h[1] = type;
    h.writeUInt16BE(1, 2);
    h.writeUInt16BE(b.length, 4);
    return Buffer.concat([h, b]);
  };
  const fcgi = createServer((s) => {
    s.on('error', () => {});
    let seen = Buffer.alloc(0);
    s.on('data', (d) => {
      seen = Buffer.concat([seen, d]);
      if (!seen.includes(Buffer.from([1, 5, 0, 1, 0, 0]))) return;
      const out = [rec(6, Buffer.from(`Content-Type: text/plain\r\nContent-Length: ${BODY.length}\r\n\r\n`))];
      for (let i = 0; i < BODY.length; i += 1500) out.push(rec(6, Buffer.from(BODY.slice(i, i + 1500))));
      out.push(rec(3, Buffer.alloc(8)));
      s.end(Buffer.concat(out));
    });
  });
  for (const s of [http, fcgi]) {
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    t.teardown(() => s.close());
  }
  const hp = (http.address() as AddressInfo).port;
  const fp = (fcgi.address() as AddressInfo).port;
  const conf = `
    server {
      listen 127.0.0.1:{port};
      location /p { proxy_force_ranges on; proxy_pass http://127.0.0.1:${hp}; }
      location /f { fastcgi_force_ranges on; fastcgi_pass 127.0.0.1:${fp}; }
      location /none { proxy_pass http://127.0.0.1:${hp}; }
      location /zero { proxy_force_ranges on; max_ranges 0; proxy_pass http://127.0.0.1:${hp}; }
    }`;
  const ng = await startNginx(conf);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(conf);
  t.teardown(() => rd.stop());
  const ranges = [undefined, 'bytes=10-19', 'bytes=1490-1510', 'bytes=-5', 'bytes=4990-', 'bytes=6000-7000', 'bytes=0-1,5-6', 'bytes=x'];
  for (const path of ['/p', '/f', '/none', '/zero']) {
    for (const range of ranges) {
      for (const extra of range === 'bytes=10-19' ? ['', 'If-Range: "e1"\r\n', 'If-Range: "other"\r\n'] : ['']) {
        const req = `GET ${path} HTTP/1.1\r\nHost: h\r\n${range === undefined ? '' : `Range: ${range}\r\n`}${extra}Connection: close\r\n\r\n`;
        t.equal(normalize(await raw(rd.port, req, 2000), rd.port), normalize(await raw(ng.port, req, 2000), ng.port), `${path} ${range ?? 'no Range'} ${extra.trim()}`);
      }
    }
  }
});
