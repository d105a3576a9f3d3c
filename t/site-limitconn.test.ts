import t from 'tap';
import { raw, startNginx, startRedis2d, type Running } from './helpers/server.js';
import { LOAD_ECHO, logLines, request, skipEcho, sleep } from './helpers/site.js';

/*
 * limit_conn against Debian's nginx: requests that stay in flight
 * (echo_sleep) counted per key; the same statuses, bodies
 * ($limit_conn_status) and log lines for each timeline. Requests sent
 * together are compared as sorted lists (which connection is refused is
 * the scheduler's choice); a counter goes back when its request ends, and
 * at once when a later limit of the same request refuses it.
 */

const HTTP = `
  access_log off;
  default_type text/plain;
  limit_conn_zone $arg_k zone=c:32k;
  limit_conn_zone $arg_k zone=c2:32k;
  server {
    listen 127.0.0.1:{port};
    location /c { limit_conn c 2; echo_sleep 0.3; echo "c $limit_conn_status"; }
    location /st { limit_conn c 1; limit_conn_status 429; limit_conn_log_level warn; echo_sleep 0.3; echo "st $limit_conn_status"; }
    location /dry { limit_conn c 1; limit_conn_dry_run on; echo_sleep 0.3; echo "dry $limit_conn_status"; }
    location /two { limit_conn c 3; limit_conn c2 1; echo_sleep 0.3; echo "two $limit_conn_status"; }
    location /fast { limit_conn c 1; echo "fast $limit_conn_status"; }
    location /none { echo "none [$limit_conn_status]"; }
    location /long { limit_conn c 1; echo "long $limit_conn_status"; }
  }
`;

interface Step {
  at: number;
  path: string;
}
const at = (ms: number, n: number, path: string): Step[] => Array.from({ length: n }, () => ({ at: ms, path }));

const timelines: Record<string, Step[]> = {
  basic: [...at(0, 4, '/c?k=a'), ...at(500, 1, '/c?k=a')],
  status: at(0, 3, '/st?k=b'),
  dry: at(0, 3, '/dry?k=c'),
  // /two: c allows 3, c2 only 1; the refused ones give their c counter back at once, so /c still has room
  two: [...at(0, 3, '/two?k=d'), ...at(100, 1, '/c?k=d'), ...at(120, 1, '/c?k=d')],
  sequential: [0, 50, 100, 150].flatMap((ms) => at(ms, 1, '/fast?k=e')),
  emptykey: at(0, 3, '/c'),
  none: at(0, 2, '/none?k=f'),
  longkey: at(0, 2, `/long?k=${'x'.repeat(300)}`),
};

async function runAll(s: Running): Promise<Record<string, { lines: string[]; log: string[] }>> {
  const out: Record<string, { lines: string[]; log: string[] }> = {};
  let seen = 0;
  for (const [name, steps] of Object.entries(timelines)) {
    const t0 = Date.now();
    const lines = await Promise.all(
      steps.map(async (st) => {
        await sleep(Math.max(0, st.at - (Date.now() - t0)));
        const r = await request(s.port, `GET ${st.path} HTTP/1.0\r\nHost: x\r\n\r\n`);
        return `${r.status} ${r.status === 200 ? r.raw.slice(r.raw.indexOf('\r\n\r\n') + 4).trim() : ''}`;
      }),
    );
    await sleep(50);
    const all = logLines(s, ['error', 'warn', 'notice', 'info']);
    out[name] = { lines: lines.sort(), log: all.slice(seen).map((l) => l.replace(/^(\w+) \*\d+ /, '$1 ')).sort() };
    seen = all.length;
  }
  // keep-alive: two requests one after the other on one connection both pass (the first one's counter is back)
  const ka = await raw(s.port, ['GET /st?k=g HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /st?k=g HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], 1500, 600);
  out.keepalive = { lines: (ka.match(/^HTTP\/1\.1 \d+/gm) ?? []).concat(ka.match(/st [A-Z_]+/g) ?? []), log: [] };
  return out;
}

t.test('limit_conn timelines: statuses, bodies and log lines as nginx', { skip: skipEcho }, async (t) => {
  const ng = await startNginx(HTTP, LOAD_ECHO);
  let theirs: Awaited<ReturnType<typeof runAll>>;
  try {
    theirs = await runAll(ng);
  } finally {
    await ng.stop();
  }
  const rd = await startRedis2d(HTTP);
  let ours: Awaited<ReturnType<typeof runAll>>;
  try {
    ours = await runAll(rd);
  } finally {
    await rd.stop();
  }
  for (const name of [...Object.keys(timelines), 'keepalive']) {
    t.same(ours[name]!.lines, theirs[name]!.lines, `${name}: statuses and bodies`);
    t.same(ours[name]!.log, theirs[name]!.log, `${name}: log lines`);
  }
  t.same(theirs.basic!.lines, ['200 c PASSED', '200 c PASSED', '200 c PASSED', '503 ', '503 '], 'two at a time, then room again');
  t.ok(theirs.basic!.log.includes('error limiting connections by zone "c", client: 127.0.0.1, server: , request: "GET /c?k=a HTTP/1.0", host: "x"'));
  t.same(theirs.keepalive!.lines, ['HTTP/1.1 200', 'HTTP/1.1 200', 'st PASSED', 'st PASSED'], 'keep-alive requests one after the other');
});
