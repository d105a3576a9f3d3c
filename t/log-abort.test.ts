import { readFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { startRedis2d } from './helpers/server.js';

/*
 * A request whose client leaves before the response is still access-logged
 * (nginx logs every request): status 499 when nothing was sent yet, else the
 * status that went out, with the bytes actually sent.
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

t.test('client gone before the response: 499 in the access log', async (t) => {
  const srv = await startRedis2d(`
    log_format st '$request $status $body_bytes_sent';
    access_log {dir}/access.log st;
    server { listen 127.0.0.1:{port};
      location /slow { echo_sleep 2; echo late; }
      location /half { echo first; echo_sleep 2; echo second; }
    }`);
  t.teardown(() => srv.stop());
  await leaveAfter(srv.port, 'GET /slow HTTP/1.1\r\nHost: h\r\n\r\n', 150);
  await leaveAfter(srv.port, 'GET /half HTTP/1.1\r\nHost: h\r\n\r\n', 150);
  const file = join(srv.dir, 'access.log');
  let text = '';
  for (let i = 0; i < 50 && (text.split('\n').length < 3); i++) {
    await new Promise((r) => setTimeout(r, 20));
    text = existsSync(file) ? readFileSync(file, 'latin1') : '';
  }
  const lines = text.trim().split('\n');
  t.equal(lines[0], 'GET /slow HTTP/1.1 499 0', 'nothing sent: 499');
  t.match(lines[1] ?? '', /^GET \/half HTTP\/1\.1 200 [1-9]\d*$/, 'a started response keeps its status');
  t.equal(lines.length, 2, 'one line per request, logged once');
});
