import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ConfSnapshot } from '../conf/parser.js';

/*
 * `daemon on` (nginx's default): the foreground process starts a detached
 * copy of itself and exits with 0 once that copy serves (Test::Nginx relies
 * on it), or with the copy's failure code. Errors before that point reach
 * the terminal through the inherited stderr, as nginx prints them before
 * it daemonizes.
 *
 * Node cannot fork: the copy is a new node process, whose start (node's
 * own, then redis2d's code) is most of a daemon's start-up. So the
 * foreground starts it first (prespawnDaemon, from cli.ts), before it reads
 * the configuration, and the copy loads its code while the foreground
 * judges the configuration; the copy then asks for the judged load over
 * IPC and does nothing before it has it. When the configuration turns out
 * to be `daemon off`, or bad, the copy is killed unseen. A main file that
 * says `daemon off;` (or -g saying so) is not started early: a guess from
 * the file's text, which only decides this head start, never the outcome
 * (docs/behaviour.md §8).
 */

const DAEMON_ENV = 'REDIS2D_DAEMONIZED';

export function isDaemonChild(): boolean {
  return process.env[DAEMON_ENV] === '1';
}

/**
 * A started copy, listened to from its start: it may ask for the
 * configuration (or die) before the foreground has one to give.
 */
interface Copy {
  child: ChildProcess;
  asked: boolean;
  exitCode: number | undefined;
  /** what the foreground does with the copy's news once it waits for it */
  onAsk?: () => void;
  onReport?: (m: unknown) => void;
  onExit?: (code: number) => void;
}

function spawnCopy(): Copy {
  const env = { ...process.env, [DAEMON_ENV]: '1' };
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env,
  });
  const c: Copy = { child, asked: false, exitCode: undefined };
  child.on('message', (m) => {
    if (m && typeof m === 'object' && (m as { redis2d?: string }).redis2d === 'want-config') {
      c.asked = true;
      c.onAsk?.();
    } else c.onReport?.(m);
  });
  child.on('exit', (code) => {
    c.exitCode = code ?? 1;
    c.onExit?.(c.exitCode);
  });
  return c;
}

/** the copy started ahead of the configuration's verdict */
let early: Copy | undefined;

/**
 * foreground, before the configuration is read: start the copy now, unless
 * the command line or the main file's text says `daemon off;`
 */
export function prespawnDaemon(confFile: string, globals: string | undefined): void {
  if (early || isDaemonChild()) return;
  const off = /(^|[;{}\s])daemon\s+off\s*;/;
  if (globals !== undefined && off.test(globals)) return;
  try {
    if (off.test(readFileSync(confFile, 'latin1'))) return;
  } catch {
    // unreadable: the configuration's load says why, and no copy is needed
    return;
  }
  early = spawnCopy();
  // until it is used, the copy must not keep the foreground alive
  early.child.unref();
  early.child.channel?.unref();
}

/** foreground: the configuration will not be daemonized (daemon off, bad config): kill the early copy */
export function dropPrespawned(): void {
  if (!early) return;
  early.child.kill('SIGKILL');
  early = undefined;
}

/**
 * foreground half: start the detached copy (or take the early one), wait
 * until it serves or fails. The copy runs the load the foreground judged
 * (`snapshot`, asked for over IPC), not the files as they are by the time
 * it starts.
 */
export function daemonize(snapshot: ConfSnapshot): Promise<number> {
  return new Promise((resolve) => {
    const c = early ?? spawnCopy();
    early = undefined;
    const child = c.child;
    child.ref();
    child.channel?.ref();
    let settled = false;
    const settle = (code: number): void => {
      if (settled) return;
      settled = true;
      resolve(code);
    };
    c.onAsk = () => child.send({ redis2d: 'config', snapshot });
    c.onReport = (m) => {
      if (settled) return;
      settle(m === 'ready' ? 0 : 1);
      child.disconnect();
      child.unref();
    };
    c.onExit = (code) => settle(code);
    if (c.exitCode !== undefined) settle(c.exitCode);
    else if (c.asked) c.onAsk();
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
    // a foreground gone before it answered (killed, or it judged the configuration bad): nothing to serve
    const gone = (): never => process.exit(1);
    const onMessage = (m: unknown): void => {
      if (!m || typeof m !== 'object' || (m as { redis2d?: string }).redis2d !== 'config') return;
      process.off('message', onMessage);
      process.off('disconnect', gone);
      resolve((m as { snapshot?: ConfSnapshot }).snapshot);
    };
    process.on('message', onMessage);
    process.on('disconnect', gone);
    process.send!({ redis2d: 'want-config' });
  });
}
