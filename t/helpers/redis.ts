import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';

/*
 * Real redis-server instances for tests, on ephemeral loopback ports, always
 * stopped in t.teardown. Redis cannot listen on port 0, so a port is picked
 * by binding a throwaway server to port 0 first.
 */

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * n distinct free ports: all held open at once, then closed, so one call
 * never hands out the same port twice (a node's port and its cluster bus
 * port drawn one after the other could coincide)
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const srv = net.createServer();
          srv.on('error', reject);
          srv.listen(0, '127.0.0.1', () => resolve(srv));
        }),
    ),
  );
  const ports = servers.map((srv) => (srv.address() as net.AddressInfo).port);
  await Promise.all(servers.map((srv) => new Promise((r) => srv.close(r))));
  return ports;
}

export interface RedisOptions {
  requirepass?: string;
  /** extra `--name value` arguments */
  args?: string[];
  /** also listen on a unix socket (`socketPath`) */
  unixSocket?: boolean;
  /** the loopback address to bind (default 127.0.0.1) */
  host?: string;
}

export class RedisServer {
  proc: ChildProcess | undefined;
  readonly dir: string;

  constructor(
    readonly port: number,
    private readonly opts: RedisOptions,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'redis2d-redis-'));
  }

  get socketPath(): string {
    return join(this.dir, 'redis.sock');
  }

  get addr(): string {
    return `${this.host}:${this.port}`;
  }

  get host(): string {
    return this.opts.host ?? '127.0.0.1';
  }

  async start(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', this.host, '--save', '', '--appendonly', 'no', '--dir', this.dir];
    if (this.opts.requirepass) args.push('--requirepass', this.opts.requirepass);
    if (this.opts.unixSocket) args.push('--unixsocket', this.socketPath, '--unixsocketperm', '700');
    if (this.opts.args) args.push(...this.opts.args);
    // redis-server writes its log to stdout: its last lines say why it exited
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    this.proc = proc;
    let log = '';
    proc.stdout.on('data', (d: Buffer) => (log = (log + d.toString('latin1')).slice(-600)));
    const deadline = Date.now() + 10000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}: ${log.trim().split('\n').slice(-2).join(' | ')}`);
      try {
        const pong = await this.command(['PING']);
        if (pong.startsWith('+PONG') || pong.startsWith('-NOAUTH')) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not answer PING`);
      await new Promise((r) => setTimeout(r, 30));
    }
  }

  /** Stop the server (SIGKILL: a fault, not a shutdown) and wait for it to exit. */
  async kill(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /**
   * Send one command (authenticating first if needed) and return the raw
   * bytes of the single reply, as a latin1 string.
   */
  async command(args: string[]): Promise<string> {
    const cmds = this.opts.requirepass ? [['AUTH', this.opts.requirepass], args] : [args];
    const raw = await rawExchange(this.host, this.port, encode(cmds), cmds.length);
    return this.opts.requirepass ? raw.slice(raw.indexOf('\r\n') + 2) : raw;
  }

  /** Connected clients other than the one asking (CLIENT LIST minus itself). */
  async clientCount(): Promise<number> {
    const reply = await this.command(['CLIENT', 'LIST']);
    const body = reply.slice(reply.indexOf('\r\n') + 2);
    return body.split('\n').filter((l) => l.startsWith('id=')).length - 1;
  }

  async cleanup(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Start a redis-server for this test; it is stopped when the test ends. */
export async function startRedis(t: Test, opts: RedisOptions = {}): Promise<RedisServer> {
  const srv = new RedisServer(await freePort(), opts);
  t.teardown(() => srv.cleanup());
  await srv.start();
  return srv;
}

function encode(cmds: string[][]): Buffer {
  let s = '';
  for (const c of cmds) {
    s += `*${c.length}\r\n`;
    for (const a of c) s += `$${Buffer.byteLength(a, 'latin1')}\r\n${a}\r\n`;
  }
  return Buffer.from(s, 'latin1');
}

/* A deliberately naive client for test setup: reads until `n` replies are framed by a tiny parser. */
function rawExchange(host: string, port: number, req: Buffer, n: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    let got = '';
    sock.on('error', reject);
    sock.on('data', (d) => {
      got += d.toString('latin1');
      if (countReplies(got) >= n) {
        sock.destroy();
        resolve(got);
      }
    });
    sock.on('close', () => reject(new Error('closed before the reply')));
    sock.write(req);
  });
}

function countReplies(s: string): number {
  let i = 0;
  let n = 0;
  const one = (): boolean => {
    const eol = s.indexOf('\r\n', i);
    if (eol < 0) return false;
    const type = s[i];
    const len = parseInt(s.slice(i + 1, eol), 10);
    i = eol + 2;
    if (type === '$' && len >= 0) {
      if (s.length < i + len + 2) return false;
      i += len + 2;
    } else if (type === '*' && len > 0) {
      for (let k = 0; k < len; k++) if (!one()) return false;
    }
    return true;
  };
  while (i < s.length && one()) n++;
  return n;
}

/**
 * A TCP server that accepts connections and never answers: for read and
 * send timeouts. Closed in teardown.
 */
export async function silentServer(t: Test): Promise<{ port: number; received: () => number }> {
  let received = 0;
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    socks.add(s);
    s.on('data', (d) => (received += d.length));
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        srv.close(() => r());
      }),
  );
  const addr = srv.address();
  return { port: typeof addr === 'object' && addr ? addr.port : 0, received: () => received };
}

/** A server that answers every connection with `reply` bytes (then optionally closes). */
export async function scriptedServer(t: Test, reply: Buffer | string, close = false): Promise<number> {
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    socks.add(s);
    s.on('error', () => {});
    s.on('close', () => socks.delete(s));
    s.once('data', () => {
      s.write(typeof reply === 'string' ? Buffer.from(reply, 'latin1') : reply);
      if (close) s.end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        srv.close(() => r());
      }),
  );
  const addr = srv.address();
  return typeof addr === 'object' && addr ? addr.port : 0;
}

/**
 * A loopback port whose accept queue is full (a listener that never accepts,
 * with its backlog filled): a connect() to it stays pending, for connect
 * timeouts. Everything is torn down with the test.
 */
export async function blackholePort(t: Test): Promise<number> {
  const py = spawn(
    'python3',
    ['-c', "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()"],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  t.teardown(() => {
    py.kill('SIGKILL');
  });
  const port = await new Promise<number>((resolve, reject) => {
    py.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString('latin1').trim())));
    py.once('exit', () => reject(new Error('python3 listener exited')));
  });
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 3; i++) fillers.push(net.connect({ host: '127.0.0.1', port }).on('error', () => {}));
  t.teardown(() => {
    for (const s of fillers) s.destroy();
  });
  await new Promise((r) => setTimeout(r, 100));
  return port;
}

/** connections Redis accepted so far, not counting the one asking */
export async function accepted(redis: RedisServer): Promise<number> {
  const info = await redis.command(['INFO', 'stats']);
  return Number(/total_connections_received:(\d+)/.exec(info)?.[1]) - 1;
}

/** connections redis2d opened while `fn` ran (each helper command opens one too: counted out) */
export async function opened(redis: RedisServer, fn: () => Promise<unknown>): Promise<number> {
  const before = await accepted(redis);
  await fn();
  return (await accepted(redis)) - before - 1;
}
