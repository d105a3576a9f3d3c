import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { chunkedBody } from './helpers/http_redis.js';
import { alive, BIN, cleanup, readPid, request, ROOT, runCmd, tempPrefix, waitFor } from './helpers/proc.js';
import { freePort, startRedis } from './helpers/redis.js';

/*
 * contrib/redis2d.service: `systemd-analyze verify` accepts it (when
 * installed), and its Exec lines, run as systemd would run them against a
 * config of ours (paths mapped into a temp dir), keep the Type=forking
 * contract: ExecStartPre judges the config, ExecStart returns once the
 * master runs and PIDFile names it, ExecReload swaps the config, ExecStop
 * stops it through the pid file.
 */

const UNIT = join(ROOT, 'contrib/redis2d.service');
const ANALYZE = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find(existsSync);
const SSD = '/sbin/start-stop-daemon';

/** the [Service] entries of a unit, in order (Exec lines may repeat) */
function service(text: string): [string, string][] {
  const out: [string, string][] = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) section = s[1]!;
    else if (section === 'Service') {
      const i = line.indexOf('=');
      out.push([line.slice(0, i), line.slice(i + 1)]);
    }
  }
  return out;
}

/** systemd's command line splitting (quotes, no variables in ours); the `-` prefix is dropped */
function words(cmd: string): { ignoreFailure: boolean; argv: string[] } {
  const argv: string[] = [];
  const re = /'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(cmd); m; m = re.exec(cmd)) argv.push(m[1] ?? m[2]?.replace(/\\(.)/g, '$1') ?? m[3]!);
  const ignoreFailure = argv[0]!.startsWith('-');
  if (ignoreFailure) argv[0] = argv[0]!.slice(1);
  return { ignoreFailure, argv };
}

t.test('the unit has the Debian nginx.service shape', async (t) => {
  const s = service(readFileSync(UNIT, 'utf8'));
  const get = (k: string): string | undefined => s.find(([key]) => key === k)?.[1];
  t.equal(get('Type'), 'forking');
  const pidFile = get('PIDFile')!;
  t.ok(pidFile, 'PIDFile is set');
  t.match(get('ExecStartPre')!, /^redis2d -t -q /, 'ExecStartPre is redis2d -t -q');
  t.match(get('ExecReload')!, / -s reload$/, 'ExecReload is redis2d -s reload');
  const stop = words(get('ExecStop')!);
  t.match(stop.argv.join(' '), /start-stop-daemon .*--retry QUIT\/5 --pidfile/, 'ExecStop: QUIT, then TERM after 5 s');
  t.equal(stop.argv[stop.argv.indexOf('--pidfile') + 1], pidFile, 'ExecStop uses the PIDFile');
  for (const k of ['ExecStartPre', 'ExecStart', 'ExecReload']) t.match(get(k)!, "-g 'daemon on; master_process on;'", `${k} forces daemon and master`);
});

t.test('systemd-analyze verify accepts the unit', { skip: ANALYZE ? false : 'systemd-analyze not installed (apt-get install systemd)' }, async (t) => {
  const dir = tempPrefix('unit');
  t.teardown(() => cleanup(dir));
  // systemd resolves the bare `redis2d` on its own PATH; verify this checkout's instead of an installed one
  const unit = join(dir, 'redis2d.service');
  writeFileSync(unit, readFileSync(UNIT, 'utf8').replace(/^(Exec\w+=-?)redis2d /gm, `$1${BIN} `));
  const r = spawnSync(ANALYZE!, ['verify', unit], { encoding: 'utf8', timeout: 30000 });
  t.equal(r.status, 0, 'exit 0');
  t.equal(r.stderr.trim(), '', 'no warning');
});

t.test("the unit's Exec lines start, reload and stop a master", { skip: existsSync(SSD) ? false : `${SSD} not found (Debian's dpkg package)` }, async (t) => {
  const dir = tempPrefix('systemd');
  t.teardown(() => cleanup(dir));
  const redis = await startRedis(t);
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  const pidFile = join(dir, 'redis2d.pid');
  mkdirSync(join(dir, 'var-log'));
  const write = (v: string): void =>
    writeFileSync(
      conf,
      `worker_processes 1;
error_log ${dir}/logs/error.log warn;
pid ${pidFile};
events { worker_connections 64; }
http {
    access_log off;
    upstream redis { server 127.0.0.1:${redis.port}; }
    server {
        listen 127.0.0.1:${port};
        location = /v { return 200 "${v}\\n"; }
        location = /ping { redis2_query ping; redis2_pass redis; }
    }
}
`,
    );
  write('v1');

  const s = service(readFileSync(UNIT, 'utf8'));
  const unitPid = s.find(([k]) => k === 'PIDFile')![1];
  const map = (a: string): string =>
    a.replace('/etc/redis2d/nginx.conf', conf).replace(unitPid, pidFile).replace('/var/log/redis2d/', `${dir}/var-log/`);
  const exec = async (key: string) => {
    const { ignoreFailure, argv } = words(s.find(([k]) => k === key)![1]);
    const args = argv.slice(1).map(map);
    const r = argv[0] === 'redis2d' ? await runCmd(args) : await runCmd(args, argv[0], 20000);
    return { ...r, ignoreFailure };
  };
  let master: number | undefined;
  t.teardown(() => {
    if (master && alive(master)) process.kill(master, 'SIGKILL');
  });

  const pre = await exec('ExecStartPre');
  t.equal(pre.code, 0, 'ExecStartPre: the config is judged good');
  t.equal(pre.stderr, '', 'quietly (-q)');

  const start = await exec('ExecStart');
  t.equal(start.code, 0, 'ExecStart exits 0 (the master forked)');
  master = readPid(pidFile);
  t.ok(master && alive(master), 'PIDFile names a live master when ExecStart returns');
  t.equal((await request(port, '/v')).endsWith('v1\n'), true, 'serves');
  t.equal(chunkedBody(await request(port, '/ping')), '+PONG\r\n', 'reaches Redis');

  write('v2');
  const reload = await exec('ExecReload');
  t.equal(reload.code, 0, 'ExecReload exits 0');
  await waitFor('the new config', async () => (await request(port, '/v')).endsWith('v2\n'), 10000);
  t.equal(readPid(pidFile), master, 'the same master after reload');

  writeFileSync(conf, `${readFileSync(conf, 'utf8')}no_such_directive on;\n`);
  const broken = await exec('ExecStartPre');
  t.equal(broken.code, 1, 'ExecStartPre refuses a broken config');
  t.match(broken.stderr, 'unknown directive "no_such_directive"', "with nginx's message");

  const stop = await exec('ExecStop');
  t.equal(stop.code, 0, 'ExecStop exits 0');
  t.ok(stop.ignoreFailure, "ExecStop's failure is ignored (the '-' prefix), as in nginx.service");
  t.notOk(alive(master!), 'the master is gone');
  t.notOk(existsSync(pidFile), 'the pid file is removed');
});
