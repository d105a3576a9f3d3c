import { readFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { hasNginx, startNginx, startRedis2d } from './helpers/server.js';

/*
 * A request whose client leaves before the response is still access-logged
 * (nginx logs every request). nginx reads nothing from the client while a
 * handler like echo_sleep waits, so it writes the response to the departed
 * client and logs the status that went out; 499 is for handlers that watch
 * the client (upstreams: t/hardening-halfclose.test.ts).
 */

function leaveAfter(port: number, req: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => {
      c.write(req);
      setTimeout(() => c.destroy(), ms);
    });
    c.on('close', () => resolve());
    c.on('error', () => resolve());
  });
}

t.test('client gone before the response: logged once, with what went out', async (t) => {
  const srv = await startRedis2d(`
    log_format st '$request $status $body_bytes_sent';
    access_log {dir}/access.log st;
    server { listen 127.0.0.1:{port};
      location /slow { echo_sleep 0.3; echo late; }
      location /half { echo first; echo_sleep 0.3; echo second; }
    }`);
  t.teardown(() => srv.stop());
  await leaveAfter(srv.port, 'GET /slow HTTP/1.1\r\nHost: h\r\n\r\n', 100);
  await leaveAfter(srv.port, 'GET /half HTTP/1.1\r\nHost: h\r\n\r\n', 100);
  const file = join(srv.dir, 'access.log');
  let text = '';
  for (let i = 0; i < 100 && (text.split('\n').length < 3); i++) {
    await new Promise((r) => setTimeout(r, 20));
    text = existsSync(file) ? readFileSync(file, 'latin1') : '';
  }
  const lines = text.trim().split('\n');
  t.equal(lines[0], 'GET /slow HTTP/1.1 200 15', 'written to the departed client, as nginx does');
  t.match(lines[1] ?? '', /^GET \/half HTTP\/1\.1 200 [1-9]\d*$/, 'a started response keeps its status');
  t.equal(lines.length, 2, 'one line per request, logged once');
});

const ECHO = '/usr/lib/nginx/modules/ngx_http_echo_module.so';

t.test('status and byte counts in the access log as nginx', { skip: (!hasNginx || !existsSync(ECHO)) && 'Debian nginx with the echo module is not installed' }, async (t) => {
  const http = `
    log_format st '$request $status $body_bytes_sent $bytes_sent';
    access_log {dir}/access.log st;
    client_body_timeout 500ms;
    server { listen 127.0.0.1:{port};
      location /chunked { echo ok; echo more; }
      location /body { echo_read_request_body; echo "[$request_body]"; }
      location /len { return 200 "fixed\\n"; }
    }`;
  const lines: string[][] = [];
  for (const start of [startRedis2d, (h: string) => startNginx(h, `load_module ${ECHO};`)]) {
    const srv = await start(http);
    t.teardown(() => srv.stop());
    await leaveAfter(srv.port, 'GET /chunked HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n', 300);
    await leaveAfter(srv.port, 'GET /chunked HTTP/1.0\r\n\r\n', 300);
    await leaveAfter(srv.port, 'GET /len HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n', 300);
    // the body never comes: client_body_timeout → 408
    await leaveAfter(srv.port, 'POST /body HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab', 1200);
    const file = join(srv.dir, 'access.log');
    let text = '';
    for (let i = 0; i < 50 && text.split('\n').length < 5; i++) {
      await new Promise((r) => setTimeout(r, 20));
      text = existsSync(file) ? readFileSync(file, 'latin1') : '';
    }
    // the Server header names differ in length: compare body bytes exactly, total bytes by shape
    lines.push(text.trim().split('\n').map((l) => l.replace(/ \d+$/, ' N')));
  }
  t.same(lines[0], lines[1], 'the same lines');
  t.equal(lines[0]!.length, 4, 'four requests logged');
});

t.test('client_header_timeout on an unfinished head: info line and 408, as nginx', { skip: !hasNginx && 'Debian nginx is not installed' }, async (t) => {
  const http = `
    log_format st '$request $status $body_bytes_sent';
    access_log {dir}/access.log st;
    client_header_timeout 400ms;
    server { listen 127.0.0.1:{port}; location / { return 200 "x\\n"; } }`;
  const got: string[] = [];
  for (const start of [startRedis2d, startNginx]) {
    const srv = await start(http);
    t.teardown(() => srv.stop());
    await leaveAfter(srv.port, 'GET /x HTT', 1000);
    await leaveAfter(srv.port, 'GET /y HTTP/1.1\r\nHost: hh\r\nX-A: 1', 1000);
    await leaveAfter(srv.port, '', 1000); // nothing sent: `while waiting for request`
    const access = readFileSync(join(srv.dir, 'access.log'), 'latin1');
    const errors = srv.errorLog().split('\n').filter((l) => l.includes('client timed out')).map((l) => l.replace(/^.*\[info\] \d+#\d+: \*\d+ /, '').replace(`127.0.0.1:${srv.port}`, '127.0.0.1:PORT'));
    got.push(access + errors.join('\n'));
  }
  t.equal(got[0], got[1], 'the same access and error lines');
  t.match(got[0]!, 'GET /x HTT 408 0\nGET /y HTTP/1.1 408 0\nclient timed out (110: Connection timed out) while reading client request line, client: 127.0.0.1, server: , request: "GET /x HTT"\n');
  t.match(got[0]!, /\nclient timed out \(110: Connection timed out\) while waiting for request, client: 127\.0\.0\.1, server: 127\.0\.0\.1:PORT$/);
});
