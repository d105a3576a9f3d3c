import { closeSync, fchmodSync, fchownSync, fstatSync, openSync, writeSync } from 'node:fs';
import { errnoSuffix } from './errno.js';
import { PROGRAM } from './version.js';

export { errnoSuffix };

/*
 * The error log in nginx's line format:
 *   YYYY/MM/DD HH:MM:SS [level] PID#TID: *CONN message, client: ..., server: ...
 * Lines are appended unbuffered (Test::Nginx reads the file ~45 ms after a
 * response). Each error_log has its own level; a message goes to every log
 * whose level admits it.
 *
 * Open files are shared by path between error and access logs (nginx's
 * ngx_conf_open_file), so USR1 reopens each path once and every log that
 * writes to it sees the new descriptor.
 */

/** nginx's severities, most severe first */
export type LogLevel = 'emerg' | 'alert' | 'crit' | 'error' | 'warn' | 'notice' | 'info' | 'debug';

/** one `error_log` directive: where and from which level */
export interface ErrorLogSpec {
  /** absolute path, or 'stderr' */
  path: string;
  level: string;
}

export const LEVEL_NUM: Record<string, number> = {
  stderr: 0, emerg: 1, alert: 2, crit: 3, error: 4, warn: 5, notice: 6, info: 7, debug: 8,
};

/** One open log file; `fd` changes when the file is reopened. */
export interface LogFile {
  path: string;
  fd: number;
}

const STDERR_FILE: LogFile = { path: 'stderr', fd: 2 };
const files = new Map<string, LogFile>();
/** run before files are reopened: buffered access logs flush into the old file */
const beforeReopen: Array<() => void> = [];

/** open (or share) a log file for appending; throws the open() error */
export function openLogFile(path: string): LogFile {
  if (path === 'stderr') return STDERR_FILE;
  let f = files.get(path);
  if (!f) {
    f = { path, fd: openSync(path, 'a', 0o644) };
    files.set(path, f);
  }
  return f;
}

export function onBeforeReopen(fn: () => void): void {
  beforeReopen.push(fn);
}

/** the workers' uid when a root master's workers switch user: reopened files are given to it */
let reopenOwner = -1;
export function setReopenOwner(uid: number): void {
  reopenOwner = uid;
}

/** ngx_reopen_files' chown: the worker's user owns the file and may read and write it */
function giveToOwner(fd: number, path: string): void {
  if (reopenOwner < 0) return;
  try {
    const st = fstatSync(fd);
    if (st.uid !== reopenOwner) fchownSync(fd, reopenOwner, -1);
    if ((st.mode & 0o600) !== 0o600) fchmodSync(fd, (st.mode | 0o600) & 0o7777);
  } catch (e) {
    getMainLog().write('emerg', 0, `chown("${path}", ${reopenOwner}) failed ${errnoSuffix(e)}`);
  }
}

/** reopen every log file (USR1); a file that cannot be reopened keeps its old descriptor, as in nginx */
export function reopenLogs(): void {
  for (const fn of beforeReopen) fn();
  for (const f of files.values()) {
    try {
      const nfd = openSync(f.path, 'a', 0o644);
      giveToOwner(nfd, f.path);
      const old = f.fd;
      f.fd = nfd;
      closeSync(old);
    } catch (e) {
      getMainLog().write('alert', 0, `reopen() "${f.path}" failed ${errnoSuffix(e)}`);
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

/*
 * ngx_use_stderr: until the server runs, messages at warn or above are also
 * printed as `redis2d: [level] msg` on stderr (unless a log already is stderr).
 */
let useStderr = false;
export function setUseStderr(on: boolean): void {
  useStderr = on;
}

/** a line of redis2d's own on stderr while it is in use (`redis2d: TEXT`, no level) */
export function stderrNote(text: string): void {
  if (!useStderr) return;
  try {
    writeSync(2, Buffer.from(`${PROGRAM}: ${text}\n`, 'latin1'));
  } catch {
    /* stderr gone */
  }
}

interface Target {
  file: LogFile;
  level: number;
}

/** A set of error_log targets (one level's `error_log` directives). */
export class ErrorLog {
  readonly targets: Target[];
  /** the most verbose level any target takes: a quick filter */
  readonly maxLevel: number;

  constructor(specs: ErrorLogSpec[]) {
    this.targets = specs.map((s) => ({ file: openLogFile(s.path), level: LEVEL_NUM[s.level] ?? 4 }));
    this.maxLevel = this.targets.reduce((m, t) => Math.max(m, t.level), 0);
  }

  enabled(level: LogLevel): boolean {
    return LEVEL_NUM[level]! <= this.maxLevel;
  }

  /** `conn` 0 = no `*N` part */
  write(level: LogLevel | 'stderr', conn: number, msg: string): void {
    const n = LEVEL_NUM[level]!;
    let wroteStderr = false;
    if (n <= this.maxLevel) {
      let text = `${logTime()} [${level}] ${process.pid}#${process.pid}: ${conn ? `*${conn} ` : ''}${msg}`;
      // NGX_MAX_ERROR_STR: a line is cut at 2047 bytes before its line feed
      if (text.length > 2047) text = text.slice(0, 2047);
      const line = Buffer.from(`${text}\n`, 'latin1');
      for (const t of this.targets) {
        if (n > t.level) continue;
        if (t.file.fd === 2) wroteStderr = true;
        try {
          writeSync(t.file.fd, line);
        } catch {
          /* a log that cannot be written must not stop serving */
        }
      }
    }
    if (useStderr && n <= LEVEL_NUM.warn! && !wroteStderr) {
      try {
        writeSync(2, Buffer.from(`${PROGRAM}: [${level}] ${msg}\n`, 'latin1'));
      } catch {
        /* stderr gone */
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

/** the main (cycle) error log; set by the process layer once the config is loaded */
let mainLog: ErrorLog | undefined;
export function setMainLog(log: ErrorLog): void {
  mainLog = log;
}
export function getMainLog(): ErrorLog {
  if (!mainLog) mainLog = new ErrorLog([{ path: 'stderr', level: 'error' }]);
  return mainLog;
}
