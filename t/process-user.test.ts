import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NGINX, freePort, hasNginx } from './helpers/server.js';
import { BIN, childPids, cleanup, killTree, readPid, request, runCmd, statusOf, tempPrefix, waitFor } from './helpers/proc.js';

/*
 * The `user` directive and `-t`'s file checks, against Debian's nginx:
 * - as root, a master's workers run as the `user` (default nobody:nogroup),
 *   checked in /proc/PID/status (Uid, Gid, Groups); USR1 gives the reopened
 *   logs to that user; `-t` names an unknown user or group with nginx's words;
 * - as `nobody` (runuser), `user` is ignored with nginx's warning (at -t
 *   too), and -t reports a pid file, error log or access log it cannot open
 *   as `open() "PATH" failed (13: Permission denied)`.
 */

const isRoot = process.getuid?.() === 0;
const hasRunuser = existsSync('/usr/sbin/runuser') || existsSync('/sbin/runuser');
const hasWwwData = spawnSync('getent', ['passwd', 'www-data']).status === 0;

/** a prefix nobody can use (the workers and runuser's -t need it) */
function openPrefix(name: string): string {
  const dir = tempPrefix(name);
  chmodSync(dir, 0o777);
  chmodSync(join(dir, 'logs'), 0o777);
  mkdirSync(join(dir, 'html'));
  chmodSync(join(dir, 'html'), 0o755);
  writeFileSync(join(dir, 'html/index.html'), 'hi\n');
  return dir;
}

/** `/proc/PID/status`'s Uid, Gid and Groups lines */
function ids(pid: number): string {
  return readFileSync(`/proc/${pid}/status`, 'latin1')
    .split('\n')
    .filter((l) => /^(Uid|Gid|Groups):/.test(l))
    .map((l) => l.replace(/\s+/g, ' ').trim())
    .join('; ');
}

/** the -t lines without the program's name, the prefix written as P */
function messages(stderr: string, program: string, dir: string): string[] {
  return stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(`${program}: `, '').replaceAll(dir, 'P'));
}

interface Served {
  worker: string;
  status: number;
  owners: string;
}

async function serve(kind: 'redis2d' | 'nginx', userLine: string): Promise<Served> {
  const dir = openPrefix(`user-${kind}`);
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `${userLine}\ndaemon on; master_process on; worker_processes 1; pid ${dir}/logs/nginx.pid; error_log ${dir}/logs/error.log info;\n` +
      `events {}\nhttp { access_log ${dir}/logs/access.log; server { listen 127.0.0.1:${port}; root ${dir}/html; } }\n`,
  );
  const pidPath = join(dir, 'logs/nginx.pid');
  try {
    const r = kind === 'redis2d' ? await runCmd(['-e', '/dev/null', '-p', dir, '-c', conf]) : await runCmd(['-e', '/dev/null', '-p', `${dir}/`, '-c', conf], NGINX);
    if (r.code !== 0) throw new Error(`${kind} did not start: ${r.stderr}`);
    const master = await waitFor('the pid file', () => readPid(pidPath), 15000);
    const worker = await waitFor('a worker', () => childPids(master)[0], 15000);
    const status = statusOf(await request(port, '/'));
    // USR1: the master reopens the logs and gives them to the workers' user
    renameSync(join(dir, 'logs/access.log'), join(dir, 'logs/access.old'));
    process.kill(master, 'SIGUSR1');
    await waitFor('a new access.log', () => existsSync(join(dir, 'logs/access.log')), 15000);
    await new Promise((r) => setTimeout(r, 300));
    await request(port, '/');
    await new Promise((r) => setTimeout(r, 200));
    const st = statSync(join(dir, 'logs/access.log'));
    const owners = `access.log uid ${st.uid} mode ${(st.mode & 0o777).toString(8)} size>0 ${st.size > 0}`;
    return { worker: ids(worker), status, owners };
  } finally {
    await killTree(readPid(pidPath));
    cleanup(dir);
  }
}

t.test('as root: the workers become the user', { skip: isRoot ? false : 'not root' }, async (t) => {
  const cases: string[] = ['', hasWwwData ? 'user www-data;' : '', hasWwwData ? 'user www-data nogroup;' : ''].filter((c, i) => i === 0 || c);
  for (const userLine of cases) {
    const mine = await serve('redis2d', userLine);
    t.equal(mine.status, 200, `${userLine || 'no user'}: served`);
    if (userLine === '') t.equal(mine.worker, 'Uid: 65534 65534 65534 65534; Gid: 65534 65534 65534 65534; Groups: 65534', 'nobody:nogroup by default');
    if (!hasNginx) continue;
    const theirs = await serve('nginx', userLine);
    t.same(mine, theirs, `${userLine || 'no user'}: as nginx`);
  }
});

/** run `-t` on a config (as `asUser` through runuser when given) under both programs */
function test(dir: string, body: string, asUser?: string): { mine: string[]; theirs: string[] | undefined; code: number | null } {
  const conf = join(dir, 'test.conf');
  writeFileSync(conf, body);
  chmodSync(conf, 0o644);
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const wrap = (cmd: string[]): string[] => (asUser ? ['runuser', '-u', asUser, '--', ...cmd] : cmd);
  // through /usr/bin/env: tap wraps direct node spawns with its loaders
  const ours = wrap(['/usr/bin/env', '-u', 'NODE_OPTIONS', process.execPath, BIN, '-t', '-e', '/dev/null', '-p', dir, '-c', conf]);
  const r = spawnSync(ours[0]!, ours.slice(1), { encoding: 'latin1', env });
  let theirs: string[] | undefined;
  if (hasNginx) {
    const ngx = wrap([NGINX, '-t', '-e', '/dev/null', '-p', `${dir}/`, '-c', conf]);
    const n = spawnSync(ngx[0]!, ngx.slice(1), { encoding: 'latin1', env });
    theirs = [`exit ${n.status}`, ...messages(n.stderr, 'nginx', dir)];
  }
  return { mine: [`exit ${r.status}`, ...messages(r.stderr, 'redis2d', dir)], theirs, code: r.status };
}

t.test('as root: -t names an unknown user or group as nginx', { skip: isRoot ? false : 'not root' }, async (t) => {
  const dir = openPrefix('user-t');
  t.teardown(() => cleanup(dir));
  const tail = `pid ${dir}/logs/t.pid;\nevents {}\nhttp {}\n`;
  const cases: Array<[string, string]> = [
    ['unknown user', 'user nosuchuser;'],
    ['a user whose name is no group', 'user nobody;'],
    ['unknown group', 'user nobody nosuchgroup;'],
    ['a number is no name', 'user 65534;'],
    ['duplicate', 'user nobody nogroup;\nuser nobody nogroup;'],
    ['good', 'user nobody nogroup;'],
  ];
  for (const [name, line] of cases) {
    const r = test(dir, `${line}\n${tail}`);
    if (name === 'unknown user') t.same(r.mine, ['exit 1', '[emerg] getpwnam("nosuchuser") failed in P/test.conf:1', 'configuration file P/test.conf test failed']);
    if (r.theirs) t.same(r.mine, r.theirs, `${name}: as nginx`);
  }
});

t.test('as nobody: user ignored with a warning, files -t cannot open', { skip: isRoot && hasRunuser ? false : 'needs root and runuser' }, async (t) => {
  const dir = openPrefix('user-nobody');
  t.teardown(() => cleanup(dir));
  const ro = join(dir, 'ro');
  mkdirSync(ro);
  chmodSync(ro, 0o755);
  mkdirSync(join(dir, 'adir'));
  chmodSync(join(dir, 'adir'), 0o777);
  const pid = `pid ${dir}/logs/t.pid;`;
  const cases: Array<[string, string]> = [
    ['user ignored', `user www-data;\n${pid}\nevents {}\nhttp {}\n`],
    ['two users, two warnings', `user a;\nuser b;\n${pid}\nevents {}\nhttp {}\n`],
    ['pid file in a directory nobody cannot write', `pid ${ro}/n.pid;\nevents {}\nhttp {}\n`],
    ['error log nobody cannot create', `${pid}\nerror_log ${ro}/e.log;\nevents {}\nhttp {}\n`],
    ['access log nobody cannot create', `${pid}\nerror_log ${dir}/logs/e.log;\nevents {}\nhttp { access_log ${ro}/a.log; }\n`],
    ['a server-level access log', `${pid}\nerror_log ${dir}/logs/e.log;\nevents {}\nhttp { server { listen 127.0.0.1:1; root ${ro}; access_log ${ro}/b.log; } }\n`],
    ['an error log that is a directory', `${pid}\nerror_log ${dir}/adir;\nevents {}\nhttp {}\n`],
    ['all writable', `${pid}\nerror_log ${dir}/logs/e.log;\nevents {}\nhttp { access_log ${dir}/logs/a.log; }\n`],
  ];
  for (const [name, body] of cases) {
    const r = test(dir, body, 'nobody');
    if (name === 'pid file in a directory nobody cannot write') {
      t.same(r.mine, ['exit 1', 'the configuration file P/test.conf syntax is ok', '[emerg] open() "P/ro/n.pid" failed (13: Permission denied)', 'configuration file P/test.conf test failed']);
    }
    if (name === 'user ignored') {
      t.match(r.mine[1], /^\[warn\] the "user" directive makes sense only if the master process runs with super-user privileges, ignored in P\/test\.conf:1$/);
    }
    if (r.theirs) t.same(r.mine, r.theirs, `${name}: as nginx`);
  }
  t.ok(existsSync(join(dir, 'logs/t.pid')), '-t leaves the pid file it opened, as nginx');
});
