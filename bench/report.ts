import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MachineInfo } from './info.js';
import { ROOT } from './targets.js';
import type { WrkResult } from './wrk.js';

/*
 * The result table, the ratios of redis2d to every peer measured in the
 * same run (and to the bare-http ceiling), and their place in RESULTS.md:
 * each mode owns the text between its markers; everything else in the file
 * (hand-written notes) is kept.
 */

export interface Row {
  target: string;
  /** A–D, or `ceiling` for the bare http server */
  workload: string;
  conns: number;
  wrk: WrkResult;
  /** largest VmRSS sampled during the measured run, KiB */
  rssKiB: number;
  /** VmHWM at the end of the run (peak since the server started, warm-up included), KiB */
  hwmKiB: number;
  /** server CPU time (all threads) per request, microseconds */
  userUsPerReq: number;
  sysUsPerReq: number;
}

export interface ReportInput {
  rows: Row[];
  info: MachineInfo;
  /** the redis2d commit measured (`+dirty`: working tree with changes) */
  commit: string;
  quick: boolean;
  duration: number;
  warmup: number;
  threads: number;
  /** worker_processes of redis2d and nginx+redis2 */
  workers: number;
  skipped: string[];
  notes: string[];
  elapsed: number;
}

const mib = (k: number): string => (k / 1024).toFixed(1);
const ms = (v: number): string => (v >= 10 ? v.toFixed(1) : v.toFixed(2));
/* one decimal: a change worth 1 µs/request is visible against 20 */
const cpu = (r: Row): string => `${(r.userUsPerReq + r.sysUsPerReq).toFixed(1)} (${r.userUsPerReq.toFixed(1)}+${r.sysUsPerReq.toFixed(1)})`;
const x = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)}×` : 'n/a');

export function formatReport(r: ReportInput): string {
  const i = r.info;
  const out: string[] = [];
  out.push(`### ${r.quick ? 'Quick' : 'Full'} run${r.workers > 1 ? `, ${r.workers} workers` : ''}, ${i.date}`);
  out.push('');
  out.push(
    `Machine: ${i.nproc} CPUs (${i.cpu}), ${i.memGiB} GiB; load average at start ${i.load} ` +
      '(the cores are shared with other agents building and testing: absolute numbers are noisy, ' +
      'ratios within one run are what to compare).',
  );
  out.push(
    `redis2d ${r.commit}; node ${i.node}, redis-server ${i.redis}, ${i.wrk}; wrk -t${r.threads}, ${r.duration} s per run after ${r.warmup} s warm-up; ` +
      `${r.workers > 1 ? `${r.workers} workers + master for redis2d and nginx+redis2 (CPU and RSS summed over them), one process for the others` : 'one worker per server'}, loopback, access log off; run took ${Math.round(r.elapsed)} s.`,
  );
  out.push('');
  out.push('| server | workload | conns | req/s | p50 ms | p99 ms | RSS MiB (max sampled) | VmHWM MiB | server CPU µs/req (user+sys) | errors |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const row of r.rows) {
    const w = row.wrk;
    out.push(
      `| ${row.target} | ${row.workload} | ${row.conns} | ${Math.round(w.rps)} | ${ms(w.p50ms)} | ${ms(w.p99ms)} | ${mib(row.rssKiB)} | ${mib(row.hwmKiB)} | ${cpu(row)} | ${w.errors} |`,
    );
  }
  out.push('');
  out.push(
    'CPU µs/req is the server process\'s utime+stime (/proc/PID/stat, all threads) over the run divided by the requests wrk completed: ' +
      'unlike req/s it does not depend on how much CPU the other processes on the machine took.',
  );
  out.push('');
  const ratios: string[] = [];
  for (const mine of r.rows.filter((row) => row.target === 'redis2d')) {
    for (const peer of r.rows) {
      if (peer.target === 'redis2d' || peer.conns !== mine.conns) continue;
      const same = peer.workload === mine.workload || (peer.workload === 'ceiling' && mine.workload === 'A');
      if (!same) continue;
      ratios.push(
        `| ${mine.workload} | ${mine.conns} | ${peer.target} | ${x(mine.wrk.rps / peer.wrk.rps)} | ${x(mine.wrk.p99ms / peer.wrk.p99ms)} | ${x(mine.rssKiB / peer.rssKiB)} | ${x((mine.userUsPerReq + mine.sysUsPerReq) / (peer.userUsPerReq + peer.sysUsPerReq))} |`,
      );
    }
  }
  if (ratios.length) {
    out.push('Ratios redis2d / peer (same run; req/s higher is better, p99, RSS and CPU per request lower is better):');
    out.push('');
    out.push('| workload | conns | peer | req/s | p99 | RSS | CPU/req |');
    out.push('|---|---:|---|---:|---:|---:|---:|');
    out.push(...ratios);
    out.push('');
  }
  if (r.rows.some((row) => row.wrk.errors > 0)) out.push('**Some runs had errors (socket errors or non-2xx answers): their numbers are not comparable.**', '');
  if (r.skipped.length) out.push(`Not measured: ${r.skipped.join('; ')}.`, '');
  for (const n of r.notes) out.push(`Note: ${n}`, '');
  return out.join('\n').trimEnd();
}

const FILE = join(ROOT, 'bench', 'RESULTS.md');

export function writeResults(mode: string, text: string): void {
  const begin = `<!-- bench:${mode} -->`;
  const end = `<!-- /bench:${mode} -->`;
  let doc = existsSync(FILE) ? readFileSync(FILE, 'utf8') : '# redis2d benchmark results\n\nWritten by `npm run bench` (bench/run.ts).\n';
  const block = `${begin}\n${text}\n${end}`;
  const a = doc.indexOf(begin);
  const b = doc.indexOf(end);
  if (a !== -1 && b > a) doc = doc.slice(0, a) + block + doc.slice(b + end.length);
  else doc = `${doc.trimEnd()}\n\n${block}\n`;
  writeFileSync(FILE, doc);
}
