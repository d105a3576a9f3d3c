/*
 * `npm run bench [-- options]`: workloads A–D of docs/behaviour.md §9 against redis2d,
 * nginx+redis2 (when NGINX_REDIS2_MODULE names the module) and webdis (when
 * installed), plus Node's bare http server as the ceiling, all in one run
 * against one redis-server started here. wrk drives the load on loopback,
 * bounded in time. Prints one table and the ratios, and records them in
 * bench/RESULTS.md with --write (the section of this mode is replaced, the rest
 * kept); without it nothing tracked is touched.
 *
 * Options:
 *   --quick            3 s runs, workload A at 50 connections + the ceiling (< 60 s)
 *   --duration N       seconds per measured run (default 10; quick 3)
 *   --warmup N         seconds of warm-up per server start (default 2; quick 1)
 *   --threads N        wrk threads (default 2)
 *   --only a,b         targets by name (redis2d, nginx+redis2, webdis, node-http)
 *   --workloads A,C    workloads to run (default all; quick A)
 *   --head             measure the committed HEAD, built in a temp dir (not the working tree)
 *   --snapshot         measure a frozen copy of the working tree's lib/, built in a temp dir
 *   --commit REV       measure that commit, built in a temp dir (A/B a change: --commit HEAD~1 vs --head)
 *   --node-flags "F .." more node flags for redis2d, after the workers' heap flags (e.g. --no-single-threaded-gc)
 *   --workers N        worker_processes N for redis2d and nginx+redis2 (> 1 runs a master; CPU and RSS
 *                      are summed over the master and its workers); recorded in its own RESULTS.md block
 *   --write            record the table in bench/RESULTS.md (every mode; off by default)
 *   --no-write         accepted for old scripts: print only, the default
 *   --no-gate          with --quick: do not fail on CPU per request (see below)
 *
 * --quick is a gate: when nginx+redis2 was measured in the same run, the exit
 * status is 1 if redis2d's CPU µs per request on A/50 is above nginx's (the
 * headline figure: it does not move with the host's load as req/s does).
 * For a steadier verdict use bench/rounds.ts (alternating rounds, medians).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkBody, machineInfo, staleBuild } from './info.js';
import { redisCommand, sampleMem, startRedis } from './procs.js';
import { headSnapshot, workingTree } from './snapshot.js';
import { formatReport, writeResults, type Row } from './report.js';
import { BIG_VALUE_SIZE, SMALL_VALUE, WORKLOADS, bareHttp, haveWebdis, nginxRedis2, redis2d, webdis, type Target, type WorkloadName } from './targets.js';
import { runWrk } from './wrk.js';

interface Options {
  quick: boolean;
  duration: number;
  warmup: number;
  threads: number;
  only: string[] | undefined;
  workloads: WorkloadName[];
  write: boolean;
  head: boolean;
  snapshot: boolean;
  commit: string | undefined;
  workers: number;
  gate: boolean;
  /** --node-flags "F ...": more node flags for redis2d (after the workers' heap flags, so they win) */
  nodeFlags: string[];
}

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = {
    quick,
    duration: quick ? 3 : 10,
    warmup: quick ? 1 : 2,
    threads: 2,
    only: undefined,
    workloads: quick ? ['A'] : ['A', 'B', 'C', 'D'],
    write: false,
    head: false,
    snapshot: false,
    commit: undefined,
    workers: 1,
    gate: quick,
    nodeFlags: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') continue;
    else if (a === '--duration') o.duration = Number(val());
    else if (a === '--warmup') o.warmup = Number(val());
    else if (a === '--threads') o.threads = Number(val());
    else if (a === '--only') o.only = val().split(',');
    else if (a === '--workloads') o.workloads = val().toUpperCase().split(',') as WorkloadName[];
    else if (a === '--write') o.write = true;
    else if (a === '--no-write') o.write = false;
    else if (a === '--head') o.head = true;
    else if (a === '--snapshot') o.snapshot = true;
    else if (a === '--commit') o.commit = val();
    else if (a === '--workers') o.workers = Number(val());
    else if (a === '--node-flags') o.nodeFlags = val().split(' ').filter(Boolean);
    else if (a === '--no-gate') o.gate = false;
    else throw new Error(`unknown option ${a}`);
  }
  for (const w of o.workloads) if (!(w in WORKLOADS)) throw new Error(`unknown workload ${w}`);
  if (!(o.duration > 0) || !(o.warmup >= 0) || !(o.threads > 0) || !(Number.isInteger(o.workers) && o.workers > 0)) {
    throw new Error('bad --duration/--warmup/--threads/--workers');
  }
  return o;
}

/** connection counts per workload: A at 50 and 200, the others at 50 */
function connsFor(w: WorkloadName, quick: boolean): number[] {
  return w === 'A' && !quick ? [50, 200] : [50];
}

function targets(o: Options, root: string): { list: Target[]; skipped: string[] } {
  const list: Target[] = [redis2d({ root, workers: o.workers, nodeFlags: o.nodeFlags })];
  const skipped: string[] = [];
  const mod = process.env.NGINX_REDIS2_MODULE;
  if (mod) list.push(nginxRedis2(mod, o.workers));
  else skipped.push('nginx+redis2 (set NGINX_REDIS2_MODULE=/path/ngx_http_redis2_module.so)');
  if (haveWebdis()) list.push(webdis());
  else skipped.push('webdis (not installed: apt-get install webdis)');
  list.push(bareHttp());
  return { list: o.only ? list.filter((t) => o.only!.includes(t.name)) : list, skipped };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const tree = o.commit ? headSnapshot(false, o.commit) : o.head ? headSnapshot() : o.snapshot ? headSnapshot(true) : workingTree();
  const stale = staleBuild(tree.root);
  if (stale) throw new Error(stale);
  const info = machineInfo();
  const { list, skipped } = targets(o, tree.root);
  for (const s of skipped) process.stderr.write(`bench: skipping ${s}\n`);

  const work = mkdtempSync(join(tmpdir(), 'redis2d-bench-'));
  const redis = await startRedis(join(work));
  const rows: Row[] = [];
  const notes: string[] = [];
  try {
    await redisCommand(redis.port, ['SET', 'k', SMALL_VALUE]);
    await redisCommand(redis.port, ['SET', 'big', Buffer.alloc(BIG_VALUE_SIZE, 0x78)]);

    for (const target of list) {
      // the ceiling has one workload (A-shaped); peers only what they can express
      for (const w of o.workloads) {
        const path = target.path(w);
        if (path === undefined) continue;
        const dir = mkdtempSync(join(work, `${target.name}-${w}-`));
        const running = await target.start(dir, redis.port);
        try {
          const url = `http://127.0.0.1:${running.port}${path}`;
          const bad = await checkBody(url, target.name === 'node-http' ? 'A' : w);
          if (bad) throw new Error(`${target.name} ${w}: ${bad}`);
          const conns = connsFor(w, o.quick);
          if (o.warmup > 0) await runWrk(url, conns[0]!, o.warmup, o.threads);
          for (const c of conns) {
            // the master and its workers (the other servers are single processes: the tree is the one pid)
            const mem = sampleMem(running.pid, 250, o.workers > 1);
            const res = await runWrk(url, c, o.duration, o.threads);
            const m = mem.stop();
            const row: Row = { target: target.name, workload: target.name === 'node-http' ? 'ceiling' : w, conns: c, wrk: res, rssKiB: m.maxRss, hwmKiB: m.hwm, userUsPerReq: m.userUs / res.requests, sysUsPerReq: m.sysUs / res.requests };
            rows.push(row);
            process.stderr.write(
              `bench: ${row.target} ${row.workload}/${c}: ${Math.round(res.rps)} req/s p50 ${res.p50ms.toFixed(2)} ms p99 ${res.p99ms.toFixed(2)} ms rss ${(m.maxRss / 1024).toFixed(1)} MiB cpu ${((m.userUs + m.sysUs) / res.requests).toFixed(1)} µs/req (user ${(m.userUs / res.requests).toFixed(1)})${res.errors ? ` ERRORS ${res.errors}` : ''}\n`,
            );
          }
        } finally {
          await running.stop();
          const log = readErrorLog(dir);
          if (log) notes.push(`${target.name} ${w} error.log: ${log}`);
        }
      }
    }
  } finally {
    await redis.proc.stop('SIGKILL');
    rmSync(work, { recursive: true, force: true });
    if (tree.cleanup) rmSync(tree.cleanup, { recursive: true, force: true });
  }

  const elapsed = (Date.now() - t0) / 1000;
  const text = formatReport({ rows, info, commit: tree.commit, quick: o.quick, duration: o.duration, warmup: o.warmup, threads: o.threads, workers: o.workers, skipped, notes, elapsed });
  process.stdout.write(`${text}\n`);
  if (o.gate) {
    const cpu = (t: string): number | undefined => {
      const row = rows.find((r) => r.target === t && r.workload === 'A' && r.conns === 50);
      return row && row.userUsPerReq + row.sysUsPerReq;
    };
    const mine = cpu('redis2d');
    const peer = cpu('nginx+redis2');
    if (mine !== undefined && peer !== undefined && mine > peer) {
      process.stderr.write(`bench: gate: redis2d's CPU per request on A/50 is ${(mine / peer).toFixed(2)}× nginx+redis2's (must be at most 1.00×)\n`);
      process.exitCode = 1;
    }
  }
  if (o.write) writeResults(`${o.quick ? 'quick' : 'full'}${o.workers > 1 ? `-workers${o.workers}` : ''}`, text);
  else process.stderr.write('bench: not recorded (add --write to update bench/RESULTS.md)\n');
}

function readErrorLog(dir: string): string {
  try {
    const text = readFileSync(join(dir, 'logs', 'error.log'), 'latin1').trim();
    const lines = text.split('\n');
    return lines.length > 3 ? `${lines.slice(0, 3).join(' | ')} | (+${lines.length - 3} lines)` : lines.join(' | ');
  } catch {
    return '';
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
