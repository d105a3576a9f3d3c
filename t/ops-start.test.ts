import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { chunkedBody } from './helpers/http_redis.js';
import { alive, cleanup, request, ROOT, tempPrefix, waitFor } from './helpers/proc.js';
import { freePort, startRedis } from './helpers/redis.js';

/*
 * `npm start` (tools/start.mjs) on a config of our own (REDIS2D_CONF) with
 * ephemeral ports: it starts a private redis-server when nothing answers at
 * the config's upstream address, serves through it, and stops it when
 * redis2d exits; it uses a Redis that already answers; it names the
 * apt-get line when redis-server is missing.
 */

const START = join(ROOT, 'tools/start.mjs');
const haveRedis = existsSync('/usr/bin/redis-server') ? false : 'redis-server not installed (apt-get install redis-server)';

function config(dir: string, port: number, redisPort: number): string {
  return `# written by t/ops-start.test.ts
daemon off;
master_process off;
error_log ${dir}/logs/error.log warn;
pid ${dir}/logs/redis2d.pid;
events { worker_connections 64; }
http {
    access_log off;
    upstream backend {
        server 127.0.0.1:${redisPort};   # the address tools/start.mjs checks
        keepalive 4;
    }
    server {
        listen 127.0.0.1:${port};
        location = /set { redis2_query set $arg_key $arg_val; redis2_pass backend; }
        location = /get { redis2_query get $arg_key; redis2_pass backend; }
    }
}
`;
}

interface Started {
  proc: ChildProcess;
  stderr: () => string;
  exit: Promise<number | null>;
}

function runStart(conf: string, env: Record<string, string | undefined> = {}): Started {
  const e: Record<string, string | undefined> = { ...process.env, REDIS2D_CONF: conf, ...env };
  // through /usr/bin/env -u NODE_OPTIONS: tap adds its loaders to node spawns, which must not reach redis2d
  const proc = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, START], { env: e as NodeJS.ProcessEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString('latin1')));
  const exit = new Promise<number | null>((res) => proc.on('exit', (c) => res(c)));
  return { proc, stderr: () => err, exit };
}

function refused(port: number): Promise<boolean> {
  return new Promise((res) => {
    const c = connect(port, '127.0.0.1');
    c.on('connect', () => {
      c.destroy();
      res(false);
    });
    c.on('error', () => res(true));
  });
}

async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

t.test('starts a private redis-server, serves through it, stops it on SIGTERM', { skip: haveRedis }, async (t) => {
  const dir = tempPrefix('start');
  t.teardown(() => cleanup(dir));
  const [port, redisPort] = [await freePort(), await freePort()];
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, config(dir, port, redisPort));
  t.ok(await refused(redisPort), 'nothing listens at the upstream address before');

  const s = runStart(conf);
  t.teardown(() => {
    if (s.proc.exitCode === null) s.proc.kill('SIGKILL');
  });
  const line = await waitFor('the private redis line', () => /started a private redis-server there.*\(pid (\d+)/.exec(s.stderr()), 15000);
  const redisPid = Number(line[1]);
  t.teardown(() => {
    if (alive(redisPid)) process.kill(redisPid, 'SIGKILL');
  });
  t.match(s.stderr(), `no Redis answered at 127.0.0.1:${redisPort}`, 'one line says so, with the address');
  t.ok(alive(redisPid), 'the private redis-server runs');

  await waitFor('redis2d listening', async () => !(await refused(port)), 10000).catch((e) => {
    throw new Error(`${e.message}; start.mjs said:\n${s.stderr()}`);
  });
  t.equal(chunkedBody(await request(port, '/set?key=k&val=hello')), '+OK\r\n', 'set through redis2d');
  t.equal(chunkedBody(await request(port, '/get?key=k')), '$5\r\nhello\r\n', 'get through redis2d');

  s.proc.kill('SIGTERM');
  const code = await bounded(s.exit, 10000, 'start.mjs exit after SIGTERM');
  t.equal(code, 0, 'exits 0 after SIGTERM');
  t.notOk(alive(redisPid), 'the private redis-server is gone');
  t.ok(await refused(redisPort), 'nothing listens at the Redis address any more');
  t.ok(await refused(port), 'redis2d is gone');
  t.match(s.stderr(), 'stopped the private redis-server');
});

t.test('uses the Redis that already answers', { skip: haveRedis }, async (t) => {
  const redis = await startRedis(t);
  const dir = tempPrefix('start-have');
  t.teardown(() => cleanup(dir));
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, config(dir, port, redis.port));
  const s = runStart(conf);
  t.teardown(() => {
    if (s.proc.exitCode === null) s.proc.kill('SIGKILL');
  });
  await waitFor('redis2d listening', async () => !(await refused(port)), 10000);
  t.equal(chunkedBody(await request(port, '/set?key=k2&val=v')), '+OK\r\n');
  s.proc.kill('SIGINT');
  t.equal(await bounded(s.exit, 10000, 'exit after SIGINT'), 0, 'exits 0 after SIGINT');
  t.notMatch(s.stderr(), 'private redis-server', 'no private Redis started');
  t.ok(await refused(port), 'redis2d is gone');
  t.equal(await redis.command(['get', 'k2']), '$1\r\nv\r\n', 'the value is in the Redis that answered');
});

t.test('redis-server missing: the apt-get line and a non-zero exit', async (t) => {
  const dir = tempPrefix('start-none');
  t.teardown(() => cleanup(dir));
  const [port, redisPort] = [await freePort(), await freePort()];
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, config(dir, port, redisPort));
  const s = runStart(conf, { PATH: '/nonexistent', REDIS_SERVER: undefined });
  const code = await bounded(s.exit, 15000, 'exit without redis-server');
  t.not(code, 0, 'non-zero exit');
  t.match(s.stderr(), 'apt-get install redis-server', 'names the package');
  t.match(s.stderr(), `127.0.0.1:${redisPort}`, 'names the address');
  t.ok(await refused(port), 'redis2d was not started');
});
