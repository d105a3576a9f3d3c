import t from 'tap';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { freePort } from './helpers/server.js';
import { alive, bodyOf, childPids, cleanup, killTree, readPid, request, runCmd, statusOf, tempPrefix, waitFor } from './helpers/proc.js';

/*
 * docs/behaviour.md §8 with `daemon on; master_process on; worker_processes 2;`: both
 * workers serve, -s reload brings a new location in (no request of 200
 * keep-alive clients fails through it), a broken config is refused by -s
 * and by a HUP sent straight to the master, USR1 starts a new error.log,
 * QUIT lets a slow request finish, and the pid file comes and goes.
 */

const dir = tempPrefix('master');
const conf = join(dir, 'nginx.conf');
const pidPath = join(dir, 'logs/nginx.pid');
const errLog = join(dir, 'logs/error.log');
let port = 0;

function writeConf(extra: string, tail = ''): void {
  writeFileSync(
    conf,
    // as root, the workers stay root (else nobody, who cannot read this 0700 temp prefix)
    `${process.getuid?.() === 0 ? 'user root;\n' : ''}daemon on; master_process on; worker_processes 2;\n` +
      `error_log logs/error.log info;\n` +
      `events { worker_connections 1024; }\n` +
      `http {\n  access_log off;\n  server {\n    listen 127.0.0.1:${port};\n` +
      `    location = /pid { return 200 "$pid"; }\n` +
      `    location / { root html; }\n` +
      `    location = /slow { echo_sleep 1.2; echo "slow done"; }\n` +
      `${extra}  }\n}\n${tail}`,
  );
}

const cli = (...args: string[]) => runCmd(['-p', dir, '-c', conf, ...args]);

t.teardown(async () => {
  await killTree(readPid(pidPath));
  cleanup(dir);
});

/** worker pids seen through `return 200 $pid`, over a bounded number of concurrent connections */
async function seenPids(want: number, rounds = 10): Promise<Set<number>> {
  const seen = new Set<number>();
  for (let i = 0; i < rounds && seen.size < want; i++) {
    const res = await Promise.all(Array.from({ length: 20 }, () => request(port, '/pid')));
    for (const r of res) if (statusOf(r) === 200) seen.add(Number(bodyOf(r)));
  }
  return seen;
}

t.test('start: the foreground exits 0, the pid file names the master, both workers serve', async (t) => {
  port = await freePort();
  writeConf('');
  const r = await cli();
  t.equal(r.code, 0, 'foreground exit code');
  t.equal(r.stderr, '', 'nothing on stderr');
  const master = readPid(pidPath);
  t.ok(master && alive(master), 'pid file names a live master');
  const workers = childPids(master!);
  t.equal(workers.length, 2, 'two worker processes');
  const seen = await seenPids(2);
  t.same([...seen].sort(), [...workers].sort(), 'each worker answered, no one else did');
  t.notOk(seen.has(master!), 'the master serves no request');
});

t.test('-s reload with a new location: it appears, the workers are new', async (t) => {
  const master = readPid(pidPath)!;
  const before = childPids(master);
  t.equal(statusOf(await request(port, '/new')), 404, 'no /new yet');
  writeConf('    location = /new { return 200 "new"; }\n');
  const r = await cli('-s', 'reload');
  t.equal(r.code, 0);
  t.equal(r.stderr, '');
  await waitFor('/new', async () => statusOf(await request(port, '/new')) === 200);
  await waitFor('old workers gone', () => before.every((p) => !alive(p)));
  const after = childPids(master);
  t.equal(after.length, 2, 'still two workers');
  t.notOk(after.some((p) => before.includes(p)), 'a new generation');
  t.equal(readPid(pidPath), master, 'same master');
  t.match(readFileSync(errLog, 'latin1'), /\[notice\] \d+#\d+: signal 1 \(SIGHUP\) received, reconfiguring\n/);
  t.match(readFileSync(errLog, 'latin1'), new RegExp(`\\[notice\\] ${master}#${master}: worker process ${before[0]} exited with code 0\\n`));
});

t.test('200 keep-alive clients through a reload: no request fails', async (t) => {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 200, pipelining: 1 });
  const master = readPid(pidPath)!;
  const before = childPids(master);
  let ok = 0;
  let failed = 0;
  const errors = new Set<string>();
  let reloaded = false;
  const client = async (n: number): Promise<void> => {
    for (let i = 0; i < 15; i++) {
      if (n === 0 && i === 3 && !reloaded) {
        reloaded = true;
        const r = await cli('-s', 'reload');
        t.equal(r.code, 0, 'reload signalled');
      }
      try {
        const res = await pool.request({ path: '/pid', method: 'GET' });
        const body = await res.body.text();
        if (res.statusCode === 200 && /^\d+$/.test(body)) ok++;
        else failed++;
      } catch (e) {
        failed++;
        errors.add(String((e as Error).message));
      }
    }
  };
  await Promise.all(Array.from({ length: 200 }, (_, n) => client(n)));
  await waitFor('old workers gone', () => before.every((p) => !alive(p)));
  // keep the pool busy until the new generation is known to serve
  const late = await pool.request({ path: '/pid', method: 'GET' });
  const latePid = Number(await late.body.text());
  await pool.close();
  t.equal(failed, 0, `no failed request ${[...errors].join('; ')}`);
  t.equal(ok, 3000, 'every request answered 200');
  t.ok(childPids(master).includes(latePid), 'a new worker answers afterwards');
});

t.test('a broken config: -s reload refuses it, HUP keeps the old config and logs the [emerg]', async (t) => {
  const master = readPid(pidPath)!;
  const workers = childPids(master);
  const logBefore = readFileSync(errLog, 'latin1');
  writeConf('    location = /new { return 200 "new"; }\n', 'bogus_directive on;\n');
  const line = readFileSync(conf, 'latin1').split('\n').indexOf('bogus_directive on;') + 1;
  t.teardown(() => writeConf('    location = /new { return 200 "new"; }\n'));
  const r = await cli('-s', 'reload');
  t.equal(r.code, 1);
  t.equal(r.stderr, `redis2d: [emerg] unknown directive "bogus_directive" in ${conf}:${line}\n`);
  await new Promise((res) => setTimeout(res, 300));
  const logMid = readFileSync(errLog, 'latin1');
  t.notMatch(logMid.slice(logBefore.length), /reconfiguring/, 'the master got no signal');
  t.match(logMid.slice(logBefore.length), new RegExp(`\\[emerg\\] \\d+#\\d+: unknown directive "bogus_directive" in ${conf}:${line}\\n`), '-s logs to its -e log');

  process.kill(master, 'SIGHUP');
  const emerg = new RegExp(`\\d{4}/\\d\\d/\\d\\d \\d\\d:\\d\\d:\\d\\d \\[emerg\\] ${master}#${master}: unknown directive "bogus_directive" in ${conf.replace(/[.]/g, '\\.')}:${line}\\n`);
  await waitFor('the emerg line', () => emerg.test(readFileSync(errLog, 'latin1').slice(logMid.length)));
  t.pass('HUP logged the [emerg] line in the master');
  await new Promise((res) => setTimeout(res, 300));
  t.same(childPids(master).sort(), workers.sort(), 'the same workers still serve');
  t.equal(bodyOf(await request(port, '/new')), 'new', 'the old config answers');
});

t.test('-s reopen after renaming error.log starts a new one', async (t) => {
  const master = readPid(pidPath)!;
  renameSync(errLog, `${errLog}.old`);
  const r = await cli('-s', 'reopen');
  t.equal(r.code, 0);
  // nginx writes the reopen notices before reopening: they land in the renamed file
  const workers = childPids(master);
  const old = `${errLog}.old`;
  await waitFor('reopen notices', () => {
    const text = readFileSync(old, 'latin1');
    return text.includes(`${master}#${master}: reopening logs`) && workers.every((p) => text.includes(`${p}#${p}: reopening logs`));
  });
  t.equal(statusOf(await request(port, '/missing.html')), 404);
  const miss = new RegExp(`\\[error\\] \\d+#\\d+: \\*\\d+ open\\(\\) "${dir}/html/missing.html" failed \\(2: No such file or directory\\), client: 127\\.0\\.0\\.1, server: , request: "GET /missing.html HTTP/1\\.1", host: "localhost"\\n`);
  await waitFor('the new error.log', () => existsSync(errLog) && miss.test(readFileSync(errLog, 'latin1')));
  t.pass('the error of the next request is in the new error.log');
  t.notMatch(readFileSync(old, 'latin1'), /missing\.html/, 'and not in the renamed one');
});

t.test('-s quit waits for an in-flight slow request, then the pid file goes', async (t) => {
  const master = readPid(pidPath)!;
  const workers = childPids(master);
  const started = Date.now();
  const slow = request(port, '/slow');
  await new Promise((res) => setTimeout(res, 300));
  const r = await cli('-s', 'quit');
  t.equal(r.code, 0);
  const resp = await slow;
  t.equal(statusOf(resp), 200, 'the slow request completed');
  t.equal(bodyOf(resp).replace(/\r\n/g, '\n'), 'a\nslow done\n\n0\n\n', 'with its whole body');
  t.ok(Date.now() - started >= 1100, 'after its sleep');
  await waitFor('master exit', () => !alive(master), 5000);
  t.notOk(workers.some(alive), 'workers gone');
  t.notOk(existsSync(pidPath), 'pid file removed');
  t.match(readFileSync(errLog, 'latin1'), new RegExp(`${master}#${master}: signal 3 \\(SIGQUIT\\) received, shutting down\\n[^]*${master}#${master}: exit\\n$`));
});
