import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { WORKER_HEAP_FLAGS } from '../lib/process/heap_flags.js';
import { freePort, startProc, waitPort, type Proc } from './procs.js';

/*
 * The servers under test. Each target knows how to start itself with a
 * config generated into a temp dir (one worker, foreground, no access log,
 * errors only) and which URL serves a workload; a target that cannot serve
 * a workload (webdis has no pipelining, no per-request connections) says so.
 */

export const ROOT = resolve(import.meta.dirname, '..');
export const NGINX = '/usr/sbin/nginx';
export const WEBDIS = '/usr/bin/webdis';

export type WorkloadName = 'A' | 'B' | 'C' | 'D';

export interface Workload {
  name: WorkloadName;
  what: string;
  /** the key the request reads */
  key: 'k' | 'big';
}

export const WORKLOADS: Record<WorkloadName, Workload> = {
  A: { name: 'A', what: 'GET via upstream keepalive, 10-byte value', key: 'k' },
  B: { name: 'B', what: '4 pipelined GETs per request (keepalive upstream)', key: 'k' },
  C: { name: 'C', what: '1 MiB value (keepalive upstream)', key: 'big' },
  D: { name: 'D', what: 'GET, no upstream keepalive (redis2_pass host:port)', key: 'k' },
};

export const SMALL_VALUE = '0123456789';
export const BIG_VALUE_SIZE = 1 << 20;

export interface Running {
  pid: number;
  port: number;
  proc: Proc;
  /** SIGTERM (nginx/redis2d: fast stop, which also writes a --cpu-prof profile) */
  stop(): Promise<void>;
}

export interface Target {
  name: string;
  /** the path+query serving a workload, or undefined: not applicable */
  path(w: WorkloadName): string | undefined;
  start(dir: string, redisPort: number): Promise<Running>;
}

/** The redis2 config shared by redis2d and nginx+redis2; `extra` goes at the top of http{}. */
export function redis2Config(dir: string, port: number, redisPort: number, head = '', extra = '', workers = 1): string {
  const get4 = '            redis2_query get $arg_key;\n'.repeat(4);
  // more than one worker needs a master (with master_process off, nginx runs one process)
  return `${head}daemon off;
master_process ${workers > 1 ? 'on' : 'off'};
worker_processes ${workers};
error_log ${dir}/logs/error.log error;
pid ${dir}/logs/nginx.pid;

events {
    worker_connections 4096;
}

http {
${extra}    access_log off;

    upstream redis_ka {
        server 127.0.0.1:${redisPort};
        keepalive 64;
    }

    server {
        listen 127.0.0.1:${port};

        location = /get {
            redis2_query get $arg_key;
            redis2_pass redis_ka;
        }

        location = /get4 {
${get4}            redis2_pass redis_ka;
        }

        location = /direct {
            redis2_query get $arg_key;
            redis2_pass 127.0.0.1:${redisPort};
        }
    }
}
`;
}

function redis2Path(w: WorkloadName): string {
  switch (w) {
    case 'A':
      return '/get?key=k';
    case 'B':
      return '/get4?key=k';
    case 'C':
      return '/get?key=big';
    case 'D':
      return '/direct?key=k';
  }
}

function prepare(dir: string): void {
  mkdirSync(join(dir, 'logs'), { recursive: true });
  mkdirSync(join(dir, 'conf'), { recursive: true });
}

export interface Redis2dOptions {
  /** the redis2d tree to run (bin/redis2d → dist/lib/cli.js); default this checkout */
  root?: string;
  /** extra node flags, e.g. --cpu-prof --cpu-prof-dir=... */
  nodeFlags?: string[];
  /** worker_processes (> 1: with a master) */
  workers?: number;
  /**
   * false: node's default heap. Else the one process (no master) gets the
   * heap flags a master gives its workers (lib/process/heap_flags.ts), so
   * it runs as a worker of a production setup does
   */
  heapFlags?: boolean;
}

/** the node flags of a redis2d process the benches start: a worker's heap settings when it runs without a master */
export function redis2dNodeFlags(workers: number | undefined, heapFlags: boolean | undefined): string[] {
  return heapFlags === false || (workers ?? 1) > 1 ? [] : [...WORKER_HEAP_FLAGS];
}

export function redis2d(opts: Redis2dOptions = {}): Target {
  return {
    name: 'redis2d',
    path: redis2Path,
    async start(dir, redisPort) {
      prepare(dir);
      const port = await freePort();
      const conf = join(dir, 'conf', 'nginx.conf');
      writeFileSync(conf, redis2Config(dir, port, redisPort, '', '', opts.workers));
      // `env -u NODE_OPTIONS` execs node: the pid we get is the server's own
      const proc = startProc('/usr/bin/env', [
        '-u',
        'NODE_OPTIONS',
        process.execPath,
        ...redis2dNodeFlags(opts.workers, opts.heapFlags),
        ...(opts.nodeFlags ?? []),
        join(opts.root ?? ROOT, 'bin', 'redis2d'),
        '-p',
        `${dir}/`,
        '-c',
        conf,
      ]);
      await waitPort(port, proc);
      return { pid: proc.pid, port, proc, stop: () => proc.stop('SIGTERM') };
    },
  };
}

/** nginx with the redis2 module, when NGINX_REDIS2_MODULE names the .so (built for nginx 1.22.1) */
export function nginxRedis2(modulePath: string, workers = 1): Target {
  return {
    name: 'nginx+redis2',
    path: redis2Path,
    async start(dir, redisPort) {
      prepare(dir);
      for (const t of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, 'tmp', t), { recursive: true });
      const port = await freePort();
      const conf = join(dir, 'conf', 'nginx.conf');
      const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
        .map((t) => `    ${t}_temp_path ${dir}/tmp/${t === 'client_body' ? 'body' : t};\n`)
        .join('');
      writeFileSync(conf, redis2Config(dir, port, redisPort, `load_module ${modulePath};\n`, temps, workers));
      const proc = startProc(NGINX, ['-e', `${dir}/logs/error.log`, '-p', `${dir}/`, '-c', conf]);
      await waitPort(port, proc);
      return { pid: proc.pid, port, proc, stop: () => proc.stop('SIGTERM') };
    },
  };
}

/** webdis (Debian package), one thread, raw Redis protocol output */
export function webdis(): Target {
  return {
    name: 'webdis',
    path(w) {
      if (w === 'A') return '/GET/k.raw';
      if (w === 'C') return '/GET/big.raw';
      return undefined; // no pipelining; connections to Redis are always pooled
    },
    async start(dir, redisPort) {
      prepare(dir);
      const port = await freePort();
      const conf = join(dir, 'conf', 'webdis.json');
      writeFileSync(
        conf,
        JSON.stringify({
          redis_host: '127.0.0.1',
          redis_port: redisPort,
          http_host: '127.0.0.1',
          http_port: port,
          threads: 1,
          daemonize: false,
          database: 0,
          verbosity: 0,
          logfile: join(dir, 'logs', 'webdis.log'),
        }),
      );
      const proc = startProc(WEBDIS, [conf], { cwd: dir });
      await waitPort(port, proc);
      return { pid: proc.pid, port, proc, stop: () => proc.stop('SIGTERM') };
    },
  };
}

/** Node's bare http module: the ceiling for any Node server on this machine */
export function bareHttp(): Target {
  return {
    name: 'node-http',
    path(w) {
      return w === 'A' ? '/hello' : undefined;
    },
    async start(dir) {
      prepare(dir);
      const port = await freePort();
      const proc = startProc('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, join(ROOT, 'bench', 'hello.mjs'), String(port)]);
      await waitPort(port, proc);
      return { pid: proc.pid, port, proc, stop: () => proc.stop('SIGTERM') };
    },
  };
}

export function haveWebdis(): boolean {
  return existsSync(WEBDIS);
}
