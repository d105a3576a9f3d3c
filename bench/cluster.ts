import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, readCpu, sleep, startProc, startRedis, waitPort, type Proc } from './procs.js';
import { ROOT, SMALL_VALUE } from './targets.js';
import { SCRIPT, runWrk } from './wrk.js';

/*
 * `node --import tsx bench/cluster.ts [--duration S] [--conns N] [--keys N]`
 * (under the heavy lock): workload A (GET of a 10-byte value, redis2d_pipeline
 * on, keepalive 64, 50 connections, 1 worker) against one Redis and against
 * a 3-primary Redis Cluster (redis_cluster upstream), in the same run, with
 * the keys k0..k(N-1) spread over every slot (wrk's request hook walks
 * them). Prints req/s, p50/p99 and redis2d's CPU µs per request, and the
 * cluster / single ratios.
 */

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const DURATION = arg('--duration', 10);
const CONNS = arg('--conns', 50);
const KEYS = arg('--keys', 10000);

const work = mkdtempSync(join(tmpdir(), 'redis2d-bench-cluster-'));
const procs: Proc[] = [];

async function clusterNode(dir: string): Promise<{ port: number; proc: Proc }> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const bus = await freePort();
  const proc = startProc('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-port', String(bus),
    '--cluster-config-file', 'nodes.conf', '--save', '', '--appendonly', 'no', '--dir', dir]);
  procs.push(proc);
  return { port, proc };
}

function cli(args: string[], input?: string): string {
  return execFileSync('redis-cli', args, { input, maxBuffer: 64 << 20 }).toString('latin1');
}

async function main(): Promise<void> {
  const single = await startRedis(join(work));
  procs.push(single.proc);
  const nodes = [];
  for (let i = 0; i < 3; i++) nodes.push(await clusterNode(join(work, `n${i}`)));
  for (const n of nodes) await waitPort(n.port, n.proc);
  cli(['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
  for (let k = 0; k < 100 && !cli(['-p', String(nodes[0]!.port), 'CLUSTER', 'INFO']).includes('cluster_state:ok'); k++) await sleep(100);

  const sets = Array.from({ length: KEYS }, (_, i) => `SET k${i} ${SMALL_VALUE}`).join('\n') + '\n';
  cli(['-p', String(single.port)], sets);
  cli(['-c', '-p', String(nodes[0]!.port)], sets);
  const sizes = nodes.map((n) => cli(['-p', String(n.port), 'DBSIZE']).trim());

  const port = await freePort();
  const dir = join(work, 'r2d');
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off; master_process off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  upstream single { server 127.0.0.1:${single.port}; keepalive 64; }
  upstream cluster { redis_cluster; ${nodes.map((n) => `server 127.0.0.1:${n.port};`).join(' ')} keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location /single { redis2_query get $arg_key; redis2_pass single; }
    location /cluster { redis2_query get $arg_key; redis2_pass cluster; }
  }
}
`,
  );
  const r2d = startProc('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, join(ROOT, 'bin', 'redis2d'), '-p', `${dir}/`, '-c', conf]);
  procs.push(r2d);
  await waitPort(port, r2d);
  await sleep(500);

  const script = join(work, 'keys.lua');
  const rows: string[] = [];
  const results: Record<string, { rps: number; p99: number; cpu: number }> = {};
  for (const loc of ['single', 'cluster']) {
    writeFileSync(
      script,
      `local i = 0\nrequest = function()\n  i = (i + 7919) % ${KEYS}\n  return wrk.format(nil, "/${loc}?key=k" .. i)\nend\ndofile("${SCRIPT}")\n`,
    );
    const url = `http://127.0.0.1:${port}/${loc}?key=k0`;
    const body = execFileSync('curl', ['-s', url]).toString('latin1');
    if (body !== `$10\r\n${SMALL_VALUE}\r\n`) throw new Error(`${loc}: unexpected body ${JSON.stringify(body)}`);
    await runWrk(url, CONNS, Math.min(2, DURATION), 1, script);
    const c0 = readCpu(r2d.pid)!;
    const w = await runWrk(url, CONNS, DURATION, 1, script);
    const c1 = readCpu(r2d.pid)!;
    const cpu = (c1.user + c1.sys - c0.user - c0.sys) / w.requests;
    results[loc] = { rps: w.rps, p99: w.p99ms, cpu };
    rows.push(`| A ${loc === 'single' ? 'one Redis' : '3-primary cluster'} | ${CONNS} | ${Math.round(w.rps)} | ${w.p50ms.toFixed(2)} | ${w.p99ms.toFixed(2)} | ${cpu.toFixed(1)} | ${w.errors} |`);
  }
  const s = results.single!;
  const c = results.cluster!;
  console.log(`keys per cluster node: ${sizes.join(', ')}; ${DURATION} s runs, 1 worker, redis2d_pipeline on\n`);
  console.log('| workload | conns | req/s | p50 ms | p99 ms | CPU µs/req | errors |\n|---|---|---|---|---|---|---|');
  console.log(rows.join('\n'));
  console.log(`\ncluster / single: req/s ${(c.rps / s.rps).toFixed(2)}, p99 ${(c.p99 / s.p99).toFixed(2)}, CPU/req ${(c.cpu / s.cpu).toFixed(2)}`);
}

main()
  .catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const p of procs.reverse()) await p.stop('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });
