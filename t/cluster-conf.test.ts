import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCmd } from './helpers/proc.js';

/*
 * `redis_cluster` at -t, in nginx's words for balancing methods
 * (lib/upstream/balancer_directives.ts): its parameter, its arity, the
 * `server` parameters it allows, and the redefined warning.
 */

const dir = mkdtempSync(join(tmpdir(), 'redis2d-cluster-conf-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

async function check(ups: string): Promise<string> {
  const f = join(dir, 'nginx.conf');
  writeFileSync(
    f,
    `pid ${dir}/nginx.pid; error_log ${dir}/error.log;\nevents {}\nhttp {\naccess_log off;\nupstream c {\n${ups}\n}\nserver { listen 127.0.0.1:1; location / { redis2_query get a; redis2_pass c; } }\n}\n`,
  );
  const r = await runCmd(['-t', '-p', dir, '-c', f]);
  return r.stderr.replaceAll(f, 'FILE');
}

t.test('accepted forms', async (t) => {
  t.match(await check('redis_cluster;\nserver 127.0.0.1:7000; server 127.0.0.1:7001 max_fails=2 fail_timeout=5s weight=2; keepalive 8;'), /test is successful/);
  t.match(await check('redis_cluster read_replicas; server 127.0.0.1:7000;'), /test is successful/);
});

t.test('errors and warnings', async (t) => {
  t.match(await check('redis_cluster replicas; server 127.0.0.1:7000;'), 'redis2d: [emerg] invalid parameter "replicas" in FILE:6\n');
  t.match(await check('redis_cluster read_replicas x; server 127.0.0.1:7000;'), 'redis2d: [emerg] invalid number of arguments in "redis_cluster" directive in FILE:6\n');
  t.match(await check('redis_cluster; server 127.0.0.1:7000 backup;'), 'redis2d: [emerg] balancing method does not support parameter "backup" in FILE:6\n');
  t.match(await check('least_conn;\nredis_cluster;\nserver 127.0.0.1:7000;'), 'redis2d: [warn] load balancing method redefined in FILE:7\n');
  t.match(await check('keepalive 4;\nredis_cluster;\nserver 127.0.0.1:7000;'), 'redis2d: [warn] load balancing method redefined in FILE:7\n');
  const ctx = await check('server 127.0.0.1:7000; } server { redis_cluster;');
  t.match(ctx, /\[emerg\] "redis_cluster" directive is not allowed here in FILE:\d+/);
});
