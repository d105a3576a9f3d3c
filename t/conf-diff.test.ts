import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NGINX, judgeNginx, judgeRedis2d, verdictLines, type Verdict } from './helpers/judge.js';

/*
 * Differential test: each fixture without a `# nodiff` first line goes
 * through Debian's nginx -t and through redis2d -t with the same prefix;
 * exit codes and the [emerg]/[warn]/[notice] lines must match once the
 * program names are set aside. nginx -t binds the listen sockets, so
 * fixtures listen on 127.0.0.1 high ports only.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'fixtures', 'conf');
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

  const confs = readdirSync(dir)
    .filter((f) => f.endsWith('.conf'))
    .filter((f) => !readFileSync(join(dir, f), 'latin1').startsWith('# nodiff'))
    .sort();

  // redis2d's side up front, a few node starts at a time; nginx -t (quick) runs in turn below
  const judged = new Map<string, Verdict>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < confs.length) {
      const f = confs[next++]!;
      judged.set(f, await judgeRedis2d(join(dir, f), prefix));
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));

  for (const f of confs) {
    const name = f.slice(0, -'.conf'.length);
    const conf = join(dir, f);
    t.test(name, { skip: ALLOWED[name] ? `allowed: ${ALLOWED[name]}` : false }, async (tt) => {
      const n = judgeNginx(conf, prefix);
      const r = judged.get(f)!;
      tt.equal(r.status, n.status, 'exit code');
      tt.same(verdictLines(r.stderr, 'redis2d'), verdictLines(n.stderr, 'nginx'), 'messages');
    });
  }
}
