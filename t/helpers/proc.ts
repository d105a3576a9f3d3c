import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/*
 * Process-level test helpers: run bin/redis2d as a command (through
 * /usr/bin/env -u NODE_OPTIONS: tap injects its loaders into node spawns),
 * wait for conditions with a bound, read pid files, send plain requests,
 * and make sure no process outlives a test.
 */

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/redis2d');

export interface CmdResult {
  code: number | null;
  stderr: string;
  stdout: string;
}

/** run `redis2d ARGS` (or another program) to completion */
export function runCmd(args: string[], program: 'redis2d' | string = 'redis2d', timeoutMs = 15000): Promise<CmdResult> {
  return new Promise((res) => {
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const proc =
      program === 'redis2d'
        ? spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn(program, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
    proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    // 'exit', not 'close': a daemon child keeps the inherited stderr open
    proc.on('exit', (code) => {
      clearTimeout(timer);
      setTimeout(() => res({ code, stderr, stdout }), 20);
    });
  });
}

export function tempPrefix(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `r2d-${name}-`));
  mkdirSync(join(dir, 'logs'));
  return dir;
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 8000, step = 25): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, step));
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function readPid(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const n = Number(readFileSync(path, 'latin1').trim());
  return n > 0 ? n : undefined;
}

/** children of a pid (the workers of a master), from /proc */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** stop a process tree we started: TERM, then KILL after `ms`; workers first when known */
export async function killTree(pid: number | undefined, ms = 3000): Promise<void> {
  if (!pid) return;
  const kids = childPids(pid);
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* gone */
  }
  const until = Date.now() + ms;
  while (Date.now() < until && (alive(pid) || kids.some(alive))) await new Promise((r) => setTimeout(r, 25));
  for (const p of [pid, ...kids]) {
    if (alive(p)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** one request with `Connection: close`; resolves the raw response */
export function request(port: number, path: string, extra = ''): Promise<string> {
  return new Promise((res, rej) => {
    const c = connect(port, '127.0.0.1');
    let out = '';
    c.on('data', (d) => (out += d.toString('latin1')));
    c.on('error', rej);
    c.on('close', () => res(out));
    c.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n${extra}Connection: close\r\n\r\n`);
  });
}

export function bodyOf(resp: string): string {
  const i = resp.indexOf('\r\n\r\n');
  return i === -1 ? '' : resp.slice(i + 4);
}

export function statusOf(resp: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(resp)?.[1] ?? 0);
}
