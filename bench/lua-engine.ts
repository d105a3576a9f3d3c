/*
 * The Lua capture shape of bench/lua.ts inside one process (issue 16):
 * fake client sockets (no kernel on the client side) send `GET /capture`,
 * whose content_by_lua_block captures an internal redis2 GET location (a
 * real redis-server), parses the reply with redis.parser and ngx.say's
 * the value; each connection sends its next request when its response is
 * complete, as wrk does. What is timed is redis2d's own CPU per request
 * (process.cpuUsage: the HTTP engine, the Lua VM and API, the subrequest,
 * redis2, the Redis socket's system calls), without wrk and the client's
 * kernel work competing for the cores, so steps of a few hundred ns show
 * on this noisy host. A/B: run it with --commit REV (or --root DIR, a
 * built tree) and without, alternating.
 *
 * Usage: node --import tsx bench/lua-engine.ts [--head | --commit REV | --root DIR]
 *          [--conns 50] [--requests N] [--rounds N] [--cpu-prof DIR | --heap-sample [--top N]]
 * Prints the best round's CPU ns/request.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';
import { pathToFileURL } from 'node:url';
import { redisCommand, startRedis } from './procs.js';
import { headSnapshot, workingTree } from './snapshot.js';
import { FakeSocket, closedLoop } from './fake_socket.js';
import { heapSample } from './heap_sample.js';

const VALUE = '0123456789';

function conf(redisPort: number, lualib: string): string {
  return `daemon off;
master_process off;
error_log stderr error;
events {}
http {
    access_log off;
    lua_package_path "${lualib}/?.lua;;";
    upstream rds { server 127.0.0.1:${redisPort}; keepalive 64; }
    server {
        listen 127.0.0.1:18080;
        location = /redis { internal; redis2_query get $arg_key; redis2_pass rds; }
        location = /capture {
            content_by_lua_block {
                local parser = require "redis.parser"
                local res = ngx.location.capture("/redis", { args = { key = "k" } })
                local v = parser.parse_reply(res.body)
                ngx.say(v)
            }
        }
    }
}
`;
}

/** the response's end: the last chunk of a chunked body after the value's line */
const END = Buffer.from(`${VALUE}\n\r\n0\r\n\r\n`, 'latin1');

/** counts complete responses: each ends with END (checked, so a wrong answer stops the bench) */
class ChunkedSocket extends FakeSocket {
  /** the last bytes written, for an END split across writes */
  private tail: Buffer = Buffer.alloc(0);
  protected seen(b: Buffer): void {
    // a response's head: its status is checked (a write begins with it)
    if (b.length > 12 && b[0] === 0x48 && b.toString('latin1', 0, 12) !== 'HTTP/1.1 200') throw new Error(`not a 200: ${b.toString('latin1')}`);
    if (b.length >= END.length ? endsWithEnd(b) : endsWithEnd(Buffer.concat([this.tail, b]))) {
      this.tail = EMPTY;
      this.counted();
      return;
    }
    const all = b.length >= END.length ? b : Buffer.concat([this.tail, b]);
    this.tail = all.subarray(Math.max(0, all.length - END.length));
  }
}
const EMPTY = Buffer.alloc(0);
function endsWithEnd(b: Buffer): boolean {
  if (b.length < END.length) return false;
  for (let i = 1; i <= END.length; i++) if (b[b.length - i] !== END[END.length - i]) return false;
  return true;
}

function opt(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const ci = argv.indexOf('--commit');
  const ri = argv.indexOf('--root');
  const tree = ri !== -1 ? { root: argv[ri + 1]!, commit: argv[ri + 1]! } : ci !== -1 ? headSnapshot(false, argv[ci + 1]) : argv.includes('--head') ? headSnapshot() : workingTree();
  const requests = opt('--requests', 100_000);
  const rounds = opt('--rounds', 5);
  const conns = opt('--conns', 50);
  const pi = argv.indexOf('--cpu-prof');
  const dir = mkdtempSync(join(tmpdir(), 'redis2d-lua-engine-'));
  const redis = await startRedis(dir);
  try {
    await redisCommand(redis.port, ['SET', 'k', VALUE]);
    mkdirSync(join(dir, 'logs'));
    writeFileSync(join(dir, 'nginx.conf'), conf(redis.port, join(tree.root, 'lib/modules/lua/lualib')));
    const lib = (p: string): Promise<Record<string, unknown>> => import(pathToFileURL(join(tree.root, 'dist', 'lib', p)).href);
    const { loadConfig } = (await lib('process/config.js')) as { loadConfig: (o: { confFile: string; prefix: string }) => unknown };
    const { prepareHttp } = (await lib('http/engine.js')) as { prepareHttp: (c: unknown) => unknown[] };
    const { HttpConnection } = (await lib('http/connection.js')) as { HttpConnection: new (s: unknown, l: unknown) => unknown };
    const cycle = loadConfig({ confFile: join(dir, 'nginx.conf'), prefix: dir });
    const listens = prepareHttp(cycle);
    for (const m of (cycle as { modules: Array<{ initProcess?: (c: unknown) => void }> }).modules) m.initProcess?.(cycle);

    const REQUEST = Buffer.from('GET /capture HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n', 'latin1');
    // `conns` connections, each sending its next request when its response is complete (a new one after 1000)
    const run = closedLoop(
      () => {
        const sock = new ChunkedSocket();
        new HttpConnection(sock, listens[0]);
        return sock;
      },
      REQUEST,
      conns,
    );
    await run(opt('--warmup', 30_000));
    if (argv.includes('--heap-sample')) return await heapSample(requests, () => run(requests), opt('--top', 40));
    if (pi !== -1) {
      // V8's sampling profile of one run, written to DIR for bench/profile-summary.ts
      const s = new Session();
      s.connect();
      await s.post('Profiler.enable');
      await s.post('Profiler.setSamplingInterval', { interval: 100 });
      await s.post('Profiler.start');
      await run(requests);
      const { profile } = await s.post('Profiler.stop');
      mkdirSync(argv[pi + 1]!, { recursive: true });
      writeFileSync(join(argv[pi + 1]!, 'lua-engine.cpuprofile'), JSON.stringify(profile));
      process.stdout.write(`profile of ${requests} requests in ${argv[pi + 1]}/lua-engine.cpuprofile\n`);
      return;
    }
    let best = Infinity;
    for (let k = 0; k < rounds; k++) {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      await run(requests);
      const wall = Number(process.hrtime.bigint() - t0) / requests;
      const c = process.cpuUsage(c0);
      const ns = ((c.user + c.system) * 1000) / requests;
      best = Math.min(best, ns);
      process.stderr.write(`round ${k + 1}: ${ns.toFixed(0)} ns CPU/request (user ${((c.user * 1000) / requests).toFixed(0)}), wall ${wall.toFixed(0)} ns, heap ${(process.memoryUsage().heapUsed / 1048576).toFixed(1)} MiB, rss ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB\n`);
    }
    process.stdout.write(`redis2d ${tree.commit}: lua capture, ${conns} conns, ${best.toFixed(0)} ns CPU/request (best of ${rounds} × ${requests})\n`);
  } finally {
    await redis.proc.stop();
    rmSync(dir, { recursive: true, force: true });
    if (tree.cleanup) rmSync(tree.cleanup, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`lua-engine: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
