import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * Differential test: each fixture without a `# nodiff` first line goes
 * through Debian's nginx -t and through redis2d -t with the same prefix;
 * exit codes and the [emerg]/[warn]/[notice] lines must match once the
 * program names are set aside. nginx -t binds the listen sockets, so
 * fixtures listen on 127.0.0.1 high ports only.
 */

const NGINX = '/usr/sbin/nginx';
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

/**
 * Known, justified disagreements: fixture name → why. Keep this short;
 * every entry is a place where redis2d deliberately differs.
 */
const ALLOWED: Record<string, string> = {};

if (!existsSync(NGINX)) {
  t.plan(0, `${NGINX} is not installed`);
} else {
  const prefix = mkdtempSync(join(tmpdir(), 'redis2d-diff-'));
  // nginx -t opens the default access log and checks the root exists nowhere: logs/ suffices
  mkdirSync(join(prefix, 'logs'));
  mkdirSync(join(prefix, 'html'));
  t.teardown(() => rmSync(prefix, { recursive: true, force: true }));

  const messages = (stderr: string, program: string): string[] =>
    stderr
      .split('\n')
      .filter((l) => /^\S+: \[(emerg|alert|crit|warn|notice)\] /.test(l))
      // redis2d's own notes on directives it accepts with no effect
      .filter((l) => !l.endsWith('directive has no effect in redis2d'))
      .map((l) => l.slice(program.length + 2));

  const confs = readdirSync(dir)
    .filter((f) => f.endsWith('.conf'))
    .filter((f) => !readFileSync(join(dir, f), 'latin1').startsWith('# nodiff'))
    .sort();

  // redis2d's side up front, a few node starts at a time; nginx -t (quick) runs in turn below
  const judged = new Map<string, { status: number | null; stderr: string }>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < confs.length) {
      const f = confs[next++]!;
      judged.set(f, await redis2d(['-t', '-p', `${prefix}/`, '-c', join(dir, f)]));
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));

  for (const f of confs) {
    const name = f.slice(0, -'.conf'.length);
    const conf = join(dir, f);
    t.test(name, { skip: ALLOWED[name] ? `allowed: ${ALLOWED[name]}` : false }, async (tt) => {
      const n = spawnSync(NGINX, ['-t', '-e', '/dev/null', '-p', `${prefix}/`, '-c', conf], { encoding: 'latin1' });
      const r = judged.get(f)!;
      tt.equal(r.status, n.status, 'exit code');
      tt.same(messages(r.stderr, 'redis2d'), messages(n.stderr, 'nginx'), 'messages');
    });
  }
}
