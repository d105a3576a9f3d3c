/*
 * CPU profile of redis2d under workload A: the server runs with
 * `node --cpu-prof` (NODE_OPTIONS unset), wrk drives /get?key=k for a few
 * seconds, SIGTERM makes it exit (fast stop calls process.exit, which
 * writes the profile), and the summary of the .cpuprofile is printed.
 *
 * With --syscalls, no CPU profile: `strace -c -f` is attached to the server
 * during the measured run instead, and the system calls per request are
 * printed (the counts, not the times: strace slows the server down). With
 * `--nginx` that is done for nginx+redis2 (NGINX_REDIS2_MODULE) instead.
 *
 * With --perf, `perf record` (cpu-clock, on-CPU only) samples the server
 * run with --perf-basic-prof, so JS frames have names next to kernel and
 * libuv ones; V8's own profiler samples wall time, so a thread preempted
 * inside write() (the receiver it woke up runs on our core) counts as time
 * spent in write(): perf shows what the CPU actually did.
 *
 * Usage: node --import tsx bench/profile.ts [--head | --snapshot] [--duration N] [--conns N] [--top N] [--keep DIR]
 *        node --import tsx bench/profile.ts --perf [--head | --snapshot] [--duration N] [--top N]
 *        node --import tsx bench/profile.ts --syscalls [--nginx] [--head | --snapshot] [--duration N]
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatSummary, summarise } from './profile-summary.js';
import { redisCommand, startRedis } from './procs.js';
import { headSnapshot, workingTree } from './snapshot.js';
import { SMALL_VALUE, nginxRedis2, redis2d } from './targets.js';
import { startProc } from './procs.js';
import { runWrk } from './wrk.js';

function opt(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const duration = opt('--duration', 8);
  const conns = opt('--conns', 50);
  const top = opt('--top', 15);
  const ki = argv.indexOf('--keep');
  const keep = ki === -1 ? undefined : argv[ki + 1];
  const tree = argv.includes('--head') ? headSnapshot() : argv.includes('--snapshot') ? headSnapshot(true) : workingTree();
  const work = mkdtempSync(join(tmpdir(), 'redis2d-prof-'));
  const profDir = join(work, 'prof');
  mkdirSync(profDir);
  const redis = await startRedis(work);
  try {
    await redisCommand(redis.port, ['SET', 'k', SMALL_VALUE]);
    if (argv.includes('--perf')) return await perfRecord(tree.root, work, redis.port, conns, duration, top);
    if (argv.includes('--syscalls')) return await syscalls(argv.includes('--nginx'), tree.root, work, redis.port, conns, duration);
    const server = redis2d({ root: tree.root, nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=250'] });
    const running = await server.start(join(work, 'srv'), redis.port);
    const url = `http://127.0.0.1:${running.port}/get?key=k`;
    await runWrk(url, conns, 1, 2); // warm-up, so the profile shows optimised code
    const res = await runWrk(url, conns, duration, 2);
    await running.stop();
    process.stderr.write(`profile: redis2d ${tree.commit} A/${conns}: ${Math.round(res.rps)} req/s p99 ${res.p99ms.toFixed(2)} ms (profiler on)\n`);
    const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length !== 1) throw new Error(`expected one .cpuprofile in ${profDir}, found ${files.length}`);
    const file = join(profDir, files[0]!);
    if (keep) {
      mkdirSync(keep, { recursive: true });
      copyFileSync(file, join(keep, files[0]!));
      process.stderr.write(`profile: kept ${join(keep, files[0]!)}\n`);
    }
    const summary = summarise(JSON.parse(readFileSync(file, 'utf8')));
    process.stdout.write(`${formatSummary(summary, top, argv.includes('--markdown'))}\n`);
  } finally {
    await redis.proc.stop('SIGKILL');
    rmSync(work, { recursive: true, force: true });
    if (tree.cleanup) rmSync(tree.cleanup, { recursive: true, force: true });
  }
}

/* perf record over one measured run: on-CPU self time by symbol */
async function perfRecord(root: string, work: string, redisPort: number, conns: number, duration: number, top: number): Promise<void> {
  const server = redis2d({ root, nodeFlags: ['--perf-basic-prof'] });
  const running = await server.start(join(work, 'srv'), redisPort);
  const url = `http://127.0.0.1:${running.port}/get?key=k`;
  const data = join(work, 'perf.data');
  try {
    await runWrk(url, conns, 1, 2);
    const rec = startProc('perf', ['record', '-F', '1999', '-g', '-o', data, '-p', String(running.pid)]);
    await new Promise((r) => setTimeout(r, 300));
    const res = await runWrk(url, conns, duration, 2);
    await rec.stop('SIGINT');
    process.stderr.write(`perf: redis2d A/${conns}: ${Math.round(res.rps)} req/s under perf\n`);
  } finally {
    await running.stop();
  }
  const report = execFileSync('perf', ['report', '-i', data, '--stdio', '--no-children', '--sort', 'dso,sym', '-g', 'none', '--percent-limit', '0.4'], {
    encoding: 'latin1',
    maxBuffer: 64 << 20,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const lines = report.split('\n').filter((l) => /^\s+[\d.]+%/.test(l));
  process.stdout.write(`on-CPU self time (perf, cpu-clock), top ${top}:\n${lines.slice(0, top).join('\n')}\n`);
  const byDso = execFileSync('perf', ['report', '-i', data, '--stdio', '--no-children', '--sort', 'dso', '-g', 'none'], {
    encoding: 'latin1',
    maxBuffer: 64 << 20,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  process.stdout.write(`by object:\n${byDso.split('\n').filter((l) => /^\s+[\d.]+%/.test(l)).slice(0, 8).join('\n')}\n`);
}

/* strace -c over one measured run: calls per request by syscall */
async function syscalls(nginx: boolean, root: string, work: string, redisPort: number, conns: number, duration: number): Promise<void> {
  const mod = process.env.NGINX_REDIS2_MODULE;
  if (nginx && !mod) throw new Error('--nginx needs NGINX_REDIS2_MODULE');
  const server = nginx ? nginxRedis2(mod!) : redis2d({ root });
  const running = await server.start(join(work, 'srv'), redisPort);
  const url = `http://127.0.0.1:${running.port}/get?key=k`;
  try {
    await runWrk(url, conns, 1, 2);
    const out = join(work, 'strace.txt');
    const st = startProc('strace', ['-c', '-f', '-o', out, '-p', String(running.pid)]);
    await new Promise((r) => setTimeout(r, 300));
    const res = await runWrk(url, conns, duration, 2);
    await st.stop('SIGINT');
    const table = readFileSync(out, 'latin1');
    process.stdout.write(`${server.name}: ${res.requests} requests under strace (${Math.round(res.rps)} req/s)\n  calls/req  syscall\n`);
    let total = 0;
    const rows: Array<[number, string]> = [];
    for (const line of table.split('\n')) {
      // % time, seconds, usecs/call, calls, [errors], syscall
      const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$/.exec(line);
      if (!m || m[2] === 'total') continue;
      rows.push([Number(m[1]) / res.requests, m[2]!]);
      total += Number(m[1]);
    }
    rows.sort((a, b) => b[0] - a[0]);
    for (const [n, name] of rows) if (n >= 0.01) process.stdout.write(`  ${n.toFixed(2).padStart(9)}  ${name}\n`);
    process.stdout.write(`  ${(total / res.requests).toFixed(2).padStart(9)}  total\n`);
  } finally {
    await running.stop();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`profile: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
