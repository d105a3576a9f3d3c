import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NGINX, ROOT } from './targets.js';
import { freePort, measurePaths, startProc, type PathRow } from './procs.js';

/*
 * What an ngx.shared.DICT operation costs (docs/behaviour.md §14, §15):
 * redis2d and nginx+ngx_lua (LuaJIT) with 1 and 2 workers in one run, wrk
 * with 10 connections on three locations: `/plain` (ngx.say only),
 * `/op1` (one incr), `/op10` (ten incrs in a row). The cost of one op is
 * (CPU of /op10 - CPU of /plain) / 10, summed over the master and its
 * workers (with 2 workers redis2d's master runs the ops; each op is then a
 * message there and back, and the Lua thread yields for it). Also the
 * bare op in a loop, in process.
 *
 *   flock /tmp/redis2d-heavy.lock node --import tsx bench/shdict.ts [--duration 4]
 */

const argv = process.argv.slice(2);
const i = argv.indexOf('--duration');
const duration = i >= 0 ? Number(argv[i + 1]) : 4;
const MODS = '/usr/lib/nginx/modules';
const haveNginx = existsSync(NGINX) && existsSync(`${MODS}/ngx_http_lua_module.so`);

function config(kind: 'redis2d' | 'nginx', dir: string, port: number, workers: number): string {
  const load = kind === 'nginx' ? `load_module ${MODS}/ndk_http_module.so;\nload_module ${MODS}/ngx_http_lua_module.so;\n` : '';
  return `${load}daemon off;
master_process on;
worker_processes ${workers};
error_log ${dir}/error.log error;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    default_type text/plain;
    lua_shared_dict d 10m;
    server {
        listen 127.0.0.1:${port};
        location /plain { content_by_lua_block { ngx.say("ok") } }
        location /op1 { content_by_lua_block { ngx.say(ngx.shared.d:incr("n", 1, 0)) } }
        location /op10 {
            content_by_lua_block {
                local d = ngx.shared.d
                local v
                for i = 1, 10 do v = d:incr("n", 1, 0) end
                ngx.say(v)
            }
        }
    }
}
`;
}

async function measure(kind: 'redis2d' | 'nginx', workers: number): Promise<PathRow> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-shdict-'));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), config(kind, dir, port, workers));
  const proc =
    kind === 'redis2d'
      ? startProc(process.execPath, [join(ROOT, 'bin/redis2d'), '-p', dir, '-c', join(dir, 'nginx.conf')])
      : startProc(NGINX, ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')]);
  try {
    return await measurePaths(proc, port, ['/plain', '/op1', '/op10'], 10, duration);
  } finally {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function loop(): Promise<number> {
  const { Zone } = await import('../lib/core/zones.js');
  const { registerShdictOps } = await import('../lib/modules/lua/shdict_ops.js');
  registerShdictOps();
  const z = new Zone('bench', 10 << 20, [80, 32]);
  const n = 1_000_000;
  const arg = { delta: 1, init: 0, ttl: 0 };
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < n; k++) z.run('shdict.incr', 'n', arg, () => {});
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

const opUs = await loop();
console.log(`shdict incr zone operation in process: ${opUs.toFixed(3)} µs`);
console.log('| server | workers | path | req/s | CPU µs/req (all processes) | p50 ms |');
console.log('|---|---|---|---|---|---|');
const kinds: Array<'redis2d' | 'nginx'> = haveNginx ? ['redis2d', 'nginx'] : ['redis2d'];
const rows = new Map<string, PathRow>();
for (const workers of [1, 2]) {
  for (const kind of kinds) {
    const r = await measure(kind, workers);
    rows.set(`${kind} ${workers}`, r);
    for (const [path, x] of Object.entries(r)) {
      console.log(`| ${kind} | ${workers} | ${path} | ${Math.round(x.rps)} | ${x.cpuUs.toFixed(1)} | ${x.p50.toFixed(2)} |`);
    }
  }
}
for (const [name, r] of rows) {
  const per = (r['/op10']!.cpuUs - r['/plain']!.cpuUs) / 10;
  console.log(`${name} worker(s): one dict op costs ${per.toFixed(2)} µs CPU (op10 vs plain); op1 adds ${(r['/op1']!.cpuUs - r['/plain']!.cpuUs).toFixed(1)} µs/req`);
}
