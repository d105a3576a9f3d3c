import t from 'tap';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * Every fixtures/conf/NAME.conf is judged by `redis2d -t -c` and must give
 * exactly NAME.expect: `exit N`, then the stderr lines, with the fixtures
 * directory written as {dir}.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'fixtures', 'conf');
const bin = join(root, 'bin', 'redis2d');
/**
 * Run the built redis2d. tap's process tracker puts its loaders in every
 * child's NODE_OPTIONS, and they cannot load bin/redis2d: env drops them.
 */
function redis2d(args: string[]): SpawnSyncReturns<string> {
  return spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, bin, ...args], { encoding: 'latin1' });
}

const confs = readdirSync(dir)
  .filter((f) => f.endsWith('.conf'))
  .sort();

t.ok(confs.length >= 45, `at least 45 fixtures (found ${confs.length})`);

for (const f of confs) {
  const name = f.slice(0, -'.conf'.length);
  t.test(name, async (tt) => {
    const expectPath = join(dir, `${name}.expect`);
    tt.ok(existsSync(expectPath), `${name}.expect exists`);
    if (!existsSync(expectPath)) return;
    const expected = readFileSync(expectPath, 'latin1').replace(/\n$/, '').split('\n');
    const r = redis2d(['-t', '-c', join(dir, f)]);
    const lines = r.stderr.replace(/\n$/, '').split('\n').map((l) => l.split(dir).join('{dir}'));
    tt.equal(`exit ${r.status}`, expected[0], 'exit code');
    tt.same(lines, expected.slice(1), 'stderr');
  });
}
