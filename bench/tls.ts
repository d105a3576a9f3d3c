import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NGINX, ROOT, SMALL_VALUE } from './targets.js';
import { freePort, redisCommand, sleep, startProc, startRedis, waitPort, type Proc } from './procs.js';
import { measureRun, type Measured } from './procs.js';

/*
 * Workload A over TLS (issue 17): GET of a 10-byte value through a
 * keepalive upstream, wrk keeping its 50 TLS connections alive, one
 * worker. redis2d against nginx with the redis2 module (NGINX_REDIS2_MODULE
 * names the .so built for nginx 1.22.1; without it both serve an echo
 * location instead, and the table says so), the same config over plain
 * HTTP alongside to show what TLS costs each. Alternating rounds in one
 * run; CPU per request from /proc. An RSA 2048 certificate made here;
 * TLS 1.2 (nginx 1.22's default protocols) with ECDHE-RSA-AES256-GCM.
 *
 *   node --import tsx bench/tls.ts [--duration 10] [--rounds 2] [--conns 50]
 */

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const duration = opt('--duration', 10);
const rounds = opt('--rounds', 2);
const conns = opt('--conns', 50);
const MODULE = process.env.NGINX_REDIS2_MODULE;
const withRedis2 = MODULE !== undefined && existsSync(MODULE);

function config(dir: string, port: number, redisPort: number, tls: boolean, nginx: boolean): string {
  const load = nginx ? (withRedis2 ? `load_module ${MODULE};` : 'load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;') : '';
  const content = withRedis2 ? 'redis2_query get $arg_key; redis2_pass redis_ka;' : `echo "${SMALL_VALUE}";`;
  return `${load}
daemon off;
master_process off;
worker_processes 1;
error_log ${dir}/error.log error;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    upstream redis_ka { server 127.0.0.1:${redisPort}; keepalive 64; }
    server {
        listen 127.0.0.1:${port}${tls ? ' ssl' : ''};
        ssl_certificate ${dir}/../cert.pem;
        ssl_certificate_key ${dir}/../key.pem;
        location = /get { ${content} }
    }
}
`;
}

interface Row extends Measured {
  server: string;
}

async function measure(name: string, nginx: boolean, tls: boolean, base: string, redisPort: number): Promise<Row> {
  const dir = mkdtempSync(join(base, `${name.replace(/\W+/g, '-')}-`));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), config(dir, port, redisPort, tls, nginx));
  const proc: Proc = nginx
    ? startProc(NGINX, ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')])
    : startProc(process.execPath, [join(ROOT, 'bin/redis2d'), '-p', dir, '-c', join(dir, 'nginx.conf')]);
  try {
    await waitPort(port, proc);
    const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}/get?key=k`;
    return { server: name, ...(await measureRun(proc.pid, url, conns, duration, 2)) };
  } finally {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'bench-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=bench'], { cwd: base, stdio: 'ignore' });
  const redis = await startRedis(base);
  await redisCommand(redis.port, ['SET', 'k', SMALL_VALUE]);
  const other = withRedis2 ? 'nginx+redis2' : 'nginx+echo';
  const rows: Row[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      rows.push(await measure('redis2d TLS', false, true, base, redis.port));
      rows.push(await measure(`${other} TLS`, true, true, base, redis.port));
      rows.push(await measure('redis2d plain', false, false, base, redis.port));
      rows.push(await measure(`${other} plain`, true, false, base, redis.port));
      await sleep(200);
    }
  } finally {
    await redis.proc.stop();
    rmSync(base, { recursive: true, force: true });
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const pick = (s: string, k: keyof Row): number => med(rows.filter((r) => r.server === s).map((r) => r[k] as number));
  const what = withRedis2 ? 'workload A (GET of a 10-byte value, keepalive upstream)' : `an echo location (no NGINX_REDIS2_MODULE: "${SMALL_VALUE}")`;
  process.stdout.write(`${what}, ${conns} keep-alive connections, one worker, ${rounds} alternating rounds of ${duration} s\n\n`);
  process.stdout.write('| server | req/s | p99 ms | CPU µs/req (user) | RSS MiB | errors |\n|---|---:|---:|---:|---:|---:|\n');
  for (const r of rows) {
    process.stdout.write(`| ${r.server} | ${Math.round(r.rps)} | ${r.p99.toFixed(2)} | ${r.cpuUs.toFixed(1)} (${r.userUs.toFixed(1)}) | ${r.rssMiB.toFixed(1)} | ${r.errors} |\n`);
  }
  for (const mode of ['TLS', 'plain']) {
    const rps = pick(`redis2d ${mode}`, 'rps') / pick(`${other} ${mode}`, 'rps');
    const p99 = pick(`redis2d ${mode}`, 'p99') / pick(`${other} ${mode}`, 'p99');
    const cpu = pick(`redis2d ${mode}`, 'cpuUs') / pick(`${other} ${mode}`, 'cpuUs');
    process.stdout.write(`\nmedians ${mode}, redis2d / ${other}: req/s ${rps.toFixed(2)}x, p99 ${p99.toFixed(2)}x, CPU per request ${cpu.toFixed(2)}x`);
  }
  process.stdout.write('\n');
}

void main();
