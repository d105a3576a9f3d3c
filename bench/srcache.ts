import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync, readdirSync } from 'node:fs';
import { formatSummary, summarise } from './profile-summary.js';
import { NGINX, ROOT, redis2dNodeFlags } from './targets.js';
import { freePort, redisCommand, sleep, startProc, startRedis, waitPort, type Proc } from './procs.js';
import { measureRun, type Measured } from './procs.js';

/*
 * srcache cache-hit benchmark (issue 14): every request is a HIT of a
 * 10 KiB page. The entry comes from an echo location (both servers have
 * echo and srcache), so this measures srcache's own path: the fetch
 * subrequest, parsing the stored response, sending it. The issue's target
 * row serves the same entry from a real Redis through redis_pass: redis2d,
 * and nginx too when NGINX_HTTPREDIS_MODULE names a build of ngx_http_redis
 * for Debian's nginx (not packaged by Debian); redis2d also with
 * `redis2d_pipeline off` (a Redis connection per request, nginx's model).
 * Alternating rounds in one run; CPU per request from /proc.
 *
 *   [NGINX_HTTPREDIS_MODULE=/path/ngx_http_redis_module.so] \
 *   node --import tsx bench/srcache.ts [--duration 5] [--rounds 2] [--conns 50] [--warmup 4] [--redis-only] [--no-heap-flags]
 *
 * --base DIR: a built tree (another checkout, `npm run build` done) whose
 * redis2d serves the redis_pass HIT in every round too, next to this one:
 * an A/B of two builds against the same nginx rounds. With --base-node-flags
 * "F ..." the base row gets those node flags too (`--base .` for an A/B of
 * flags on one build).
 *
 * With --curve N, no comparison either: each server's first N seconds
 * under load, second by second (the warm-up --warmup skips).
 *
 * With --cpu-prof, no comparison: redis2d alone serves the redis_pass HIT
 * under `node --cpu-prof` for one run and the profile's summary (self time
 * by function, bench/profile-summary.ts) is printed; --top N rows.
 */

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const duration = opt('--duration', 5);
const rounds = opt('--rounds', 2);
const conns = opt('--conns', 50);
/*
 * --warmup N: seconds of wrk before each measured run, both servers
 * (default 4): redis2d's JIT is still optimizing in its first 2-3 seconds
 * under load (--curve: 27-38k req/s at 28-41 µs CPU per request in the
 * first second, 16-17 µs from the fourth; nginx flat from the first), and
 * a daemon serving a page cache is measured at its steady state
 */
const warmup = opt('--warmup', 4);
/* --redis-only: just the issue's pair (redis_pass HIT on redis2d and nginx), no echo-entry or pipeline-off rows */
const redisOnly = argv.includes('--redis-only');
const baseIdx = argv.indexOf('--base');
const baseRoot = baseIdx >= 0 ? argv[baseIdx + 1] : undefined;

const MODULES = ['ndk_http_module', 'ngx_http_echo_module', 'ngx_http_set_misc_module', 'ngx_http_headers_more_filter_module', 'ngx_http_srcache_filter_module']
  .map((m) => `load_module /usr/lib/nginx/modules/${m}.so;`)
  .join('\n');
const HTTPREDIS = process.env.NGINX_HTTPREDIS_MODULE;
const PAGE = 'x'.repeat(10 * 1024);
const ENTRY = `HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n${PAGE}`;

function config(dir: string, port: number, redisPort: number, withRedis: boolean, load: string, isNginx: boolean): string {
  const redisLocations = withRedis
    ? `location = /redis-fetch { internal; set $redis_key $args; redis_pass rds; }
        location = /rpage { srcache_fetch GET /redis-fetch page; echo "miss"; }`
    : '';
  // redis2d only: the same through redis_pass on a connection per request (nginx's model; before redis_pass pipelining)
  const exclusive = !isNginx
    ? `location = /redis-fetch-x { internal; redis2d_pipeline off; set $redis_key $args; redis_pass rds; }
        location = /rpage-x { srcache_fetch GET /redis-fetch-x page; echo "miss"; }`
    : '';
  return `${MODULES}
${load}
daemon off;
master_process off;
worker_processes 1;
error_log ${dir}/error.log error;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    upstream rds { server 127.0.0.1:${redisPort}; keepalive 64; }
    server {
        listen 127.0.0.1:${port};
        location = /entry { internal; echo -n "HTTP/1.1 200 OK\\r\\nContent-Type: text/html\\r\\n\\r\\n"; echo_duplicate ${PAGE.length} "x"; }
        location = /page { srcache_fetch GET /entry $uri; echo "miss"; }
        ${redisLocations}
        ${exclusive}
    }
}
`;
}

interface Row extends Measured {
  server: string;
}

async function measure(name: string, start: (dir: string, port: number) => Proc, redisPort: number, path: string): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), `bench-proxy-${name}-`));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  const isNginx = name.startsWith('nginx');
  const withRedis = !isNginx || HTTPREDIS !== undefined;
  writeFileSync(join(dir, 'nginx.conf'), config(dir, port, redisPort, withRedis, isNginx && HTTPREDIS ? `load_module ${HTTPREDIS};` : '', isNginx));
  const proc = start(dir, port);
  try {
    await waitPort(port, proc);
    const url = `http://127.0.0.1:${port}${path}`;
    return { server: name, ...(await measureRun(proc.pid, url, conns, duration, warmup)) };
  } finally {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/* redis2d alone (master_process off) with a worker's heap flags (targets.ts), unless --no-heap-flags */
const nfIdx = argv.indexOf('--node-flags');
/* --node-flags "F ...": more node flags for redis2d (e.g. --perf-basic-prof for perf record) */
const nodeFlags = [...redis2dNodeFlags(1, !argv.includes('--no-heap-flags')), ...(nfIdx >= 0 ? argv[nfIdx + 1]!.split(' ').filter(Boolean) : [])];
const redis2d = (dir: string): Proc => startProc(process.execPath, [...nodeFlags, join(ROOT, 'bin/redis2d'), '-p', dir, '-c', join(dir, 'nginx.conf')]);
/* --base-node-flags "F ...": more node flags for the base row only (an A/B of flags: --base . --base-node-flags ...) */
const bnfIdx = argv.indexOf('--base-node-flags');
const baseFlags = [...nodeFlags, ...(bnfIdx >= 0 ? argv[bnfIdx + 1]!.split(' ').filter(Boolean) : [])];
const redis2dBase = (dir: string): Proc => startProc(process.execPath, [...baseFlags, join(baseRoot!, 'bin/redis2d'), '-p', dir, '-c', join(dir, 'nginx.conf')]);
const nginx = (dir: string): Proc => startProc(NGINX, ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')]);

/* redis2d under node --cpu-prof on the redis_pass HIT: the summary of its profile */
async function profile(redisPort: number, dir: string): Promise<void> {
  const profDir = join(dir, 'prof');
  mkdirSync(profDir);
  const prof = (d: string): Proc =>
    startProc(process.execPath, [...nodeFlags, '--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=250', join(ROOT, 'bin/redis2d'), '-p', d, '-c', join(d, 'nginx.conf')]);
  const row = await measure('redis2d', prof, redisPort, '/rpage');
  process.stderr.write(`profile: redis2d redis_pass HIT/${conns}: ${Math.round(row.rps)} req/s, ${row.cpuUs.toFixed(1)} µs/req (profiler on)\n`);
  const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length !== 1) throw new Error(`expected one .cpuprofile in ${profDir}, found ${files.length}`);
  const summary = summarise(JSON.parse(readFileSync(join(profDir, files[0]!), 'utf8')));
  process.stdout.write(`${formatSummary(summary, opt('--top', 25), false)}\n`);
}

/*
 * --curve N: each server started fresh and measured over N consecutive
 * 1-second wrk runs from its first request (no warm-up): req/s and CPU per
 * request second by second, the JIT's warm-up against nginx's flat line
 */
async function curve(redisPort: number): Promise<void> {
  const n = opt('--curve', 8);
  const servers: Array<[string, (dir: string) => Proc]> = [['redis2d', redis2d]];
  if (HTTPREDIS) servers.push(['nginx', nginx]);
  for (const [name, start] of servers) {
    const dir = mkdtempSync(join(tmpdir(), `bench-curve-${name}-`));
    mkdirSync(join(dir, 'logs'));
    const port = await freePort();
    const isNginx = name === 'nginx';
    writeFileSync(join(dir, 'nginx.conf'), config(dir, port, redisPort, true, isNginx ? `load_module ${HTTPREDIS};` : '', isNginx));
    const proc = start(dir);
    try {
      await waitPort(port, proc);
      const cells: string[] = [];
      for (let i = 0; i < n; i++) {
        const m = await measureRun(proc.pid, `http://127.0.0.1:${port}/rpage`, conns, 1, 0);
        cells.push(`${Math.round(m.rps / 1000)}k/${m.cpuUs.toFixed(1)}`);
      }
      process.stdout.write(`${name.padEnd(8)} second 1..${n} (req/s / CPU µs per request): ${cells.join(' ')}\n`);
    } finally {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-srcache-redis-'));
  const redis = await startRedis(dir);
  await redisCommand(redis.port, ['SET', 'page', ENTRY]);
  if (argv.includes('--curve')) {
    try {
      await curve(redis.port);
    } finally {
      await redis.proc.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  if (argv.includes('--cpu-prof')) {
    try {
      await profile(redis.port, dir);
    } finally {
      await redis.proc.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  const rows: Row[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      if (!redisOnly) {
        rows.push(await measure('redis2d', redis2d, redis.port, '/page'));
        rows.push(await measure('nginx', nginx, redis.port, '/page'));
      }
      // the issue's target pair, in alternating order from round to round
      const pair = [
        async (): Promise<void> => void rows.push({ ...(await measure('redis2d', redis2d, redis.port, '/rpage')), server: 'redis2d (Redis)' }),
        async (): Promise<void> => {
          if (HTTPREDIS) rows.push({ ...(await measure('nginx', nginx, redis.port, '/rpage')), server: 'nginx (Redis)' });
        },
      ];
      if (baseRoot !== undefined) pair.push(async (): Promise<void> => void rows.push({ ...(await measure('redis2d', redis2dBase, redis.port, '/rpage')), server: 'redis2d base (Redis)' }));
      if (i % 2 === 1) pair.reverse();
      for (const run of pair) await run();
      if (!redisOnly) rows.push({ ...(await measure('redis2d', redis2d, redis.port, '/rpage-x')), server: 'redis2d (Redis, pipeline off)' });
      await sleep(200);
    }
  } finally {
    await redis.proc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const pick = (s: string, k: keyof Row): number => med(rows.filter((r) => r.server === s).map((r) => r[k] as number));
  process.stdout.write(`srcache HIT of a 10 KiB page, ${conns} connections, one worker, ${rounds} alternating rounds of ${duration} s\n\n`);
  process.stdout.write('| server | req/s | p99 ms | CPU µs/req (user) | RSS MiB | errors |\n|---|---:|---:|---:|---:|---:|\n');
  for (const r of rows) {
    process.stdout.write(`| ${r.server} | ${Math.round(r.rps)} | ${r.p99.toFixed(2)} | ${r.cpuUs.toFixed(1)} (${r.userUs.toFixed(1)}) | ${r.rssMiB.toFixed(1)} | ${r.errors} |\n`);
  }
  if (!redisOnly) {
    const rps = pick('redis2d', 'rps') / pick('nginx', 'rps');
    const p99 = pick('redis2d', 'p99') / pick('nginx', 'p99');
    const cpu = pick('redis2d', 'cpuUs') / pick('nginx', 'cpuUs');
    process.stdout.write(`\nmedians, redis2d / nginx (echo entry): req/s ${rps.toFixed(2)}x, p99 ${p99.toFixed(2)}x, CPU per request ${cpu.toFixed(2)}x\n`);
  }
  if (HTTPREDIS) {
    const r = (k: keyof Row): string => (pick('redis2d (Redis)', k) / pick('nginx (Redis)', k)).toFixed(2);
    process.stdout.write(`medians, redis2d / nginx (redis_pass from Redis): req/s ${r('rps')}x, p99 ${r('p99')}x, CPU per request ${r('cpuUs')}x\n`);
    // per round (the pair ran back to back): the ratios within it
    const a = rows.filter((r) => r.server === 'redis2d (Redis)');
    const b = rows.filter((r) => r.server === 'nginx (Redis)');
    const per = a.map((x, k) => `${(x.rps / b[k]!.rps).toFixed(2)}/${(x.p99 / b[k]!.p99).toFixed(2)}/${(x.cpuUs / b[k]!.cpuUs).toFixed(2)}`);
    process.stdout.write(`per round (req/s / p99 / CPU ratios): ${per.join(', ')}\n`);
    if (baseRoot !== undefined) {
      const c = rows.filter((r) => r.server === 'redis2d base (Redis)');
      const y = (k: keyof Row): string => (pick('redis2d base (Redis)', k) / pick('nginx (Redis)', k)).toFixed(2);
      process.stdout.write(`medians, base redis2d / nginx: req/s ${y('rps')}x, p99 ${y('p99')}x, CPU per request ${y('cpuUs')}x\n`);
      process.stdout.write(`CPU µs/req this / base per round: ${a.map((x, k) => `${x.cpuUs.toFixed(1)}/${c[k]!.cpuUs.toFixed(1)}`).join(', ')}\n`);
    }
    if (!redisOnly) {
      const x = (k: keyof Row): string => (pick('redis2d (Redis, pipeline off)', k) / pick('nginx (Redis)', k)).toFixed(2);
      process.stdout.write(`medians, redis2d with redis2d_pipeline off / nginx (redis_pass from Redis): req/s ${x('rps')}x, p99 ${x('p99')}x, CPU per request ${x('cpuUs')}x\n`);
    }
  } else process.stdout.write('(set NGINX_HTTPREDIS_MODULE for the nginx row through redis_pass)\n');
}

void main();
