import { closeSync, openSync, writeSync } from 'node:fs';
import type { ErrorLogSpec } from '../modules/core.js';
import type { LogLevel } from './request.js';

/*
 * The error log in nginx's line format:
 *   YYYY/MM/DD HH:MM:SS [level] PID#0: *CONN message, client: ..., server: ...
 * Lines are appended unbuffered (Test::Nginx reads the file ~45 ms after a
 * response). Each error_log has its own level; a message goes to every log
 * whose level admits it. The process issue extends this (reopen on USR1).
 */

export const LEVEL_NUM: Record<string, number> = {
  stderr: 0, emerg: 1, alert: 2, crit: 3, error: 4, warn: 5, notice: 6, info: 7, debug: 8,
};

interface Target {
  path: string;
  /** -1 for stderr */
  fd: number;
  level: number;
}

const fds = new Map<string, number>();

function openTarget(spec: ErrorLogSpec): Target {
  const level = LEVEL_NUM[spec.level] ?? 4;
  if (spec.path === 'stderr') return { path: 'stderr', fd: 2, level };
  let fd = fds.get(spec.path);
  if (fd === undefined) {
    fd = openSync(spec.path, 'a');
    fds.set(spec.path, fd);
  }
  return { path: spec.path, fd, level };
}

/** reopen every log file (USR1) */
export function reopenLogs(): void {
  for (const [path, fd] of fds) {
    try {
      const nfd = openSync(path, 'a');
      fds.set(path, nfd);
      closeSync(fd);
    } catch {
      /* keep the old descriptor, as nginx does when reopening fails */
    }
  }
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** `2024/01/31 12:00:00` in local time, cached per second */
let cachedSec = -1;
let cachedTime = '';
export function logTime(now = Date.now()): string {
  const sec = Math.floor(now / 1000);
  if (sec !== cachedSec) {
    const d = new Date(sec * 1000);
    cachedTime = `${d.getFullYear()}/${pad2(d.getMonth() + 1)}/${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
    cachedSec = sec;
  }
  return cachedTime;
}

/** A set of error_log targets (one level's `error_log` directives). */
export class ErrorLog {
  readonly targets: Target[];
  /** the most verbose level any target takes: a quick filter */
  readonly maxLevel: number;

  constructor(specs: ErrorLogSpec[]) {
    this.targets = specs.map(openTarget);
    this.maxLevel = this.targets.reduce((m, t) => Math.max(m, t.level), 0);
  }

  enabled(level: LogLevel): boolean {
    return LEVEL_NUM[level]! <= this.maxLevel;
  }

  /** `conn` 0 = no `*N` part */
  write(level: LogLevel | 'stderr', conn: number, msg: string): void {
    const n = LEVEL_NUM[level]!;
    if (n > this.maxLevel) return;
    const line = Buffer.from(
      `${logTime()} [${level}] ${process.pid}#0: ${conn ? `*${conn} ` : ''}${msg}\n`,
      'latin1',
    );
    for (const t of this.targets) {
      if (n > t.level) continue;
      try {
        writeSync(t.fd, line);
      } catch {
        /* a log that cannot be written must not stop serving */
      }
    }
  }
}

const logCache = new Map<ErrorLogSpec[], ErrorLog>();

/** the ErrorLog for a conf level's spec list, built once */
export function errorLogFor(specs: ErrorLogSpec[]): ErrorLog {
  let log = logCache.get(specs);
  if (!log) {
    log = new ErrorLog(specs);
    logCache.set(specs, log);
  }
  return log;
}

/** the main (cycle) error log; set by run.ts once the config is loaded */
let mainLog: ErrorLog | undefined;
export function setMainLog(log: ErrorLog): void {
  mainLog = log;
}
export function getMainLog(): ErrorLog {
  if (!mainLog) mainLog = new ErrorLog([{ path: 'stderr', level: 'error' }]);
  return mainLog;
}
