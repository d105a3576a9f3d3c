import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

/*
 * The redis2 module's own Test::Nginx suite run against bin/redis2d through
 * shared/tools/module-suite.sh. Opt-in: the module and test-nginx checkouts
 * are not ours to commit, so this runs only when MODULE_DIR and
 * TEST_NGINX_LIB point at them (README: "Test::Nginx").
 */

const ROOT = join(import.meta.dirname, '..');
const SCRIPT = join(ROOT, '..', 'shared', 'tools', 'module-suite.sh');
const moduleDir = process.env.MODULE_DIR;
const lib = process.env.TEST_NGINX_LIB;
const skip = !moduleDir || !lib ? 'set MODULE_DIR and TEST_NGINX_LIB to run the module suite' : !existsSync(SCRIPT) ? `${SCRIPT} is missing` : false;

t.test('the redis2 module suite passes under redis2d', { skip, timeout: 600000 }, async (t) => {
  const env = { ...process.env, IGNORE_MISSING: '1' };
  delete env.NODE_OPTIONS;
  // through /usr/bin/env: tap wraps spawns with its loaders in NODE_OPTIONS, which bin/redis2d must not get
  const r = spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', SCRIPT, join(ROOT, 'bin/redis2d')], { env, encoding: 'latin1', timeout: 590000 });
  const total = /^TOTAL\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(r.stdout);
  t.ok(total, 'the suite printed its TOTAL row');
  if (!total) return;
  const [, planned, run, pass, , fail] = total.map(Number);
  t.equal(fail, 0, 'no failed assertion');
  t.equal(run, planned, 'every planned assertion ran');
  t.ok(pass! >= 113, `${pass} passed (113 expected: the 25 skipped need Lua or eval)`);
});
