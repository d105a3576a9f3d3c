import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { NGINX, hasNginx, raw, startNginx, startRedis2d } from './helpers/server.js';
import { runCmd } from './helpers/proc.js';

/*
 * Deep nesting. nginx accepts thousands of nested locations (it recurses in
 * C until its stack gives out, past 10,000 levels); redis2d parses nested
 * locations in the running loop and merges, checks, builds and searches the
 * location tree without recursion, so depth costs heap only. What still
 * recurses (a chain of includes) ends in a clear [emerg], never a stack.
 */

function nested(n: number, inner: string): string {
  return `${'location /a { '.repeat(n)}${inner}${' }'.repeat(n)}`;
}

t.test('2,000 and 20,000 nested locations pass -t, as under nginx', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'r2d-deep-'));
  mkdirSync(join(dir, 'logs'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const n of [2000, 20000]) {
    writeFileSync(join(dir, 'nginx.conf'), `events {} http { server { listen 127.0.0.1:1; ${nested(n, 'return 200;')} } }\n`);
    const mine = await runCmd(['-t', '-p', dir, '-c', join(dir, 'nginx.conf')], 'redis2d', 60000);
    t.equal(mine.code, 0, `${n} levels: test is successful`);
    t.notMatch(mine.stderr, /RangeError|\n\s+at /, 'no stack trace');
    if (hasNginx && n === 2000) {
      const ngx = await runCmd(['-t', '-p', `${dir}/`, '-e', 'stderr', '-c', join(dir, 'nginx.conf')], NGINX);
      t.equal(ngx.code, 0, 'nginx agrees');
    }
  }
  // an unclosed deep block is nginx's error, at the end of the file
  writeFileSync(join(dir, 'nginx.conf'), `events {} http { server { ${'location /a { '.repeat(3000)} } }\n`);
  const bad = await runCmd(['-t', '-p', dir, '-c', join(dir, 'nginx.conf')], 'redis2d', 60000);
  t.match(bad.stderr, /\[emerg\] unexpected end of file, expecting "}" in .*nginx\.conf:2/);
});

t.test('a chain of includes too deep to follow: a clear [emerg]', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'r2d-inc-'));
  mkdirSync(join(dir, 'logs'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const n = 3000;
  for (let i = 0; i < n; i++) writeFileSync(join(dir, `i${i}.conf`), i + 1 < n ? `include i${i + 1}.conf;\n` : '\n');
  writeFileSync(join(dir, 'nginx.conf'), 'events {} http { include i0.conf; }\n');
  const r = await runCmd(['-t', '-p', dir, '-c', join(dir, 'nginx.conf')], 'redis2d', 60000);
  t.equal(r.code, 1, 'test failed, exit 1');
  t.match(r.stderr, /^redis2d: \[emerg\] too deep nesting of blocks or includes in .*i\d+\.conf:1\n/);
  t.notMatch(r.stderr, /RangeError|\n\s+at /, 'no stack trace');
});

t.test('requests through 2,000 nested locations: the same answers as nginx', { skip: !hasNginx && 'Debian nginx is not installed' }, async (t) => {
  const http = `
    server { listen 127.0.0.1:{port};
      ${nested(2000, 'location ~ z$ { return 200 "regex $uri\\n"; } return 200 "deep $uri\\n";')}
      location / { return 200 "root $uri\\n"; }
    }`;
  const outs: string[][] = [];
  for (const start of [startRedis2d, startNginx]) {
    const srv = await start(http);
    t.teardown(() => srv.stop());
    const o: string[] = [];
    for (const path of ['/a', '/a/x', '/a/xz', '/b', '/az']) {
      const resp = await raw(srv.port, `GET ${path} HTTP/1.0\r\n\r\n`);
      o.push(resp.slice(resp.indexOf('\r\n\r\n') + 4));
    }
    outs.push(o);
  }
  t.same(outs[0], outs[1]);
  t.same(outs[0], ['deep /a\n', 'deep /a/x\n', 'regex /a/xz\n', 'root /b\n', 'regex /az\n']);
});
