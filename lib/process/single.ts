import type { CliOptions } from './options.js';
import { reopenLogs, setUseStderr, type ErrorLog } from '../core/error_log.js';
import { noEffectDirectives } from '../modules/noop/module.js';
import { rereadCycle, type Loaded } from './cycle.js';
import { movePidFile, removePidFile, writePidFile } from './pidfile.js';
import { fastStop, gracefulStop, serveCycle } from './serve.js';
import { reportStartup } from './daemon.js';
import { zoneReuseError } from '../http/zones.js';

/*
 * `master_process off` (ngx_single_process_cycle): one process serves.
 * HUP re-reads the configuration in place: a bad one is logged and the old
 * one keeps serving; a good one takes over the bound sockets, so new
 * connections see it while requests already running finish under the old.
 */

export async function runSingle(opts: CliOptions, prefix: string, confFile: string, first: Loaded, firstLog: ErrorLog, startupPath: string): Promise<number> {
  let l = first;
  let log = firstLog;
  if (!(await serveCycle(l, log, log))) return reportStartup(1);
  try {
    writePidFile(l.pidPath);
  } catch (e) {
    log.write('emerg', 0, (e as Error).message);
    return reportStartup(1);
  }
  for (const name of noEffectDirectives(l.cycle)) log.write('warn', 0, `the "${name}" directive has no effect in redis2d`);

  const onExit = (): void => {
    log.write('notice', 0, 'exit');
    removePidFile(l.pidPath);
  };
  process.on('exit', () => removePidFile(l.pidPath));
  process.on('SIGTERM', () => fastStop(onExit));
  process.on('SIGINT', () => fastStop(onExit));
  process.on('SIGQUIT', () => {
    log.write('notice', 0, 'gracefully shutting down');
    gracefulStop(onExit);
  });
  process.on('SIGUSR1', () => {
    // both lines go to the old file, as nginx's do
    log.write('notice', 0, 'signal 10 (SIGUSR1) received, reopening');
    log.write('notice', 0, 'reopening logs');
    reopenLogs();
  });
  // a HUP during a reload asks for one more reload once it ends (nginx's ngx_reconfigure flag)
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
    if (!(await serveCycle(next, nextLog, nextLog))) return;
    movePidFile(l.pidPath, next.pidPath, nextLog);
    l = next;
    log = nextLog;
  };
  process.on('SIGHUP', async () => {
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
      } while (again);
    } finally {
      reloading = false;
    }
  });

  setUseStderr(false);
  reportStartup(0);
  return new Promise<number>(() => {});
}
