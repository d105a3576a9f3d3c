import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { hasNginx, type Running } from './server.js';

/*
 * Shared by the site-*.test.ts differential tests (limit_req, limit_conn,
 * realip, auth_basic, zones): nginx's echo module for a content handler
 * that runs after the pre-access and access phases, and the error log's
 * lines without their time and pid.
 */

export const MODS = '/usr/lib/nginx/modules';
export const LOAD_ECHO = `load_module ${MODS}/ngx_http_echo_module.so;`;
export const skipEcho = !hasNginx || !existsSync(`${MODS}/ngx_http_echo_module.so`) ? 'Debian nginx with the echo module not installed' : false;

/**
 * Debian's module packages for a differential test: their load_module
 * lines, and why the test skips when nginx or one of them is missing
 */
export function debianModules(...names: string[]): { load: string; skip: string | false } {
  const missing = names.filter((m) => !existsSync(`${MODS}/${m}.so`));
  const skip = !hasNginx ? "Debian's nginx not installed" : missing.length ? `Debian nginx without ${missing.join(', ')}` : false;
  return { load: names.map((m) => `load_module ${MODS}/${m}.so;`).join('\n'), skip };
}

/** the error log's lines at these levels, `LEVEL message` (no time, no pid), minus keep-alive chatter */
export function logLines(s: Running, levels = ['emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info']): string[] {
  const out: string[] = [];
  for (const line of s.errorLog().split('\n')) {
    const m = /^\S+ \S+ \[(\w+)\] \d+#\d+: (.*)$/.exec(line);
    if (!m || !levels.includes(m[1]!)) continue;
    const msg = m[2]!;
    if (/keepalive connection|closed connection while waiting|start worker|signal|exiting|exit$|using the|worker process|gracefully|reopening|built by|^nginx\/|OS:|getrlimit/.test(msg)) continue;
    out.push(`${m[1]} ${msg}`);
  }
  return out;
}

/** one request on its own connection: status code and whole response (latin1), waiting for the close */
export function request(port: number, text: string, timeoutMs = 5000): Promise<{ status: number; raw: string; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const c = connect(port, '127.0.0.1');
    let raw = '';
    const timer = setTimeout(() => c.destroy(), timeoutMs);
    c.on('data', (d) => (raw += d.toString('latin1')));
    c.on('error', () => {});
    c.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
      resolve({ status: m ? Number(m[1]) : 0, raw, ms: Date.now() - started });
    });
    c.on('connect', () => c.write(text));
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A master with `workers` worker processes (daemon off), for redis2d or
 * nginx, on a fresh loopback port; `{port}` in the http body is replaced.
 */
export async function startWorkers(kind: 'redis2d' | 'nginx', http: string, workers: number, main = ''): Promise<Running> {
  const { spawn } = await import('node:child_process');
  const { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync: exists } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join, resolve } = await import('node:path');
  const { freePort } = await import('./server.js');
  const root = resolve(import.meta.dirname, '../..');
  const dir = mkdtempSync(join(tmpdir(), `workers-${kind}-`));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  const conf =
    `daemon off; master_process on; worker_processes ${workers}; pid ${dir}/nginx.pid; error_log ${dir}/error.log info;\n${main}\n` +
    `events { worker_connections 1024; }\nhttp {\n${http.replaceAll('{port}', String(port))}\n}\n`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const proc =
    kind === 'redis2d'
      ? spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, join(root, 'bin/redis2d'), '-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'], env })
      : spawn('/usr/sbin/nginx', ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString('latin1')));
  // every worker listens once the error log says it started them and the port answers
  const until = Date.now() + 10000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${kind} exited: ${err}`);
    const ok = await new Promise<boolean>((res) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        res(true);
      });
      c.once('error', () => res(false));
    });
    if (ok) break;
    if (Date.now() > until) {
      proc.kill('SIGKILL');
      throw new Error(`${kind}: port never opened\n${err}`);
    }
    await sleep(50);
  }
  await sleep(300);
  return {
    port,
    pid: proc.pid!,
    dir,
    stderr: () => err,
    errorLog: () => (exists(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'latin1') : ''),
    stop: () =>
      new Promise((res) => {
        const done = (): void => {
          rmSync(dir, { recursive: true, force: true });
          res();
        };
        if (proc.exitCode !== null) return done();
        proc.once('exit', done);
        proc.kill('SIGTERM');
        setTimeout(() => proc.kill('SIGKILL'), 5000).unref();
      }),
  };
}
