import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NGINX, ROOT } from './targets.js';
import { freePort, redisCommand, sleep, startProc, startRedis, waitPort, type Proc } from './procs.js';
import { measureRun, type Measured } from './procs.js';
import { formatSummary, groupSummary, summarise } from './profile-summary.js';
import { runWrk } from './wrk.js';
import { headSnapshot } from './snapshot.js';

/*
 * Lua benchmark (issue 16): the shape, content_by_lua_block doing
 * one ngx.location.capture of an internal redis2 GET location, the reply
 * parsed with redis.parser and ngx.say of the value ("capture" rows), and
 * a GET through resty.redis over a cosocket ("resty" rows, the same Lua
 * file on both servers: nginx loads redis2d's lualib/resty/redis.lua).
 * 10-byte value, one worker, 50 connections, alternating rounds, CPU per
 * request from /proc.
 *
 * nginx's capture row needs the redis2 module, which Debian does not
 * package: NGINX_REDIS2_MODULE names one built for nginx 1.22.1 (as for
 * the other benches); without it the capture shape runs on redis2d only.
 * Debian's lua module has no redis.parser either (a C module in
 * OpenResty): nginx gets bench/lua/redis/parser.lua, pure Lua under
 * LuaJIT, through its lua_package_path only. redis2d's is a host module.
 *
 *   flock /tmp/redis2d-heavy.lock node --import tsx bench/lua.ts [--duration 5] [--rounds 3] [--conns 50]
 *   ... [--only redis2d|nginx] [--shape capture|resty] [--against REV]   # a subset of the rows, or redis2d at REV beside the working tree; no ratios
 *   node --import tsx bench/lua.ts --cpu-prof [--shape resty] [--duration 8] [--top 25] [--keep DIR]   # profile redis2d (capture row by default)
 *   node --import tsx bench/lua.ts --perf redis2d|nginx [--duration 8] [--top 40]      # on-CPU samples of one server's capture row
 */

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const duration = opt('--duration', 5);
const rounds = opt('--rounds', 3);
const conns = opt('--conns', 50);
/** --only redis2d|nginx, --shape capture|resty: a subset of the rows, for quick checks */
const sopt = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const only = sopt('--only');
const onlyShape = sopt('--shape');
/** --against REV: also redis2d built at REV (rows `redis2d@REV`), alternating with the working tree */
const against = sopt('--against');
/** the tree each redis2d row runs from */
const roots = new Map<string, string>([['redis2d', ROOT]]);

const VALUE = '0123456789';
const LUALIB = join(ROOT, 'lib/modules/lua/lualib');
const BENCH_LUA = join(ROOT, 'bench/lua');
const REDIS2_SO = ((): string | undefined => {
  const p = process.env.NGINX_REDIS2_MODULE;
  return p && existsSync(p) ? p : undefined;
})();

/** 'nginx', 'redis2d', or `redis2d@REV` */
type Server = string;

function config(server: Server, dir: string, port: number, redisPort: number): string {
  const nginx = server === 'nginx';
  const withRedis2 = !nginx || REDIS2_SO !== undefined;
  const mods = nginx ? ['ndk_http_module', 'ngx_http_lua_module'].map((m) => `load_module /usr/lib/nginx/modules/${m}.so;`) : [];
  if (nginx && REDIS2_SO) mods.push(`load_module ${REDIS2_SO};`);
  // nginx's redis.parser is the bench's pure-Lua one; redis2d's is its host module
  const path = nginx ? `${BENCH_LUA}/?.lua;${LUALIB}/?.lua;;` : `${LUALIB}/?.lua;;`;
  const capture = withRedis2
    ? `location = /redis { internal; redis2_query get $arg_key; redis2_pass rds; }
        location = /capture {
            content_by_lua_block {
                local parser = require "redis.parser"
                local res = ngx.location.capture("/redis", { args = { key = "k" } })
                local v = parser.parse_reply(res.body)
                ngx.say(v)
            }
        }`
    : '';
  return `${mods.join('\n')}
daemon off;
master_process off;
worker_processes 1;
error_log ${dir}/error.log error;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    lua_package_path "${path}";
    upstream rds { server 127.0.0.1:${redisPort}; keepalive 64; }
    server {
        listen 127.0.0.1:${port};
        location = /resty {
            content_by_lua_block {
                local redis = require "resty.redis"
                local red = redis:new()
                red:set_timeout(1000)
                local ok, err = red:connect("127.0.0.1", ${redisPort})
                if not ok then ngx.say("connect: ", err) return end
                local v = red:get("k")
                red:set_keepalive(10000, 100)
                ngx.say(v)
            }
        }
        ${capture}
    }
}
`;
}

interface Row extends Measured {
  server: string;
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const q = request(url, { agent: false }, (r) => {
      let body = '';
      r.setEncoding('latin1');
      r.on('data', (d: string) => (body += d));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
    });
    q.on('error', rej);
    q.end();
  });
}

function startServer(server: Server, dir: string, nodeFlags: string[] = []): Proc {
  if (server === 'nginx') return startProc(NGINX, ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')]);
  // `env -u NODE_OPTIONS` execs node: the pid is the server's own
  return startProc('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, ...nodeFlags, join(roots.get(server)!, 'bin/redis2d'), '-p', `${dir}/`, '-c', join(dir, 'nginx.conf')]);
}

async function withServer<T>(server: Server, redisPort: number, path: string, f: (url: string, proc: Proc) => Promise<T>, nodeFlags: string[] = []): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), `bench-lua-${server}-`));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), config(server, dir, port, redisPort));
  const proc = startServer(server, dir, nodeFlags);
  try {
    await waitPort(port, proc);
    const url = `http://127.0.0.1:${port}${path}`;
    // both servers must give the same answer before anything is timed
    const check = await get(url);
    if (check.status !== 200 || check.body !== `${VALUE}\n`) {
      throw new Error(`${server} ${path}: ${check.status} ${JSON.stringify(check.body)}; error.log: ${existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'latin1').slice(-2000) : ''}`);
    }
    return await f(url, proc);
  } finally {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(server: Server, shape: 'capture' | 'resty', redisPort: number): Promise<Row> {
  return withServer(server, redisPort, `/${shape}`, async (url, proc) => ({ server: `${server} ${shape}`, ...(await measureRun(proc.pid, url, conns, duration, 1)) }));
}

/* --cpu-prof: redis2d's capture row under V8's sampling profiler, summarised */
async function profile(redisPort: number): Promise<void> {
  const profDir = mkdtempSync(join(tmpdir(), 'bench-lua-prof-'));
  try {
    const flags = ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=100'];
    const res = await withServer('redis2d', redisPort, `/${onlyShape ?? 'capture'}`, async (url) => {
      await runWrk(url, conns, 2, 2);
      return runWrk(url, conns, opt('--duration', 8), 2);
    }, flags);
    process.stderr.write(`profile: redis2d ${onlyShape ?? 'capture'}, ${conns} connections: ${Math.round(res.rps)} req/s (profiler on), ${res.requests} requests\n`);
    await sleep(300);
    const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length !== 1) throw new Error(`expected one .cpuprofile in ${profDir}, found ${files.length}`);
    const file = join(profDir, files[0]!);
    const ki = argv.indexOf('--keep');
    if (ki >= 0) {
      mkdirSync(argv[ki + 1]!, { recursive: true });
      writeFileSync(join(argv[ki + 1]!, files[0]!), readFileSync(file));
    }
    const s = summarise(JSON.parse(readFileSync(file, 'utf8')));
    process.stdout.write(`busy µs per request (profiler on, wall time of samples, warm-up included): ${(s.busyUs / res.requests).toFixed(1)}\n`);
    process.stdout.write('\n| where (self time by file) | % of busy | µs/request |\n|---|---:|---:|\n');
    for (const g of groupSummary(s)) process.stdout.write(`| ${g.group} | ${((g.selfUs / s.busyUs) * 100).toFixed(1)} | ${(g.selfUs / res.requests).toFixed(1)} |\n`);
    process.stdout.write('\n');
    process.stdout.write(`${formatSummary(s, opt('--top', 25), argv.includes('--markdown'))}\n`);
  } finally {
    rmSync(profDir, { recursive: true, force: true });
  }
}

/* --perf SERVER: on-CPU samples (perf record, cpu-clock) of one server running the capture row */
async function perf(server: Server, redisPort: number): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'bench-lua-perf-'));
  const data = join(work, 'perf.data');
  try {
    const flags = server === 'nginx' ? [] : ['--perf-basic-prof'];
    const res = await withServer(server, redisPort, `/${onlyShape ?? 'capture'}`, async (url, proc) => {
      await runWrk(url, conns, 2, 2);
      const rec = startProc('perf', ['record', '-F', '1999', '-g', '-o', data, '-p', String(proc.pid)]);
      await sleep(300);
      const r = await runWrk(url, conns, opt('--duration', 8), 2);
      await rec.stop('SIGINT');
      return r;
    }, flags);
    process.stdout.write(`perf: ${server} ${onlyShape ?? 'capture'}, ${conns} connections: ${Math.round(res.rps)} req/s under perf\n`);
    const report = (sort: string, limit: string): string[] =>
      execFileSync('perf', ['report', '-i', data, '--stdio', '--no-children', '--sort', sort, '-g', 'none', '--percent-limit', limit], {
        encoding: 'latin1',
        maxBuffer: 64 << 20,
        stdio: ['ignore', 'pipe', 'ignore'],
      }).split('\n').filter((l) => /^\s+[\d.]+%/.test(l));
    process.stdout.write(`by object:\n${report('dso', '0.5').join('\n')}\n`);
    process.stdout.write(`by symbol (self), top ${opt('--top', 40)}:\n${report('dso,sym', '0.3').slice(0, opt('--top', 40)).join('\n')}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-lua-redis-'));
  const redis = await startRedis(dir);
  await redisCommand(redis.port, ['SET', 'k', VALUE]);
  const rows: Row[] = [];
  const base = against ? headSnapshot(false, against) : undefined;
  if (base) roots.set(`redis2d@${base.commit}`, base.root);
  try {
    if (argv.includes('--cpu-prof')) return await profile(redis.port);
    const perfOf = sopt('--perf');
    if (perfOf) return await perf(perfOf, redis.port);
    if (!REDIS2_SO) process.stderr.write('bench: nginx has no redis2 module (set NGINX_REDIS2_MODULE=/path/ngx_http_redis2_module.so): the capture shape runs on redis2d only\n');
    for (let i = 0; i < rounds; i++) {
      // alternating, and the order flipped each round so neither server always goes first
      const servers: Server[] = [...roots.keys(), 'nginx'];
      const order = i % 2 === 0 ? servers : [...servers].reverse();
      for (const shape of ['capture', 'resty'] as const) {
        if (onlyShape && shape !== onlyShape) continue;
        for (const s of order) {
          if (only && !s.startsWith(only)) continue;
          if (shape === 'capture' && s === 'nginx' && !REDIS2_SO) continue;
          rows.push(await measure(s, shape, redis.port));
          await sleep(200);
        }
      }
    }
  } finally {
    await redis.proc.stop();
    rmSync(dir, { recursive: true, force: true });
    if (base?.cleanup) rmSync(base.cleanup, { recursive: true, force: true });
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const pick = (s: string, k: keyof Row): number => med(rows.filter((r) => r.server === s).map((r) => r[k] as number));
  process.stdout.write(`Lua + Redis GET, ${conns} connections, one worker, ${rounds} alternating rounds of ${duration} s\n`);
  process.stdout.write(`capture: content_by_lua_block, ngx.location.capture of a redis2 GET, redis.parser, ngx.say\n`);
  process.stdout.write(`resty: content_by_lua_block, resty.redis get over a cosocket (the same Lua file on both), ngx.say\n`);
  if (REDIS2_SO) process.stdout.write(`nginx's redis.parser is bench/lua/redis/parser.lua, Lua under LuaJIT (OpenResty's is C): a small advantage for redis2d\n`);
  process.stdout.write('\n| server | req/s | p99 ms | CPU µs/req | RSS MiB | errors |\n|---|---:|---:|---:|---:|---:|\n');
  for (const r of rows) {
    process.stdout.write(`| ${r.server} | ${Math.round(r.rps)} | ${r.p99.toFixed(2)} | ${r.cpuUs.toFixed(1)} | ${r.rssMiB.toFixed(1)} | ${r.errors} |\n`);
  }
  if (only || onlyShape || against) return;
  process.stdout.write('\nmedians, redis2d / nginx:\n');
  for (const shape of REDIS2_SO ? ['capture', 'resty'] : ['resty']) {
    const a = `redis2d ${shape}`;
    const b = `nginx ${shape}`;
    process.stdout.write(`  ${shape}: req/s ${Math.round(pick(a, 'rps'))} / ${Math.round(pick(b, 'rps'))} = ${(pick(a, 'rps') / pick(b, 'rps')).toFixed(2)}x; CPU µs/req ${pick(a, 'cpuUs').toFixed(1)} / ${pick(b, 'cpuUs').toFixed(1)} = ${(pick(a, 'cpuUs') / pick(b, 'cpuUs')).toFixed(2)}x; p99 ms ${pick(a, 'p99').toFixed(2)} / ${pick(b, 'p99').toFixed(2)}\n`);
  }
  if (!REDIS2_SO) process.stdout.write(`  capture: redis2d only (no NGINX_REDIS2_MODULE): ${Math.round(pick('redis2d capture', 'rps'))} req/s, ${pick('redis2d capture', 'cpuUs').toFixed(1)} CPU µs/req\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
