import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { httpRedisModule } from './helpers/oracle.js';
import { BIN, ROOT } from './helpers/proc.js';

/*
 * The redis_pass fixtures (fixtures/conf/hr-*.conf) judged by `redis2d -t`,
 * each against its .expect (`exit N`, then stderr with the fixtures folder
 * as {dir}), as conf-fixtures.test.ts judges them all; this file runs only
 * these. They are `# nodiff` for conf-diff.test.ts (Debian's nginx has no
 * ngx_http_redis): their .expect files are nginx's own answers, recorded
 * from the module built by hand (`# nodiff: recorded from ...`), checked
 * again whenever NGINX_HTTPREDIS_MODULE names it (REDIS2D_WRITE_FIXTURES=1
 * rewrites them). A fixture of a deliberate difference says why instead.
 */

const dir = join(ROOT, 'fixtures', 'conf');

function judge(file: string): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    // tap's loaders in NODE_OPTIONS cannot load bin/redis2d: env drops them
    const c = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, '-t', '-c', join(dir, file)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
    c.on('close', (status) => resolve({ status, stderr }));
  });
}

const confs = readdirSync(dir)
  .filter((f) => f.startsWith('hr-') && f.endsWith('.conf'))
  .sort();
t.ok(confs.length >= 12, `the redis_pass fixtures are there (${confs.length})`);

const RECORDED = /^# nodiff: recorded from nginx 1\.22\.1 \+ ngx_http_redis/;
const mod = httpRedisModule();

t.test("nginx with the hand-built module gives the recorded answers", { skip: !mod && 'set NGINX_HTTPREDIS_MODULE (built for Debian nginx 1.22.1) to check the recordings' }, async (t) => {
  const prefix = mkdtempSync(join(tmpdir(), 'hr-conf-'));
  mkdirSync(join(prefix, 'logs'));
  t.teardown(() => rmSync(prefix, { recursive: true, force: true }));
  for (const f of confs.filter((f) => RECORDED.test(readFileSync(join(dir, f), 'latin1')))) {
    const name = f.slice(0, -'.conf'.length);
    const n = spawnSync('/usr/sbin/nginx', ['-t', '-e', '/dev/null', '-p', `${prefix}/`, '-g', `load_module ${mod};`, '-c', join(dir, f)], { encoding: 'latin1' });
    const got = [`exit ${n.status}`, ...n.stderr.replace(/\n$/, '').split('\n').map((l) => l.replace(/^nginx: /, 'redis2d: ').split(dir).join('{dir}'))].join('\n') + '\n';
    if (process.env.REDIS2D_WRITE_FIXTURES === '1') writeFileSync(join(dir, `${name}.expect`), got);
    t.equal(got, readFileSync(join(dir, `${name}.expect`), 'latin1'), name);
  }
});

for (const f of confs) {
  const name = f.slice(0, -'.conf'.length);
  t.test(name, async (t) => {
    t.match(readFileSync(join(dir, f), 'latin1'), /^# nodiff/, 'marked nodiff (Debian has no ngx_http_redis)');
    const expected = readFileSync(join(dir, `${name}.expect`), 'latin1').replace(/\n$/, '').split('\n');
    const r = await judge(f);
    const lines = r.stderr.replace(/\n$/, '').split('\n').map((l) => l.split(dir).join('{dir}'));
    t.equal(`exit ${r.status}`, expected[0], 'exit code');
    t.same(lines, expected.slice(1), 'stderr');
  });
}
