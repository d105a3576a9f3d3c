/*
 * Start-up and stop, redis2d beside nginx, as Test::Nginx drives them
 * (docs/behaviour.md §8): `daemon on; master_process off;`, the command
 * run and waited for, then one request, then QUIT. For each server and
 * round:
 *   cli     exec of `SERVER -p DIR -c nginx.conf` → the command exited
 *   answer  exec → the first response read in full (a request sent as the
 *           command returns, on a new connection)
 *   stop    QUIT sent → the daemon exited (/proc says gone or zombie: the
 *           reaping of an orphan is its init's business, not the server's)
 * Prints the median and min/max of each, and the ratios redis2d / nginx.
 *
 *   node --import tsx bench/startup.ts [--rounds N] [--bin PATH] [--only redis2d|nginx]
 *
 * nginx runs with Debian's echo and set_misc modules (skipped when absent).
 * Run it under the heavy lock: flock /tmp/redis2d-heavy.lock node --import tsx bench/startup.ts
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { freePort, sleep } from './procs.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const NGINX = '/usr/sbin/nginx';
const MODS = '/usr/lib/nginx/modules';
const NGINX_MODULES = ['ndk_http_module.so', 'ngx_http_set_misc_module.so', 'ngx_http_echo_module.so'].map((m) => join(MODS, m));

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}
const ROUNDS = Number(arg('--rounds') ?? 15);
const BIN = arg('--bin') ?? join(ROOT, 'bin/redis2d');
const ONLY = arg('--only');

interface Server {
  name: string;
  cmd: string;
  args: (dir: string) => string[];
  preamble: string;
}

const servers: Server[] = [
  // through env, as Test::Nginx's system() runs it; no test-runner loaders reach it
  { name: 'redis2d', cmd: '/usr/bin/env', args: (dir) => ['-u', 'NODE_OPTIONS', BIN, '-p', `${dir}/`, '-c', 'conf/nginx.conf'], preamble: '' },
  {
    name: 'nginx',
    cmd: NGINX,
    args: (dir) => ['-p', `${dir}/`, '-c', 'conf/nginx.conf'],
    preamble: NGINX_MODULES.map((m) => `load_module ${m};\n`).join(''),
  },
];

function config(s: Server, dir: string, port: number): string {
  return `${s.preamble}worker_processes 1;
daemon on;
master_process off;
error_log ${dir}/logs/error.log warn;
pid ${dir}/logs/nginx.pid;
events { worker_connections 64; }
http {
    access_log ${dir}/logs/access.log;
    default_type text/plain;
    server {
        listen 127.0.0.1:${port};
        location /t {
            set_formatted_gmt_time $now "%a %b %e %H:%M:%S %Y";
            echo $now;
        }
    }
}
`;
}

function run(cmd: string, args: string[]): Promise<number> {
  return new Promise((res, rej) => {
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], env });
    c.on('error', rej);
    c.on('exit', (code) => res(code ?? 1));
  });
}

/** one GET on a new connection; the whole response */
function get(port: number, path: string): Promise<string> {
  return new Promise((res, rej) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('end', () => res(got));
    s.on('error', rej);
    s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
  });
}

/** exited: no /proc entry, or a zombie waiting for its reaper */
function exited(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return true;
  }
}

interface Round {
  cli: number;
  answer: number;
  stop: number;
}

async function round(s: Server, dir: string, port: number): Promise<Round> {
  const t0 = performance.now();
  const code = await run(s.cmd, s.args(dir));
  const t1 = performance.now();
  if (code !== 0) throw new Error(`${s.name} exited with ${code} (see ${dir}/logs/error.log)`);
  const body = await get(port, '/t');
  const t2 = performance.now();
  if (!/^HTTP\/1\.1 200 /.test(body)) throw new Error(`${s.name}: unexpected answer ${JSON.stringify(body.slice(0, 80))}`);
  const pid = Number(readFileSync(`${dir}/logs/nginx.pid`, 'latin1'));
  const t3 = performance.now();
  process.kill(pid, 'SIGQUIT');
  // bounded: 10 s
  while (!exited(pid) && performance.now() - t3 < 10000) await sleep(1);
  const t4 = performance.now();
  if (!exited(pid)) throw new Error(`${s.name}: pid ${pid} still runs 10 s after QUIT`);
  return { cli: t1 - t0, answer: t2 - t0, stop: t4 - t3 };
}

const med = (xs: number[]): number => {
  const a = [...xs].sort((x, y) => x - y);
  const m = a.length >> 1;
  return a.length % 2 ? a[m]! : (a[m - 1]! + a[m]!) / 2;
};
const fmt = (xs: number[]): string => `${med(xs).toFixed(1).padStart(7)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;

const results = new Map<string, Round[]>();
for (const s of servers) {
  if (ONLY && s.name !== ONLY) continue;
  if (s.name === 'nginx' && (!existsSync(NGINX) || NGINX_MODULES.some((m) => !existsSync(m)))) {
    console.log(`nginx: skipped (needs ${NGINX} and ${NGINX_MODULES.join(', ')})`);
    continue;
  }
  const dir = mkdtempSync(join(tmpdir(), `redis2d-startup-${s.name}-`));
  try {
    mkdirSync(join(dir, 'conf'));
    mkdirSync(join(dir, 'logs'));
    const port = await freePort();
    writeFileSync(join(dir, 'conf/nginx.conf'), config(s, dir, port));
    const rounds: Round[] = [];
    // one warm-up round (page cache), not counted
    await round(s, dir, port);
    for (let i = 0; i < ROUNDS; i++) rounds.push(await round(s, dir, port));
    results.set(s.name, rounds);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`${ROUNDS} rounds each; ms, median (min–max)`);
console.log(`| server | cli | answer | stop |`);
console.log(`|---|---|---|---|`);
for (const [name, rs] of results) {
  console.log(`| ${name} | ${fmt(rs.map((r) => r.cli))} | ${fmt(rs.map((r) => r.answer))} | ${fmt(rs.map((r) => r.stop))} |`);
}
const a = results.get('redis2d');
const b = results.get('nginx');
if (a && b) {
  const ratio = (k: keyof Round): string => (med(a.map((r) => r[k])) / med(b.map((r) => r[k]))).toFixed(1);
  console.log(`redis2d / nginx: cli ${ratio('cli')}×, answer ${ratio('answer')}×, stop ${ratio('stop')}×`);
}
