import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { get } from 'node:http';
import { availableParallelism, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { BIG_VALUE_SIZE, ROOT, SMALL_VALUE, type WorkloadName } from './targets.js';

/*
 * What a result needs next to it (machine, load, versions), a check that
 * dist/ is not older than lib/ (the bench runs the compiled server), and a
 * one-request check that a server answers a workload with the right body
 * before it is measured.
 */

export interface MachineInfo {
  date: string;
  nproc: number;
  cpu: string;
  memGiB: number;
  load: string;
  node: string;
  redis: string;
  wrk: string;
}

function firstLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'latin1', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]!.trim();
  } catch (e) {
    // wrk -v exits 1 after printing its version
    const out = (e as { stdout?: string }).stdout ?? '';
    return out.split('\n')[0]!.trim() || 'unknown';
  }
}

export function machineInfo(): MachineInfo {
  let cpu = 'unknown';
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'latin1'));
    if (m) cpu = m[1]!.trim();
  } catch {
    // not Linux
  }
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nproc: availableParallelism(),
    cpu,
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    load: loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
    node: process.version,
    redis: /v=(\S+)/.exec(firstLine('redis-server', ['--version']))?.[1] ?? 'unknown',
    wrk: firstLine('/usr/bin/wrk', ['-v']).replace(/ \[.*$/, ''),
  };
}

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p));
    else if (e.name.endsWith('.ts')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

/** an error text when dist/lib/cli.js is missing or older than a lib/ source */
export function staleBuild(root: string = ROOT): string | undefined {
  let built: number;
  try {
    built = statSync(join(root, 'dist', 'lib', 'cli.js')).mtimeMs;
  } catch {
    return `${root}/dist/lib/cli.js is missing: run \`npm run build\` first`;
  }
  const src = newest(join(root, 'lib'));
  if (src > built) process.stderr.write('bench: warning: lib/ has sources newer than dist/: run `npm run build` to measure them\n');
  return undefined;
}

function bulk(len: number, fill: string): string {
  return `$${len}\r\n${fill}\r\n`;
}

/** the body a workload's response must have (raw Redis replies) */
export function expectedBody(w: WorkloadName): string {
  switch (w) {
    case 'A':
    case 'D':
      return bulk(SMALL_VALUE.length, SMALL_VALUE);
    case 'B':
      return bulk(SMALL_VALUE.length, SMALL_VALUE).repeat(4);
    case 'C':
      return bulk(BIG_VALUE_SIZE, 'x'.repeat(BIG_VALUE_SIZE));
  }
}

/** one GET; undefined when status is 200 and the body is the workload's, else what was wrong */
export function checkBody(url: string, w: WorkloadName): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = get(url, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        const body = Buffer.concat(parts).toString('latin1');
        if (res.statusCode !== 200) return resolve(`status ${res.statusCode}: ${body.slice(0, 200)}`);
        const want = expectedBody(w);
        if (body !== want) return resolve(`unexpected body (${body.length} bytes): ${JSON.stringify(body.slice(0, 80))}`);
        resolve(undefined);
      });
      res.on('error', (e) => resolve(e.message));
    });
    req.on('error', (e) => resolve(e.message));
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  });
}
