import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { hasNginx, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * A plain TCP client connection is read and written through its libuv
 * handle (lib/http/raw_io.ts): one shared read buffer whose bytes are
 * copied out per read, writes batched per turn with the socket's own
 * backpressure. What that path must keep, checked against nginx's answers
 * (each case runs on both servers when Debian's nginx with echo is there):
 * a large body arriving in uneven pieces comes back byte for byte; a large
 * response to a client that stops reading arrives whole once it reads, and
 * the connection then serves its next request; a client that resets with
 * a response queued leaves the server serving, the request logged.
 */

const ECHO = '/usr/lib/nginx/modules/ngx_http_echo_module.so';
const canDiff = hasNginx && existsSync(ECHO);

const HTTP = `
  log_format st '"$request" $status';
  access_log {dir}/access.log st;
  client_max_body_size 4m;
  client_body_buffer_size 4m;
  server { listen 127.0.0.1:{port};
    location /b { echo_read_request_body; echo_request_body; }
    location /big { echo_duplicate 1048576 "abcd"; }
    location /r { return 200 "r\\n"; }
  }`;

const BIG = 4 * 1048576;

/** the bodies of the first `requests` responses (Content-Length or chunked; bounded by ms) */
function exchange(port: number, write: (c: net.Socket) => Promise<void>, requests: number, pauseMs = 0, ms = 15000): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    const bodies: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`timed out after ${bodies.length} responses`));
    }, ms);
    const parse = (): void => {
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buf.toString('latin1', 0, end);
        const m = /\r\ncontent-length: *(\d+)/i.exec(head);
        let body: Buffer;
        let used: number;
        if (m) {
          const len = Number(m[1]);
          if (buf.length < end + 4 + len) return;
          body = Buffer.from(buf.subarray(end + 4, end + 4 + len));
          used = end + 4 + len;
        } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
          // chunked: whole only once its last chunk is in
          const parts: Buffer[] = [];
          let at = end + 4;
          for (;;) {
            const eol = buf.indexOf('\r\n', at);
            if (eol === -1) return;
            const size = parseInt(buf.toString('latin1', at, eol), 16);
            if (buf.length < eol + 2 + size + 2) return;
            if (size === 0) {
              used = eol + 4;
              break;
            }
            parts.push(buf.subarray(eol + 2, eol + 2 + size));
            at = eol + 2 + size + 2;
          }
          body = Buffer.concat(parts);
        } else return reject(new Error(`no framing in ${head}`));
        bodies.push(body);
        buf = buf.subarray(used);
        if (bodies.length === requests) {
          clearTimeout(timer);
          c.destroy();
          resolve(bodies);
          return;
        }
      }
    };
    c.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      parse();
    });
    c.on('error', reject);
    c.once('connect', () => {
      if (pauseMs > 0) {
        c.pause();
        setTimeout(() => c.resume(), pauseMs);
      }
      write(c).catch(reject);
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function accessLines(srv: Running, n: number, ms = 3000): Promise<string[]> {
  const file = join(srv.dir, 'access.log');
  const until = Date.now() + ms;
  for (;;) {
    const lines = existsSync(file) ? readFileSync(file, 'latin1').split('\n').filter(Boolean) : [];
    if (lines.length >= n || Date.now() > until) return lines;
    await sleep(20);
  }
}

for (const name of ['redis2d', 'nginx'] as const) {
  const skip = name === 'nginx' ? !canDiff && 'Debian nginx with the echo module is not installed' : false;
  const start = (): Promise<Running> => (name === 'nginx' ? startNginx(HTTP, `load_module ${ECHO};`) : startRedis2d(HTTP));

  t.test(`${name}: a 1 MiB body in uneven pieces comes back byte for byte`, { skip, timeout: 30000 }, async (t) => {
    const srv = await start();
    t.teardown(() => srv.stop());
    const body = randomBytes(1048576);
    const [got] = await exchange(
      srv.port,
      async (c) => {
        c.write(`POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n`);
        // pieces of 1 byte to 200 KiB, some with a pause between: many reads of many sizes
        let at = 0;
        for (let i = 0; at < body.length; i++) {
          const n = Math.min(body.length - at, [1, 7, 1500, 65536, 204800, 333][i % 6]!);
          c.write(body.subarray(at, at + n));
          at += n;
          if (i % 5 === 0) await sleep(2);
        }
      },
      1,
    );
    t.equal(got!.length, body.length, 'the whole body');
    t.ok(got!.equals(body), 'the same bytes');
  });

  t.test(`${name}: 4 MiB to a client that reads after 300 ms, then its next request`, { skip, timeout: 30000 }, async (t) => {
    const srv = await start();
    t.teardown(() => srv.stop());
    const got = await exchange(
      srv.port,
      async (c) => {
        c.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
        await sleep(500);
        c.write('GET /r HTTP/1.1\r\nHost: a\r\n\r\n');
      },
      2,
      300,
    );
    t.equal(got[0]!.length, BIG, 'the whole response');
    t.ok(got[0]!.equals(Buffer.alloc(BIG, 'abcd')), 'its bytes');
    t.equal(got[1]!.toString(), 'r\n', 'the next request on the same connection');
  });

  t.test(`${name}: a client that resets with a response queued; the server goes on`, { skip, timeout: 30000 }, async (t) => {
    const srv = await start();
    t.teardown(() => srv.stop());
    await new Promise<void>((resolve) => {
      const c = net.connect(srv.port, '127.0.0.1');
      c.on('error', () => {});
      c.once('connect', () => {
        c.pause();
        c.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
        setTimeout(() => {
          c.resetAndDestroy();
          resolve();
        }, 200);
      });
    });
    const [r] = await exchange(srv.port, async (c) => void c.write('GET /r HTTP/1.1\r\nHost: a\r\n\r\n'), 1);
    t.equal(r!.toString(), 'r\n', 'a new connection is served');
    const lines = await accessLines(srv, 2);
    t.same(lines.sort(), ['"GET /big HTTP/1.1" 200', '"GET /r HTTP/1.1" 200'], 'both requests logged as nginx logs them');
  });
}
