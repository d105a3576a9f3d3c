import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LOAD_ECHO, logLines, request, skipEcho, sleep, startWorkers } from './helpers/site.js';
import { startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * Shared zones with two workers (docs/behaviour.md §"Shared zones"):
 * limit_req's buckets and limit_conn's counters are the same whichever
 * worker a connection lands on, as nginx's shared memory makes them. Many
 * connections at once reach both workers ($pid in the answers says so);
 * the counts of passed and refused requests are nginx's, and they are the
 * limits' own numbers (a per-worker copy would let twice as many through).
 *
 * And a full zone, one worker: limit_req drops its least recently used
 * bucket, and holds exactly as many keys as nginx's slab allocator gives
 * room for (found by filling a zone, then asking again from the newest key
 * back: the kept ones answer 503, the first dropped one passes); a node too
 * big for the zone is nginx's alert and 503; limit_conn out of room is
 * nginx's crit line and 503.
 */

const HTTP = `
  access_log off;
  default_type text/plain;
  limit_req_zone $arg_k zone=z:32k rate=1r/m;
  limit_conn_zone $arg_k zone=c:32k;
  limit_req_zone $arg_k zone=s:32k rate=2r/s;
  server {
    listen 127.0.0.1:{port};
    location /d { limit_req zone=s burst=3; echo "$pid $limit_req_status"; }
    location /dry { limit_req zone=z burst=4 nodelay; limit_req_dry_run on; echo "$pid $limit_req_status"; }
    location /r { limit_req zone=z burst=4 nodelay; echo "$pid $limit_req_status"; }
    location /c { limit_conn c 3; echo_sleep 0.5; echo "$pid $limit_conn_status"; }
  }
`;

interface Tally {
  statuses: Record<string, number>;
  pids: number;
}

async function burst(s: Running, path: string, n: number): Promise<Tally> {
  const rs = await Promise.all(Array.from({ length: n }, () => request(s.port, `GET ${path} HTTP/1.0\r\nHost: x\r\n\r\n`)));
  const statuses: Record<string, number> = {};
  const pids = new Set<string>();
  for (const r of rs) {
    const body = r.raw.slice(r.raw.indexOf('\r\n\r\n') + 4).trim();
    const [pid, st] = r.status === 200 ? body.split(' ') : ['', String(r.status)];
    if (pid) pids.add(pid);
    statuses[st!] = (statuses[st!] ?? 0) + 1;
  }
  return { statuses, pids: pids.size };
}

async function scenario(kind: 'nginx' | 'redis2d'): Promise<Record<string, Tally>> {
  const s = await startWorkers(kind, HTTP, 2, kind === 'nginx' ? LOAD_ECHO : '');
  try {
    // the kernel may hand a burst of connections to one worker: ask again (new key) until both answered
    let dry = await burst(s, '/dry?k=a0', 40);
    for (let i = 1; i < 5 && dry.pids < 2; i++) dry = await burst(s, `/dry?k=a${i}`, 40);
    return {
      dry,
      real: await burst(s, '/r?k=b', 40),
      conn: await burst(s, '/c?k=c', 12),
      // delays across workers: the master's answer, then the worker's timer
      delay: await burst(s, '/d?k=d', 6),
    };
  } finally {
    await s.stop();
  }
}

t.test('two workers share limit_req and limit_conn zones, as nginx', { skip: skipEcho }, async (t) => {
  const ng = await scenario('nginx');
  const rd = await scenario('redis2d');
  for (const name of ['dry', 'real', 'conn', 'delay']) t.same(rd[name]!.statuses, ng[name]!.statuses, `${name}: the same counts`);
  t.same(rd.dry!.statuses, { PASSED: 5, REJECTED_DRY_RUN: 35 }, 'burst=4: five of forty pass, over both workers');
  t.same(rd.real!.statuses, { PASSED: 5, '503': 35 });
  t.same(rd.conn!.statuses, { PASSED: 3, '503': 9 }, 'limit_conn 3 over both workers');
  t.same(rd.delay!.statuses, { PASSED: 1, DELAYED: 3, '503': 2 }, 'burst=3: one at once, three delayed, two refused');
  // both workers answered (else the test proves nothing about sharing)
  t.equal(rd.dry!.pids, 2, 'redis2d: both workers answered');
  t.comment(`nginx: ${ng.dry!.pids} worker(s) answered the burst`);
});

const FULL = `
  access_log off;
  default_type text/plain;
  large_client_header_buffers 4 64k;
  limit_req_zone $arg_k zone=small:32k rate=1r/m;
  limit_req_zone $arg_k zone=mid:64k rate=1r/m;
  limit_req_zone $http_x_key zone=tiny:32k rate=1r/m;
  limit_conn_zone $arg_k zone=cz:32k;
  server {
    listen 127.0.0.1:{port};
    location /small { limit_req zone=small; echo ok; }
    location /mid { limit_req zone=mid; echo ok; }
    location /huge { limit_req zone=tiny; echo ok; }
    location /conn { limit_conn cz 1; echo_sleep 0.6; echo ok; }
  }
`;

/** how many keys of `len` bytes a zone kept after `n` were put in */
async function kept(s: Running, path: string, n: number, len: number): Promise<number> {
  const key = (i: number): string => String(i).padStart(len, 'k');
  for (let i = 1; i <= n; i++) await request(s.port, `GET ${path}?k=${key(i)} HTTP/1.0\r\n\r\n`);
  let present = 0;
  for (let i = n; i >= 1; i--) {
    const r = await request(s.port, `GET ${path}?k=${key(i)} HTTP/1.0\r\n\r\n`);
    if (r.status === 200) break;
    present++;
  }
  return present;
}

async function full(s: Running): Promise<{ counts: number[]; huge: number; conn: Record<string, number>; log: string[] }> {
  const counts = [await kept(s, '/small', 260, 4), await kept(s, '/mid', 520, 20)];
  const huge = (await request(s.port, `GET /huge HTTP/1.0\r\nX-Key: ${'h'.repeat(30000)}\r\n\r\n`)).status;
  const rs = await Promise.all(
    Array.from({ length: 45 }, (_, i) => request(s.port, `GET /conn?k=${String(i).padStart(255, 'c')} HTTP/1.0\r\n\r\n`)),
  );
  const conn: Record<string, number> = {};
  for (const r of rs) conn[r.status] = (conn[r.status] ?? 0) + 1;
  await new Promise((r) => setTimeout(r, 100));
  const log = logLines(s, ['alert', 'crit']).map((l) => l.replace(/^(\w+) \*\d+ /, '$1 '));
  return { counts, huge, conn, log: [...new Set(log)] };
}

t.test("a full zone: LRU eviction at nginx's count, and the out-of-room answers", { skip: skipEcho }, async (t) => {
  const ng = await startNginx(FULL, LOAD_ECHO);
  let theirs: Awaited<ReturnType<typeof full>>;
  try {
    theirs = await full(ng);
  } finally {
    await ng.stop();
  }
  const rd = await startRedis2d(FULL);
  let ours: Awaited<ReturnType<typeof full>>;
  try {
    ours = await full(rd);
  } finally {
    await rd.stop();
  }
  t.same(ours.counts, theirs.counts, `keys a zone holds (nginx: ${theirs.counts.join(', ')})`);
  t.same(theirs.counts, [191, 447], 'the counts themselves (32k with 4-byte keys, 64k with 20-byte keys)');
  t.equal(ours.huge, theirs.huge, 'a node bigger than the zone');
  t.equal(theirs.huge, 503);
  t.same(ours.conn, theirs.conn, 'limit_conn when its zone is full');
  t.ok((theirs.conn['503'] ?? 0) > 0 && (theirs.conn['200'] ?? 0) > 0, `some held, some refused (${JSON.stringify(theirs.conn)})`);
  t.same(ours.log, theirs.log, 'the alert and crit lines');
  t.ok(theirs.log.includes('alert could not allocate node in limit_req zone "tiny"'), 'nginx logged the alert');
});

const RELOAD = `
  access_log off;
  default_type text/plain;
  limit_req_zone $arg_k zone=keep:32k rate=1r/m;
  server {
    listen 127.0.0.1:{port};
    location / { limit_req zone=keep; echo "ok"; }
  }
`;

/** statuses around two reloads: one that keeps the zone (its buckets live on), one that changes its key (refused) */
async function reloads(s: Running): Promise<{ statuses: number[]; log: string[] }> {
  const statuses: number[] = [];
  const get = async (): Promise<void> => {
    statuses.push((await request(s.port, 'GET /?k=a HTTP/1.0\r\n\r\n')).status);
  };
  await get();
  await get();
  const conf = join(s.dir, 'nginx.conf');
  const text = readFileSync(conf, 'latin1');
  // the same zone, another location: the bucket of `a` is still full
  // a reload is over when the new workers start (and the old ones were told to quit), or when it was refused
  const starts = (): number => (s.errorLog().match(/start worker process /g) ?? []).length;
  const until = async (done: () => boolean): Promise<void> => {
    for (let i = 0; i < 100 && !done(); i++) await sleep(100);
    await sleep(300);
  };
  const before = starts();
  writeFileSync(conf, text.replace('location / {', 'location /x { echo x; }\n    location / {'));
  process.kill(s.pid, 'SIGHUP');
  await until(() => starts() >= before + 2);
  await get();
  writeFileSync(conf, text.replace('$arg_k zone=keep', '$arg_j zone=keep'));
  process.kill(s.pid, 'SIGHUP');
  await until(() => s.errorLog().includes('while previously it used'));
  await get();
  return { statuses, log: logLines(s, ['emerg']) };
}

/*
 * Two workers (the master owns the zones, as nginx's shared memory outlives
 * its workers; with one worker redis2d's worker owns them and they start
 * empty after a reload: docs/behaviour.md §14). nginx with master_process
 * off cannot serve as the oracle here: it does not survive a reload with
 * dynamic modules loaded.
 */
t.test('reloads: a kept zone keeps its buckets; its key may not change', { skip: skipEcho }, async (t) => {
  const ng = await startWorkers('nginx', RELOAD, 2, LOAD_ECHO);
  let theirs: Awaited<ReturnType<typeof reloads>>;
  try {
    theirs = await reloads(ng);
  } finally {
    await ng.stop();
  }
  const rd = await startWorkers('redis2d', RELOAD, 2);
  let ours: Awaited<ReturnType<typeof reloads>>;
  try {
    ours = await reloads(rd);
  } finally {
    await rd.stop();
  }
  t.same(ours.statuses, theirs.statuses, `statuses (nginx: ${theirs.statuses.join(', ')})`);
  t.same(theirs.statuses, [200, 503, 503, 503]);
  t.same(ours.log, theirs.log, 'the refused reload');
  t.same(theirs.log, ['emerg limit_req "keep" uses the "$arg_j" key while previously it used the "$arg_k" key']);
});
