import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { freePort } from './helpers/server.js';
import { bodyOf, childPids, cleanup, killTree, readPid, request, runCmd, tempPrefix, waitFor } from './helpers/proc.js';

/*
 * Signals and configuration hand-over under a master:
 * - a HUP that arrives while a reload runs is not dropped: it asks for one
 *   more reload once the running one ends (nginx's ngx_reconfigure flag),
 *   so the file as it is after the last HUP is what serves;
 * - workers run the configuration the master validated: the master hands
 *   them the bytes of every file it read, so a file rewritten between the
 *   master's check and a worker's start (or a worker's respawn) cannot make
 *   a worker run something unchecked.
 */

function setup(name: string, master: boolean): { dir: string; conf: string; write: (v: string, extra?: string) => void; port: () => number; setPort: (p: number) => void } {
  const dir = tempPrefix(name);
  const conf = join(dir, 'nginx.conf');
  let port = 0;
  const write = (v: string, extra = ''): void =>
    writeFileSync(
      conf,
      `daemon on; master_process ${master ? 'on' : 'off'}; worker_processes 1;\n` +
        `error_log logs/error.log notice;\nevents { worker_connections 64; }\n` +
        `http { access_log off; server { listen 127.0.0.1:${port}; location = /v { return 200 "${v}"; } location = /pid { return 200 "$pid"; } ${extra} } }\n`,
    );
  return { dir, conf, write, port: () => port, setPort: (p) => (port = p) };
}

for (const master of [true, false]) {
  t.test(`a HUP during a reload is queued, not dropped (master_process ${master ? 'on' : 'off'})`, async (t) => {
    const s = setup(`hup-${master}`, master);
    const pidPath = join(s.dir, 'logs/nginx.pid');
    t.teardown(async () => {
      await killTree(readPid(pidPath));
      cleanup(s.dir);
    });
    s.setPort(await freePort());
    s.write('one');
    const r = await runCmd(['-p', s.dir, '-c', s.conf]);
    t.equal(r.code, 0, 'started');
    const pid = readPid(pidPath)!;
    t.equal(bodyOf(await request(s.port(), '/v')), 'one');
    // the second HUP comes while the first reload is still starting workers
    s.write('two');
    process.kill(pid, 'SIGHUP');
    await new Promise((r) => setTimeout(r, 5));
    s.write('three');
    process.kill(pid, 'SIGHUP');
    await waitFor('"three" served', async () => bodyOf(await request(s.port(), '/v')) === 'three', 10000, 50);
    const log = readFileSync(join(s.dir, 'logs/error.log'), 'latin1');
    t.equal(log.match(/signal 1 \(SIGHUP\) received, reconfiguring/g)?.length, 2, 'both signals logged as they came');
    t.equal(log.match(/\[notice\] \d+#\d+: reconfiguring$/gm)?.length, 2, 'two reloads ran');
  });
}

t.test('workers run the bytes the master validated, not the file as it is later', async (t) => {
  const s = setup('handover', true);
  const pidPath = join(s.dir, 'logs/nginx.pid');
  t.teardown(async () => {
    await killTree(readPid(pidPath));
    cleanup(s.dir);
  });
  s.setPort(await freePort());
  // an included file, rewritten behind the master's back
  writeFileSync(join(s.dir, 'inc.conf'), 'location = /inc { return 200 "checked"; }\n');
  s.write('one', 'include inc.conf;');
  const r = await runCmd(['-p', s.dir, '-c', s.conf]);
  t.equal(r.code, 0, 'started');
  const master = readPid(pidPath)!;
  t.equal(bodyOf(await request(s.port(), '/inc')), 'checked');
  // the files change (to something -t would refuse), then a worker dies and is respawned
  writeFileSync(join(s.dir, 'inc.conf'), 'location = /inc { return 200 "unchecked"; } bogus_directive;\n');
  s.write('changed', 'include inc.conf;');
  const [worker] = childPids(master);
  process.kill(worker!, 'SIGKILL');
  await waitFor('a new worker', () => {
    const now = childPids(master);
    return now.length === 1 && now[0] !== worker;
  });
  await waitFor('the new worker serves', async () => (await request(s.port(), '/v').catch(() => '')).includes('200 OK'), 8000, 50);
  t.equal(bodyOf(await request(s.port(), '/v')), 'one', 'the respawned worker runs the validated config');
  t.equal(bodyOf(await request(s.port(), '/inc')), 'checked', 'with the validated include');
  // a HUP now validates the new files: refused, the old configuration keeps serving
  process.kill(master, 'SIGHUP');
  await waitFor('the refusal logged', () => readFileSync(join(s.dir, 'logs/error.log'), 'latin1').includes('unknown directive "bogus_directive"'));
  t.equal(bodyOf(await request(s.port(), '/v')), 'one');
});

t.test('daemon on: the daemon and its workers run what the foreground judged, wildcard includes too', async (t) => {
  const s = setup('daemon-snap', true);
  const pidPath = join(s.dir, 'logs/nginx.pid');
  t.teardown(async () => {
    await killTree(readPid(pidPath));
    cleanup(s.dir);
  });
  s.setPort(await freePort());
  writeFileSync(join(s.dir, 'a.inc'), 'location = /a { return 200 "a"; }\n');
  s.write('one', 'include *.inc;');
  const r = await runCmd(['-p', s.dir, '-c', s.conf]);
  t.equal(r.code, 0, 'started');
  t.equal(bodyOf(await request(s.port(), '/a')), 'a', 'the wildcard include reached the workers');
});
