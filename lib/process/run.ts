import cluster from 'node:cluster';
import type { CliOptions } from './options.js';
import { setReopenOwner, setUseStderr } from '../core/error_log.js';
import { openCycleFiles, openStartupLog, parseCycle, startupLogPath, warnOpenFileLimit } from './cycle.js';
import { configFromForeground, daemonize, dropPrespawned, isDaemonChild, reportStartup } from './daemon.js';
import { snapshotOf } from '../conf/parser.js';
import { runMaster } from './master.js';
import { prefixed } from './paths.js';
import { runSingle } from './single.js';
import { installMasterStats } from './stats.js';
import { runWorker } from './worker.js';

/*
 * `redis2d [-c nginx.conf]` (nginx's main()): open the -e log, judge the
 * configuration, daemonize when `daemon on`, open the files it names, then
 * run as a master with workers or, with `master_process off`, as a single
 * process. Until the server runs, errors are also printed on stderr.
 */

export async function run(opts: CliOptions, prefix: string, confFile: string): Promise<number> {
  if (cluster.isWorker) return runWorker(opts, prefix, confFile);
  const daemonChild = isDaemonChild();
  // the foreground judged the configuration (and printed its warnings) already: the daemon parses those
  // bytes, and does nothing before it has them (it may have been started before the judgement: daemon.ts)
  const snapshot = daemonChild ? await configFromForeground() : undefined;
  setUseStderr(true);
  const startupPath = startupLogPath(opts, (p) => prefixed(prefix, p));
  const startLog = openStartupLog(startupPath);
  const l = parseCycle(opts, prefix, confFile, startLog, startupPath, !daemonChild, snapshot);
  if (!l) {
    dropPrespawned();
    return reportStartup(1);
  }
  if (l.core.daemon !== 0 && !daemonChild) return daemonize(snapshotOf(l.cycle));
  dropPrespawned();
  const mainLog = openCycleFiles(l, startLog);
  if (!mainLog) return reportStartup(1);
  warnOpenFileLimit(l, mainLog);
  if (l.core.masterProcess === 0) return runSingle(opts, prefix, confFile, l, mainLog, startupPath);
  installMasterStats();
  // files the master reopens (USR1) go to the workers' user, as nginx's ngx_reopen_files
  if (l.core.userId >= 0 && process.geteuid?.() === 0) setReopenOwner(l.core.userId);
  return runMaster(opts, prefix, confFile, l, mainLog, startupPath);
}
