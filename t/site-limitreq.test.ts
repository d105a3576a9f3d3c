import t from 'tap';
import { startNginx, startRedis2d, type Running } from './helpers/server.js';
import { LOAD_ECHO, logLines, request, skipEcho, sleep } from './helpers/site.js';

/*
 * limit_req against Debian's nginx: scripted timelines (requests sent at
 * fixed offsets, each on its own connection) give the same statuses, the
 * same bodies ($limit_req_status) and the same error-log lines. Zones with
 * rate=1r/m leak nothing between requests a few ms apart, so their
 * `excess:` figures are exact (compared to 0.01); the 2r/s zone leaks
 * 2/1000 per ms, so its figures are compared to the unit. Delays are checked from below
 * (a delayed request never answers before its delay; no upper bound: the
 * machine may be slow).
 */

const HTTP = `
  access_log off;
  default_type text/plain;
  limit_req_zone $arg_k zone=m:32k rate=1r/m;
  limit_req_zone $arg_k zone=two:32k rate=1r/m;
  limit_req_zone $arg_k zone=s:32k rate=2r/s;
  limit_req_zone "$arg_k$arg_j" zone=big:1m rate=60r/m;
  server {
    listen 127.0.0.1:{port};
    location /m { limit_req zone=m burst=3 nodelay; echo "m $limit_req_status"; }
    location /zero { limit_req zone=m; echo "zero $limit_req_status"; }
    location /dry { limit_req zone=m burst=1 nodelay; limit_req_dry_run on; echo "dry $limit_req_status"; }
    location /st { limit_req zone=m; limit_req_status 429; limit_req_log_level warn; echo "st $limit_req_status"; }
    location /info { limit_req zone=s burst=1; limit_req_log_level info; echo "info $limit_req_status"; }
    location /leave { limit_req zone=m burst=1; echo "leave $limit_req_status"; }
    location /d { limit_req zone=s burst=3; echo "d $limit_req_status"; }
    location /dd { limit_req zone=s burst=3 delay=2; echo "dd $limit_req_status"; }
    location /multi { limit_req zone=m burst=5 nodelay; limit_req zone=two burst=1 nodelay; echo "multi $limit_req_status"; }
    location /multid { limit_req zone=two burst=5 nodelay; limit_req zone=s burst=5; echo "multid $limit_req_status"; }
    location /inherit { echo "inherit [$limit_req_status]"; }
    location /sub { limit_req zone=m nodelay; echo "sub $limit_req_status"; }
    location /big { limit_req zone=big burst=100 nodelay; echo "big"; }
    limit_req zone=two burst=2 nodelay;
  }
`;

interface Step {
  at: number;
  path: string;
  /** the client gives up after this many ms (default: waits for the answer) */
  timeout?: number;
}

/** all at once: which connection gets which answer is the scheduler's choice, so results are compared sorted */
const together = (n: number, path: string): Step[] => Array.from({ length: n }, () => ({ at: 0, path }));

/** requests at offsets (ms) from the start, all in flight at once */
const timelines: Record<string, Step[]> = {
  nodelay: [0, 10, 20, 30, 40, 50].map((at) => ({ at, path: '/m?k=a' })),
  zero: [0, 10, 20].map((at) => ({ at, path: '/zero?k=b' })),
  dry: [0, 10, 20, 30].map((at) => ({ at, path: '/dry?k=c' })),
  status: [0, 10, 20].map((at) => ({ at, path: '/st?k=d' })),
  info: together(3, '/info?k=e'),
  // the delayed client leaves: nginx logs it and ends the request (499)
  leave: [
    { at: 0, path: '/leave?k=l' },
    { at: 10, path: '/leave?k=l', timeout: 300 },
  ],
  delay: together(6, '/d?k=f'),
  delayN: together(5, '/dd?k=g'),
  multi: [0, 10, 20, 30].map((at) => ({ at, path: '/multi?k=h' })),
  multid: together(4, '/multid?k=i'),
  emptykey: [0, 10, 20].map((at) => ({ at, path: '/m' })),
  inherit: [0, 10, 20, 30].map((at) => ({ at, path: '/inherit?k=j' })),
  mixed: [
    { at: 0, path: '/m?k=k' },
    { at: 10, path: '/zero?k=k' },
    { at: 20, path: '/m?k=k' },
    { at: 30, path: '/sub?k=k' },
  ],
};

interface Result {
  lines: string[];
  ms: number[];
  log: string[];
}

/**
 * The 2r/s zone's figures to the unit (they move by 0.002 a ms; requests
 * sent together are a few ms apart); the 1r/m zones' to 0.01: they leak
 * 0.001 only when 63 ms pass between two requests of a key, which a loaded
 * machine may make happen.
 */
const roundS = (l: string): string =>
  l.replace(/excess: (\d+\.\d{3})/, (_m, x: string) =>
    l.includes('zone "s"') ? `excess: ~${Math.round(Number(x))}` : `excess: ~${(Math.round(Number(x) * 100) / 100).toFixed(2)}`,
  );

async function runAll(s: Running): Promise<Record<string, Result>> {
  const out: Record<string, Result> = {};
  let logSeen = 0;
  for (const [name, steps] of Object.entries(timelines)) {
    const t0 = Date.now();
    const results = await Promise.all(
      steps.map(async (st) => {
        await sleep(Math.max(0, st.at - (Date.now() - t0)));
        const sent = Date.now();
        const r = await request(s.port, `GET ${st.path} HTTP/1.0\r\nHost: x\r\n\r\n`, st.timeout);
        return { status: r.status, body: r.raw.slice(r.raw.indexOf('\r\n\r\n') + 4), ms: Date.now() - sent };
      }),
    );
    await sleep(50);
    const all = logLines(s, ['error', 'warn', 'notice', 'info']);
    const sorted = steps.every((st) => st.at === 0);
    const lines = results.map((r) => `${r.status} ${r.status === 200 ? r.body.trim() : ''}`);
    out[name] = {
      lines: sorted ? lines.sort() : lines,
      ms: sorted ? results.map((r) => r.ms).sort((a, b) => a - b) : results.map((r) => r.ms),
      log: all.slice(logSeen).map((l) => roundS(l.replace(/^(\w+) \*\d+ /, '$1 '))),
    };
    logSeen = all.length;
  }
  return out;
}

t.test('limit_req timelines: statuses, bodies and log lines as nginx', { skip: skipEcho }, async (t) => {
  const ng = await startNginx(HTTP, LOAD_ECHO);
  let theirs: Record<string, Result>;
  try {
    theirs = await runAll(ng);
  } finally {
    await ng.stop();
  }
  const rd = await startRedis2d(HTTP);
  let ours: Record<string, Result>;
  try {
    ours = await runAll(rd);
  } finally {
    await rd.stop();
  }
  for (const name of Object.keys(timelines)) {
    t.same(ours[name]!.lines, theirs[name]!.lines, `${name}: statuses and bodies`);
    t.same(ours[name]!.log, theirs[name]!.log, `${name}: log lines`);
  }
  // the timelines do what they are meant to (a test that cannot fail is no test)
  t.same(theirs.nodelay!.lines.map((l) => l.slice(0, 3)), ['200', '200', '200', '200', '503', '503']);
  t.ok(theirs.nodelay!.log.some((l) => l === 'error limiting requests, excess: ~4.00 by zone "m", client: 127.0.0.1, server: , request: "GET /m?k=a HTTP/1.0", host: "x"'));
  t.ok(theirs.dry!.lines.every((l) => l.startsWith('200')), 'dry run passes everything');
  t.ok(theirs.status!.lines.includes('429 '), 'limit_req_status 429');
  t.same(theirs.delayN!.lines, ['200 dd DELAYED', '200 dd PASSED', '200 dd PASSED', '200 dd PASSED', '503 '], 'delay=2: three at once');
  t.same(theirs.delay!.lines, ['200 d DELAYED', '200 d DELAYED', '200 d DELAYED', '200 d PASSED', '503 ', '503 '], 'burst=3: one at once, three delayed');
  t.same(theirs.leave!.lines, ['200 leave PASSED', '0 '], 'the client that left');
  // delays, from below: the k-th delayed /d request waits about k * 500 ms
  for (const [name, r] of [['nginx', theirs], ['redis2d', ours]] as const) {
    const d = r.delay!.ms;
    t.ok(d[3]! >= 400 && d[4]! >= 900 && d[5]! >= 1400, `${name}: /d delays (${d.join(', ')} ms)`);
    t.ok(r.delayN!.ms[4]! >= 400, `${name}: /dd delays (${r.delayN!.ms.join(', ')} ms)`);
  }
});
