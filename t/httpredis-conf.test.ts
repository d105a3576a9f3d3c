import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { BIN, ROOT } from './helpers/proc.js';

/*
 * The redis_pass fixtures (fixtures/conf/hr-*.conf) judged by `redis2d -t`,
 * each against its .expect (`exit N`, then stderr with the fixtures folder
 * as {dir}), as conf-fixtures.test.ts judges them all; this file runs only
 * these. They are `# nodiff`: Debian's nginx has no ngx_http_redis, so the
 * expectations follow the module's source (lib/modules/redis/module.ts).
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

for (const f of confs) {
  const name = f.slice(0, -'.conf'.length);
  t.test(name, async (t) => {
    t.match(readFileSync(join(dir, f), 'latin1'), /^# nodiff/, 'marked nodiff');
    const expected = readFileSync(join(dir, `${name}.expect`), 'latin1').replace(/\n$/, '').split('\n');
    const r = await judge(f);
    const lines = r.stderr.replace(/\n$/, '').split('\n').map((l) => l.split(dir).join('{dir}'));
    t.equal(`exit ${r.status}`, expected[0], 'exit code');
    t.same(lines, expected.slice(1), 'stderr');
  });
}
