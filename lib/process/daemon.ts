import { spawn } from 'node:child_process';

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

/** foreground half: start the detached copy, wait until it serves or fails */
export function daemonize(): Promise<number> {
  return new Promise((resolve) => {
    const env = { ...process.env, [DAEMON_ENV]: '1' };
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      detached: true,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env,
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
