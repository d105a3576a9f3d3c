import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NGINX, judgeBoth, verdictLines } from './helpers/judge.js';
import { hasNginx, normalize, raw, startNginx, startRedis2d } from './helpers/server.js';

/*
 * proxy_cookie_flags against Debian's nginx: a backend sends a set of
 * Set-Cookie headers (flags present or not, odd case and spacing, no `=`),
 * each location applies its rules (a name, a variable, a regex, `off`,
 * several flags, flags from variables); the headers compared byte for
 * byte; and the -t verdicts.
 */

const skip = hasNginx ? false : 'Debian nginx not installed';

const COOKIES = [
  'a=1; Path=/',
  'b=2;path=/;  Secure ;HttpOnly',
  'A=3; SameSite=lax',
  'sid=4; samesite=Strict; secure',
  'plain',
  'c = 5 ; Domain=example.com',
];

t.test('proxy_cookie_flags against nginx', { skip }, async (t) => {
  const backend = createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.end(`HTTP/1.1 200 OK\r\n${COOKIES.map((c) => `Set-Cookie: ${c}\r\n`).join('')}Content-Length: 3\r\nConnection: close\r\n\r\nok\n`));
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.teardown(() => backend.close());
  const up = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
  const http = `
    proxy_cookie_flags a secure;
    server {
      listen 127.0.0.1:{port};
      location /inherit { proxy_pass ${up}; }
      location /name { proxy_cookie_flags a secure httponly samesite=none; proxy_cookie_flags b nosecure nohttponly; proxy_pass ${up}; }
      location /regex { proxy_cookie_flags ~^[ab]$ secure samesite=strict; proxy_pass ${up}; }
      location /all { proxy_cookie_flags ~ nosamesite httponly; proxy_pass ${up}; }
      location /var { proxy_cookie_flags $arg_c $arg_f; proxy_pass ${up}; }
      location /off { proxy_cookie_flags off; proxy_pass ${up}; }
      location /sid { proxy_cookie_flags sid samesite=lax nosecure; proxy_cookie_flags sid secure; proxy_pass ${up}; }
      location /spaced { proxy_cookie_flags c secure; proxy_cookie_domain example.com example.org; proxy_pass ${up}; }
      location /unknown { proxy_cookie_flags a bogus; proxy_pass ${up}; }
    }`;
  const ng = await startNginx(http);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(http);
  t.teardown(() => rd.stop());
  for (const path of ['/inherit', '/name', '/regex', '/all', '/var?c=A&f=httponly', '/var?c=b&f=nosecure', '/off', '/sid', '/spaced', '/unknown']) {
    const req = `GET ${path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`;
    t.equal(normalize(await raw(rd.port, req, 2000), rd.port), normalize(await raw(ng.port, req, 2000), ng.port), path);
  }
});

t.test('proxy_cookie_flags at -t', { skip: existsSync(NGINX) ? false : `${NGINX} is not installed` }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'r2d-cookieflags-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'logs'));
  const cases: Array<[string, string]> = [
    ['good', 'proxy_cookie_flags one secure httponly samesite=lax; proxy_cookie_flags ~two nosecure;'],
    ['off', 'proxy_cookie_flags off;'],
    ['off twice', 'proxy_cookie_flags off; proxy_cookie_flags off;'],
    ['off then a rule', 'proxy_cookie_flags off; proxy_cookie_flags a secure;'],
    ['a rule then off', 'proxy_cookie_flags a secure; proxy_cookie_flags off;'],
    ['one word not off', 'proxy_cookie_flags a;'],
    ['too many', 'proxy_cookie_flags a secure httponly samesite=lax nosamesite;'],
    ['bad regex', 'proxy_cookie_flags ~( secure;'],
    ['unknown variable', 'proxy_cookie_flags $nope secure;'],
    ['unknown flag (per request)', 'proxy_cookie_flags a whatever;'],
  ];
  for (const [name, loc] of cases) {
    const file = join(dir, `${name.replace(/\W+/g, '-')}.conf`);
    writeFileSync(file, `events {}\nhttp {\n server {\n  listen 127.0.0.1:18981;\n  location / {\n   ${loc}\n  }\n }\n}\n`);
    const { ours, theirs } = await judgeBoth(file, dir);
    t.equal(ours.status, theirs.status, `${name}: exit code`);
    t.same(verdictLines(ours.stderr, 'redis2d'), verdictLines(theirs.stderr, 'nginx'), `${name}: messages`);
  }
});
