import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

/*
 * The redis2 module's own Test::Nginx suite run against bin/redis2d through
 * tools/testnginx-suite.sh. Opt-in: the module and test-nginx checkouts are
 * not ours to commit, so this runs only when MODULE_DIR (a checkout of
 * openresty/redis2-nginx-module) and TEST_NGINX_LIB (test-nginx's lib/) are
 * set (README: "Running the modules' own Test::Nginx suites").
 */

const ROOT = join(import.meta.dirname, '..');
const RUNNER = join(ROOT, 'tools/testnginx-suite.sh');
const moduleDir = process.env.MODULE_DIR;
const lib = process.env.TEST_NGINX_LIB;

function why(): string | false {
  if (!moduleDir || !lib) return 'set MODULE_DIR (a redis2-nginx-module checkout) and TEST_NGINX_LIB (test-nginx/lib) to run the module suite';
  if (!existsSync(join(moduleDir, 't'))) return `MODULE_DIR=${moduleDir} has no t/ folder`;
  if (!existsSync(join(lib, 'Test/Nginx/Socket.pm'))) return `TEST_NGINX_LIB=${lib} has no Test/Nginx/Socket.pm`;
  return false;
}
const skip = why();
// the reason in the output whatever the reporter shows of skipped tests
if (skip) t.comment(`module suite skipped: ${skip}`);

t.test('the redis2 module suite passes under redis2d', { skip, timeout: 900000 }, async (t) => {
  const env = { ...process.env, IGNORE_MISSING: '1' };
  // through /usr/bin/env: tap wraps spawns with its loaders in NODE_OPTIONS, which bin/redis2d must not get
  const r = spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', RUNNER, join(ROOT, 'bin/redis2d'), moduleDir!, lib!], {
    env,
    encoding: 'latin1',
    timeout: 890000,
  });
  if (r.status === 2) {
    // the runner could not start the suite (missing Perl modules, redis-server...): say why
    t.skip(`the runner could not run the suite: ${r.stderr.trim()}`);
    return;
  }
  t.comment(r.stdout.trimEnd());
  const total = /^TOTAL\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(r.stdout);
  t.ok(total, 'the runner printed its TOTAL row');
  if (!total) return;
  const [, planned, run, pass, , fail] = total.map(Number);
  t.equal(fail, 0, 'no failed assertion');
  t.equal(run, planned, 'every planned assertion ran');
  t.ok(pass! >= 113, `${pass} passed (113 expected: the 25 skipped need Lua or eval)`);
  t.equal(r.status, 0, 'the runner exits 0');
});
