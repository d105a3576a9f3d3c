import t from 'tap';
import { freePort, silentServer, startRedis } from './helpers/redis.js';
import { startRedis2d } from './helpers/server.js';
import { request } from './helpers/http_redis.js';

/*
 * Failover as nginx's ngx_http_upstream_next and round robin's failure
 * accounting: a killed Redis is skipped for fail_timeout and tried again
 * after; backup servers take over when every primary is down; nothing live
 * is a 502 with `no live upstreams`; the number of tries is the number of
 * peers; a request that went out is not resent for POST.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `$upstream_addr|$upstream_status` from the X-Up header */
async function up(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string; up: string }> {
  const r = await request(port, path, { method, body: method === 'POST' ? 'x' : undefined });
  return { status: r.status, body: r.body, up: /\r\nX-Up: ([^\r]*)/.exec(r.head)?.[1] ?? '' };
}

/** error/warn lines without time, pid and connection number */
function logLines(log: string): string[] {
  return log
    .split(/\n(?=\d{4}\/\d\d\/\d\d )/)
    .map((l) => l.replace(/\n$/, ''))
    .filter((l) => / \[(error|warn)\] /.test(l))
    .map((l) => l.replace(/^\S+ \S+ (\[\w+\]) \d+#\d+: \*\d+ /, '$1 '));
}

const ctx = (path: string, upstream: string, method = 'GET'): string =>
  `, client: 127.0.0.1, server: , request: "${method} ${path} HTTP/1.1", upstream: "redis2://${upstream}", host: "x"`;

t.test('a killed primary: failover, skipped for fail_timeout, back after; then backup; then no live upstreams', async (t) => {
  const a = await startRedis(t);
  const b = await startRedis(t);
  const c = await startRedis(t);
  const A = a.addr;
  const B = b.addr;
  const C = c.addr;
  const srv = await startRedis2d(`
    upstream up { server ${A} fail_timeout=1; server ${B} fail_timeout=1; server ${C} backup; }
    server { listen 127.0.0.1:{port}; add_header X-Up "$upstream_addr|$upstream_status" always;
      location /x { redis2_query ping; redis2_pass up; } }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  t.same([(await up(p, '/x')).up, (await up(p, '/x')).up, (await up(p, '/x')).up], [`${A}|200`, `${B}|200`, `${A}|200`], 'round robin over the primaries');
  await a.kill();
  // the next pick is B, then A (dead): failover to B within the same request
  t.equal((await up(p, '/x')).up, `${B}|200`);
  const failed = await up(p, '/x');
  t.same(failed, { status: 200, body: '+PONG\r\n', up: `${A}, ${B}|502, 200` }, 'A failed, B answered');
  t.same(logLines(srv.errorLog()), [
    `[error] connect() failed (111: Connection refused) while connecting to upstream${ctx('/x', A)}`,
    `[warn] upstream server temporarily disabled while connecting to upstream${ctx('/x', A)}`,
  ]);
  for (let i = 0; i < 4; i++) t.equal((await up(p, '/x')).up, `${B}|200`, `within fail_timeout A is not tried (${i})`);

  await a.start();
  await sleep(2200); // fail_timeout=1 in whole seconds: skipped while now - checked <= 1
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add((await up(p, '/x')).up);
  t.ok(seen.has(`${A}|200`), 'A serves again after fail_timeout');
  t.equal(logLines(srv.errorLog()).length, 2, 'no new errors');

  // every primary down: the backup answers, after both were tried once
  await a.kill();
  await b.kill();
  const viaBackup = await up(p, '/x');
  t.equal(viaBackup.status, 200);
  t.match(viaBackup.up, new RegExp(`^(${A}, ${B}|${B}, ${A}), ${C}\\|502, 502, 200$`), 'both primaries tried, then the backup');
  t.equal((await up(p, '/x')).up, `${C}|200`, 'primaries are down: straight to the backup');

  // nothing live
  await c.kill();
  const last = await up(p, '/x');
  t.same(last, { status: 502, body: last.body, up: `${C}, up|502, 502` }, 'the backup fails: no live upstreams');
  const none = await up(p, '/x');
  t.same([none.status, none.up], [502, 'up|502'], 'then no peer is even tried');
  const lines = logLines(srv.errorLog());
  t.equal(lines.at(-1), `[error] no live upstreams while connecting to upstream${ctx('/x', 'up')}`, "nginx's line");
  t.equal(lines.filter((l) => l.includes('no live upstreams')).length, 2);
});

t.test('tries = number of peers; max_fails=0 never disables; single peers are never disabled', async (t) => {
  const d1 = await freePort();
  const d2 = await freePort();
  const d3 = await freePort();
  const D = [d1, d2, d3].map((p) => `127.0.0.1:${p}`);
  const srv = await startRedis2d(`
    upstream three { server ${D[0]}; server ${D[1]}; server ${D[2]}; }
    upstream nofail { server ${D[0]} max_fails=0; server ${D[1]} max_fails=0; }
    upstream one { server ${D[2]}; }
    server { listen 127.0.0.1:{port}; add_header X-Up "$upstream_addr|$upstream_status" always;
      location /three { redis2_query ping; redis2_pass three; }
      location /nofail { redis2_query ping; redis2_pass nofail; }
      location /one { redis2_query ping; redis2_pass one; }
      location /implicit { redis2_query ping; redis2_pass ${D[1]}; } }`);
  t.teardown(() => srv.stop());
  const p = srv.port;
  const first = await up(p, '/three');
  t.same([first.status, first.up], [502, `${D[0]}, ${D[1]}, ${D[2]}|502, 502, 502`], 'three peers, three tries');
  let lines = logLines(srv.errorLog());
  t.equal(lines.filter((l) => l.startsWith('[error] connect() failed')).length, 3);
  t.equal(lines.filter((l) => l.startsWith('[warn] upstream server temporarily disabled')).length, 3);
  t.notOk(lines.some((l) => l.includes('no live upstreams')), 'tries ran out before the peers did');
  const second = await up(p, '/three');
  t.same([second.status, second.up], [502, 'three|502'], 'all disabled: no try at all');
  t.equal(logLines(srv.errorLog()).at(-1), `[error] no live upstreams while connecting to upstream${ctx('/three', 'three')}`);

  const before = logLines(srv.errorLog()).length;
  for (let i = 0; i < 2; i++) {
    const r = await up(p, '/nofail');
    t.same([r.status, r.up.split('|')[1]], [502, '502, 502'], `max_fails=0: both tried every time (${i})`);
    t.equal((await up(p, '/one')).up, `${D[2]}|502`, `a one-server block is tried every time (${i})`);
    t.equal((await up(p, '/implicit')).up, `${D[1]}|502`, `an implicit upstream is tried every time (${i})`);
  }
  lines = logLines(srv.errorLog()).slice(before);
  t.equal(lines.length, 8, 'only connect() errors');
  t.ok(lines.every((l) => l.startsWith('[error] connect() failed (111: Connection refused)')));
});

t.test('redis2_next_upstream: timeout, invalid_response, off; POST is not resent once sent', async (t) => {
  const redis = await startRedis(t);
  const R = redis.addr;
  const silent = await silentServer(t);
  const S = `127.0.0.1:${silent.port}`;
  const { scriptedServer } = await import('./helpers/redis.js');
  const junk = `127.0.0.1:${await scriptedServer(t, 'HTTP/1.0 200 OK\r\n\r\n')}`;
  const srv = await startRedis2d(`
    upstream slow1 { server ${S} max_fails=0; server ${R}; }
    upstream slow2 { server ${S} max_fails=0; server ${R}; }
    upstream mark { server ${S}; server ${R}; }
    upstream bad1 { server ${junk} max_fails=0; server ${R}; }
    upstream bad2 { server ${junk} max_fails=0; server ${R}; }
    server { listen 127.0.0.1:{port}; add_header X-Up "$upstream_addr|$upstream_status" always;
      redis2_read_timeout 200ms;
      location /slow { redis2_query ping; redis2_pass slow1; }
      location /slowoff { redis2_next_upstream off; redis2_query ping; redis2_pass slow2; }
      location /mark { redis2_query ping; redis2_pass mark; }
      location /bad { redis2_query ping; redis2_pass bad1; }
      location /badnext { redis2_next_upstream invalid_response; redis2_query ping; redis2_pass bad2; } }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  t.same(await up(p, '/slow'), { status: 200, body: '+PONG\r\n', up: `${S}, ${R}|504, 200` }, 'timeout is in the default mask');
  const post = await up(p, '/slow', 'POST');
  t.same([post.status, post.up], [200, `${R}|200`], 'round robin moved on to R');
  const post2 = await up(p, '/slow', 'POST');
  t.same([post2.status, post2.up], [504, `${S}|504`], 'POST: the query was sent, not resent');
  t.same([(await up(p, '/slowoff')).status, (await up(p, '/slowoff')).up], [504, `${R}|200`], 'off: the first answer stands');
  const bad = await up(p, '/bad');
  t.same([bad.status, bad.up], [502, `${junk}|502`], 'invalid_response is not in the default mask');
  const badnext = await up(p, '/badnext');
  t.same([badnext.status, badnext.up], [200, `${junk}, ${R}|502, 200`], 'redis2_next_upstream invalid_response');
  t.equal((await up(p, '/mark')).up, `${S}, ${R}|504, 200`);
  const lines = logLines(srv.errorLog());
  const at = lines.indexOf(`[warn] upstream server temporarily disabled while reading response header from upstream${ctx('/mark', S)}`);
  t.ok(at >= 0, 'the peer is disabled');
  t.equal(lines[at + 1], `[error] upstream timed out (110: Connection timed out) while reading response header from upstream${ctx('/mark', S)}`, 'then the timeout is logged, as nginx orders them');
  t.ok(lines.includes(`[error] upstream timed out (110: Connection timed out) while reading response header from upstream${ctx('/slow', S)}`));
  t.ok(lines.includes(`[error] redis2 sent invalid response: "HTTP/1.0 200 OK\r\n\r\n" while reading response header from upstream${ctx('/badnext', junk)}`));
});
