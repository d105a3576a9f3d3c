import { PROGRAM } from '../core/version.js';
import cluster from 'node:cluster';
import type { CliOptions } from './options.js';
import type { ConfSnapshot } from '../conf/parser.js';
import { reopenLogs, setUseStderr } from '../core/error_log.js';
import { applyRlimitNofile, openCycleFiles, openStartupLog, parseCycle, startupLogPath } from './cycle.js';
import { prefixed } from './paths.js';
import { fastStop, gracefulStop, serveCycle } from './serve.js';
import { installWorkerStats } from './stats.js';
import { switchWorkerUser } from './user.js';
import { installWorkerZones } from './zones.js';

/*
 * A worker process (node:cluster worker). It parses the configuration the
 * master validated, from the bytes the master read (sent over IPC as the
 * first message), opens its own log descriptors and accepts on
 * the sockets the master binds. It reports `ready` to the master once it
 * listens; a worker that cannot start exits with 2, nginx's fatal code, so
 * the master does not respawn it in a loop. Signals come from the master:
 * QUIT graceful, TERM/INT fast, USR1 reopen; HUP is the master's business.
 */

export const LEAD_ENV = 'REDIS2D_LEAD_WORKER';

/**
 * The snapshot of the load this worker runs: asked of the master once the
 * listener is in place (a message sent unasked could arrive before it).
 */
function configFromMaster(): Promise<ConfSnapshot | undefined> {
  if (!cluster.isWorker || !process.send) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const onMessage = (m: unknown): void => {
      if (!m || typeof m !== 'object' || (m as { redis2d?: string }).redis2d !== 'config') return;
      process.off('message', onMessage);
      resolve((m as { snapshot?: ConfSnapshot }).snapshot);
    };
    process.on('message', onMessage);
    process.send!({ redis2d: 'want-config' });
  });
}

export async function runWorker(opts: CliOptions, prefix: string, confFile: string): Promise<number> {
  process.title = `${PROGRAM}: worker process`;
  // only the first worker of a generation reports bind failures on stderr
  const lead = process.env[LEAD_ENV] === '1';
  setUseStderr(lead);
  const startupPath = startupLogPath(opts, (p) => prefixed(prefix, p));
  // the master's validated load, not the files as they are now (they may have changed since)
  const snapshot = await configFromMaster();
  const l = parseCycle(opts, prefix, confFile, openStartupLog(startupPath), startupPath, false, snapshot);
  if (!l) process.exit(2);
  const mainLog = openCycleFiles(l, openStartupLog(startupPath));
  if (!mainLog) process.exit(2);
  applyRlimitNofile(l, mainLog);
  // the files are open: now the worker becomes the `user` (a root master's workers)
  switchWorkerUser(l.core, mainLog);

  process.on('SIGHUP', () => {});
  process.on('SIGUSR1', () => {
    mainLog.write('notice', 0, 'reopening logs');
    reopenLogs();
  });
  process.on('SIGQUIT', () => {
    mainLog.write('notice', 0, 'gracefully shutting down');
    gracefulStop(() => mainLog.write('notice', 0, 'exiting'));
  });
  const fast = (): void => fastStop(() => mainLog.write('notice', 0, 'exiting'));
  process.on('SIGTERM', fast);
  process.on('SIGINT', fast);

  installWorkerStats();
  // one worker owns its zones; several share the master's (zones.ts)
  if (l.workers > 1) installWorkerZones();
  if (!(await serveCycle(l, mainLog, lead ? mainLog : undefined))) process.exit(2);
  setUseStderr(false);
  process.send?.({ redis2d: 'ready' });
  return new Promise<number>(() => {});
}
