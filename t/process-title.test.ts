import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { BIN, childPids, cleanup, tempPrefix, waitFor } from './helpers/proc.js';
import { freePort, raw } from './helpers/server.js';

/*
 * What ps shows, as for nginx: `redis2d: master process redis2d ARGS...`
 * (Linux cuts a title at the length of the original command line) and
 * `redis2d: worker process`.
 */

const title = (pid: number): string => readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0+$/, '').replaceAll('\0', ' ');

t.test('master and worker process titles', async (t) => {
  const dir = tempPrefix('title');
  t.teardown(() => cleanup(dir));
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const port = await freePort();
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off; master_process on; worker_processes 1; pid ${dir}/r.pid; error_log ${dir}/error.log;
events {} http { access_log off; server { listen 127.0.0.1:${port}; location / { return 200 "up\\n"; } } }
`,
  );
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const proc = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, '-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore', env });
  t.teardown(() => {
    proc.kill('SIGTERM');
  });
  await waitFor('the port', async () => ((await raw(port, 'GET / HTTP/1.0\r\n\r\n', 200)).includes('up') ? true : undefined));
  const master = proc.pid!;
  t.match(title(master), /^redis2d: master process redis2d -p /, 'the master');
  const workers = await waitFor('a worker', () => {
    const kids = childPids(master);
    return kids.length ? kids : undefined;
  });
  t.equal(title(workers[0]!), 'redis2d: worker process', 'the worker');
});
