import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { halfClose, hasNginx, normalize, startNginx, startRedis2d, type Running } from './helpers/server.js';
import { startRedis } from './helpers/redis.js';

/*
 * Clients that half-close (shutdown(SHUT_WR), Node's end()) after sending.
 * nginx reads no further while a request runs: it answers the half-closed
 * client, pipelined requests already received included, then closes; a
 * head or body left unfinished by the FIN is access-logged 400 with an info
 * line. An upstream location watches the client unless ignore_client_abort
 * is set: memc (here) and ngx_http_redis leave it off, so the request ends
 * 499 (`epoll_wait() reported that client prematurely closed connection, so
 * upstream connection is closed too`); redis2 sets it, so its requests are
 * answered (t/hardening-halfclose-upstream.test.ts, from the real modules).
 */

const ECHO = '/usr/lib/nginx/modules/ngx_http_echo_module.so';
const MEMC = '/usr/lib/nginx/modules/ngx_http_memc_module.so';

async function waitLines(file: string, n: number, ms = 3000): Promise<string[]> {
  const until = Date.now() + ms;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'latin1') : '';
    const lines = text.split('\n').filter(Boolean);
    if (lines.length >= n || Date.now() > until) return lines;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** the error log's info lines without time, pid and connection number */
function infoLines(srv: Running): string[] {
  return srv
    .errorLog()
    .split('\n')
    .filter((l) => l.includes('[info]') && l.includes('client'))
    .map((l) => l.replace(/^.*\[info\] \d+#\d+: \*\d+ /, '').replace(`127.0.0.1:${srv.port}`, '127.0.0.1:PORT'));
}

const HTTP = `
  log_format st '"$request" $status $body_bytes_sent';
  access_log {dir}/access.log st;
  server { listen 127.0.0.1:{port};
    location /r { return 200 "r\\n"; }
    location /e { echo e; }
    location /s { echo_sleep 0.2; echo s; }
    location /b { echo_read_request_body; echo "[$request_body]"; }
  }`;

const R = (p: string): string => `GET ${p} HTTP/1.1\r\nHost: a\r\n\r\n`;
const CASES: Array<[string, string]> = [
  ['a request, then FIN', 'GET /r HTTP/1.0\r\n\r\n'],
  ['a slow response after the FIN', 'GET /s HTTP/1.0\r\n\r\n'],
  ['a pipelined burst, then FIN: every response', R('/r') + R('/e') + R('/s') + R('/r')],
  ['a body complete before the FIN', 'POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcde'],
  ['a body with more pipelined after it', 'POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nabGET /e HTTP/1.0\r\n\r\n'],
  ['a body never read (discarded)', 'POST /r HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab'],
  ['FIN inside the request line: 400 logged, nothing sent', 'GET /r HTT'],
  ['FIN inside the headers', 'GET /r HTTP/1.1\r\nHost: a\r\n'],
  ['FIN inside the body', 'POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab'],
  ['FIN inside a pipelined request line', R('/r') + 'GET /x'],
  ['FIN with nothing sent', ''],
];

t.test('half-closed clients are answered as nginx answers them', { skip: (!hasNginx || !existsSync(ECHO)) && 'Debian nginx with the echo module is not installed' }, async (t) => {
  const got: Array<{ replies: string[]; access: string[]; info: string[] }> = [];
  for (const start of [startRedis2d, (h: string) => startNginx(h, `load_module ${ECHO};`)]) {
    const srv = await start(HTTP);
    t.teardown(() => srv.stop());
    const replies: string[] = [];
    for (const [, data] of CASES) replies.push(normalize(await halfClose(srv.port, data), srv.port));
    const access = await waitLines(join(srv.dir, 'access.log'), 15);
    await new Promise((r) => setTimeout(r, 100));
    got.push({ replies, access, info: infoLines(srv) });
  }
  const [mine, theirs] = got as [(typeof got)[0], (typeof got)[0]];
  CASES.forEach(([name], i) => t.equal(mine.replies[i], theirs.replies[i], name));
  t.same(mine.access, theirs.access, 'the same access log lines');
  t.same(mine.info, theirs.info, 'the same info lines');
  t.equal(mine.access.length, 15, 'every request logged once');
});

t.test('200 half-closed requests: all answered, none left open', async (t) => {
  const srv = await startRedis2d(HTTP);
  t.teardown(() => srv.stop());
  const outs: string[] = [];
  for (let batch = 0; batch < 10; batch++) {
    outs.push(...(await Promise.all(Array.from({ length: 20 }, (_, i) => halfClose(srv.port, `GET /${(batch + i) % 2 ? 'r' : 'e'}?n=${i} HTTP/1.0\r\n\r\n`)))));
  }
  t.equal(outs.filter((o) => /^HTTP\/1\.1 200 OK\r\n/.test(o) && /\r\n\r\n(r|e)\n$/.test(o)).length, 200, 'every response complete');
  // pipelined: 50 requests in one write, then FIN
  const burst = await halfClose(srv.port, Array.from({ length: 50 }, (_, i) => R(`/r?${i}`)).join(''));
  t.equal(burst.split('HTTP/1.1 200 OK').length - 1, 50, 'a burst of 50, then FIN: 50 responses');
  const lines = await waitLines(join(srv.dir, 'access.log'), 250);
  t.equal(lines.filter((l) => / 200 \d+$/.test(l)).length, 250, 'all logged 200');
});

t.test('nginx does the same with an upstream module (memc)', { skip: (!hasNginx || !existsSync(MEMC)) && 'Debian nginx with the memc module is not installed' }, async (t) => {
  // a memcached that answers a get after 300 ms
  const fake = net.createServer((s) => {
    s.on('error', () => {});
    s.on('data', () => setTimeout(() => s.destroyed || s.write('VALUE a 0 2\r\nhi\r\nEND\r\n'), 300));
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
  t.teardown(() => fake.close());
  const fp = (fake.address() as net.AddressInfo).port;
  const srv = await startNginx(
    `log_format st '"$request" $status $body_bytes_sent';
     access_log {dir}/access.log st;
     server { listen 127.0.0.1:{port}; error_log {dir}/error.log info;
       location /m { set $memc_cmd get; set $memc_key a; memc_pass 127.0.0.1:${fp}; } }`,
    `load_module ${MEMC};`,
  );
  t.teardown(() => srv.stop());
  const outs = await Promise.all(Array.from({ length: 5 }, () => halfClose(srv.port, 'GET /m HTTP/1.0\r\n\r\n')));
  t.same(new Set(outs), new Set(['']), 'nothing sent');
  const lines = await waitLines(join(srv.dir, 'access.log'), 5);
  t.same(lines, Array(5).fill('"GET /m HTTP/1.0" 499 0'), '499');
  t.equal(infoLines(srv).filter((l) => l.startsWith('epoll_wait() reported that client prematurely closed connection, so upstream connection is closed too while ')).length, 5);
});
