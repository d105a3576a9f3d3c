import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';

/*
 * A Node HTTP backend (t/helpers/backend_server.mjs, see its routes) run as
 * a real child process on an ephemeral loopback port, so that a test can
 * kill it like a crashed server. It exits by itself when the test process
 * goes away (its stdin closes).
 */

const SCRIPT = join(import.meta.dirname, 'backend_server.mjs');

export interface BackendOptions {
  /** the backend's idle keep-alive timeout (default 30000 ms) */
  keepAliveTimeout?: number;
}

export interface Backend {
  port: number;
  /** http://127.0.0.1:PORT */
  url: string;
  /** the process id (for the test's own checks) */
  pid: number;
  /** requests served so far, /__count's own not counted */
  count(): Promise<number>;
  /** connections accepted so far, those opened only for /__count not counted */
  connections(): Promise<number>;
  /**
   * Signal the process (SIGKILL by default: a crash) and wait until it exits
   * (at most 5 s); SIGSTOP and SIGCONT (a hung backend) do not wait.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** stop it (SIGTERM, SIGKILL after 2 s) and wait until it exits */
  stop(): Promise<void>;
}

export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

function exited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null;
}

function waitExit(proc: ChildProcess, ms: number): Promise<boolean> {
  if (exited(proc)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      proc.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    proc.once('exit', onExit);
  });
}

/** GET a small JSON document on a connection of its own */
function getJson(port: number, path: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(text) as Record<string, unknown>);
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
  });
}

/**
 * Start a backend; with `t`, it is stopped in t.teardown. Resolves once the
 * backend listens (it prints its port), at most 10 s.
 */
export async function startBackend(t?: TeardownHost, opts: BackendOptions = {}): Promise<Backend> {
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // tap's loaders have no business in the backend
  const args = [SCRIPT];
  if (opts.keepAliveTimeout !== undefined) args.push('--keepalive-timeout', String(opts.keepAliveTimeout));
  const proc = spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'inherit'] });
  const stop = async (): Promise<void> => {
    if (exited(proc)) return;
    proc.kill('SIGCONT'); // in case a test stopped it
    proc.kill('SIGTERM');
    if (!(await waitExit(proc, 2000))) {
      proc.kill('SIGKILL');
      await waitExit(proc, 2000);
    }
  };
  t?.teardown(stop);
  proc.stdin!.on('error', () => {}); // the backend may be gone first
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const cleanup = (): void => {
      clearTimeout(timer);
      proc.off('exit', onExit);
      proc.off('error', fail);
      proc.stdout!.off('data', onData);
    };
    const fail = (e: Error): void => {
      cleanup();
      proc.kill('SIGKILL');
      reject(e);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => fail(new Error(`the backend exited (${code ?? signal}) before listening`));
    const onData = (d: string): void => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      const n = Number(out.slice(0, nl));
      if (!Number.isInteger(n) || n <= 0) return fail(new Error(`the backend printed ${JSON.stringify(out)}`));
      cleanup();
      proc.stdout!.resume(); // nothing more is expected; never let it fill up
      resolve(n);
    };
    const timer = setTimeout(() => fail(new Error('the backend did not print its port within 10 s')), 10000);
    proc.stdout!.setEncoding('latin1');
    proc.stdout!.on('data', onData);
    proc.once('exit', onExit);
    proc.once('error', fail);
  });
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    pid: proc.pid ?? 0,
    count: async () => Number((await getJson(port, '/__count')).requests),
    connections: async () => Number((await getJson(port, '/__count')).connections),
    kill: async (signal: NodeJS.Signals = 'SIGKILL') => {
      if (exited(proc)) return;
      proc.kill(signal);
      if (signal !== 'SIGSTOP' && signal !== 'SIGCONT') await waitExit(proc, 5000);
    },
    stop,
  };
}
