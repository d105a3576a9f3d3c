import t from 'tap';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * limit_rate, limit_rate_after and $limit_rate against Debian's nginx: the
 * same bytes, and a 1 MB file at limit_rate 200k takes at least what
 * nginx's write filter allows (a budget of rate * (second + 1) past
 * limit_rate_after): a lower bound only, no upper timing assertion.
 * $limit_rate as read and as `set` (an invalid value is logged and
 * ignored); msie_padding off leaves the error page unpadded.
 */

const skip = hasNginx ? false : 'Debian nginx not installed';

const MB = 1 << 20;

const HTTP = `
  server {
    listen 127.0.0.1:{port};
    root {dir}/html;
    location /slow/ { alias {dir}/html/; limit_rate 200k; }
    location /after/ { alias {dir}/html/; limit_rate 300k; limit_rate_after 600k; }
    location /var/ { alias {dir}/html/; set $r 250k; limit_rate $r; }
    location /setvar/ { alias {dir}/html/; set $limit_rate 400k; }
    location = /show { set $limit_rate 64k; return 200 "rate=$limit_rate\\n"; }
    location = /shownone { return 200 "rate=$limit_rate\\n"; }
    location = /bad { set $limit_rate lots; return 200 "rate=$limit_rate\\n"; }
    location = /badvar { set $r lots; limit_rate $r; return 200 "ok\\n"; }
    location /nopad/ { msie_padding off; }
  }
`;

function body(): Buffer {
  const b = Buffer.alloc(MB);
  for (let i = 0; i < MB; i++) b[i] = 97 + (i % 26);
  return b;
}

function setup(s: Running): void {
  writeFileSync(join(s.dir, 'html', 'big.bin'), body());
}

/** the length of a chunked body */
function dechunkedLength(b: Buffer): number {
  let p = 0;
  let total = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', p);
    if (eol === -1) return -1;
    const n = parseInt(b.toString('latin1', p, eol), 16);
    if (Number.isNaN(n)) return -1;
    if (n === 0) return total;
    total += n;
    p = eol + 2 + n + 2;
  }
}

/** GET a path; the time until the last byte, and the body's bytes (chunked framing taken off) */
function timed(port: number, path: string): Promise<{ ms: number; bytes: number; head: string }> {
  return new Promise((res, rej) => {
    const start = Date.now();
    const c = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    c.on('data', (d) => chunks.push(d));
    c.on('error', rej);
    c.on('close', () => {
      const all = Buffer.concat(chunks);
      const h = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, h).toString('latin1');
      const rest = all.subarray(h + 4);
      res({ ms: Date.now() - start, bytes: /\r\nTransfer-Encoding: chunked/i.test(head) ? dechunkedLength(rest) : rest.length, head });
    });
    c.write(`GET ${path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`);
    setTimeout(() => c.destroy(), 20000).unref();
  });
}

/**
 * nginx's pace, second by second, for `total` bytes (header included) at
 * `rate` after `after`: whole seconds that must pass before the last byte
 */
function minSeconds(total: number, rate: number, after: number): number {
  // by the start of second N, rate * N + after bytes may be out (N = 0, 1, ...)
  return Math.max(0, Math.ceil((total - after) / rate) - 1);
}

t.test('limit_rate against nginx', { skip }, async (t) => {
  const ng = await startNginx(HTTP);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(HTTP);
  t.teardown(() => rd.stop());
  setup(ng);
  setup(rd);
  const cases: Array<[string, number, number]> = [
    ['/slow/big.bin', 200 * 1024, 0],
    ['/after/big.bin', 300 * 1024, 600 * 1024],
    ['/var/big.bin', 250 * 1024, 0],
    ['/setvar/big.bin', 400 * 1024, 0],
  ];
  // the two servers side by side: each case's transfers at once
  for (const [path, rate, after] of cases) {
    const [a, b] = await Promise.all([timed(ng.port, path), timed(rd.port, path)]);
    t.equal(b.bytes, MB, `${path}: the whole body`);
    t.equal(normalize(b.head, rd.port), normalize(a.head, ng.port), `${path}: the same header`);
    const floor = minSeconds(MB + b.head.length + 4, rate, after) * 1000;
    t.comment(`floor ${floor}`);
    t.ok(a.ms >= floor - 1000, `${path}: nginx took ${a.ms} ms (its floor ${floor} ms, within a second)`);
    t.ok(b.ms >= floor - 1000, `${path}: redis2d took ${b.ms} ms, nginx ${a.ms} ms (floor ${floor} ms, within the start second)`);
    t.comment(`${path}: nginx ${a.ms} ms, redis2d ${b.ms} ms`);
  }
  const unlimited = await timed(rd.port, '/big.bin');
  t.equal(unlimited.bytes, MB, 'without limit_rate: the whole body');
  for (const path of ['/show', '/shownone', '/bad', '/badvar']) {
    const req = `GET ${path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`;
    t.equal(normalize(await raw(rd.port, req, 2000), rd.port), normalize(await raw(ng.port, req, 2000), ng.port), `${path}: the response`);
  }
  const ie = 'GET /nopad/missing HTTP/1.1\r\nHost: h\r\nUser-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)\r\nConnection: close\r\n\r\n';
  const pad = 'GET /missing HTTP/1.1\r\nHost: h\r\nUser-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)\r\nConnection: close\r\n\r\n';
  t.equal(normalize(await raw(rd.port, ie, 2000), rd.port), normalize(await raw(ng.port, ie, 2000), ng.port), 'msie_padding off');
  t.equal(normalize(await raw(rd.port, pad, 2000), rd.port), normalize(await raw(ng.port, pad, 2000), ng.port), 'msie_padding on (default)');
  await new Promise((r) => setTimeout(r, 300));
  const errs = (s: Running): string[] =>
    s.errorLog().split('\n').filter((l) => l.includes('[error]') && l.includes('invalid')).map((l) => l.replace(/^.*?\[error\] \d+#\d+: \*\d+ /, ''));
  const want = errs(ng);
  t.equal(want.length, 2, 'nginx logged the two invalid sizes');
  t.same(errs(rd), want, 'the error lines of invalid sizes');
});

t.test('proxy_limit_rate and fastcgi_limit_rate against nginx', { skip }, async (t) => {
  const { createServer } = await import('node:net');
  const big = body();
  // an HTTP backend and a FastCGI app, each sending the 1 MB body at once
  const http = createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${MB}\r\nConnection: close\r\n\r\n`), big])));
  });
  const rec = (type: number, b: Buffer): Buffer => {
    const h = Buffer.alloc(8);
    h[0] = 1;
    h[1] = type;
    h.writeUInt16BE(1, 2);
    h.writeUInt16BE(b.length, 4);
    return Buffer.concat([h, b]);
  };
  const fcgiReply = [rec(6, Buffer.from('Content-Type: text/plain\r\n\r\n'))];
  for (let i = 0; i < MB; i += 32768) fcgiReply.push(rec(6, big.subarray(i, i + 32768)));
  fcgiReply.push(rec(3, Buffer.alloc(8)));
  const fcgi = createServer((s) => {
    s.on('error', () => {});
    let seen = Buffer.alloc(0);
    s.on('data', (d) => {
      seen = Buffer.concat([seen, d]);
      // the empty STDIN record ends the request
      if (seen.includes(Buffer.from([1, 5, 0, 1, 0, 0]))) s.end(Buffer.concat(fcgiReply));
    });
  });
  for (const s of [http, fcgi]) {
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    t.teardown(() => s.close());
  }
  const hp = (http.address() as { port: number }).port;
  const fp = (fcgi.address() as { port: number }).port;
  const conf = `
    server {
      listen 127.0.0.1:{port};
      location /p { proxy_limit_rate 300k; proxy_pass http://127.0.0.1:${hp}; }
      location /f { fastcgi_limit_rate 400k; fastcgi_pass 127.0.0.1:${fp}; }
      location /nobuf { proxy_buffering off; proxy_limit_rate 100k; proxy_pass http://127.0.0.1:${hp}; }
    }`;
  const ng = await startNginx(conf);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(conf);
  t.teardown(() => rd.stop());
  for (const [path, rate] of [['/p', 300 * 1024], ['/f', 400 * 1024]] as const) {
    const [a, b] = await Promise.all([timed(ng.port, path), timed(rd.port, path)]);
    t.equal(b.bytes, a.bytes, `${path}: the same body length`);
    t.equal(b.bytes, MB, `${path}: the whole body`);
    const floor = minSeconds(MB, rate, 0) * 1000;
    t.ok(a.ms >= floor - 1000, `${path}: nginx took ${a.ms} ms (floor ${floor} ms)`);
    t.ok(b.ms >= floor - 1000, `${path}: redis2d took ${b.ms} ms, nginx ${a.ms} ms (floor ${floor} ms)`);
    t.comment(`${path}: nginx ${a.ms} ms, redis2d ${b.ms} ms`);
  }
  // without buffering nginx does not pace reading: both answer whole (no timing asserted)
  const [a, b] = await Promise.all([timed(ng.port, '/nobuf'), timed(rd.port, '/nobuf')]);
  t.equal(b.bytes, MB, '/nobuf: the whole body');
  t.comment(`/nobuf: nginx ${a.ms} ms, redis2d ${b.ms} ms`);
});
