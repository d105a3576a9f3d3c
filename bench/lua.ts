import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NGINX, ROOT } from './targets.js';
import { freePort, redisCommand, sleep, startProc, startRedis, waitPort, type Proc } from './procs.js';
import { measureRun, type Measured } from './procs.js';

/*
 * Lua benchmark (issue 16). Debian's nginx has no redis2 module, so the
 * issue's shape (content_by_lua_block: one ngx.location.capture of a
 * redis2 GET, redis.parser, ngx.say) runs on redis2d only ("capture"
 * row). The side-by-side ratio is on the shape both servers can run with
 * the same Lua: content_by_lua_block doing one GET through resty.redis
 * over a cosocket (nginx loads redis2d's lualib/resty/redis.lua through
 * lua_package_path, Debian ships no resty.redis), and ngx.say of the
 * value. 10-byte value, one worker, alternating rounds, CPU per request
 * from /proc.
 *
 *   flock /tmp/redis2d-heavy.lock node --import tsx bench/lua.ts [--duration 5] [--rounds 2] [--conns 50]
 */

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const duration = opt('--duration', 5);
const rounds = opt('--rounds', 2);
const conns = opt('--conns', 50);

const LUALIB = join(ROOT, 'lib/modules/lua/lualib');
const MODULES = ['ndk_http_module', 'ngx_http_lua_module'].map((m) => `load_module /usr/lib/nginx/modules/${m}.so;`).join('\n');

function config(dir: string, port: number, redisPort: number, withRedis2: boolean): string {
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
  return `${MODULES}
daemon off;
master_process off;
worker_processes 1;
error_log ${dir}/error.log error;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    lua_package_path "${LUALIB}/?.lua;;";
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

async function measure(name: string, start: (dir: string) => Proc, redisPort: number, path: string): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), `bench-lua-${name.replace(/ /g, "-")}-`));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), config(dir, port, redisPort, !name.startsWith('nginx')));
  const proc = start(dir);
  try {
    await waitPort(port, proc);
    const url = `http://127.0.0.1:${port}${path}`;
    return { server: name, ...(await measureRun(proc.pid, url, conns, duration, 1)) };
  } finally {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const redis2d = (dir: string): Proc => startProc(process.execPath, [join(ROOT, 'bin/redis2d'), '-p', dir, '-c', join(dir, 'nginx.conf')]);
const nginx = (dir: string): Proc => startProc(NGINX, ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')]);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-lua-redis-'));
  const redis = await startRedis(dir);
  await redisCommand(redis.port, ['SET', 'k', '0123456789']);
  const rows: Row[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      rows.push(await measure('redis2d resty', redis2d, redis.port, '/resty'));
      rows.push(await measure('nginx resty', nginx, redis.port, '/resty'));
      rows.push(await measure('redis2d capture', redis2d, redis.port, '/capture'));
      await sleep(200);
    }
  } finally {
    await redis.proc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const pick = (s: string, k: keyof Row): number => med(rows.filter((r) => r.server === s).map((r) => r[k] as number));
  process.stdout.write(`Lua + Redis GET, ${conns} connections, one worker, ${rounds} alternating rounds of ${duration} s\n\n`);
  process.stdout.write('| server | req/s | p99 ms | CPU µs/req | RSS MiB | errors |\n|---|---:|---:|---:|---:|---:|\n');
  for (const r of rows) {
    process.stdout.write(`| ${r.server} | ${Math.round(r.rps)} | ${r.p99.toFixed(2)} | ${r.cpuUs.toFixed(1)} | ${r.rssMiB.toFixed(1)} | ${r.errors} |\n`);
  }
  const rps = pick('redis2d resty', 'rps') / pick('nginx resty', 'rps');
  const cpu = pick('redis2d resty', 'cpuUs') / pick('nginx resty', 'cpuUs');
  process.stdout.write(`\nmedians, redis2d / nginx (resty.redis): req/s ${rps.toFixed(2)}x, CPU per request ${cpu.toFixed(2)}x; redis2d capture shape: ${Math.round(pick('redis2d capture', 'rps'))} req/s\n`);
}

void main();
