import { PROGRAM } from '../core/version.js';
import type { CliOptions } from './options.js';
import { reopenLogs, setUseStderr } from '../core/error_log.js';
import { openCycleFiles, openStartupLog, parseCycle, startupLogPath } from './cycle.js';
import { prefixed } from './paths.js';
import { fastStop, gracefulStop, serveCycle } from './serve.js';
import { installWorkerStats } from './stats.js';
import { switchWorkerUser } from './user.js';

/*
 * A worker process (node:cluster worker). It re-reads the configuration the
 * master has just validated, opens its own log descriptors and accepts on
 * the sockets the master binds. It reports `ready` to the master once it
 * listens; a worker that cannot start exits with 2, nginx's fatal code, so
 * the master does not respawn it in a loop. Signals come from the master:
 * QUIT graceful, TERM/INT fast, USR1 reopen; HUP is the master's business.
 */

export const LEAD_ENV = 'REDIS2D_LEAD_WORKER';

export async function runWorker(opts: CliOptions, prefix: string, confFile: string): Promise<number> {
  process.title = `${PROGRAM}: worker process`;
  // only the first worker of a generation reports bind failures on stderr
  const lead = process.env[LEAD_ENV] === '1';
  setUseStderr(lead);
  const startupPath = startupLogPath(opts, (p) => prefixed(prefix, p));
  const l = parseCycle(opts, prefix, confFile, openStartupLog(startupPath), startupPath, false);
  if (!l) process.exit(2);
  const mainLog = openCycleFiles(l, openStartupLog(startupPath));
  if (!mainLog) process.exit(2);
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
  if (!(await serveCycle(l, mainLog, lead ? mainLog : undefined))) process.exit(2);
  setUseStderr(false);
  process.send?.({ redis2d: 'ready' });
  return new Promise<number>(() => {});
}
