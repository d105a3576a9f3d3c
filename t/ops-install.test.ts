import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { cleanup, ROOT, tempPrefix, waitFor } from './helpers/proc.js';
import { freePort, raw } from './helpers/server.js';

/*
 * A global install used by a user who is not root (README, "Install
 * globally"): `npm pack`, `npm i -g --prefix DIR` of the tarball, then the
 * `nobody` user runs DIR/bin/redis2d with no -p: the bundled config judges
 * fine, runtime files go to ~/.local/state/redis2d (never into the
 * package), a config put there is served, and a reinstall keeps them.
 */

const NOBODY = 65534;
const env: NodeJS.ProcessEnv = {};
// npm's settings from the outer `npm test` must not steer these npm runs
for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'NODE_OPTIONS' && k !== 'INIT_CWD') env[k] = v;

const skip = process.getuid?.() !== 0 ? 'needs root to run as nobody' : !existsSync('/usr/sbin/runuser') ? 'no runuser' : false;

function npm(args: string[], cwd: string): { code: number | null; out: string } {
  const r = spawnSync('npm', args, { cwd, env, encoding: 'utf8', timeout: 180000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** run a command as nobody with HOME set; returns exit code and output */
function asNobody(home: string, args: string[]): { code: number | null; out: string } {
  const r = spawnSync('/usr/sbin/runuser', ['-u', 'nobody', '--', '/usr/bin/env', '-u', 'NODE_OPTIONS', `HOME=${home}`, 'XDG_STATE_HOME=', ...args], {
    encoding: 'utf8',
    timeout: 30000,
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

t.test('npm i -g --prefix DIR, run by nobody with no -p', { skip, timeout: 300000 }, async (t) => {
  const tmp = tempPrefix('install');
  t.teardown(() => cleanup(tmp));
  chmodSync(tmp, 0o755);
  const pack = npm(['pack', '--pack-destination', tmp], ROOT);
  t.equal(pack.code, 0, 'npm pack');
  const tarball = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
  if (!tarball) return;
  const dir = join(tmp, 'global');
  const install = (): { code: number | null; out: string } =>
    npm(['install', '-g', '--prefix', dir, '--prefer-offline', '--no-audit', '--no-fund', join(tmp, tarball)], tmp);
  const first = install();
  if (first.code !== 0 && /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ENETUNREACH/.test(first.out)) {
    t.skip(`npm can reach neither the registry nor its cache: ${first.out.split('\n')[0]}`);
    return;
  }
  t.equal(first.code, 0, 'the global install');
  const bin = join(dir, 'bin', 'redis2d');
  const pkg = join(dir, 'lib', 'node_modules', 'redis2d');
  t.ok(existsSync(bin), 'bin/redis2d is installed');

  const home = join(tmp, 'home');
  mkdirSync(home);
  chownSync(home, NOBODY, NOBODY);
  const state = join(home, '.local', 'state', 'redis2d');

  // the bundled config, judged with no -p and no -c
  const test = asNobody(home, [bin, '-t']);
  t.equal(test.code, 0, `-t on the bundled config: ${test.out.trim().split('\n').at(-1)}`);
  t.match(test.out, `configuration file ${pkg}/conf/nginx.conf test is successful`, 'the bundled config is the one judged');
  t.ok(existsSync(join(state, 'logs')), 'the prefix ~/.local/state/redis2d and its logs/ were made');
  const help = asNobody(home, [bin, '-h']);
  t.match(help.out, `-p prefix     : set prefix path (default: ${state}/)`, '-h names the default prefix');

  // a config of the user's own in the prefix is served, logs land there
  const port = await freePort();
  mkdirSync(join(state, 'conf'), { recursive: true });
  writeFileSync(
    join(state, 'conf', 'nginx.conf'),
    `daemon off; master_process off; pid logs/redis2d.pid;
events {}
http { access_log logs/access.log; server { listen 127.0.0.1:${port}; location / { return 200 "served\\n"; } } }
`,
  );
  spawnSync('chown', ['-R', 'nobody:nogroup', join(home, '.local')]);
  const serveOnce = async (label: string): Promise<void> => {
    const proc = spawn('/usr/sbin/runuser', ['-u', 'nobody', '--', '/usr/bin/env', '-u', 'NODE_OPTIONS', `HOME=${home}`, 'XDG_STATE_HOME=', bin], { stdio: 'ignore' });
    try {
      const resp = await waitFor(`${label}: redis2d answers`, async () => {
        const r = await raw(port, 'GET / HTTP/1.0\r\n\r\n', 300);
        return r.length ? r : undefined;
      });
      t.match(resp, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nserved\n$/, `${label}: the user's config serves`);
    } finally {
      // runuser does not pass QUIT on: signal redis2d by its pid file, as `redis2d -s quit` does
      const pidFile = join(state, 'logs', 'redis2d.pid');
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'latin1').trim()) : 0;
      const exited = new Promise((r) => proc.once('exit', r));
      if (pid > 0) process.kill(pid, 'SIGQUIT');
      else proc.kill('SIGKILL');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    }
  };
  await serveOnce('first install');
  t.match(readFileSync(join(state, 'logs', 'access.log'), 'latin1'), /"GET \/ HTTP\/1\.0" 200 /, 'the access log is in the prefix');
  t.notOk(existsSync(join(pkg, 'logs', 'access.log')), 'nothing was written into the installed package');

  // a reinstall replaces the package, not the user's prefix
  t.equal(install().code, 0, 'the reinstall');
  t.ok(existsSync(join(state, 'conf', 'nginx.conf')), 'the config survived the reinstall');
  await serveOnce('after the reinstall');
  const lines = readFileSync(join(state, 'logs', 'access.log'), 'latin1').trim().split('\n');
  t.equal(lines.length, 2, 'the access log kept the first line and got the second');
});
