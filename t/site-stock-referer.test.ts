import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NGINX, judgeBoth, verdictLines } from './helpers/judge.js';
import { hasNginx, normalize, raw, startNginx, startRedis2d } from './helpers/server.js';

/*
 * valid_referers and $invalid_referer (ngx_http_referer_module) against
 * Debian's nginx: each location's rule set asked with many Referer values
 * (none, blocked, exact, wildcards both ends, URI prefixes, ports, case,
 * server_names with a regex name, ~regex), the answer carrying
 * $invalid_referer; and the -t verdicts for good and bad rule sets.
 */

const skip = hasNginx ? false : 'Debian nginx not installed';

const HTTP = `
  server {
    listen 127.0.0.1:{port};
    server_name site.example ~^(www\\.)?regex\\.example$;
    location /a { valid_referers none blocked example.com *.example.org .example.net www.example.*; return 200 "[$invalid_referer]\\n"; }
    location /u { valid_referers example.com/pics/ ~\\.search\\. ; return 200 "[$invalid_referer]\\n"; }
    location /s { valid_referers server_names; return 200 "[$invalid_referer]\\n"; }
    location /n { return 200 "[$invalid_referer]\\n"; }
    location /b { valid_referers blocked example.com; if ($invalid_referer) { return 403; } return 200 "ok\\n"; }
    location /r { valid_referers ~^[a-z]+\\.EXAMPLE\\.com/x; return 200 "[$invalid_referer]\\n"; }
  }
`;

const REFERERS = [
  undefined,
  '',
  'example.com',
  'http://example.com',
  'http://example.com/',
  'https://EXAMPLE.com/page',
  'http://example.com:8080/p',
  'http://a.example.com/',
  'http://example.org/',
  'http://a.example.org/',
  'http://a.b.example.org/x',
  'http://example.net/',
  'http://x.example.net/',
  'http://www.example.co.uk/',
  'http://www.example/',
  'ftp://example.com/',
  'http://i.ru',
  'http://example.com/pics/1.png',
  'http://example.com/pictures/',
  'http://www.search.com/',
  'http://site.example/',
  'http://www.regex.example/z',
  'http://regex.example:80/',
  'http://abc.example.com/x/y',
  'http://abc.example.com/y',
  'http://' + 'a'.repeat(300) + '.com/',
];

t.test('$invalid_referer against nginx', { skip }, async (t) => {
  const ng = await startNginx(HTTP);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(HTTP);
  t.teardown(() => rd.stop());
  for (const path of ['/a', '/u', '/s', '/n', '/b', '/r']) {
    const reqs = REFERERS.map((ref) => `GET ${path} HTTP/1.1\r\nHost: h\r\n${ref === undefined ? '' : `Referer: ${ref}\r\n`}\r\n`);
    // all on one keep-alive connection: the answers in order
    const all = [...reqs.slice(0, -1), reqs[reqs.length - 1]!.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n')].join('');
    const a = normalize(await raw(ng.port, all, 3000), ng.port);
    const b = normalize(await raw(rd.port, all, 3000), rd.port);
    t.equal(b, a, `${path}: the answers to ${REFERERS.length} referers`);
  }
});

t.test('valid_referers at -t', { skip: existsSync(NGINX) ? false : `${NGINX} is not installed` }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'r2d-referer-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'logs'));
  const cases: Array<[string, string, string]> = [
    ['good', '', 'valid_referers none blocked server_names example.com *.example.org www.example.* ~foo; referer_hash_max_size 1024; referer_hash_bucket_size 128;'],
    ['in server', 'valid_referers example.com;', ''],
    ['in http', '', ''],
    ['none alone', '', 'valid_referers none;'],
    ['blocked with a regex only', '', 'valid_referers blocked ~x;'],
    ['bad wildcard', '', 'valid_referers ex*ample.com;'],
    ['star inside', '', 'valid_referers *example.com;'],
    ['same name twice', '', 'valid_referers example.com example.com;'],
    ['same name, another URI', '', 'valid_referers example.com/a example.com/b;'],
    ['empty regex', '', 'valid_referers ~;'],
    ['bad regex', '', 'valid_referers ~(;'],
    ['empty', '', 'valid_referers "";'],
    ['no args', '', 'valid_referers;'],
    ['hash size bad', '', 'referer_hash_max_size x;'],
    ['hash size twice', '', 'referer_hash_max_size 1; referer_hash_max_size 2;'],
    ['server_names without names', '', 'valid_referers none server_names;'],
  ];
  for (const [name, srv, loc] of cases) {
    const file = join(dir, `${name.replace(/\W+/g, '-')}.conf`);
    const http = name === 'in http' ? 'valid_referers example.com;' : '';
    writeFileSync(file, `events {}\nhttp {\n ${http}\n server {\n  listen 127.0.0.1:18971;\n  ${srv}\n  location / {\n   ${loc}\n  }\n }\n}\n`);
    const { ours, theirs } = await judgeBoth(file, dir);
    t.equal(ours.status, theirs.status, `${name}: exit code`);
    t.same(verdictLines(ours.stderr, 'redis2d'), verdictLines(theirs.stderr, 'nginx'), `${name}: messages`);
  }
});
