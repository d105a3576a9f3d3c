import { spawn } from 'node:child_process';
import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Server } from 'node:net';
import type { CliOptions } from '../cli.js';
import { loadOrReport } from '../cli.js';
import { errnoText } from '../conf/parser.js';
import { coreModule, type CoreConf, type ErrorLogSpec } from '../modules/core.js';
import { noEffectDirectives } from '../modules/noop.js';
import { closeIdleConnections, liveConnections } from '../http/connection.js';
import { bindErrorText, openListens, prepareHttp, type BindError } from '../http/engine.js';
import { ErrorLog, reopenLogs, setMainLog } from '../http/log.js';
import { PROGRAM } from '../version.js';

/*
 * `redis2d -c nginx.conf`: load the config, open the error log, bind the
 * listening sockets, write the pid file and serve until a signal. With
 * `daemon on` (nginx's default) the foreground process starts a detached
 * copy of itself and exits 0 once that copy listens (Test::Nginx relies on
 * it). The master/worker model comes with its own issue.
 */

const DAEMON_ENV = 'REDIS2D_DAEMONIZED';

function stderr(line: string): void {
  process.stderr.write(Buffer.from(`${PROGRAM}: ${line}\n`, 'latin1'));
}

/** foreground half of `daemon on`: start the detached copy, wait until it listens */
function daemonize(): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      detached: true,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env: { ...process.env, [DAEMON_ENV]: '1' },
    });
    let settled = false;
    child.on('message', (m) => {
      if (settled) return;
      settled = true;
      resolve(m === 'ready' ? 0 : 1);
      child.disconnect();
      child.unref();
    });
    child.on('exit', (code) => {
      if (settled) return;
      settled = true;
      resolve(code ?? 1);
    });
  });
}

export async function run(opts: CliOptions, prefix: string, confFile: string): Promise<number> {
  const cycle = loadOrReport(opts, confFile, prefix);
  if (!cycle) return 1;
  const core = cycle.coreConfs[coreModule.index] as CoreConf;
  const daemon = core.daemon !== 0;
  const isDaemonChild = process.env[DAEMON_ENV] === '1';
  if (daemon && !isDaemonChild) return daemonize();

  const report = (code: number): number => {
    if (isDaemonChild && process.send) {
      process.send(code === 0 ? 'ready' : 'failed');
      process.disconnect();
    }
    return code;
  };

  // the error log: the config's, else -e, else PREFIX/logs/error.log
  let specs: ErrorLogSpec[] = core.errorLogs;
  if (!specs.length) {
    const e = opts.errorLog;
    specs = [{ path: e === 'stderr' ? 'stderr' : e !== undefined ? cycle.fullName(e) : cycle.fullName('logs/error.log'), level: 'error' }];
  }
  let log: ErrorLog;
  try {
    log = new ErrorLog(specs);
  } catch (e) {
    const path = specs.find((s) => s.path !== 'stderr')?.path ?? '';
    stderr(`[alert] could not open error log file: open() "${path}" failed ${errnoText(e)}`);
    return report(1);
  }
  setMainLog(log);
  const emerg = (msg: string): void => {
    stderr(`[emerg] ${msg}`);
    if (log.targets.some((t) => t.fd !== 2)) log.write('emerg', 0, msg);
  };

  let servers: Server[] = [];
  try {
    const sockets = prepareHttp(cycle);
    for (let attempt = 0; ; attempt++) {
      try {
        servers = await openListens(sockets);
        break;
      } catch (e) {
        const be = e as BindError;
        if (!be.err) throw e;
        emerg(bindErrorText(be));
        if (be.err.code !== 'EADDRINUSE' || attempt === 4) {
          if (be.err.code === 'EADDRINUSE') emerg('still could not bind()');
          return report(1);
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } catch (e) {
    emerg(String((e as Error).message ?? e));
    return report(1);
  }

  const pidPath = cycle.fullName(core.pid ?? 'logs/nginx.pid');
  try {
    mkdirSync(dirname(pidPath), { recursive: true });
    writeFileSync(pidPath, `${process.pid}\n`);
  } catch (e) {
    emerg(`open() "${pidPath}" failed ${errnoText(e)}`);
    for (const s of servers) s.close();
    return report(1);
  }

  for (const name of noEffectDirectives(cycle)) {
    log.write('warn', 0, `the "${name}" directive has no effect in redis2d`);
  }

  const removePid = (): void => {
    try {
      unlinkSync(pidPath);
    } catch {
      /* already gone */
    }
  };
  let stopping = false;
  const fastStop = (): void => {
    if (stopping) return;
    stopping = true;
    for (const s of servers) s.close();
    removePid();
    process.exit(0);
  };
  const gracefulStop = (): void => {
    if (stopping) return;
    stopping = true;
    for (const s of servers) s.close();
    closeIdleConnections();
    const check = (): void => {
      if (liveConnections() === 0) {
        removePid();
        process.exit(0);
      }
      setTimeout(check, 50).unref();
    };
    check();
    // keep the process alive while in-flight requests finish
    setInterval(() => {}, 1000);
  };
  process.on('SIGTERM', fastStop);
  process.on('SIGINT', fastStop);
  process.on('SIGQUIT', gracefulStop);
  process.on('SIGUSR1', reopenLogs);
  process.on('SIGHUP', () => log.write('notice', 0, 'reconfiguring is not implemented yet; signal ignored'));
  process.on('exit', removePid);

  report(0);
  // serve until a signal ends the process
  return new Promise<number>(() => {});
}
