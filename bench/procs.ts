import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { runWrk } from './wrk.js';
import { connect, createServer } from 'node:net';

/*
 * Process plumbing shared by the benchmark: free loopback ports, waiting
 * for a port, spawning a server with its stderr kept for error messages,
 * stopping it, RSS sampling from /proc, and a tiny RESP client to seed
 * Redis. Loopback only; everything is stopped by the pid we started.
 */

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? res(a.port) : rej(new Error('no port'))));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Spawn `cmd args`; `env` replaces the environment when given (NODE_OPTIONS is never passed on). */
export function startProc(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
  const env = { ...(opts.env ?? process.env) };
  // tap/tsx put loaders into NODE_OPTIONS: the measured servers must run bare
  delete env.NODE_OPTIONS;
  const child = spawn(cmd, args, { cwd: opts.cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (err.length < 20000) err += d.toString('latin1');
  });
  if (child.pid === undefined) throw new Error(`cannot start ${cmd}`);
  const pid = child.pid;
  return {
    child,
    pid,
    stderr: () => err,
    stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill(signal);
      });
    },
  };
}

export function waitPort(port: number, proc: Proc, ms = 10000): Promise<void> {
  const until = Date.now() + ms;
  return new Promise((res, rej) => {
    const tryOnce = (): void => {
      if (proc.child.exitCode !== null) {
        return rej(new Error(`server exited with ${proc.child.exitCode}: ${proc.stderr().trim()}`));
      }
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        res();
      });
      c.once('error', () => {
        c.destroy();
        if (Date.now() > until) rej(new Error(`port ${port} never opened: ${proc.stderr().trim()}`));
        else setTimeout(tryOnce, 50);
      });
    };
    tryOnce();
  });
}

export interface Mem {
  /** VmRSS in KiB */
  rss: number;
  /** VmHWM (peak RSS) in KiB */
  hwm: number;
}

/** VmRSS / VmHWM of a live process, or undefined once it is gone. */
export function readMem(pid: number): Mem | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return undefined;
  }
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(text);
  const hwm = /^VmHWM:\s+(\d+) kB/m.exec(text);
  if (!rss || !hwm) return undefined;
  return { rss: Number(rss[1]), hwm: Number(hwm[1]) };
}

/** user and system CPU time of a process (all its threads), microseconds */
export function readCpu(pid: number): { user: number; sys: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // fields after the `(comm)`, which may hold spaces: state is field 3, utime 14, stime 15
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const tick = 1e6 / CLK_TCK;
  return { user: Number(f[11]) * tick, sys: Number(f[12]) * tick };
}

/* sysconf(_SC_CLK_TCK): 100 on every Linux we run on */
const CLK_TCK = 100;

/** Sample VmRSS every `ms` while a run lasts; `stop()` returns the largest sample and the final HWM. */
export interface Usage extends Mem {
  maxRss: number;
  /** CPU time used during the sampling, microseconds */
  userUs: number;
  sysUs: number;
}

/** pid and its descendants (a master and its workers), from /proc/PID/task/TID/children */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${out[i]}/task/${t}/children`, 'latin1').split(' ')) if (c) out.push(Number(c));
      } catch {
        // the task ended meanwhile
      }
    }
  }
  return out;
}

function sumCpu(pids: number[]): { user: number; sys: number } {
  const sum = { user: 0, sys: 0 };
  for (const p of pids) {
    const c = readCpu(p);
    if (c) {
      sum.user += c.user;
      sum.sys += c.sys;
    }
  }
  return sum;
}

function sumMem(pids: number[]): Mem | undefined {
  let found = false;
  const sum = { rss: 0, hwm: 0 };
  for (const p of pids) {
    const m = readMem(p);
    if (m) {
      found = true;
      sum.rss += m.rss;
      sum.hwm += m.hwm;
    }
  }
  return found ? sum : undefined;
}

/**
 * Sample while a run lasts; with `tree`, the process and its children
 * (a master and its workers, listed when sampling starts) are summed.
 */
export function sampleMem(pid: number, ms = 250, tree = false): { stop(): Usage } {
  let maxRss = 0;
  const pids = tree ? processTree(pid) : [pid];
  const cpu0 = sumCpu(pids);
  const tick = (): void => {
    const m = sumMem(pids);
    if (m && m.rss > maxRss) maxRss = m.rss;
  };
  tick();
  const timer = setInterval(tick, ms);
  return {
    stop() {
      clearInterval(timer);
      tick();
      const m = sumMem(pids) ?? { rss: 0, hwm: 0 };
      const cpu1 = sumCpu(pids);
      return { ...m, maxRss, userUs: cpu1.user - cpu0.user, sysUs: cpu1.sys - cpu0.sys };
    },
  };
}

function encodeCommand(args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`, 'latin1')];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a, 'latin1') : a;
    parts.push(Buffer.from(`$${b.length}\r\n`, 'latin1'), b, Buffer.from('\r\n', 'latin1'));
  }
  return Buffer.concat(parts);
}

/** Send one command and return the first reply line (enough for SET/PING). */
export function redisCommand(port: number, args: (string | Buffer)[]): Promise<string> {
  return new Promise((res, rej) => {
    const c = connect(port, '127.0.0.1');
    let got = '';
    c.on('error', rej);
    c.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const nl = got.indexOf('\r\n');
      if (nl !== -1) {
        c.destroy();
        res(got.slice(0, nl));
      }
    });
    c.write(encodeCommand(args));
  });
}

export interface Redis {
  port: number;
  proc: Proc;
}

export async function startRedis(dir: string): Promise<Redis> {
  const port = await freePort();
  const proc = startProc('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]);
  const until = Date.now() + 10000;
  for (;;) {
    try {
      if ((await redisCommand(port, ['PING'])) === '+PONG') return { port, proc };
    } catch {
      // not listening yet
    }
    if (proc.child.exitCode !== null) throw new Error(`redis-server exited: ${proc.stderr()}`);
    if (Date.now() > until) throw new Error('redis-server did not answer PING');
    await sleep(30);
  }
}

/** What one measured wrk run against a server gives (the figures every side-by-side bench reports). */
export interface Measured {
  rps: number;
  p99: number;
  /** server CPU (user+sys, /proc) per completed request, µs */
  cpuUs: number;
  userUs: number;
  /** largest VmRSS sampled during the run, MiB */
  rssMiB: number;
  errors: number;
}

/**
 * A warm-up run, then the measured one: wrk against `url` while the
 * server's CPU time and RSS are read around it. Shared by the
 * side-by-side benches (proxy, srcache, tls, lua).
 */
export async function measureRun(pid: number, url: string, conns: number, duration: number, warmup = 1): Promise<Measured> {
  if (warmup > 0) await runWrk(url, conns, warmup, 2);
  const mem = sampleMem(pid);
  const c0 = readCpu(pid)!;
  const res = await runWrk(url, conns, duration, 2);
  const c1 = readCpu(pid)!;
  const m = mem.stop();
  return {
    rps: res.rps,
    p99: res.p99ms,
    cpuUs: (c1.user + c1.sys - c0.user - c0.sys) / res.requests,
    userUs: (c1.user - c0.user) / res.requests,
    rssMiB: m.maxRss / 1024,
    errors: res.errors,
  };
}

/** CPU time (user + sys, µs) of pid and its descendants (a master and its workers) */
export function treeCpu(pid: number): number {
  let us = 0;
  for (const p of processTree(pid)) {
    const c = readCpu(p);
    if (c) us += c.user + c.sys;
  }
  return us;
}

export type PathRow = Record<string, { rps: number; cpuUs: number; p50: number }>;

/**
 * Once `proc` listens on `port`: for each path a 1 s warm-up, then wrk for
 * `duration` s with `conns` connections; CPU per request summed over the
 * process tree (the zone and shared-dict benches run several workers).
 */
export async function measurePaths(proc: Proc, port: number, paths: string[], conns: number, duration: number): Promise<PathRow> {
  await waitPort(port, proc);
  await sleep(500);
  const out: PathRow = {};
  for (const path of paths) {
    const url = `http://127.0.0.1:${port}${path}`;
    await runWrk(url, conns, 1, 2);
    const before = treeCpu(proc.pid);
    const w = await runWrk(url, conns, duration, 2);
    out[path] = { rps: w.rps, cpuUs: (treeCpu(proc.pid) - before) / w.requests, p50: w.p50ms };
  }
  return out;
}
