import t from 'tap';
import { spawn } from 'node:child_process';
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
function redis2d(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
    c.on('close', (status) => resolve({ status, stderr }));
  });
}

/* every fixture judged up front, a few processes at a time (each is a node start) */
async function judgeAll(files: string[], width: number): Promise<Map<string, { status: number | null; stderr: string }>> {
  const out = new Map<string, { status: number | null; stderr: string }>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const f = files[next++]!;
      out.set(f, await redis2d(['-t', '-c', join(dir, f)]));
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return out;
}

const confs = readdirSync(dir)
  .filter((f) => f.endsWith('.conf'))
  .sort();

t.ok(confs.length >= 45, `at least 45 fixtures (found ${confs.length})`);
const judged = await judgeAll(confs, 4);

for (const f of confs) {
  const name = f.slice(0, -'.conf'.length);
  t.test(name, async (tt) => {
    const expectPath = join(dir, `${name}.expect`);
    tt.ok(existsSync(expectPath), `${name}.expect exists`);
    if (!existsSync(expectPath)) return;
    const expected = readFileSync(expectPath, 'latin1').replace(/\n$/, '').split('\n');
    const r = judged.get(f)!;
    const lines = r.stderr.replace(/\n$/, '').split('\n').map((l) => l.split(dir).join('{dir}'));
    tt.equal(`exit ${r.status}`, expected[0], 'exit code');
    tt.same(lines, expected.slice(1), 'stderr');
  });
}
