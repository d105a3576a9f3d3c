import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './targets.js';
import { freePort, measurePaths, startProc, type PathRow } from './procs.js';

/*
 * What a shared-zone operation costs (docs/behaviour.md §14): redis2d with
 * 1 and 2 workers, a location that answers at once (`/plain`) and the same
 * with a limit_req that never refuses (`/lim`: one zone operation per
 * request), wrk with 10 connections. The difference per request is the
 * zone's price: with 1 worker an in-process call, with 2 a message to the
 * master and back. CPU is summed over the master and its workers (the
 * master does the zone work with 2). Also the bare operation in a loop.
 *
 *   flock /tmp/redis2d-heavy.lock node --import tsx bench/zones.ts [--duration 4]
 */

const argv = process.argv.slice(2);
const i = argv.indexOf('--duration');
const duration = i >= 0 ? Number(argv[i + 1]) : 4;

function config(dir: string, port: number, workers: number): string {
  return `daemon off;
master_process on;
worker_processes ${workers};
error_log ${dir}/error.log error;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    limit_req_zone $arg_k zone=z:1m rate=100000000r/s;
    server {
        listen 127.0.0.1:${port};
        location /plain { echo ok; }
        location /lim { limit_req zone=z burst=100000 nodelay; echo ok; }
    }
}
`;
}

async function measure(workers: number): Promise<PathRow> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-zones-'));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), config(dir, port, workers));
  const proc = startProc(process.execPath, [join(ROOT, 'bin/redis2d'), '-p', dir, '-c', join(dir, 'nginx.conf')]);
  try {
    return await measurePaths(proc, port, ['/plain', '/lim?k=a'], 10, duration);
  } finally {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function loop(): Promise<number> {
  const { Zone } = await import('../lib/core/zones.js');
  await import('../lib/modules/limit_req/module.js');
  const z = new Zone('bench', 1 << 20, []);
  const n = 1_000_000;
  const arg = { rate: 100000000000, burst: 100000000, account: true };
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < n; k++) z.run('limit_req', 'a', arg, () => {});
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

const opUs = await loop();
console.log(`limit_req zone operation in process: ${opUs.toFixed(3)} µs`);
console.log('| workers | path | req/s | CPU µs/req (all processes) | p50 ms |');
console.log('|---|---|---|---|---|');
const rows: Record<number, Record<string, { rps: number; cpuUs: number; p50: number }>> = {};
for (const workers of [1, 2]) {
  rows[workers] = await measure(workers);
  for (const [path, r] of Object.entries(rows[workers]!)) {
    console.log(`| ${workers} | ${path} | ${Math.round(r.rps)} | ${r.cpuUs.toFixed(1)} | ${r.p50.toFixed(2)} |`);
  }
}
for (const workers of [1, 2]) {
  const r = rows[workers]!;
  console.log(`${workers} worker(s): a zone operation adds ${(r['/lim?k=a']!.cpuUs - r['/plain']!.cpuUs).toFixed(1)} µs CPU per request`);
}
