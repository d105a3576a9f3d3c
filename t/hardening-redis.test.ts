import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { raw, startRedis2d } from './helpers/server.js';
import { scriptedServer } from './helpers/redis.js';
import { dechunk } from './helpers/http_redis.js';

/*
 * Replies nginx+redis2 receives from a broken or hostile Redis, through
 * HTTP, with redis2d's pipelined connections (the default) and exclusive
 * ones (redis2d_pipeline off), per docs/behaviour.md §5:
 * - a reply cut by Redis closing: redis2 leaves the upstream's length at
 *   -1, so nginx ends the response at EOF as complete (last chunk), logs
 *   nothing, and does not reuse the connection; before any byte it is the
 *   502 of `upstream prematurely closed connection`;
 * - the module's grammar: a null multi-bulk is `*-1` only (`*-5` is
 *   `invalid response near pos 2`), a null bulk `$-` digits.
 */

async function serve(t: Tap.Test, reply: string, close: boolean): Promise<{ port: number; dir: string; errors: () => string[]; access: () => string[] }> {
  const rport = await scriptedServer(t, reply, close);
  const srv = await startRedis2d(`
    log_format st '$request $status $upstream_status';
    access_log {dir}/access.log st;
    server { listen 127.0.0.1:{port};
      location /p { redis2_query get x; redis2_pass 127.0.0.1:${rport}; }
      location /x { redis2d_pipeline off; redis2_query get x; redis2_pass 127.0.0.1:${rport}; }
    }`);
  t.teardown(() => srv.stop());
  const read = (f: string): string[] => (existsSync(join(srv.dir, f)) ? readFileSync(join(srv.dir, f), 'latin1').split('\n').filter(Boolean) : []);
  return {
    port: srv.port,
    dir: srv.dir,
    errors: () => read('error.log').filter((l) => / \[(error|warn|alert|crit)\] /.test(l)).map((l) => l.replace(/^.*\[(\w+)\] \d+#\d+: \*\d+ /, '[$1] ').replace(/, client: .*$/, '')),
    access: () => read('access.log'),
  };
}

declare namespace Tap {
  type Test = Parameters<Parameters<typeof t.test>[1] & ((t: never) => unknown)>[0];
}

const get = (port: number, path: string): Promise<string> => raw(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 2000);

for (const path of ['/p', '/x']) {
  const mode = path === '/p' ? 'pipelined' : 'exclusive';

  t.test(`${mode}: a reply cut by Redis closing ends the response as complete, nothing logged`, async (t) => {
    const s = await serve(t, '$5\r\nhel', true);
    const resp = await get(s.port, path);
    t.match(resp, /^HTTP\/1\.1 200 OK\r\n[^]*Transfer-Encoding: chunked\r\n/);
    const d = dechunk(resp.slice(resp.indexOf('\r\n\r\n') + 4));
    t.equal(d.body, '$5\r\nhel', 'the bytes Redis sent');
    t.ok(d.complete, 'ended by the last chunk');
    await new Promise((r) => setTimeout(r, 100));
    t.same(s.errors(), [], 'nothing logged');
    t.same(s.access(), [`GET ${path} HTTP/1.1 200 200`]);
  });

  t.test(`${mode}: Redis closing before any byte is 502`, async (t) => {
    const s = await serve(t, '', true);
    const resp = await get(s.port, path);
    t.match(resp, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    await new Promise((r) => setTimeout(r, 100));
    t.same(s.errors(), ['[error] upstream prematurely closed connection while reading response header from upstream']);
  });

  t.test(`${mode}: *-5 is an invalid reply near pos 2; *-1 and $-5 are nulls`, async (t) => {
    let s = await serve(t, '*-5\r\n', false);
    let resp = await get(s.port, path);
    t.match(resp, /^HTTP\/1\.1 200 OK\r\n/, 'the response had started');
    t.ok(dechunk(resp.slice(resp.indexOf('\r\n\r\n') + 4)).complete, 'and ends');
    await new Promise((r) => setTimeout(r, 100));
    // (the quoted reply holds its CR LF: the log line spans two lines)
    t.ok(readFileSync(join(s.dir, 'error.log'), 'latin1').includes('Redis server returned invalid response near pos 2 in "*-5\r\n" while reading response header from upstream'), 'near pos 2');
    for (const ok of ['*-1\r\n', '$-5\r\n', '*0\r\n', '*1\r\n$-1\r\n']) {
      s = await serve(t, ok, false);
      resp = await get(s.port, path);
      t.equal(dechunk(resp.slice(resp.indexOf('\r\n\r\n') + 4)).body, ok, `${JSON.stringify(ok)} passes`);
      await new Promise((r) => setTimeout(r, 50));
      t.same(s.errors(), [], `${JSON.stringify(ok)}: nothing logged`);
    }
  });
}
