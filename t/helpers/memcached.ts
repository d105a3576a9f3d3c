import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { freePort } from './redis.js';

/*
 * A real memcached for tests, on an ephemeral loopback port (TCP only, no
 * UDP), started per test and killed in its teardown. memcached cannot
 * listen on port 0, so a free port is picked first.
 */

export const MEMCACHED = '/usr/bin/memcached';
export const hasMemcached = existsSync(MEMCACHED);

export class Memcached {
  proc: ChildProcess | undefined;
  port = 0;

  async start(): Promise<void> {
    this.port = await freePort();
    const args = ['-l', '127.0.0.1', '-p', String(this.port), '-U', '0', '-m', '16', '-t', '1'];
    // memcached refuses to run as root without a user to switch to
    if (process.geteuid?.() === 0) args.push('-u', 'nobody');
    const proc = spawn(MEMCACHED, args, { stdio: 'ignore' });
    this.proc = proc;
    const deadline = Date.now() + 8000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`memcached exited with ${proc.exitCode}`);
      try {
        if ((await this.command('version\r\n')).startsWith('VERSION ')) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`memcached on ${this.port} never answered`);
      await new Promise((r) => setTimeout(r, 30));
    }
  }

  get addr(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** send raw protocol bytes; the reply once it ends in one of `ends` (or 2 s pass) */
  command(bytes: string, ends: string[] = ['\r\n']): Promise<string> {
    return new Promise((resolve, reject) => {
      const c = net.connect(this.port, '127.0.0.1');
      let out = '';
      const timer = setTimeout(() => {
        c.destroy();
        resolve(out);
      }, 2000);
      c.on('data', (d: Buffer) => {
        out += d.toString('latin1');
        if (ends.some((e) => out.endsWith(e))) {
          clearTimeout(timer);
          c.end();
          resolve(out);
        }
      });
      c.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      c.on('connect', () => c.write(Buffer.from(bytes, 'latin1')));
    });
  }

  /** the stored value of `key` ('' when absent) and its flags */
  async get(key: string): Promise<{ value: string; flags: string } | undefined> {
    const r = await this.command(`get ${key}\r\n`, ['END\r\n']);
    const m = /^VALUE \S+ (\d+) (\d+)\r\n/.exec(r);
    if (!m) return undefined;
    const start = m[0].length;
    return { value: r.slice(start, start + Number(m[2])), flags: m[1]! };
  }

  async flush(): Promise<void> {
    await this.command('flush_all\r\n');
  }

  stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
    return new Promise((res) => {
      proc.once('exit', () => res());
      proc.kill('SIGKILL');
    });
  }
}

/** a started memcached, stopped when the test ends */
export async function startMemcached(t: { teardown(fn: () => unknown): void }): Promise<Memcached> {
  const m = new Memcached();
  t.teardown(() => m.stop());
  await m.start();
  return m;
}
