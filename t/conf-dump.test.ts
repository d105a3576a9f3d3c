import t from 'tap';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * `-T`: after the test verdict, every file read, once, in include order:
 * `# configuration file PATH:` then its bytes then an empty line (nginx's
 * ngx_conf_dump). Checked against the files themselves, and against
 * Debian's nginx -T when it is installed.
 */

const NGINX = '/usr/sbin/nginx';
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

function expectedDump(files: string[]): string {
  return files.map((f) => `# configuration file ${f}:\n${readFileSync(f, 'latin1')}\n`).join('');
}

const cases: Array<{ conf: string; files: string[] }> = [
  {
    conf: 'core-include-glob.conf',
    files: ['core-include-glob.conf', 'inc/core-glob-1.conf', 'inc/core-glob-2.conf'],
  },
  {
    // the mime table is included once; the sites glob after it
    conf: 'core-debian.conf',
    files: ['core-debian.conf', 'inc/core-mime.types', 'inc/core-sites/default'],
  },
];

const prefix = mkdtempSync(join(tmpdir(), 'redis2d-dump-'));
mkdirSync(join(prefix, 'logs'));
t.teardown(() => rmSync(prefix, { recursive: true, force: true }));

for (const c of cases) {
  t.test(c.conf, async (tt) => {
    const conf = join(dir, c.conf);
    const r = redis2d(['-T', '-p', `${prefix}/`, '-c', conf]);
    tt.equal(r.status, 0);
    tt.equal(r.stdout, expectedDump(c.files.map((f) => join(dir, f))), 'dump matches the files');
    tt.match(r.stderr, /test is successful/);
    if (existsSync(NGINX)) {
      const n = spawnSync(NGINX, ['-T', '-e', '/dev/null', '-p', `${prefix}/`, '-c', conf], { encoding: 'latin1' });
      tt.equal(r.stdout, n.stdout, 'same dump as nginx -T');
    }
  });
}

t.test('a failed test dumps nothing', async (tt) => {
  const r = redis2d(['-T', '-p', `${prefix}/`, '-c', join(dir, 'core-include-error.conf')]);
  tt.equal(r.status, 1);
  tt.equal(r.stdout, '');
});
