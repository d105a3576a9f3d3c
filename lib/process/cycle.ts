import { closeSync, constants as fsc, openSync } from 'node:fs';
import { cpus } from 'node:os';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { eventsModule, type EventsConf } from '../modules/events/module.js';
import type { CliOptions } from './options.js';
import { ConfError } from '../conf/errors.js';
import { loadConfig } from './config.js';
import type { ConfSnapshot, Cycle } from '../conf/parser.js';
import { ErrorLog, errnoSuffix, openLogFile, stderrNote } from '../core/error_log.js';
import { coreModule, type CoreConf, type ErrorLogSpec } from '../modules/core/module.js';
import { accessLogPaths } from '../modules/log/module.js';

/*
 * ngx_init_cycle as the process layer sees it: parse the configuration,
 * then open every file it names (error logs, access logs), reporting each
 * failure as nginx does. Used for startup, for `-s` (which only needs the
 * pid path), for a master validating a reload and for each worker.
 */

/** where log lines go before the config's error_log takes over (nginx's cycle->log) */
export function startupLogPath(opts: CliOptions, fullName: (p: string) => string): string {
  const e = opts.errorLog;
  if (e === 'stderr') return 'stderr';
  return e !== undefined ? fullName(e) : fullName('logs/error.log');
}

/**
 * ngx_log_init: open the -e log (default PREFIX/logs/error.log) at level
 * notice; when it cannot be opened, say so on stderr and log to stderr.
 */
export function openStartupLog(path: string): ErrorLog {
  try {
    return new ErrorLog([{ path, level: 'notice' }]);
  } catch (e) {
    process.stderr.write(`redis2d: [alert] could not open error log file: open() "${path}" failed ${errnoSuffix(e)}\n`);
    return new ErrorLog([{ path: 'stderr', level: 'notice' }]);
  }
}

export interface Loaded {
  cycle: Cycle;
  core: CoreConf;
  /** the main error log specs (the config's, else the -e path at level error) */
  errorLogSpecs: ErrorLogSpec[];
  pidPath: string;
  workers: number;
}

/**
 * parse the configuration; a ConfError goes to `log` (with the warnings
 * before it when `warnings`: a process that re-reads a configuration its
 * parent already judged stays quiet about them)
 */
export function parseCycle(
  opts: CliOptions,
  prefix: string,
  confFile: string,
  log: ErrorLog | undefined,
  startupPath: string,
  warnings: boolean,
  snapshot?: ConfSnapshot,
): Loaded | undefined {
  let cycle: Cycle;
  try {
    cycle = loadConfig({ confFile, prefix, globals: opts.globals, snapshot });
    if (log && warnings) for (const w of cycle.warnings) log.write(w.level, 0, w.text);
  } catch (e) {
    if (!(e instanceof ConfError)) throw e;
    if (log) {
      if (warnings) for (const w of e.warnings) log.write(w.level, 0, w.text);
      log.write(e.level, 0, e.format());
      // redis2d's own line (whose module an unknown directive is): the log at notice, and the terminal
      if (e.hint) {
        log.write('notice', 0, e.hint);
        if (warnings) stderrNote(e.hint);
      }
    }
    return undefined;
  }
  const core = cycle.coreConfs[coreModule.index] as CoreConf;
  const errorLogSpecs = core.errorLogs.length ? core.errorLogs : [{ path: startupPath, level: 'error' }];
  const pidPath = cycle.fullName(core.pid ?? 'logs/nginx.pid');
  let workers = core.workerProcesses;
  if (workers === -1) workers = 1;
  else if (workers === 0) workers = Math.max(1, cpus().length);
  return { cycle, core, errorLogSpecs, pidPath, workers };
}

/**
 * SIGHUP's first half, the same for a master and a single process: log
 * `reconfiguring` (to the old log), re-read the configuration, open its files.
 * undefined when either step failed (already logged): the old cycle stays.
 */
export function rereadCycle(
  opts: CliOptions,
  prefix: string,
  confFile: string,
  log: ErrorLog,
  startupPath: string,
): [Loaded, ErrorLog] | undefined {
  // the `signal 1 (SIGHUP) received` line is the signal handler's, written as the signal arrives
  log.write('notice', 0, 'reconfiguring');
  const next = parseCycle(opts, prefix, confFile, log, startupPath, true);
  const nextLog = next && openCycleFiles(next, log);
  if (!next || !nextLog) return undefined;
  warnOpenFileLimit(next, nextLog);
  return [next, nextLog];
}

/**
 * open the files a cycle names (ngx_init_cycle's open_files step): the main
 * error log and every constant access_log path. Returns the new main log, or
 * undefined after logging `[emerg] open() "PATH" failed (...)` to `log`.
 */
export function openCycleFiles(l: Loaded, log: ErrorLog): ErrorLog | undefined {
  let log2: ErrorLog;
  try {
    log2 = new ErrorLog(l.errorLogSpecs);
  } catch (e) {
    const bad = l.errorLogSpecs.find((s) => {
      try {
        openLogFile(s.path);
        return false;
      } catch {
        return true;
      }
    });
    log.write('emerg', 0, `open() "${bad?.path ?? ''}" failed ${errnoSuffix(e)}`);
    return undefined;
  }
  for (const path of accessLogPaths(l.cycle)) {
    try {
      openLogFile(path);
    } catch (e) {
      log.write('emerg', 0, `open() "${path}" failed ${errnoSuffix(e)}`);
      return undefined;
    }
  }
  return log2;
}

/** open(2) and close, nginx's `open() "PATH" failed (N: text)` when it fails */
function tryOpen(path: string, flags: number): string | undefined {
  try {
    closeSync(openSync(path, flags, 0o644));
    return undefined;
  } catch (e) {
    return `open() "${path}" failed ${errnoSuffix(e)}`;
  }
}

/**
 * `-t`'s half of ngx_init_cycle after `syntax is ok`: the pid file is opened
 * (created, never truncated: nginx leaves an empty one behind), then every
 * file the configuration names is opened for appending: the error logs (the
 * -e path when the configuration has none) and the constant access_log
 * paths. Returns the first failure's message, or undefined.
 */
export function testCycleFiles(cycle: Cycle, startupPath: string): string | undefined {
  const core = cycle.coreConfs[coreModule.index] as CoreConf;
  const pid = tryOpen(cycle.fullName(core.pid ?? 'logs/nginx.pid'), fsc.O_RDWR | fsc.O_CREAT);
  if (pid) return pid;
  const logs = core.errorLogs.length ? core.errorLogs.map((s) => s.path) : [startupPath];
  for (const path of [...logs, ...accessLogPaths(cycle)]) {
    if (path === 'stderr') continue;
    const err = tryOpen(path, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT);
    if (err) return err;
  }
  return undefined;
}

/** RLIMIT_NOFILE of this process (soft, hard) from /proc/self/limits; undefined when unknown */
export function openFileLimit(): { soft: number; hard: number } | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'latin1'));
    if (!m) return undefined;
    const n = (x: string): number => (x === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(x));
    return { soft: n(m[1]!), hard: n(m[2]!) };
  } catch {
    return undefined;
  }
}

/**
 * ngx_event_module_init: when worker_connections exceed what a worker may
 * open (worker_rlimit_nofile when set, else RLIMIT_NOFILE), nginx warns once
 * per configuration it starts with (not under -t).
 */
export function warnOpenFileLimit(l: Loaded, log: ErrorLog): void {
  const ev = l.cycle.coreConfs[eventsModule.index] as EventsConf | undefined;
  const wc = ev && ev.workerConnections > 0 ? ev.workerConnections : 512;
  const lim = openFileLimit();
  if (!lim) return;
  const rl = l.core.workerRlimitNofile;
  if (wc > lim.soft && (rl === -1 || wc > rl)) {
    log.write('warn', 0, `${wc} worker_connections exceed open file resource limit: ${rl === -1 ? lim.soft : rl}`);
  }
}

/**
 * ngx_worker_process_init: worker_rlimit_nofile sets the worker's
 * RLIMIT_NOFILE (soft and hard). Node has no setrlimit(); prlimit(1) sets
 * it on this process from outside, as far as it may.
 */
export function applyRlimitNofile(l: Loaded, log: ErrorLog): void {
  const n = l.core.workerRlimitNofile;
  if (n === -1) return;
  const r = spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${n}:${n}`], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5000 });
  if (r.status !== 0) {
    const why = /Operation not permitted/.test(r.stderr?.toString('latin1') ?? '') || r.status === 1 ? '1: Operation not permitted' : `${r.error ? 'prlimit unavailable' : 'prlimit failed'}`;
    log.write('alert', 0, `setrlimit(RLIMIT_NOFILE, ${n}) failed (${why})`);
  }
}
