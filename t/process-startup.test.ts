import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { freePort, hasNginx, NGINX } from './helpers/server.js';
import { alive, bodyOf, childPids, cleanup, killTree, readPid, request, runCmd, statusOf, tempPrefix, waitFor } from './helpers/proc.js';

/*
 * Startup and `-s` failures, compared with Debian's nginx run on the same
 * config (stderr lines and exit codes, with the program name and the temp
 * directory normalised); a worker that dies is replaced; `master_process
 * off` reloads in place.
 */

interface Pair {
  dir: string;
  conf: string;
}

/** one prefix per server kind, the same config text in each */
function pair(kind: string, text: (dir: string) => string): Pair {
  const dir = tempPrefix(kind);
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, text(dir));
  return { dir, conf };
}

async function both(text: (dir: string) => string, args: (p: Pair) => string[], prep?: (p: Pair) => void) {
  const ours = pair('startup-r', text);
  const theirs = pair('startup-n', text);
  prep?.(ours);
  prep?.(theirs);
  const [a, b] = await Promise.all([runCmd(args(ours)), hasNginx ? runCmd(args(theirs), NGINX) : Promise.resolve(undefined)]);
  const norm = (s: string, p: Pair): string => s.replaceAll(p.dir, 'DIR').replace(/^nginx: /gm, 'redis2d: ');
  const out = {
    ours: { code: a.code, stderr: norm(a.stderr, ours) },
    nginx: b ? { code: b.code, stderr: norm(b.stderr, theirs) } : undefined,
    errLog: (which: 'ours' | 'nginx', name = 'logs/error.log') => {
      try {
        return readFileSync(join(which === 'ours' ? ours.dir : theirs.dir, name), 'latin1');
      } catch {
        return '';
      }
    },
  };
  t.teardown(() => {
    cleanup(ours.dir);
    cleanup(theirs.dir);
  });
  return out;
}

const basic = (port: number, main = '', http = '') => (dir: string) =>
  `pid ${dir}/logs/nginx.pid;\ndaemon off;\nmaster_process off;\n${main}\nevents {}\nhttp {\n${http}\nserver { listen 127.0.0.1:${port}; }\n}\n`;

const sArgs = (sig: string) => (p: Pair) => ['-p', `${p.dir}/`, '-e', join(p.dir, 'logs/e.log'), '-c', p.conf, '-s', sig];

t.test('-s against no running master: the messages of nginx', async (t) => {
  const port = await freePort();
  const cases: Array<[string, ((p: Pair) => void) | undefined, string]> = [
    ['no pid file', undefined, 'redis2d: [error] open() "DIR/logs/nginx.pid" failed (2: No such file or directory)\n'],
    ['empty pid file', (p) => writeFileSync(join(p.dir, 'logs/nginx.pid'), ''), 'redis2d: [error] invalid PID number "" in "DIR/logs/nginx.pid"\n'],
    ['junk pid file', (p) => writeFileSync(join(p.dir, 'logs/nginx.pid'), 'abc\n'), 'redis2d: [error] invalid PID number "abc" in "DIR/logs/nginx.pid"\n'],
    ['dead pid', (p) => writeFileSync(join(p.dir, 'logs/nginx.pid'), '4194304\n'), 'redis2d: [alert] kill(4194304, 1) failed (3: No such process)\n'],
  ];
  for (const [name, prep, want] of cases) {
    const r = await both(basic(port), sArgs('reload'), prep);
    t.equal(r.ours.code, 1, `${name}: exit 1`);
    t.equal(r.ours.stderr, want, `${name}: stderr`);
    if (r.nginx) t.same(r.ours, r.nginx, `${name}: as nginx`);
    t.match(r.errLog('ours', 'logs/e.log'), /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[notice\] \d+#\d+: signal process started\n/, `${name}: -e log`);
  }
  const bad = await both((d) => basic(port)(d) + 'bogus;\n', sArgs('quit'));
  t.equal(bad.ours.code, 1);
  t.equal(bad.ours.stderr, 'redis2d: [emerg] unknown directive "bogus" in DIR/nginx.conf:10\n');
  if (bad.nginx) t.same(bad.ours, bad.nginx, 'a broken config: as nginx');
  const opt = await both(basic(port), sArgs('restart'));
  t.same(opt.ours, { code: 1, stderr: 'redis2d: invalid option: "-s restart"\n' });
  if (opt.nginx) t.same(opt.ours, opt.nginx, 'an unknown signal name: as nginx');
});

t.test('unopenable logs: the [emerg] of nginx, exit 1', async (t) => {
  const port = await freePort();
  const start = (p: Pair) => ['-p', `${p.dir}/`, '-e', join(p.dir, 'logs/e.log'), '-c', p.conf];
  const cases: Array<[string, string, string]> = [
    ['error_log under a file', 'error_log DIR/nginx.conf/x.log;', ''],
    ['error_log is a directory', 'error_log DIR/logs;', ''],
    ['access_log under a file', '', 'access_log DIR/nginx.conf/a.log;'],
    ['access_log is a directory', '', 'access_log DIR/logs;'],
  ];
  for (const [name, main, http] of cases) {
    const r = await both((d) => basic(port, main.replace('DIR', d), http.replace('DIR', d))(d), start);
    t.equal(r.ours.code, 1, `${name}: exit 1`);
    t.match(r.ours.stderr, /^redis2d: \[emerg\] open\(\) "DIR\/[^"]+" failed \((20: Not a directory|21: Is a directory)\)\n$/, `${name}: stderr`);
    if (r.nginx) t.same(r.ours, r.nginx, `${name}: as nginx`);
    t.match(r.errLog('ours', 'logs/e.log'), /\[emerg\] \d+#\d+: open\(\) "/, `${name}: also in the -e log`);
  }
});

t.test('port in use: five tries, then still could not bind()', async (t) => {
  const port = await freePort();
  const blocker: Server = await new Promise((res) => {
    const s = createServer();
    s.listen(port, '127.0.0.1', () => res(s));
  });
  t.teardown(() => blocker.close());
  const t0 = Date.now();
  const r = await both(basic(port), (p) => ['-p', `${p.dir}/`, '-e', join(p.dir, 'logs/e.log'), '-c', p.conf]);
  t.ok(Date.now() - t0 >= 1900, 'retried for about 2 s');
  const line = `redis2d: [emerg] bind() to 127.0.0.1:${port} failed (98: Address already in use)\n`;
  t.same(r.ours, { code: 1, stderr: line.repeat(5) + 'redis2d: [emerg] still could not bind()\n' });
  if (r.nginx) t.same(r.ours, r.nginx, 'as nginx');
});

t.test('a worker that dies is replaced, with nginx alert', async (t) => {
  const port = await freePort();
  const dir = tempPrefix('respawn');
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon on; worker_processes 1; error_log logs/error.log notice;\nevents {}\n` +
      `http { access_log off; server { listen 127.0.0.1:${port}; location / { return 200 "$pid"; } } }\n`,
  );
  const pidPath = join(dir, 'logs/nginx.pid');
  t.teardown(async () => {
    await killTree(readPid(pidPath));
    cleanup(dir);
  });
  const r = await runCmd(['-p', dir, '-c', conf]);
  t.equal(r.code, 0);
  const master = readPid(pidPath)!;
  const [w1] = childPids(master);
  t.equal(bodyOf(await request(port, '/')), String(w1));
  process.kill(w1!, 'SIGKILL');
  const w2 = await waitFor('a new worker', () => childPids(master).find((p) => p !== w1));
  await waitFor('it serves', async () => bodyOf(await request(port, '/').catch(() => '')) === String(w2));
  const log = readFileSync(join(dir, 'logs/error.log'), 'latin1');
  t.match(log, new RegExp(`\\[alert\\] ${master}#${master}: worker process ${w1} exited on signal 9\\n`));
  t.match(log, new RegExp(`\\[notice\\] ${master}#${master}: start worker process ${w2}\\n`));
});

t.test('master_process off: HUP reloads in place; a bad config keeps the old one', async (t) => {
  const port = await freePort();
  const dir = tempPrefix('single');
  mkdirSync(join(dir, 'html'));
  const conf = join(dir, 'nginx.conf');
  const write = (loc: string, tail = ''): void =>
    writeFileSync(
      conf,
      `daemon on; master_process off; error_log logs/error.log notice;\nevents {}\n` +
        `http { access_log off; server { listen 127.0.0.1:${port}; ${loc} location / { return 200 "$pid"; } } }\n${tail}`,
    );
  write('');
  const pidPath = join(dir, 'logs/nginx.pid');
  t.teardown(async () => {
    await killTree(readPid(pidPath));
    cleanup(dir);
  });
  t.equal((await runCmd(['-p', dir, '-c', conf])).code, 0);
  const pid = readPid(pidPath)!;
  t.equal(bodyOf(await request(port, '/')), String(pid), 'the process itself serves');
  t.equal(childPids(pid).length, 0, 'no workers');
  write('location = /v2 { return 200 "v2"; }');
  t.equal((await runCmd(['-p', dir, '-c', conf, '-s', 'reload'])).code, 0);
  await waitFor('/v2', async () => bodyOf(await request(port, '/v2')) === 'v2');
  write('location = /v3 { return 200 "v3"; }', 'oops;\n');
  process.kill(pid, 'SIGHUP');
  await waitFor('emerg', () => /\[emerg\] \d+#\d+: unknown directive "oops" in .*nginx\.conf:4\n/.test(readFileSync(join(dir, 'logs/error.log'), 'latin1')));
  t.equal(bodyOf(await request(port, '/v2')), 'v2', 'the old config still answers');
  t.equal(bodyOf(await request(port, "/v3")), String(pid), "no /v3: the catch-all answers");
  t.ok(alive(pid));
  t.equal((await runCmd(['-p', dir, '-c', conf, '-s', 'stop'])).code, 1, '-s refuses the broken config');
  write('');
  t.equal((await runCmd(['-p', dir, '-c', conf, '-s', 'stop'])).code, 0);
  await waitFor('exit', () => !alive(pid));
  t.equal(readPid(pidPath), undefined, 'pid file removed');
});
