/*
 * `npm run bench:rounds [-- options]`: CPU per request, the headline figure
 * (docs/behaviour.md §9): workload A through redis2d, nginx+redis2 (when
 * NGINX_REDIS2_MODULE names the module) and Node's bare http server, in
 * alternating rounds against one redis-server, each server started once.
 * In every round each server gets one wrk run per connection count, the
 * order rotating from round to round, so slow phases of a shared host fall
 * on every server alike. CPU µs per request is the server process's
 * utime+stime over the run divided by the requests wrk completed: it does
 * not depend on how much CPU the other processes took, unlike req/s and p99,
 * which are reported beside it.
 *
 * Prints every run, then per connection count the medians and the ratios of
 * redis2d to each peer (median of the per-round ratios). With --gate the
 * exit status is 1 when redis2d's median CPU per request exceeds nginx's
 * times the limit (--gate-50 1.0 and --gate-200 0.8 by default).
 *
 * Options: --rounds N (5)  --duration S (5)  --warmup S (2)  --conns 50,200
 *          --threads N (2)  --gate  --gate-50 X  --gate-200 X  --head | --snapshot
 *          --no-heap-flags (redis2d on node's default heap, not a worker's: targets.ts)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkBody } from './info.js';
import { readCpu, redisCommand, startRedis } from './procs.js';
import { headSnapshot, workingTree } from './snapshot.js';
import { SMALL_VALUE, bareHttp, nginxRedis2, redis2d, type Running, type Target } from './targets.js';
import { runWrk, type WrkResult } from './wrk.js';

interface Options {
  rounds: number;
  duration: number;
  warmup: number;
  threads: number;
  conns: number[];
  gate: boolean;
  gates: Map<number, number>;
  head: boolean;
  snapshot: boolean;
  /** --no-heap-flags: redis2d on node's default heap, not a worker's (targets.ts) */
  heapFlags: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    rounds: 5,
    duration: 5,
    warmup: 2,
    threads: 2,
    conns: [50, 200],
    gate: false,
    gates: new Map([
      [50, 1.0],
      [200, 0.8],
    ]),
    head: false,
    snapshot: false,
    heapFlags: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--rounds') o.rounds = Number(val());
    else if (a === '--duration') o.duration = Number(val());
    else if (a === '--warmup') o.warmup = Number(val());
    else if (a === '--threads') o.threads = Number(val());
    else if (a === '--conns') o.conns = val().split(',').map(Number);
    else if (a === '--gate') o.gate = true;
    else if (a.startsWith('--gate-')) o.gates.set(Number(a.slice(7)), Number(val()));
    else if (a === '--head') o.head = true;
    else if (a === '--snapshot') o.snapshot = true;
    else if (a === '--no-heap-flags') o.heapFlags = false;
    else throw new Error(`unknown option ${a}`);
  }
  if (!(o.rounds > 0) || !(o.duration > 0) || o.conns.some((c) => !(c > 0))) throw new Error('bad --rounds/--duration/--conns');
  return o;
}

interface Run {
  target: string;
  round: number;
  conns: number;
  wrk: WrkResult;
  userUs: number;
  sysUs: number;
}

const cpuOf = (r: Run): number => (r.userUs + r.sysUs) / r.wrk.requests;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function measure(running: Running, url: string, conns: number, o: Options): Promise<Omit<Run, 'target' | 'round' | 'conns'>> {
  const before = readCpu(running.pid);
  const wrk = await runWrk(url, conns, o.duration, o.threads);
  const after = readCpu(running.pid);
  if (!before || !after) throw new Error('the server went away during the run');
  return { wrk, userUs: after.user - before.user, sysUs: after.sys - before.sys };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const tree = o.head ? headSnapshot() : o.snapshot ? headSnapshot(true) : workingTree();
  const targets: Target[] = [redis2d({ root: tree.root, heapFlags: o.heapFlags })];
  const mod = process.env.NGINX_REDIS2_MODULE;
  if (mod) targets.push(nginxRedis2(mod));
  else process.stderr.write('bench: nginx+redis2 not measured (set NGINX_REDIS2_MODULE=/path/ngx_http_redis2_module.so)\n');
  targets.push(bareHttp());

  const work = mkdtempSync(join(tmpdir(), 'redis2d-rounds-'));
  const redis = await startRedis(work);
  const running: Array<{ t: Target; r: Running; url: string }> = [];
  const runs: Run[] = [];
  try {
    await redisCommand(redis.port, ['SET', 'k', SMALL_VALUE]);
    for (const t of targets) {
      const r = await t.start(mkdtempSync(join(work, `${t.name}-`)), redis.port);
      const url = `http://127.0.0.1:${r.port}${t.path('A')!}`;
      running.push({ t, r, url });
      const bad = await checkBody(url, 'A');
      if (bad) throw new Error(`${t.name}: ${bad}`);
      if (o.warmup > 0) await runWrk(url, o.conns[0]!, o.warmup, o.threads);
    }
    for (let round = 1; round <= o.rounds; round++) {
      // rotate who goes first, so a slow phase of the host is shared
      const order = running.map((_, i) => running[(i + round - 1) % running.length]!);
      for (const conns of o.conns) {
        for (const { t, r, url } of order) {
          const m = await measure(r, url, conns, o);
          const run: Run = { target: t.name, round, conns, ...m };
          runs.push(run);
          process.stderr.write(
            `round ${round} ${t.name} A/${conns}: ${Math.round(m.wrk.rps)} req/s p99 ${m.wrk.p99ms.toFixed(2)} ms cpu ${cpuOf(run).toFixed(1)} µs/req (user ${(m.userUs / m.wrk.requests).toFixed(1)})${m.wrk.errors ? ` ERRORS ${m.wrk.errors}` : ''}\n`,
          );
        }
      }
    }
  } finally {
    for (const { r } of running) await r.stop();
    await redis.proc.stop('SIGKILL');
    rmSync(work, { recursive: true, force: true });
    if (tree.cleanup) rmSync(tree.cleanup, { recursive: true, force: true });
  }

  const out: string[] = [];
  out.push(`### CPU per request, workload A, ${o.rounds} alternating rounds of ${o.duration} s (redis2d ${tree.commit})`, '');
  out.push('| server | conns | CPU µs/req median (user+sys) | min–max | req/s median | p99 ms median |');
  out.push('|---|---:|---:|---:|---:|---:|');
  let failed = false;
  for (const conns of o.conns) {
    for (const { t } of running) {
      const mine = runs.filter((r) => r.target === t.name && r.conns === conns);
      const cpus = mine.map(cpuOf);
      const user = median(mine.map((r) => r.userUs / r.wrk.requests));
      const sys = median(mine.map((r) => r.sysUs / r.wrk.requests));
      out.push(
        `| ${t.name} | ${conns} | ${median(cpus).toFixed(1)} (${user.toFixed(1)}+${sys.toFixed(1)}) | ${Math.min(...cpus).toFixed(1)}–${Math.max(...cpus).toFixed(1)} | ${Math.round(median(mine.map((r) => r.wrk.rps)))} | ${median(mine.map((r) => r.wrk.p99ms)).toFixed(2)} |`,
      );
    }
  }
  out.push('', 'redis2d / peer, median of the per-round ratios (CPU and p99: lower is better; req/s: higher):', '');
  out.push('| conns | peer | CPU/req | req/s | p99 |');
  out.push('|---:|---|---:|---:|---:|');
  for (const conns of o.conns) {
    const mine = runs.filter((r) => r.target === 'redis2d' && r.conns === conns);
    for (const { t } of running) {
      if (t.name === 'redis2d') continue;
      const peer = runs.filter((r) => r.target === t.name && r.conns === conns);
      const per = (f: (a: Run, b: Run) => number): number => median(mine.map((m, i) => f(m, peer[i]!)));
      const cpu = per((a, b) => cpuOf(a) / cpuOf(b));
      out.push(`| ${conns} | ${t.name} | ${cpu.toFixed(2)}× | ${per((a, b) => a.wrk.rps / b.wrk.rps).toFixed(2)}× | ${per((a, b) => a.wrk.p99ms / b.wrk.p99ms).toFixed(2)}× |`);
      const limit = o.gates.get(conns);
      if (o.gate && t.name === 'nginx+redis2' && limit !== undefined && cpu > limit) {
        failed = true;
        process.stderr.write(`bench: gate: redis2d's CPU per request at ${conns} connections is ${cpu.toFixed(2)}× nginx's (limit ${limit}×)\n`);
      }
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
  if (failed) process.exitCode = 1;
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
