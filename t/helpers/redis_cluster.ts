import { execFile } from 'node:child_process';
import http from 'node:http';
import type { Test } from 'tap';
import { RedisServer, freePorts } from './redis.js';

/*
 * A real Redis Cluster for tests: N primaries with R replicas each, of
 * Debian's redis-server on ephemeral loopback ports (the cluster bus port
 * chosen too, with --cluster-port, so no port+10000 clash), joined with
 * `redis-cli --cluster create ... --cluster-yes`. Every server is killed in
 * t.teardown, and on process exit as a last resort, even when the test
 * failed half way.
 */

const live = new Set<RedisServer>();
process.on('exit', () => {
  for (const s of live) s.proc?.kill('SIGKILL');
});

export function redisCli(args: string[], timeoutMs = 30000): Promise<string> {
  return new Promise((res, rej) => {
    execFile('redis-cli', args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`redis-cli ${args.join(' ')}: ${err.message}\n${stdout}\n${stderr}`));
      else res(stdout);
    });
  });
}

export interface ClusterNodeInfo {
  id: string;
  addr: string;
  port: number;
  primary: boolean;
  /** the primary's id, for replicas */
  of: string;
  slots: Array<[number, number]>;
}

export class RedisCluster {
  constructor(readonly servers: RedisServer[]) {}

  get ports(): number[] {
    return this.servers.map((s) => s.port);
  }

  server(port: number): RedisServer {
    return this.servers.find((s) => s.port === port)!;
  }

  /** CLUSTER NODES as seen by a live node */
  async nodes(): Promise<ClusterNodeInfo[]> {
    const live = this.servers.find((s) => s.proc !== undefined)!;
    const out = await redisCli(['-p', String(live.port), 'CLUSTER', 'NODES']);
    const list: ClusterNodeInfo[] = [];
    for (const line of out.split('\n')) {
      const f = line.trim().split(' ');
      if (f.length < 8) continue;
      const port = Number(f[1]!.split('@')[0]!.split(':')[1]);
      const slots: Array<[number, number]> = [];
      for (const s of f.slice(8)) {
        if (s.startsWith('[')) continue;
        const [a, b] = s.split('-');
        slots.push([Number(a), Number(b ?? a)]);
      }
      list.push({ id: f[0]!, addr: f[1]!, port, primary: f[2]!.includes('master') && !f[2]!.includes('fail'), of: f[3]!, slots });
    }
    return list;
  }

  /** wait until every live node reports cluster_state:ok, replicas are in sync, and all agree on the slot owners */
  async waitOk(ms = 20000): Promise<void> {
    const until = Date.now() + ms;
    for (;;) {
      let ok = true;
      for (const s of this.servers) {
        if (s.proc === undefined) continue;
        const info = await redisCli(['-p', String(s.port), 'CLUSTER', 'INFO']).catch(() => '');
        if (!info.includes('cluster_state:ok')) ok = false;
        const repl = await redisCli(['-p', String(s.port), 'INFO', 'replication']).catch(() => '');
        if (repl.includes('role:slave') && !repl.includes('master_link_status:up')) ok = false;
      }
      if (ok) {
        const check = await redisCli(['--cluster', 'check', `127.0.0.1:${this.servers.find((s) => s.proc)!.port}`]).catch((e: Error) => e.message);
        if (check.includes('[OK] All 16384 slots covered') && !check.includes('[WARNING]') && !check.includes('[ERR]')) return;
      }
      if (Date.now() > until) throw new Error('cluster never became ok');
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** start a cluster of `primaries` primaries with `replicas` replicas each, torn down with the test */
export async function startCluster(t: Test, primaries = 3, replicas = 1, nodeTimeout = 1000): Promise<RedisCluster> {
  const servers: RedisServer[] = [];
  t.teardown(async () => {
    for (const s of servers) {
      await s.cleanup();
      live.delete(s);
    }
  });
  const n = primaries * (replicas + 1);
  const make = (port: number, bus: number): RedisServer =>
    new RedisServer(port, {
      // no 5 s wait before a replica's first sync: until it syncs, a replica serves an empty data set
      args: ['--repl-diskless-sync-delay', '0', '--cluster-enabled', 'yes', '--cluster-port', String(bus), '--cluster-node-timeout', String(nodeTimeout), '--cluster-config-file', 'nodes.conf'],
    });
  const ports = await freePorts(2 * n);
  for (let i = 0; i < n; i++) {
    const s = make(ports[2 * i]!, ports[2 * i + 1]!);
    servers.push(s);
    live.add(s);
  }
  // a port taken by another process between the draw and the start: that node again on new ports (at most twice)
  await Promise.all(
    servers.map(async (s, i) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await s.start();
        } catch (e) {
          if (attempt >= 2 || !/exited/.test((e as Error).message)) throw e;
          await s.cleanup();
          live.delete(s);
          const [port, bus] = await freePorts(2);
          s = servers[i] = make(port!, bus!);
          live.add(s);
        }
      }
    }),
  );
  await redisCli(['--cluster', 'create', ...servers.map((s) => s.addr), '--cluster-replicas', String(replicas), '--cluster-yes']);
  const c = new RedisCluster(servers);
  await c.waitOk();
  return c;
}

/** GET over keep-alive connections (at most 16 at once) */
export function httpGetter(): { agent: http.Agent; get: (port: number, path: string) => Promise<{ status: number; body: string; up?: string }> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const get = (port: number, path: string): Promise<{ status: number; body: string; up?: string }> =>
    new Promise((res, rej) => {
      const req = http.get({ host: '127.0.0.1', port, path, agent }, (r) => {
        let body = '';
        r.setEncoding('latin1');
        r.on('data', (d: string) => (body += d));
        r.on('end', () => res(r.headers['x-up'] !== undefined ? { status: r.statusCode ?? 0, body, up: String(r.headers['x-up']) } : { status: r.statusCode ?? 0, body }));
      });
      req.setTimeout(10000, () => req.destroy(new Error('client timeout')));
      req.on('error', rej);
    });
  return { agent, get };
}

/** run fn(0..n-1) with `conc` at a time */
export async function pool(n: number, conc: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}
