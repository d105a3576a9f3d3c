import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';
import { waitFor } from './helpers/proc.js';
import { LOAD_ECHO, logLines, skipEcho } from './helpers/site.js';

/*
 * auth_basic against Debian's nginx: an htpasswd file with every hash kind
 * nginx accepts (MD5-crypt, apr1, SHA-256/512-crypt from `openssl passwd`,
 * DES from the C library's crypt when python has it, {SHA}, {SSHA} and
 * {PLAIN} made here), right and wrong passwords, unknown users, missing
 * and malformed credentials, satisfy any/all with allow/deny, realms with
 * variables and `off`, a user file named by a variable and a missing one:
 * the same response bytes and the same error-log lines.
 */

const dir = mkdtempSync(join(tmpdir(), 'site-auth-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const openssl = (kind: string, pw: string): string => execFileSync('openssl', ['passwd', kind, pw]).toString().trim();
const sha = (pw: string): string => `{SHA}${createHash('sha1').update(pw).digest('base64')}`;
const ssha = (pw: string): string => {
  const salt = randomBytes(6);
  return `{SSHA}${Buffer.concat([createHash('sha1').update(pw).update(salt).digest(), salt]).toString('base64')}`;
};
function des(pw: string): string | undefined {
  try {
    return execFileSync('python3', ['-W', 'ignore', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], "xy"))', pw]).toString().trim();
  } catch {
    return undefined;
  }
}

const users: Array<[string, string, string]> = [
  ['md5', 'pw-md5', openssl('-1', 'pw-md5')],
  ['apr', 'pw-apr', openssl('-apr1', 'pw-apr')],
  ['s256', 'pw-256', openssl('-5', 'pw-256')],
  ['s512', 'pw-512', openssl('-6', 'pw-512')],
  ['sha', 'pw-sha', sha('pw-sha')],
  ['ssha', 'pw-ssha', ssha('pw-ssha')],
  ['plain', 'pw:colon', '{PLAIN}pw:colon'],
];
const desHash = des('pw-des');
if (desHash) users.push(['des', 'pw-des', desHash]);

writeFileSync(
  join(dir, 'htpasswd'),
  '# a comment\n' +
    users.map(([u, , h], i) => (i === 2 ? `${u}:${h}:a comment field\r\n` : `${u}:${h}\n`)).join('') +
    'nopass\n' +
    'last:{PLAIN}no-newline',
);
writeFileSync(join(dir, 'other'), `other:{PLAIN}x\n`);
mkdirSync(join(dir, 'files'));
writeFileSync(join(dir, 'files', 'f.txt'), 'a static file\n');

const HTTP = `
  access_log off;
  default_type text/plain;
  server {
    listen 127.0.0.1:{port};
    location / { echo "user [$remote_user]"; }
    location /a { auth_basic "Zone A"; auth_basic_user_file ${dir}/htpasswd; echo "in [$remote_user]"; }
    location /a/off { auth_basic off; echo "open"; }
    location /var { auth_basic "realm $arg_r"; auth_basic_user_file ${dir}/$arg_f; echo "var in"; }
    location /missing { auth_basic x; auth_basic_user_file ${dir}/nope; echo no; }
    location /any { satisfy any; deny 127.0.0.1; auth_basic "Any"; auth_basic_user_file ${dir}/htpasswd; echo "any in"; }
    location /anyallow { satisfy any; allow 127.0.0.1; deny all; auth_basic "Any"; auth_basic_user_file ${dir}/htpasswd; echo "anyallow in"; }
    location /anydeny { satisfy any; deny all; echo "never"; }
    location /all { deny 127.0.0.1; auth_basic "All"; auth_basic_user_file ${dir}/htpasswd; echo "never"; }
    location /lx/ { alias ${dir}/files/; limit_except GET { deny all; } }
    location /ly/ { alias ${dir}/files/; limit_except GET { auth_basic "W"; auth_basic_user_file ${dir}/htpasswd; } }
    location /lz/ { alias ${dir}/files/; limit_except GET POST { allow 10.0.0.1; deny all; } }
    location /lw/ { alias ${dir}/files/; satisfy any; limit_except OPTIONS { deny all; auth_basic "L"; auth_basic_user_file ${dir}/htpasswd; } }
  }
`;

const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64');
const get = (path: string, auth?: string): string => `GET ${path} HTTP/1.0\r\n${auth === undefined ? '' : `Authorization: ${auth}\r\n`}\r\n`;

const cases: string[] = [];
for (const [u, pw] of users) {
  cases.push(get('/a', `Basic ${b64(`${u}:${pw}`)}`));
  cases.push(get('/a', `Basic ${b64(`${u}:${pw}x`)}`));
}
cases.push(
  get('/'),
  get('/', `Basic ${b64('who:ever')}`),
  get('/a'),
  get('/a', `Basic ${b64('nobody:x')}`),
  get('/a', `Basic ${b64('nopass:')}`),
  get('/a', `Basic ${b64('last:no-newline')}`),
  get('/a', `Basic ${b64(':empty-user')}`),
  get('/a', `Basic ${b64('no-colon')}`),
  get('/a', 'Basic !!notbase64'),
  get('/a', 'basic    ' + b64('plain:pw:colon')),
  get('/a', 'Bearer abc'),
  get('/a', 'Basic '),
  get('/a', `Basic ${b64('md5:pw-md5')}=garbage after padding`),
  get('/a', `Basic ${b64('plain:pw:colon\0tail')}`),
  get('/a/off'),
  get('/var?r=R1&f=other', `Basic ${b64('other:x')}`),
  get('/var?r=R2&f=other', `Basic ${b64('other:y')}`),
  get('/var?r=R3&f=htpasswd', `Basic ${b64('other:x')}`),
  get('/missing', `Basic ${b64('a:b')}`),
  get('/any'),
  get('/any', `Basic ${b64('plain:pw:colon')}`),
  get('/any', `Basic ${b64('plain:bad')}`),
  get('/anyallow'),
  get('/anydeny'),
  get('/all', `Basic ${b64('plain:pw:colon')}`),
  // limit_except: the methods it names pass as they are (GET brings HEAD), others meet its rules
  get('/lx/f.txt'),
  'HEAD /lx/f.txt HTTP/1.0\r\n\r\n',
  'POST /lx/f.txt HTTP/1.0\r\nContent-Length: 0\r\n\r\n',
  'DELETE /ly/f.txt HTTP/1.0\r\n\r\n',
  `DELETE /ly/f.txt HTTP/1.0\r\nAuthorization: Basic ${b64('plain:pw:colon')}\r\n\r\n`,
  'PUT /lz/f.txt HTTP/1.0\r\nContent-Length: 0\r\n\r\n',
  'POST /lz/f.txt HTTP/1.0\r\nContent-Length: 0\r\n\r\n',
  'GET /lw/f.txt HTTP/1.0\r\n\r\n',
  `GET /lw/f.txt HTTP/1.0\r\nAuthorization: Basic ${b64('plain:pw:colon')}\r\n\r\n`,
  'OPTIONS /lw/f.txt HTTP/1.0\r\n\r\n',
);

async function run(start: (h: string) => Promise<Running>): Promise<{ out: string[]; log: string[] }> {
  const s = await start(HTTP);
  const out: string[] = [];
  try {
    for (const c of cases) out.push(normalize(await raw(s.port, c), s.port));
    await new Promise((r) => setTimeout(r, 100));
    return { out, log: logLines(s, ['crit', 'error', 'warn', 'info']) };
  } finally {
    await s.stop();
  }
}

t.test('auth_basic: every hash kind, satisfy, realms and files, as nginx', { skip: skipEcho }, async (t) => {
  t.ok(users.length >= 7, `${users.length} hash kinds${desHash ? ' (DES included)' : ' (no python crypt: DES left out)'}`);
  const ng = await run((h) => startNginx(h, LOAD_ECHO));
  const rd = await run((h) => startRedis2d(h));
  for (let i = 0; i < cases.length; i++) t.equal(rd.out[i], ng.out[i], JSON.stringify(cases[i]));
  t.same(rd.log, ng.log, 'error log lines');
  // the cases really exercise both answers: some pass, some are refused
  t.ok(ng.out.filter((o) => o.startsWith('HTTP/1.1 200')).length >= users.length + 4, 'passes');
  t.ok(ng.out.filter((o) => o.startsWith('HTTP/1.1 401')).length >= users.length + 6, 'refusals');
  t.ok(ng.out.filter((o) => o.startsWith('HTTP/1.1 403')).length >= 3, 'limit_except refusals');
});

/*
 * auth_delay: a 401 of the access phase is answered after the delay (the
 * same bytes), a good password at once; under `satisfy any` the post-access
 * 401 waits too; a client that half-closes while it waits ends the request
 * as 499 with nginx's info line.
 */
const DELAY_HTTP = `
  log_format delay '$request $status';
  access_log {dir}/access.log delay;
  default_type text/plain;
  server {
    listen 127.0.0.1:{port};
    location /d { auth_basic "D"; auth_basic_user_file ${dir}/htpasswd; auth_delay 1s; echo "in [$remote_user]"; }
    location /dany { satisfy any; deny all; auth_basic "D"; auth_basic_user_file ${dir}/htpasswd; auth_delay 1s; echo "any in"; }
    location /dnone { auth_basic "D"; auth_basic_user_file ${dir}/htpasswd; echo "no delay"; }
  }
`;

/** one request; the answer, how long it took, and (with `halfCloseMs`) the client's FIN sent that early */
function timed(port: number, req: string, halfCloseMs?: number): Promise<{ out: string; ms: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const c = connect(port, '127.0.0.1');
    let out = '';
    c.on('data', (d) => (out += d.toString('latin1')));
    c.on('error', () => {});
    c.on('close', () => resolve({ out, ms: Date.now() - t0 }));
    c.write(req);
    if (halfCloseMs !== undefined) setTimeout(() => c.end(), halfCloseMs);
  });
}

t.test('auth_delay: refusals wait, a good password does not, a leaving client is 499, as nginx', { skip: skipEcho }, async (t) => {
  const wrong = get('/d', `Basic ${b64('plain:bad')}`);
  const right = get('/d', `Basic ${b64('sha:pw-sha')}`);
  for (const [name, start] of [
    ['nginx', (h: string) => startNginx(h, LOAD_ECHO)],
    ['redis2d', (h: string) => startRedis2d(h)],
  ] as const) {
    const s = await start(DELAY_HTTP);
    try {
      const [w, r, any, none, left] = await Promise.all([
        timed(s.port, wrong),
        timed(s.port, right),
        timed(s.port, get('/dany')),
        timed(s.port, get('/dnone')),
        timed(s.port, wrong, 200),
      ]);
      t.match(normalize(w.out, s.port), /^HTTP\/1\.1 401 Unauthorized\r\n[^]*WWW-Authenticate: Basic realm="D"\r\n/, `${name}: wrong password: 401`);
      t.ok(w.ms >= 950, `${name}: wrong password answered after the delay (${w.ms} ms)`);
      t.match(r.out, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nin \[sha\]\n$/, `${name}: right password: 200`);
      t.ok(r.ms < 900, `${name}: right password answered at once (${r.ms} ms)`);
      t.match(any.out, /^HTTP\/1\.1 401 /, `${name}: satisfy any: 401`);
      t.ok(any.ms >= 950, `${name}: satisfy any's 401 waits too (${any.ms} ms)`);
      t.match(none.out, /^HTTP\/1\.1 401 /, `${name}: no auth_delay: 401`);
      t.ok(none.ms < 900, `${name}: no auth_delay: at once (${none.ms} ms)`);
      t.equal(left.out, '', `${name}: the client left: nothing sent`);
      t.ok(left.ms < 900, `${name}: the client left: the connection closed at once (${left.ms} ms)`);
      await waitFor('access log lines', () => readFileSync(join(s.dir, 'access.log'), 'latin1').split('\n').length > 5);
      const access = readFileSync(join(s.dir, 'access.log'), 'latin1').split('\n').filter(Boolean).sort();
      t.same(access, ['GET /d HTTP/1.0 200', 'GET /d HTTP/1.0 401', 'GET /d HTTP/1.0 499', 'GET /dany HTTP/1.0 401', 'GET /dnone HTTP/1.0 401'], `${name}: access log`);
      const log = logLines(s, ['error', 'warn', 'info']).map((l) => l.replace(/, client: .*$/, '').replace(/ \*\d+ /, ' ')).sort();
      t.same(
        log,
        [
          'error user "plain": password mismatch',
          'error user "plain": password mismatch',
          'info client prematurely closed connection',
          'info delaying unauthorized request',
          'info delaying unauthorized request',
          'info delaying unauthorized request',
          'info no user/password was provided for basic authentication',
          'info no user/password was provided for basic authentication',
        ],
        `${name}: error log`,
      );
    } finally {
      await s.stop();
    }
  }
});
