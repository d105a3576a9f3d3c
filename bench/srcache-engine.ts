/*
 * The srcache HIT path inside one process (issue 14): fake client sockets
 * (no kernel on the client side) send `GET /rpage` (srcache_fetch through
 * redis_pass to a real redis-server, the 10 KiB entry of bench/srcache.ts)
 * or `GET /page` (the entry from an echo location, no Redis at all), each
 * connection sending its next request when its response is complete, as
 * wrk does. What is timed is redis2d's own CPU per request
 * (process.cpuUsage: the HTTP engine, the subrequest, srcache, redis_pass,
 * the Redis socket's system calls) without wrk and the client's kernel
 * work competing for the same cores, so steps of a microsecond show.
 * With --gc, the number of young/old collections per 1000 requests
 * (PerformanceObserver) and the heap allocated per request.
 *
 * Usage: node --import tsx bench/srcache-engine.ts [--head | --commit REV | --root DIR (a built tree)]
 *          [--path /rpage|/page] [--conns 50] [--requests N] [--rounds N] [--gc]
 * Prints the best round's CPU ns/request.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { redisCommand, startRedis } from './procs.js';
import { headSnapshot, workingTree } from './snapshot.js';
import { FakeSocket, closedLoop } from './fake_socket.js';
import { heapSample } from './heap_sample.js';

const PAGE = 'x'.repeat(10 * 1024);
const ENTRY = `HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n${PAGE}`;

function conf(redisPort: number): string {
  return `daemon off;
master_process off;
error_log stderr error;
events {}
http {
    access_log off;
    upstream rds { server 127.0.0.1:${redisPort}; keepalive 64; }
    server {
        listen 127.0.0.1:18080;
        location = /entry { internal; echo -n "HTTP/1.1 200 OK\\r\\nContent-Type: text/html\\r\\n\\r\\n"; echo_duplicate ${PAGE.length} "x"; }
        location = /page { srcache_fetch GET /entry $uri; echo "miss"; }
        location = /redis-fetch { internal; set $redis_key $args; redis_pass rds; }
        location = /rpage { srcache_fetch GET /redis-fetch page; echo "miss"; }
    }
}
`;
}

/** counts complete Content-Length responses (200s only) */
class LengthSocket extends FakeSocket {
  /** body bytes still expected of the current response; -1: reading a head */
  private need = -1;
  private head = '';
  protected seen(b: Buffer): void {
    let at = 0;
    while (at < b.length) {
      if (this.need < 0) {
        this.head += b.toString('latin1', at);
        const end = this.head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const m = /\r\ncontent-length: *(\d+)/i.exec(this.head.slice(0, end));
        if (m === null) throw new Error(`response without Content-Length: ${this.head.slice(0, end)}`);
        if (!this.head.startsWith('HTTP/1.1 200 ')) throw new Error(`not a 200: ${this.head.slice(0, end)}`);
        const rest = this.head.length - end - 4;
        at = b.length - rest;
        this.head = '';
        this.need = Number(m[1]);
      }
      const take = Math.min(this.need, b.length - at);
      this.need -= take;
      at += take;
      if (this.need === 0) {
        this.need = -1;
        this.counted();
      }
    }
  }
}

function opt(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
}
function optS(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i === -1 ? dflt : process.argv[i + 1]!;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const ci = argv.indexOf('--commit');
  const ri = argv.indexOf('--root');
  const tree = ri !== -1 ? { root: argv[ri + 1]!, commit: argv[ri + 1]! } : ci !== -1 ? headSnapshot(false, argv[ci + 1]) : argv.includes('--head') ? headSnapshot() : workingTree();
  const requests = opt('--requests', 200_000);
  const rounds = opt('--rounds', 5);
  const conns = opt('--conns', 50);
  const path = optS('--path', '/rpage');
  const gc = argv.includes('--gc');
  const dir = mkdtempSync(join(tmpdir(), 'redis2d-srcache-engine-'));
  const redis = await startRedis(dir);
  try {
    await redisCommand(redis.port, ['SET', 'page', ENTRY]);
    mkdirSync(join(dir, 'logs'));
    writeFileSync(join(dir, 'nginx.conf'), conf(redis.port));
    const lib = (p: string): Promise<Record<string, unknown>> => import(pathToFileURL(join(tree.root, 'dist', 'lib', p)).href);
    const { loadConfig } = (await lib('process/config.js')) as { loadConfig: (o: { confFile: string; prefix: string }) => unknown };
    const { prepareHttp } = (await lib('http/engine.js')) as { prepareHttp: (c: unknown) => unknown[] };
    const { HttpConnection } = (await lib('http/connection.js')) as { HttpConnection: new (s: unknown, l: unknown) => unknown };
    const cycle = loadConfig({ confFile: join(dir, 'nginx.conf'), prefix: dir });
    const listens = prepareHttp(cycle);
    for (const m of (cycle as { modules: Array<{ initProcess?: (c: unknown) => void }> }).modules) m.initProcess?.(cycle);

    const REQUEST = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n`, 'latin1');
    let gcs = { minor: 0, major: 0, ms: 0 };
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
        if (kind === 1) gcs.minor++;
        else gcs.major++;
        gcs.ms += e.duration;
      }
    });
    if (gc) obs.observe({ entryTypes: ['gc'] });

    // `conns` connections, each sending its next request when its response is complete (keepalive_requests: a new one after 1000)
    const run = closedLoop(
      () => {
        const sock = new LengthSocket();
        new HttpConnection(sock, listens[0]);
        return sock;
      },
      REQUEST,
      conns,
    );
    await run(opt('--warmup', 30_000));
    if (argv.includes('--heap-sample')) {
      await heapSample(requests, () => run(requests), opt('--top', 40));
      return;
    }
    // upstream socket writes per request (the client side is fake)
    let writes = 0;
    const net = await import('node:net');
    const origWrite = net.Socket.prototype.write;
    net.Socket.prototype.write = function (this: unknown, ...a: unknown[]) {
      writes++;
      return (origWrite as (...x: unknown[]) => boolean).apply(this, a);
    } as typeof origWrite;
    let best = Infinity;
    for (let k = 0; k < rounds; k++) {
      gcs = { minor: 0, major: 0, ms: 0 };
      writes = 0;
      const h0 = process.memoryUsage().heapUsed;
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      await run(requests);
      const wall = Number(process.hrtime.bigint() - t0) / requests;
      const c = process.cpuUsage(c0);
      const ns = ((c.user + c.system) * 1000) / requests;
      best = Math.min(best, ns);
      let line = `round ${k + 1}: ${ns.toFixed(0)} ns CPU/request (user ${((c.user * 1000) / requests).toFixed(0)}), wall ${wall.toFixed(0)} ns, ${(writes / requests).toFixed(3)} upstream writes/request`;
      if (gc) {
        await new Promise((r) => setTimeout(r, 50));
        line += `; per 1000 requests: ${((gcs.minor * 1000) / requests).toFixed(2)} scavenges, ${((gcs.major * 1000) / requests).toFixed(3)} mark-compacts, GC ${((gcs.ms * 1000) / requests).toFixed(2)} ms; heap now ${((process.memoryUsage().heapUsed - h0) / 1048576).toFixed(1)} MiB over start`;
      }
      process.stderr.write(`${line}\n`);
    }
    process.stdout.write(`redis2d ${tree.commit}: srcache HIT ${path}, ${conns} conns, ${best.toFixed(0)} ns CPU/request (best of ${rounds} × ${requests})\n`);
  } finally {
    await redis.proc.stop();
    rmSync(dir, { recursive: true, force: true });
    if (tree.cleanup) rmSync(tree.cleanup, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`srcache-engine: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
