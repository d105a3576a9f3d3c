/*
 * The HTTP engine alone, without sockets or Redis: a fake client socket
 * feeds wrk's keep-alive request (`GET /get?key=k HTTP/1.1`, `Host:`) to
 * HttpConnection, one at a time, and an `echo` location answers it (chunked,
 * like redis2's replies). What is timed is what redis2d's HTTP side costs
 * per request (head parsing, virtual server, phases, location, variables,
 * header, chunk framing, keep-alive) with none of the kernel noise that
 * makes the wrk runs' CPU per request move by ±20 % on a busy machine.
 *
 * Usage: node --import tsx bench/http-engine.ts [--head | --commit REV] [--requests N] [--rounds N]
 * Prints the best round's CPU ns/request (process.cpuUsage, user+sys).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { headSnapshot, workingTree } from './snapshot.js';
import { FakeSocket } from './fake_socket.js';

const CONF = `daemon off;
master_process off;
error_log stderr error;
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:18080;
        server_name localhost;
        location = /get {
            echo $arg_key;
        }
        location / {
            return 404;
        }
    }
}
`;

const REQUEST = Buffer.from('GET /get?key=k HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n', 'latin1');
/** the response ends with the last chunk */
const END = 0x0a;

/** counts chunked responses by their last chunk */
class ChunkedSocket extends FakeSocket {
  protected seen(b: Buffer): void {
    // `0\r\n\r\n`: the last chunk (also the end of a chunk written in one piece)
    if (b.length >= 5 && b[b.length - 1] === END && b[b.length - 5] === 0x30 && b[b.length - 4] === 0x0d) this.counted();
  }
}

function opt(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const ci = argv.indexOf('--commit');
  const tree = ci !== -1 ? headSnapshot(false, argv[ci + 1]) : argv.includes('--head') ? headSnapshot() : workingTree();
  const requests = opt('--requests', 200_000);
  const rounds = opt('--rounds', 5);
  const dir = mkdtempSync(join(tmpdir(), 'redis2d-engine-'));
  try {
    mkdirSync(join(dir, 'logs'));
    writeFileSync(join(dir, 'nginx.conf'), CONF);
    const lib = (p: string): Promise<Record<string, unknown>> => import(pathToFileURL(join(tree.root, 'dist', 'lib', p)).href);
    const { loadConfig } = (await lib('process/config.js')) as { loadConfig: (o: { confFile: string; prefix: string }) => unknown };
    const { prepareHttp } = (await lib('http/engine.js')) as { prepareHttp: (c: unknown) => unknown[] };
    const { HttpConnection } = (await lib('http/connection.js')) as { HttpConnection: new (s: unknown, l: unknown) => unknown };
    const cycle = loadConfig({ confFile: join(dir, 'nginx.conf'), prefix: dir });
    const listens = prepareHttp(cycle);
    // what a serving process does next: each module's initProcess (the access log's flush hooks)
    for (const m of (cycle as { modules: Array<{ initProcess?: (c: unknown) => void }> }).modules) m.initProcess?.(cycle);

    // keepalive_requests (1000) closes a connection, as with wrk: a new one follows
    let sock = new ChunkedSocket();
    new HttpConnection(sock, listens[0]);
    const run = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        if (sock.responses === 1000) {
          sock.destroy();
          sock = new ChunkedSocket();
          new HttpConnection(sock, listens[0]);
        }
        const want = sock.responses + 1;
        sock.emit('data', REQUEST);
        // a response that finishes later (a promise, a nextTick) is waited for
        while (sock.responses < want) await new Promise<void>((r) => setImmediate(r));
      }
    };
    await run(opt("--warmup", 20_000)); // warm-up: the JIT settles
    let best = Infinity;
    for (let k = 0; k < rounds; k++) {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      await run(requests);
      const wall = Number(process.hrtime.bigint() - t0) / requests;
      const c = process.cpuUsage(c0);
      const ns = ((c.user + c.system) * 1000) / requests;
      best = Math.min(best, ns);
      process.stderr.write(`round ${k + 1}: ${ns.toFixed(0)} ns CPU/request (wall ${wall.toFixed(0)} ns)\n`);
    }
    process.stdout.write(`redis2d ${tree.commit}: HTTP engine ${best.toFixed(0)} ns CPU/request (best of ${rounds} × ${requests})\n`);
    sock.destroy();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (tree.cleanup) rmSync(tree.cleanup, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`http-engine: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
