import t from 'tap';
import { LOAD_ECHO, request, skipEcho, startWorkers } from './helpers/site.js';
import type { Running } from './helpers/server.js';

/*
 * Shared zones with two workers (docs/behaviour.md §"Shared zones"):
 * limit_req's buckets and limit_conn's counters are the same whichever
 * worker a connection lands on, as nginx's shared memory makes them. Many
 * connections at once reach both workers ($pid in the answers says so);
 * the counts of passed and refused requests are nginx's, and they are the
 * limits' own numbers (a per-worker copy would let twice as many through).
 */

const HTTP = `
  access_log off;
  default_type text/plain;
  limit_req_zone $arg_k zone=z:32k rate=1r/m;
  limit_conn_zone $arg_k zone=c:32k;
  server {
    listen 127.0.0.1:{port};
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
    return {
      dry: await burst(s, '/dry?k=a', 40),
      real: await burst(s, '/r?k=b', 40),
      conn: await burst(s, '/c?k=c', 12),
    };
  } finally {
    await s.stop();
  }
}

t.test('two workers share limit_req and limit_conn zones, as nginx', { skip: skipEcho }, async (t) => {
  const ng = await scenario('nginx');
  const rd = await scenario('redis2d');
  for (const name of ['dry', 'real', 'conn']) t.same(rd[name]!.statuses, ng[name]!.statuses, `${name}: the same counts`);
  t.same(rd.dry!.statuses, { PASSED: 5, REJECTED_DRY_RUN: 35 }, 'burst=4: five of forty pass, over both workers');
  t.same(rd.real!.statuses, { PASSED: 5, '503': 35 });
  t.same(rd.conn!.statuses, { PASSED: 3, '503': 9 }, 'limit_conn 3 over both workers');
  // both workers answered (else the test proves nothing about sharing)
  t.equal(rd.dry!.pids, 2, 'redis2d: both workers answered');
  t.equal(ng.dry!.pids, 2, 'nginx: both workers answered');
});
