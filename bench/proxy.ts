import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NGINX, ROOT } from './targets.js';
import { freePort, sleep, startProc, waitPort, type Proc } from './procs.js';
import { measureRun, type Measured } from './procs.js';

/*
 * proxy_pass benchmark (issue 13): a keep-alive Node backend answering
 * 1 KiB (bench/backend-1k.mjs), one proxy worker in front of it with an
 * upstream keepalive cache, wrk with 50 connections. redis2d and Debian's
 * nginx take turns in one run (alternating rounds), so the ratios compare
 * like with like on a noisy host. CPU per request is the proxy's own
 * (utime+stime from /proc over the measured run).
 *
 *   node --import tsx bench/proxy.ts [--duration 5] [--rounds 2] [--conns 50]
 */

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const duration = opt('--duration', 5);
const rounds = opt('--rounds', 2);
const conns = opt('--conns', 50);

function config(dir: string, port: number, backend: number): string {
  return `daemon off;
master_process off;
worker_processes 1;
error_log ${dir}/error.log error;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    upstream app { server 127.0.0.1:${backend}; keepalive 64; }
    server {
        listen 127.0.0.1:${port};
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`;
}

interface Row extends Measured {
  server: string;
}

async function measure(name: string, start: (dir: string, port: number) => Proc, backend: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), `bench-proxy-${name}-`));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), config(dir, port, backend));
  const proc = start(dir, port);
  try {
    await waitPort(port, proc);
    const url = `http://127.0.0.1:${port}/`;
    return { server: name, ...(await measureRun(proc.pid, url, conns, duration, 1)) };
  } finally {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const redis2d = (dir: string): Proc => startProc(process.execPath, [join(ROOT, 'bin/redis2d'), '-p', dir, '-c', join(dir, 'nginx.conf')]);
const nginx = (dir: string): Proc => startProc(NGINX, ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')]);

async function main(): Promise<void> {
  const bport = await freePort();
  const backend = startProc(process.execPath, [join(ROOT, 'bench/backend-1k.mjs'), String(bport)]);
  await waitPort(bport, backend);
  const rows: Row[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      rows.push(await measure('redis2d', redis2d, bport));
      rows.push(await measure('nginx', nginx, bport));
      await sleep(200);
    }
  } finally {
    await backend.stop();
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const pick = (s: string, k: keyof Row): number => med(rows.filter((r) => r.server === s).map((r) => r[k] as number));
  process.stdout.write(`proxy_pass → keep-alive Node backend (1 KiB), ${conns} connections, one worker, ${rounds} alternating rounds of ${duration} s\n\n`);
  process.stdout.write('| server | req/s | p99 ms | CPU µs/req (user) | RSS MiB | errors |\n|---|---:|---:|---:|---:|---:|\n');
  for (const r of rows) {
    process.stdout.write(`| ${r.server} | ${Math.round(r.rps)} | ${r.p99.toFixed(2)} | ${r.cpuUs.toFixed(1)} (${r.userUs.toFixed(1)}) | ${r.rssMiB.toFixed(1)} | ${r.errors} |\n`);
  }
  const rps = pick('redis2d', 'rps') / pick('nginx', 'rps');
  const p99 = pick('redis2d', 'p99') / pick('nginx', 'p99');
  const cpu = pick('redis2d', 'cpuUs') / pick('nginx', 'cpuUs');
  process.stdout.write(`\nmedians, redis2d / nginx: req/s ${rps.toFixed(2)}x, p99 ${p99.toFixed(2)}x, CPU per request ${cpu.toFixed(2)}x\n`);
}

void main();
