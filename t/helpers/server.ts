import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/*
 * Start redis2d (and, for differential tests, Debian's nginx) on an
 * ephemeral loopback port with a config written to a temp dir; kill it
 * after. `{port}` in the config body is replaced by the chosen port.
 */

const ROOT = resolve(import.meta.dirname, '../..');
export const NGINX = '/usr/sbin/nginx';
export const hasNginx = existsSync(NGINX);

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? res(a.port) : rej(new Error('no port'))));
    });
  });
}

function waitPort(port: number, proc: ChildProcess, ms = 8000): Promise<void> {
  const until = Date.now() + ms;
  return new Promise((res, rej) => {
    const tryOnce = (): void => {
      if (proc.exitCode !== null) return rej(new Error(`server exited with ${proc.exitCode}`));
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        res();
      });
      c.once('error', () => {
        c.destroy();
        if (Date.now() > until) rej(new Error(`port ${port} never opened`));
        else setTimeout(tryOnce, 50);
      });
    };
    tryOnce();
  });
}

export interface Running {
  port: number;
  /** the server process (bin/redis2d execs through /usr/bin/env, so this is node's pid) */
  pid: number;
  dir: string;
  stderr: () => string;
  errorLog: () => string;
  stop: () => Promise<void>;
}

/** `http` is the body of the http block; `{port}` and `{dir}` are substituted */
async function start(kind: 'redis2d' | 'nginx', http: string, main = '', events = 'worker_connections 1024;'): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), `srv-${kind}-`));
  mkdirSync(join(dir, 'logs'));
  mkdirSync(join(dir, 'html'));
  const port = await freePort();
  const conf =
    `daemon off; master_process off; pid ${dir}/nginx.pid; error_log ${dir}/error.log info;\n${main}\n` +
    `events { ${events} }\nhttp {\n${http.replaceAll('{port}', String(port)).replaceAll('{dir}', dir)}\n}\n`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const args =
    kind === 'redis2d'
      ? [join(ROOT, 'bin/redis2d'), '-p', dir, '-c', join(dir, 'nginx.conf')]
      : ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')];
  // tap's loaders live in NODE_OPTIONS; bin/redis2d must not inherit them
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  // through /usr/bin/env: tap wraps direct node spawns with its loaders
  const proc =
    kind === 'redis2d'
      ? spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env })
      : spawn(NGINX, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString('latin1')));
  try {
    await waitPort(port, proc);
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`${kind}: ${(e as Error).message}\n${err}`);
  }
  return {
    port,
    pid: proc.pid!,
    dir,
    stderr: () => err,
    errorLog: () => (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'latin1') : ''),
    stop: () =>
      new Promise((res) => {
        if (proc.exitCode !== null) {
          rmSync(dir, { recursive: true, force: true });
          return res();
        }
        proc.once('exit', () => {
          rmSync(dir, { recursive: true, force: true });
          res();
        });
        proc.kill('SIGTERM');
        setTimeout(() => proc.kill('SIGKILL'), 3000).unref();
      }),
  };
}

export const startRedis2d = (http: string, main = '', events?: string): Promise<Running> => start('redis2d', http, main, events);
export const startNginx = (http: string, main = '', events?: string): Promise<Running> => start('nginx', http, main, events);

/**
 * Send `data`, then FIN (at once, or `finAfter` ms later); everything the
 * server sends until it closes (bounded by `ms`), as latin1.
 */
export function halfClose(port: number, data: string, ms = 3000, finAfter = 0): Promise<string> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => c.destroy(), ms);
    c.on('data', (d) => (out += d.toString('latin1')));
    c.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    c.on('error', () => {});
    c.once('connect', () => {
      if (finAfter === 0) return c.end(Buffer.from(data, 'latin1'));
      c.write(Buffer.from(data, 'latin1'));
      setTimeout(() => c.end(), finAfter);
    });
  });
}

/**
 * Send raw bytes, collect everything until the server closes (or `idleMs`
 * of silence), as latin1.
 */
export function raw(port: number, data: string | string[], idleMs = 300, gapMs = 30): Promise<string> {
  return new Promise((res) => {
    const c = connect(port, '127.0.0.1');
    let out = '';
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => c.destroy(), idleMs);
    };
    c.on('data', (d) => {
      out += d.toString('latin1');
      arm();
    });
    c.on('close', () => {
      if (timer) clearTimeout(timer);
      res(out);
    });
    c.on('error', () => {});
    c.once('connect', async () => {
      const parts = Array.isArray(data) ? data : [data];
      for (let i = 0; i < parts.length; i++) {
        if (i) await new Promise((r) => setTimeout(r, gapMs));
        c.write(Buffer.from(parts[i]!, 'latin1'));
      }
      arm();
    });
  });
}

/** normalise what legitimately differs: Date, the server name/version, ports */
export function normalize(s: string, port: number): string {
  return s
    // an error page's length depends on the name in its footer: count it out
    .replace(
      /Content-Length: (\d+)(\r\n(?:[^\r\n]+\r\n)*\r\n<html>[^]*?<hr><center>)((?:nginx|redis2d)(?:\/[0-9.]+)?)<\/center>/g,
      (_m, n: string, mid: string, name: string) => `Content-Length: ${Number(n) - name.length}+S${mid}${name}</center>`,
    )
    // an error page sent without its body (HEAD): its length still counts the name
    .replace(/^(HTTP\/1\.1 [3-5]\d\d [^\r]*\r\n(?:[^\r\n]+\r\n)*?Content-Type: text\/html\r\nContent-Length: )(\d+)(\r\n(?:[^\r\n]+\r\n)*\r\n)(?=$|HTTP\/)/gm, '$1N$3')
    .replace(/^Date: .*\r$/gm, 'Date: X\r')
    .replace(/^Server: (nginx|redis2d)(\/[0-9.]+)?\r$/gm, 'Server: S\r')
    .replace(/<hr><center>(nginx|redis2d)(\/[0-9.]+)?<\/center>/g, '<hr><center>S</center>')
    .replaceAll(`:${port}`, ':PORT');
}
