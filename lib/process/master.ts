import cluster, { type Worker } from 'node:cluster';
import { constants } from 'node:os';
import { PROGRAM } from '../core/version.js';
import type { CliOptions } from './options.js';
import { reopenLogs, setMainLog, setUseStderr, type ErrorLog } from '../core/error_log.js';
import { noEffectDirectives } from '../modules/noop/module.js';
import { rereadCycle, type Loaded } from './cycle.js';
import { snapshotOf, type ConfSnapshot } from '../conf/parser.js';
import { reportStartup } from './daemon.js';
import { movePidFile, removePidFile, writePidFile } from './pidfile.js';
import { LEAD_ENV } from './worker.js';
import { TLS_SEED_ENV } from '../http/tls.js';
import { randomBytes } from 'node:crypto';
import { installMasterZones } from './zones.js';
import { zoneReuseError } from '../http/zones.js';
import { workerHeapFlags } from './heap_flags.js';

/*
 * The master process (ngx_master_process_cycle). It holds no request
 * state: it judges configurations, starts workers (node:cluster, with the
 * listening sockets bound here and shared, SCHED_NONE, so each worker
 * accepts on them as nginx's workers do), replaces a worker that dies, and
 * turns signals into worker generations:
 *   HUP   validate the config; bad: log the [emerg], keep the old workers;
 *         good: start new workers, and once they listen, QUIT the old ones
 *   QUIT  graceful stop of every worker, then exit
 *   TERM  fast stop (KILL after 5 s for a worker that hangs)
 *   USR1  reopen the master's log files and tell every worker to
 */

interface Proc {
  worker: Worker;
  gen: number;
  ready: boolean;
  /** told to stop: its exit is expected */
  retiring: boolean;
}

const procs = new Map<number, Proc>();
let generation = 0;
/** the validated load of each generation, handed to its workers (and to a worker respawned in it) */
const snapshots = new Map<number, ConfSnapshot>();

function sigNum(sig: string): number {
  return (constants.signals as Record<string, number>)[sig] ?? 0;
}

/** each generation's seed of TLS session ticket keys, shared by its workers (lib/http/tls.ts) */
const ticketSeeds = new Map<number, string>();

function fork(gen: number, lead: boolean): Proc {
  let seed = ticketSeeds.get(gen);
  if (seed === undefined) ticketSeeds.set(gen, (seed = randomBytes(32).toString('hex')));
  const worker = cluster.fork({ [LEAD_ENV]: lead ? '1' : '0', [TLS_SEED_ENV]: seed });
  const p: Proc = { worker, gen, ready: false, retiring: false };
  procs.set(worker.id, p);
  worker.on('message', (m: unknown) => {
    const kind = m && typeof m === 'object' ? (m as { redis2d?: string }).redis2d : undefined;
    if (kind === 'want-config') {
      // the worker parses exactly what this master validated, not the files as they are now
      worker.send({ redis2d: 'config', snapshot: snapshots.get(gen) });
    } else if (kind === 'ready') {
      p.ready = true;
      worker.emit('redis2d-ready');
    }
  });
  return p;
}

/**
 * start n workers of a generation; resolves true once all listen, false
 * once each has either listened or died and one died (the first worker
 * reports why on stderr and in the log; the others fail quietly)
 */
function startGeneration(n: number, gen: number, log: ErrorLog): Promise<boolean> {
  return new Promise((resolve) => {
    let pending = n;
    let failed = false;
    const settle = (): void => {
      if (--pending === 0) resolve(!failed);
    };
    for (let i = 0; i < n; i++) {
      const p = fork(gen, i === 0);
      log.write('notice', 0, `start worker process ${p.worker.process.pid}`);
      p.worker.once('redis2d-ready', settle);
      p.worker.once('exit', () => {
        if (p.ready) return;
        failed = true;
        settle();
      });
    }
  });
}

function signalGeneration(pred: (p: Proc) => boolean, sig: NodeJS.Signals): void {
  for (const p of procs.values()) {
    if (!pred(p)) continue;
    if (sig !== 'SIGUSR1') p.retiring = true;
    try {
      p.worker.process.kill(sig);
    } catch {
      /* already gone */
    }
  }
}

export async function runMaster(opts: CliOptions, prefix: string, confFile: string, first: Loaded, firstLog: ErrorLog, startupPath: string): Promise<number> {
  let l = first;
  let log = firstLog;
  setMainLog(log);
  // what ps shows, as nginx's master: its name and the command line it was started with
  process.title = `${PROGRAM}: master process ${[PROGRAM, ...process.argv.slice(2)].join(' ')}`;
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  // the shared zones of a generation with several workers live here (zones.ts)
  installMasterZones(() => l.cycle);
  // workers get the heap settings of heap_flags.ts (unless given otherwise)
  const execArgv = [...process.execArgv, ...workerHeapFlags(process.execArgv, process.env.NODE_OPTIONS)];
  cluster.setupPrimary({ exec: process.argv[1], args: process.argv.slice(2), silent: false, execArgv });

  let exiting = false;
  const finish = (): void => {
    log.write('notice', 0, 'exit');
    removePidFile(l.pidPath);
    process.exit(0);
  };

  cluster.on('exit', (worker, code, signal) => {
    const p = procs.get(worker.id);
    procs.delete(worker.id);
    if (!p) return;
    const pid = worker.process.pid;
    if (signal) log.write('alert', 0, `worker process ${pid} exited on signal ${sigNum(signal)}`);
    else log.write('notice', 0, `worker process ${pid} exited with code ${code}`);
    if (exiting) {
      if (procs.size === 0) finish();
      return;
    }
    if (p.retiring || !p.ready) return;
    if (code === 2) {
      log.write('alert', 0, `worker process ${pid} exited with fatal code 2 and cannot be respawned`);
      return;
    }
    const np = fork(p.gen, false);
    log.write('notice', 0, `start worker process ${np.worker.process.pid}`);
  });

  const startupFailed = (): never => {
    signalGeneration(() => true, 'SIGKILL');
    reportStartup(1);
    process.exit(1);
  };
  log.write('notice', 0, 'start worker processes');
  snapshots.set(generation, snapshotOf(l.cycle));
  if (!(await startGeneration(l.workers, generation, log))) startupFailed();
  try {
    writePidFile(l.pidPath);
  } catch (e) {
    log.write('emerg', 0, (e as Error).message);
    startupFailed();
  }
  process.on('exit', () => removePidFile(l.pidPath));
  for (const name of noEffectDirectives(l.cycle)) log.write('warn', 0, `the "${name}" directive has no effect in redis2d`);

  const stop = (sig: 'SIGQUIT' | 'SIGTERM', name: string, num: number): void => {
    log.write('notice', 0, `signal ${num} (${name}) received, ${sig === 'SIGQUIT' ? 'shutting down' : 'exiting'}`);
    exiting = true;
    signalGeneration(() => true, sig);
    if (procs.size === 0) finish();
    if (sig === 'SIGTERM') {
      // nginx escalates to KILL for a worker that ignores TERM
      setTimeout(() => signalGeneration(() => true, 'SIGKILL'), 5000).unref();
    }
  };
  process.on('SIGQUIT', () => stop('SIGQUIT', 'SIGQUIT', 3));
  process.on('SIGTERM', () => stop('SIGTERM', 'SIGTERM', 15));
  process.on('SIGINT', () => stop('SIGTERM', 'SIGINT', 2));
  process.on('SIGUSR1', () => {
    // both lines go to the old file, as nginx's do
    log.write('notice', 0, 'signal 10 (SIGUSR1) received, reopening');
    log.write('notice', 0, 'reopening logs');
    reopenLogs();
    signalGeneration(() => true, 'SIGUSR1');
  });

  /*
   * nginx's ngx_reconfigure flag: a HUP that arrives while a reload runs is
   * not lost; it asks for one more reload once this one ends (several
   * coalesce into one), so a file rewritten meanwhile is read.
   */
  let reloading = false;
  let again = false;
  const reloadOnce = async (): Promise<void> => {
    const got = rereadCycle(opts, prefix, confFile, log, startupPath);
    if (!got) return;
    const [next, nextLog] = got;
    // a zone kept across the reload keeps its key (ngx_http_limit_req_init_zone's check)
    const bad = zoneReuseError(l.cycle, next.cycle);
    if (bad !== undefined) {
      nextLog.write('emerg', 0, bad);
      return;
    }
    const old = generation;
    const gen = ++generation;
    snapshots.set(gen, snapshotOf(next.cycle));
    nextLog.write('notice', 0, 'start worker processes');
    if (!(await startGeneration(next.workers, gen, nextLog))) {
      // a new worker could not start (a socket it cannot bind, say): keep the old ones
      signalGeneration((p) => p.gen === gen, 'SIGKILL');
      snapshots.delete(gen);
      generation = old;
      return;
    }
    signalGeneration((p) => p.gen !== gen, 'SIGQUIT');
    // only the serving generation's load is needed again (a respawn); retiring workers never respawn
    for (const g of snapshots.keys()) if (g !== gen) snapshots.delete(g);
    movePidFile(l.pidPath, next.pidPath, nextLog);
    l = next;
    log = nextLog;
    setMainLog(log);
  };
  process.on('SIGHUP', async () => {
    if (exiting) return;
    log.write('notice', 0, 'signal 1 (SIGHUP) received, reconfiguring');
    if (reloading) {
      again = true;
      return;
    }
    reloading = true;
    try {
      do {
        again = false;
        await reloadOnce();
      } while (again && !exiting);
    } finally {
      reloading = false;
    }
  });

  setUseStderr(false);
  reportStartup(0);
  return new Promise<number>(() => {});
}
