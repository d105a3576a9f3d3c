import t from 'tap';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * fastcgi_catch_stderr against Debian's nginx, with FastCGI backends in this
 * process: a STDERR piece before the response header that holds one of the
 * strings makes the response invalid (next upstream when invalid_header is
 * asked for, else 502), after the header it is only logged; both log the
 * `FastCGI sent in stderr` line. Responses and error lines compared.
 */

const skip = hasNginx ? false : 'Debian nginx not installed';

function record(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = 1;
  h[1] = type;
  h.writeUInt16BE(1, 2);
  h.writeUInt16BE(body.length, 4);
  return Buffer.concat([h, body]);
}

const STDOUT = 6;
const STDERR = 7;
const END = 3;

/** a FastCGI app answering every request with `records` once the request's empty STDIN arrived */
async function app(records: Buffer[]): Promise<Server> {
  const s = createServer((c) => {
    c.on('error', () => {});
    let buf = Buffer.alloc(0);
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      // the empty STDIN record (type 5, length 0) ends the request
      for (let i = 0; i + 8 <= buf.length; ) {
        const type = buf[i + 1]!;
        const len = buf.readUInt16BE(i + 4);
        const pad = buf[i + 6]!;
        if (type === 5 && len === 0) {
          c.end(Buffer.concat(records));
          return;
        }
        i += 8 + len + pad;
      }
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return s;
}

const ok = record(STDOUT, Buffer.from('Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nhello\n'));
const end = record(END, Buffer.alloc(8));

t.test('fastcgi_catch_stderr against nginx', { skip }, async (t) => {
  const bad = await app([record(STDERR, Buffer.from('PHP message: boom in x.php.\n')), ok, end]);
  const late = await app([ok, record(STDERR, Buffer.from('PHP message: boom later\n')), end]);
  const good = await app([ok, end]);
  for (const s of [bad, late, good]) t.teardown(() => s.close());
  const port = (s: Server): number => (s.address() as AddressInfo).port;
  const http = `
    upstream two { server 127.0.0.1:${port(bad)}; server 127.0.0.1:${port(good)}; }
    server {
      listen 127.0.0.1:{port};
      location /nocatch { fastcgi_pass 127.0.0.1:${port(bad)}; }
      location /catch { fastcgi_catch_stderr "boom"; fastcgi_pass 127.0.0.1:${port(bad)}; }
      location /other { fastcgi_catch_stderr "fatal"; fastcgi_catch_stderr "nothing"; fastcgi_pass 127.0.0.1:${port(bad)}; }
      location /late { fastcgi_catch_stderr "boom"; fastcgi_pass 127.0.0.1:${port(late)}; }
      location /next { fastcgi_catch_stderr "boom"; fastcgi_next_upstream invalid_header; fastcgi_pass two; }
      location /nonext { fastcgi_catch_stderr "boom"; fastcgi_next_upstream off; fastcgi_pass two; }
    }`;
  const ng = await startNginx(http);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(http);
  t.teardown(() => rd.stop());
  for (const path of ['/nocatch', '/catch', '/other', '/late', '/next', '/nonext']) {
    const req = `GET ${path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`;
    t.equal(normalize(await raw(rd.port, req, 2000), rd.port), normalize(await raw(ng.port, req, 2000), ng.port), `${path}: the response`);
  }
  await new Promise((r) => setTimeout(r, 300));
  const lines = (s: Running): string[] =>
    s.errorLog().split('\n').filter((l) => /\[(error|warn)\]/.test(l)).map((l) => l.replace(/^.*?\[(error|warn)\] \d+#\d+: \*\d+ /, '[$1] ').replace(/127\.0\.0\.1:\d+/g, 'ADDR'));
  const want = lines(ng);
  t.ok(want.some((l) => l.includes('FastCGI sent in stderr: "PHP message: boom in x.php"')), 'nginx logged the stderr');
  t.same(lines(rd), want, 'the error lines');
});
