import { constants } from 'node:os';
import type { CliOptions } from './options.js';
import { errnoSuffix, setUseStderr } from '../core/error_log.js';
import { openStartupLog, parseCycle, startupLogPath } from './cycle.js';
import { readPidFile } from './pidfile.js';
import { prefixed } from './paths.js';

/*
 * `redis2d -s stop|quit|reopen|reload` (ngx_signal_process): parse the
 * configuration for the pid path, read the master's pid, send the signal.
 * Messages go to the -e log (default PREFIX/logs/error.log) and, at warn or
 * above, to stderr as `redis2d: [level] ...`, as nginx's do.
 */

export const SIGNALS: Record<string, NodeJS.Signals> = {
  stop: 'SIGTERM',
  quit: 'SIGQUIT',
  reopen: 'SIGUSR1',
  reload: 'SIGHUP',
};

export function signalProcess(opts: CliOptions, prefix: string, confFile: string): number {
  const sig = SIGNALS[opts.signal!]!;
  setUseStderr(true);
  const startupPath = startupLogPath(opts, (p) => prefixed(prefix, p));
  const log = openStartupLog(startupPath);
  log.write('notice', 0, 'signal process started');
  const l = parseCycle(opts, prefix, confFile, log, startupPath, true);
  if (!l) return 1;
  const res = readPidFile(l.pidPath);
  if (!('pid' in res)) {
    log.write(res.level, 0, res.msg);
    return 1;
  }
  try {
    process.kill(res.pid, sig);
  } catch (e) {
    log.write('alert', 0, `kill(${res.pid}, ${constants.signals[sig]}) failed ${errnoSuffix(e)}`);
    return 1;
  }
  return 0;
}
