import { spawn } from 'node:child_process';
import { join } from 'node:path';

/*
 * One wrk run, bounded in time, against a loopback URL; the numbers come
 * from report.lua's `done` hook (a single WRK_RESULT line), not from wrk's
 * human-oriented summary.
 */

export const WRK = '/usr/bin/wrk';
export const SCRIPT = join(import.meta.dirname, 'report.lua');

export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  bytes: number;
  /** socket errors (connect/read/write/timeout) plus non-2xx/3xx answers */
  errors: number;
  p50ms: number;
  p90ms: number;
  p99ms: number;
  maxms: number;
}

/** `script`: another wrk script (it must end in report.lua's `done` hook, e.g. with dofile) */
export function runWrk(url: string, conns: number, seconds: number, threads: number, script = SCRIPT): Promise<WrkResult> {
  if (!/^https?:\/\/127\.0\.0\.1:\d+\//.test(url)) throw new Error(`refusing a non-loopback URL: ${url}`);
  const t = Math.max(1, Math.min(threads, conns));
  const args = [`-t${t}`, `-c${conns}`, `-d${seconds}s`, '--timeout', '5s', '-s', script, url];
  return new Promise((resolve, reject) => {
    const child = spawn(WRK, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('latin1')));
    // wrk stops itself after -d; this is only a guard against a hang
    const guard = setTimeout(() => child.kill('SIGKILL'), (seconds + 15) * 1000);
    child.on('exit', (code) => {
      clearTimeout(guard);
      const line = /^WRK_RESULT (.*)$/m.exec(out);
      if (!line) return reject(new Error(`wrk exited ${code} without a result: ${err.trim() || out.trim()}`));
      const f: Record<string, number> = {};
      for (const kv of line[1]!.trim().split(' ')) {
        const [k, v] = kv.split('=');
        f[k!] = Number(v);
      }
      const secs = f.duration_us! / 1e6;
      resolve({
        requests: f.requests!,
        seconds: secs,
        rps: f.requests! / secs,
        bytes: f.bytes!,
        errors: f.connect! + f.read! + f.write! + f.timeout! + f.status!,
        p50ms: f.p50_us! / 1000,
        p90ms: f.p90_us! / 1000,
        p99ms: f.p99_us! / 1000,
        maxms: f.max_us! / 1000,
      });
    });
  });
}
