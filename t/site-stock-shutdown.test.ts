import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers/proc.js';
import { NGINX, freePort, hasNginx } from './helpers/server.js';

/*
 * worker_shutdown_timeout against Debian's nginx (master and one worker):
 * SIGQUIT while a proxied request waits for its backend's answer; without
 * the directive the worker waits for it, with 1s the connection is closed
 * after a second and the process exits. Compared: how long the master took
 * to exit (a lower bound, and the bound the timeout sets), what the client
 * got, and the access log line (the status the request had, not 499).
 */

const skip = hasNginx ? false : 'Debian nginx not installed';

async function run(kind: 'nginx' | 'redis2d', backendPort: number, timeout: string): Promise<{ exitMs: number; got: string; access: string }> {
  const dir = mkdtempSync(join(tmpdir(), `wst-${kind}-`));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  const conf = `daemon off; master_process on; worker_processes 1; pid ${dir}/n.pid; error_log ${dir}/error.log info;
${timeout}
events { worker_connections 64; }
http {
  access_log ${dir}/access.log;
  server { listen 127.0.0.1:${port}; location / { proxy_pass http://127.0.0.1:${backendPort}; } }
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const proc =
    kind === 'nginx'
      ? spawn(NGINX, ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' })
      : spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, join(ROOT, 'bin/redis2d'), '-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore', env });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  // wait for the port
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = connect(port, '127.0.0.1', () => {
        c.destroy();
        r(true);
      });
      c.on('error', () => r(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  let got = '';
  const client = connect(port, '127.0.0.1', () => client.write('GET /x HTTP/1.1\r\nHost: h\r\n\r\n'));
  client.on('data', (d) => (got += d.toString('latin1')));
  client.on('error', () => {});
  const closed = new Promise<void>((r) => client.once('close', () => r()));
  await new Promise((r) => setTimeout(r, 400));
  const t0 = Date.now();
  proc.kill('SIGQUIT');
  const killer = setTimeout(() => proc.kill('SIGKILL'), 4000);
  await exited;
  clearTimeout(killer);
  const exitMs = Date.now() - t0;
  client.destroy();
  await closed;
  let access = '';
  try {
    access = readFileSync(join(dir, 'access.log'), 'latin1');
  } catch {
    // none written
  }
  rmSync(dir, { recursive: true, force: true });
  return { exitMs, got, access: access.replace(/\[[^\]]+\]/, '[T]') };
}

t.test('worker_shutdown_timeout against nginx', { skip }, async (t) => {
  // a backend that holds the request without an answer
  const backend = createServer((s) => {
    s.on('error', () => {});
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.teardown(() => backend.close());
  const bp = (backend.address() as AddressInfo).port;
  const [a, b] = await Promise.all([run('nginx', bp, 'worker_shutdown_timeout 1s;'), run('redis2d', bp, 'worker_shutdown_timeout 1s;')]);
  t.ok(a.exitMs >= 900 && a.exitMs < 3000, `nginx exited after ${a.exitMs} ms`);
  t.ok(b.exitMs >= 900 && b.exitMs < 3000, `redis2d exited after ${b.exitMs} ms (nginx ${a.exitMs} ms)`);
  t.equal(b.got, a.got, 'what the client got');
  t.equal(b.access, a.access, 'the access log line');
  // without it, the worker still waits for the request after those seconds
  const c = await run('redis2d', bp, '');
  t.ok(c.exitMs >= 3900, `without worker_shutdown_timeout redis2d was still waiting after ${c.exitMs} ms`);
});
