import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NGINX, freePort, hasNginx, normalize, raw, startNginx, startRedis2d } from './helpers/server.js';
import { waitFor } from './helpers/proc.js';

/*
 * stub_status against Debian's nginx: the page's exact text and headers
 * after the same sequence of connections (an idle keep-alive one, two
 * pipelined requests, a half-sent request line, a connection that sent
 * nothing), the $connections_* variables, 405 for other methods; then with
 * `worker_processes 2` the totals of both workers, and across a reload
 * (nginx's counters live as long as its master).
 */

const HTTP = `
  server {
    listen 127.0.0.1:{port};
    location = /status { stub_status; }
    location = /old { stub_status on; }
    location = /vars { return 200 "$connections_active $connections_reading $connections_writing $connections_waiting\\n"; }
    location / { return 200 "x\\n"; }
  }
`;

/** a socket that sent `data` and, when `reply`, got a whole response (kept open) */
function hold(port: number, data: string, reply: boolean): Promise<Socket> {
  return new Promise((res) => {
    const c = connect(port, '127.0.0.1');
    c.on('error', () => {});
    let got = '';
    c.on('data', (d) => {
      got += d.toString('latin1');
      if (reply && got.includes('\r\n\r\n') && got.endsWith('x\n')) res(c);
    });
    c.once('connect', () => {
      if (data) c.write(data);
      if (!reply) setTimeout(() => res(c), 150);
    });
  });
}

async function play(port: number): Promise<string[]> {
  const held: Socket[] = [];
  try {
    held.push(await hold(port, 'GET /a HTTP/1.1\r\nHost: h\r\n\r\n', true));
    await raw(port, 'GET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
    held.push(await hold(port, 'GET /partial', false));
    held.push(await hold(port, '', false));
    const out: string[] = [];
    out.push(await raw(port, 'GET /status HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'));
    out.push(await raw(port, 'GET /vars HTTP/1.0\r\n\r\n'));
    out.push(await raw(port, 'HEAD /old HTTP/1.0\r\n\r\n'));
    out.push(await raw(port, 'POST /status HTTP/1.0\r\nContent-Length: 1\r\n\r\nx'));
    out.push(await raw(port, 'GET /status HTTP/1.0\r\n\r\n'));
    return out.map((s) => normalize(s, port).replace(/^Content-Length: (\d+)(\r\n(?:[^\r\n]+\r\n)*\r\n<html>)/m, 'Content-Length: N$2'));
  } finally {
    for (const s of held) s.destroy();
  }
}

t.test('one process: the page and the variables as nginx', async (t) => {
  const ours = await startRedis2d(HTTP);
  t.teardown(() => ours.stop());
  const mine = await play(ours.port);
  t.match(
    mine[0],
    /^HTTP\/1\.1 200 OK\r\nServer: S\r\nDate: X\r\nContent-Type: text\/plain\r\nContent-Length: \d+\r\nConnection: close\r\n\r\nActive connections: 4 \nserver accepts handled requests\n 6 6 5 \nReading: 1 Writing: 1 Waiting: 2 \n$/,
  );
  t.match(mine[1], /\r\n\r\n4 1 1 2\n$/);
  if (!hasNginx) return;
  const ngx = await startNginx(HTTP);
  t.teardown(() => ngx.stop());
  const theirs = await play(ngx.port);
  t.same(mine, theirs, 'the same bytes');
});

// ------------------------------------------------------------ two workers

const ROOT = resolve(import.meta.dirname, '..');

const workersStarted = (dir: string): number => {
  try {
    return (readFileSync(join(dir, 'error.log'), 'latin1').match(/start worker process/g) ?? []).length;
  } catch {
    return 0;
  }
};

interface Master {
  port: number;
  dir: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

async function startMaster(kind: 'redis2d' | 'nginx'): Promise<Master> {
  const dir = mkdtempSync(join(tmpdir(), `stub-${kind}-`));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off; master_process on; worker_processes 2; pid ${dir}/nginx.pid; error_log ${dir}/error.log info;\n` +
      `events { worker_connections 64; }\nhttp {\n${HTTP.replaceAll('{port}', String(port))}\n}\n`,
  );
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const proc =
    kind === 'redis2d'
      ? spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, join(ROOT, 'bin/redis2d'), '-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore', env })
      : spawn(NGINX, ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')], { stdio: 'ignore', env });
  // both workers up: two `start worker process` lines, then the port answers
  await waitFor('two workers', () => workersStarted(dir) >= 2 || undefined, 15000);
  await waitFor('the port', async () => (await raw(port, 'GET / HTTP/1.0\r\n\r\n', 200)).includes('200 OK') || undefined, 15000);
  return {
    port,
    dir,
    proc,
    stop: () =>
      new Promise((res) => {
        const done = (): void => {
          rmSync(dir, { recursive: true, force: true });
          res();
        };
        if (proc.exitCode !== null) return done();
        proc.once('exit', done);
        proc.kill('SIGTERM');
        setTimeout(() => proc.kill('SIGKILL'), 3000).unref();
      }),
  };
}

const body = (s: string): string => s.slice(s.indexOf('\r\n\r\n') + 4);

async function playMaster(m: Master): Promise<string[]> {
  const port = m.port;
  const held: Socket[] = [];
  const out: string[] = [];
  try {
    for (let i = 0; i < 6; i++) await raw(port, 'GET /x HTTP/1.0\r\n\r\n');
    held.push(await hold(port, 'GET /a HTTP/1.1\r\nHost: h\r\n\r\n', true));
    held.push(await hold(port, 'GET /a HTTP/1.1\r\nHost: h\r\n\r\n', true));
    // nginx counts a kept-alive connection as Waiting only once its worker has finished the
    // request, which can come after the client read the response (CI once saw Writing: 2
    // Waiting: 1 from nginx): let both servers settle before the page is read
    await new Promise((r) => setTimeout(r, 100));
    out.push(body(await raw(port, 'GET /status HTTP/1.0\r\n\r\n', 3000)));
  } finally {
    for (const s of held) s.destroy();
  }
  // a reload: new workers, the same counters
  process.kill(m.proc.pid!, 'SIGHUP');
  await waitFor('new workers', () => workersStarted(m.dir) >= 4 || undefined, 15000);
  await new Promise((r) => setTimeout(r, 500));
  for (let i = 0; i < 3; i++) await raw(port, 'GET /y HTTP/1.0\r\n\r\n');
  out.push(body(await raw(port, 'GET /status HTTP/1.0\r\n\r\n', 3000)));
  return out;
}

t.test('two workers: the sum of both, across a reload, as nginx', async (t) => {
  const ours = await startMaster('redis2d');
  t.teardown(() => ours.stop());
  const mine = await playMaster(ours);
  // the harness's probes of the port are connections with one request each too: compared with nginx below
  t.match(mine[0], /^Active connections: 3 \nserver accepts handled requests\n (\d+) \1 (\d+) \nReading: 0 Writing: 1 Waiting: 2 \n$/);
  if (!hasNginx) return;
  const ngx = await startMaster('nginx');
  t.teardown(() => ngx.stop());
  const theirs = await playMaster(ngx);
  t.same(mine, theirs, 'the same page');
});
