/*
 * `node --import tsx bench/conn-rss.ts [N]`: what one idle connection costs
 * the server, in RSS. redis2d and Debian's nginx each run alone
 * (master_process off, one process), and a client process opens N
 * connections that stay idle: first ones that never sent a byte (waiting
 * for a request), then ones that made one keep-alive request. The server's
 * VmRSS before and after (settled) gives bytes per connection. With
 * `--heap`, redis2d runs with --heapsnapshot-signal and the JS heap held
 * per idle connection is itemised by constructor (two snapshots, diffed).
 * Loopback only; the servers are stopped by the pid started here.
 */
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, sleep, startProc, waitPort, type Proc } from './procs.js';

const ROOT = resolve(import.meta.dirname, '..');
const N = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 3000);
const HEAP = process.argv.includes('--heap');
const BIN = process.env.REDIS2D_BIN ?? join(ROOT, 'bin/redis2d');

/** self sizes by node type and constructor in a V8 heap snapshot */
function heapBy(file: string): Map<string, [number, number]> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const m = snap.snapshot.meta;
  const nf = m.node_fields.length;
  const ti = m.node_fields.indexOf('type');
  const ni = m.node_fields.indexOf('name');
  const si = m.node_fields.indexOf('self_size');
  const by = new Map<string, [number, number]>();
  for (let i = 0; i < snap.nodes.length; i += nf) {
    const type = m.node_types[0][snap.nodes[i + ti]!]!;
    const name = ['object', 'closure', 'native', 'hidden', 'array'].includes(type) ? `${type} ${snap.strings[snap.nodes[i + ni]!]}` : `(${type})`;
    const e = by.get(name) ?? [0, 0];
    e[0]++;
    e[1] += snap.nodes[i + si]!;
    by.set(name, e);
  }
  return by;
}

async function snapshot(pid: number, dir: string): Promise<string> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 100; i++) {
    await sleep(200);
    const f = readdirSync(dir).find((x) => x.endsWith('.heapsnapshot') && !before.has(x));
    if (f) {
      // complete once it parses (V8 writes it in pieces)
      for (let k = 0; k < 100; k++) {
        await sleep(300);
        const text = readFileSync(join(dir, f), 'utf8');
        if (text.endsWith('}') || text.endsWith(']}')) {
          try {
            JSON.parse(text);
            return join(dir, f);
          } catch {
            /* not yet */
          }
        }
      }
      throw new Error('heap snapshot never completed');
    }
  }
  throw new Error('no heap snapshot');
}

function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function settledRss(pid: number): Promise<number> {
  let last = 0;
  for (let i = 0; i < 20; i++) {
    await sleep(250);
    const now = rss(pid);
    if (Math.abs(now - last) < 64 * 1024) return now;
    last = now;
  }
  return last;
}

/** a client process holding `n` connections; `request`: one keep-alive request on each first */
function client(port: number, n: number, request: boolean): Promise<() => void> {
  const code = `
    const net = require('node:net');
    const socks = [];
    let open = 0;
    const go = (i) => {
      if (i >= ${n}) { process.send('ready'); return; }
      const c = net.connect(${port}, '127.0.0.1');
      c.on('error', () => {});
      c.once('connect', () => {
        socks.push(c);
        if (${request}) {
          c.write('GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n');
          c.once('data', () => go(i + 1));
        } else go(i + 1);
      });
    };
    go(0);
    process.on('message', () => { for (const s of socks) s.destroy(); process.exit(0); });
  `;
  const dir = mkdtempSync(join(tmpdir(), 'connrss-client-'));
  const file = join(dir, 'c.cjs');
  writeFileSync(file, code);
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = fork(file, [], { env, execArgv: [] });
  return new Promise((res) => {
    child.once('message', () =>
      res(() => {
        child.send('stop');
        rmSync(dir, { recursive: true, force: true });
      }),
    );
  });
}

async function measure(name: string, start: (dir: string, port: number) => Proc): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `connrss-${name}-`));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  const conf = `daemon off; master_process off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log error;
events { worker_connections ${N * 2 + 100}; }
http { access_log off; server { listen 127.0.0.1:${port}; location / { return 200 "ok\\n"; } } }
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const p = start(dir, port);
  await waitPort(port, p);
  const row: string[] = [name];
  const heap: string[] = [];
  for (const request of [false, true]) {
    const before = await settledRss(p.pid);
    const h0 = HEAP && name === 'redis2d' ? await snapshot(p.pid, dir) : undefined;
    const stop = await client(port, N, request);
    const after = await settledRss(p.pid);
    row.push(`${((after - before) / N / 1024).toFixed(2)} KiB`);
    if (h0) {
      const h1 = await snapshot(p.pid, dir);
      const a = heapBy(h0);
      const b = heapBy(h1);
      let total = 0;
      const lines: Array<[number, string]> = [];
      for (const [k, [count, size]] of b) {
        const [c0, s0] = a.get(k) ?? [0, 0];
        total += size - s0;
        if ((size - s0) / N >= 16) lines.push([(size - s0) / N, `${((size - s0) / N).toFixed(0).padStart(5)} B ${String(((count - c0) / N).toFixed(1)).padStart(4)}/conn ${k}`]);
      }
      heap.push(`JS heap per connection (${request ? 'keep-alive after one request' : 'waiting for a request'}): ${(total / N).toFixed(0)} B`, ...lines.sort((x, y) => y[0] - x[0]).map((l) => `  ${l[1]}`));
      rmSync(h0);
      rmSync(h1);
    }
    stop();
    await sleep(500);
  }
  console.log(`| ${row.join(' | ')} |`);
  for (const l of heap) console.log(l);
  await p.stop();
  rmSync(dir, { recursive: true, force: true });
}

console.log(`${N} idle connections, RSS per connection`);
console.log('| server | waiting for a request | keep-alive after one request |');
console.log('|---|---:|---:|');
await measure('redis2d', (dir) =>
  startProc(process.execPath, [...(HEAP ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`] : []), BIN, '-p', dir, '-c', join(dir, 'nginx.conf')], { cwd: dir }),
);
if (existsSync('/usr/sbin/nginx')) await measure('nginx', (dir) => startProc('/usr/sbin/nginx', ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')]));
