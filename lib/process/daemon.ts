import { spawn } from 'node:child_process';
import type { ConfSnapshot } from '../conf/parser.js';

/*
 * `daemon on` (nginx's default): the foreground process starts a detached
 * copy of itself and exits with 0 once that copy serves (Test::Nginx relies
 * on it), or with the copy's failure code. Errors before that point reach
 * the terminal through the inherited stderr, as nginx prints them before
 * it daemonizes.
 */

const DAEMON_ENV = 'REDIS2D_DAEMONIZED';

export function isDaemonChild(): boolean {
  return process.env[DAEMON_ENV] === '1';
}

/**
 * foreground half: start the detached copy, wait until it serves or fails.
 * The copy runs the load the foreground judged (`snapshot`, asked for over
 * IPC), not the files as they are by the time it starts.
 */
export function daemonize(snapshot: ConfSnapshot): Promise<number> {
  return new Promise((resolve) => {
    const env = { ...process.env, [DAEMON_ENV]: '1' };
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      detached: true,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env,
    });
    let settled = false;
    child.on('message', (m) => {
      if (m && typeof m === 'object' && (m as { redis2d?: string }).redis2d === 'want-config') {
        child.send({ redis2d: 'config', snapshot });
        return;
      }
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

/** daemon half: tell the foreground how startup went (once) */
export function reportStartup(code: number): number {
  if (isDaemonChild() && process.send && process.connected) {
    process.send(code === 0 ? 'ready' : 'failed');
    process.disconnect();
  }
  // the workers must not think they are the daemon's first process
  delete process.env[DAEMON_ENV];
  return code;
}

/** daemon half: the load the foreground judged, asked for once the listener is in place */
export function configFromForeground(): Promise<ConfSnapshot | undefined> {
  if (!isDaemonChild() || !process.send) return Promise.resolve(undefined);
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
