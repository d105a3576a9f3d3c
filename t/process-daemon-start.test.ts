import t from 'tap';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from './helpers/server.js';
import { alive, bodyOf, cleanup, killTree, readPid, request, runCmd, statusOf, tempPrefix, waitFor } from './helpers/proc.js';

/*
 * The start-up and stop of docs/behaviour.md §8: `daemon on` starts the
 * daemon's node before the configuration is judged; the command returns
 * once the daemon serves (pid file written, a request sent at once is
 * answered); a configuration that ends up not daemonized (bad, or `daemon
 * off` where the main file did not say it) leaves no copy behind; QUIT
 * exits at once when nothing is in flight, and only after the last bytes
 * of a response in flight have left.
 */

/** processes whose command line names `dir` (the servers of one test's prefix) */
function procsOf(dir: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').includes(dir)) out.push(Number(name));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** running (not a zombie waiting for its reaper) */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
}

const conf = (dir: string, port: number, main: string, http = ''): string =>
  `${main}
master_process off;
pid ${dir}/logs/nginx.pid;
error_log ${dir}/logs/error.log info;
events {}
http {
    access_log off;
    ${http}
    server {
        listen 127.0.0.1:${port};
        location = /t { echo hello; }
        location = /big { echo_duplicate 4000000 "ab"; }
    }
}
`;

t.test('daemon on: the command returns when the daemon serves; QUIT with nothing in flight exits at once', async (t) => {
  const dir = tempPrefix('dstart');
  const port = await freePort();
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, conf(dir, port, 'daemon on;'));
  const pidPath = join(dir, 'logs/nginx.pid');
  t.teardown(async () => {
    await killTree(readPid(pidPath));
    for (const p of procsOf(dir)) await killTree(p);
    cleanup(dir);
  });
  for (let i = 0; i < 3; i++) {
    const r = await runCmd(['-p', `${dir}/`, '-c', file]);
    t.same({ code: r.code, stderr: r.stderr }, { code: 0, stderr: '' }, `start ${i + 1}: exit 0, nothing said`);
    // at once, no waiting: the pid file is there and a request is answered
    const pid = readPid(pidPath);
    t.ok(pid !== undefined && running(pid), `start ${i + 1}: the pid file names the running daemon`);
    const resp = await request(port, '/t');
    t.equal(statusOf(resp), 200, `start ${i + 1}: a request sent as the command returns is answered`);
    t.equal(bodyOf(resp), '6\r\nhello\n\r\n0\r\n\r\n');
    t.same(procsOf(dir), [pid], `start ${i + 1}: one process serves (no early copy left)`);
    process.kill(pid!, 'SIGQUIT');
    await waitFor('the daemon to exit', () => !running(pid!), 5000, 5);
    t.notOk(readPid(pidPath), `stop ${i + 1}: the pid file is removed`);
  }
  const log = readFileSync(join(dir, 'logs/error.log'), 'latin1');
  t.equal(log.match(/\[notice\] \d+#\d+: gracefully shutting down\n/g)?.length, 3, 'each QUIT logged as nginx');
  t.equal(log.match(/\[notice\] \d+#\d+: exit\n/g)?.length, 3, 'each exit logged as nginx');
});

t.test('daemon on, a bad configuration: the error of nginx, exit 1, no daemon left', async (t) => {
  const dir = tempPrefix('dbad');
  const port = await freePort();
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, conf(dir, port, 'daemon on;', 'bogus_directive 1;'));
  t.teardown(async () => {
    for (const p of procsOf(dir)) await killTree(p);
    cleanup(dir);
  });
  const r = await runCmd(['-p', `${dir}/`, '-c', file]);
  t.equal(r.code, 1);
  t.equal(r.stderr, `redis2d: [emerg] unknown directive "bogus_directive" in ${file}:8\n`, 'said once, by the foreground');
  await waitFor('the early copy to be gone', () => procsOf(dir).filter(running).length === 0, 5000).catch(() => undefined);
  t.same(procsOf(dir).filter(running), [], 'no process of this prefix runs');
  t.notOk(readPid(join(dir, 'logs/nginx.pid')), 'no pid file');
});

t.test('daemon off in an include (the main file says nothing): the command serves itself, no copy left', async (t) => {
  const dir = tempPrefix('doff');
  const port = await freePort();
  const file = join(dir, 'nginx.conf');
  writeFileSync(join(dir, 'main.conf'), 'daemon off;\n');
  writeFileSync(file, conf(dir, port, `include ${dir}/main.conf;`));
  const pidPath = join(dir, 'logs/nginx.pid');
  let cmd: Promise<unknown> | undefined;
  t.teardown(async () => {
    await killTree(readPid(pidPath));
    for (const p of procsOf(dir)) await killTree(p);
    await cmd;
    cleanup(dir);
  });
  cmd = runCmd(['-p', `${dir}/`, '-c', file], 'redis2d', 20000);
  const pid = await waitFor('pid file', () => readPid(pidPath));
  const resp = await request(port, '/t');
  t.equal(bodyOf(resp), '6\r\nhello\n\r\n0\r\n\r\n', 'answered');
  // the foreground serves: the one process of this prefix is the pid file's
  await waitFor('one process', () => procsOf(dir).filter(running).length === 1, 5000).catch(() => undefined);
  t.same(procsOf(dir).filter(running), [pid], 'the pid file names the only process');
  process.kill(pid, 'SIGQUIT');
  await waitFor('exit', () => !alive(pid), 5000);
});

t.test('QUIT while a response is in flight: it is sent whole, then the process exits', async (t) => {
  const dir = tempPrefix('dflush');
  const port = await freePort();
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, conf(dir, port, 'daemon on;'));
  const pidPath = join(dir, 'logs/nginx.pid');
  t.teardown(async () => {
    await killTree(readPid(pidPath));
    cleanup(dir);
  });
  const r = await runCmd(['-p', `${dir}/`, '-c', file]);
  t.equal(r.code, 0);
  const pid = readPid(pidPath)!;
  // 8 MB: far more than the socket buffers hold, so most of it waits in the server while the client does not read
  const got = await new Promise<number>((res, rej) => {
    const c = connect(port, '127.0.0.1');
    let n = 0;
    c.on('error', rej);
    c.on('data', (d) => (n += d.length));
    c.on('close', () => res(n));
    c.write('GET /big HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    c.pause();
    setTimeout(() => {
      process.kill(pid, 'SIGQUIT');
      // the server must still be there, holding the rest of the response
      setTimeout(() => {
        t.ok(running(pid), 'still running while the response waits for the client');
        c.resume();
      }, 300);
    }, 300);
  });
  const headLen = 'HTTP/1.1 200 OK\r\n'.length;
  t.ok(got > 8_000_000 + headLen, `the whole body arrived (${got} bytes)`);
  await waitFor('exit', () => !running(pid), 5000, 5);
  t.notOk(readPid(pidPath), 'the pid file is removed');
});
