import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NGINX, judgeBoth, judgeRedis2d, verdictLines, type Verdict } from './helpers/judge.js';
import { makeCerts } from './helpers/tls.js';

/*
 * `-t` of configurations using ngx_http_ssl_module, judged by Debian's
 * nginx -t and by redis2d -t on the same files and certificates (made by
 * the test): exit code and every [emerg]/[warn] line, with OpenSSL's
 * reasons as nginx prints them (missing, garbage and mismatched
 * certificates and keys, encrypted keys and ssl_password_file, ciphers,
 * curves, DH parameters, client CAs, ticket keys, stapling, the listen
 * checks, the deprecated `ssl on`). redis2d's own "has no effect" notes
 * are set aside, and checked where they are the point.
 */

const skip = !existsSync(NGINX) ? `${NGINX} is not installed` : false;

const certs = makeCerts(['a.test', 'b.test']);
const C = certs.dir;
t.teardown(() => rmSync(C, { recursive: true, force: true }));
const ossl = (args: string[]): void => void execFileSync('openssl', args, { cwd: C, stdio: 'ignore' });
ossl(['genrsa', '-aes256', '-passout', 'pass:secret', '-out', 'enc.key', '2048']);
ossl(['req', '-x509', '-key', 'enc.key', '-passin', 'pass:secret', '-out', 'enc.crt', '-days', '3', '-subj', '/CN=enc']);
writeFileSync(join(C, 'pass.txt'), 'wrong\nsecret\n');
writeFileSync(join(C, 'badpass.txt'), 'wrong\n');
writeFileSync(join(C, 'ticket48.key'), Buffer.alloc(48, 7));
writeFileSync(join(C, 'ticket10.key'), Buffer.alloc(10, 7));
// a leaf signed by the CA, with its chain after it: stapling finds the issuer, then no OCSP URL
ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=leaf']);
ossl(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '7', '-out', 'leaf-only.crt', '-days', '3']);
execFileSync('sh', ['-c', 'cat leaf-only.crt ca.pem > leaf.crt'], { cwd: C });

const prefix = join(C, 'prefix');
mkdirSync(join(prefix, 'logs'), { recursive: true });

const PAIR = `ssl_certificate ${C}/a.test.crt; ssl_certificate_key ${C}/a.test.key;`;
const CASES: Array<[string, string]> = [
  ['good pair', PAIR],
  ['two pairs', `${PAIR} ssl_certificate ${C}/b.test.crt; ssl_certificate_key ${C}/b.test.key;`],
  ['relative names (conf prefix)', 'ssl_certificate a.test.crt; ssl_certificate_key a.test.key;'],
  ['missing certificate', `ssl_certificate ${C}/nope.crt; ssl_certificate_key ${C}/a.test.key;`],
  ['garbage certificate', `ssl_certificate ${C}/garbage.pem; ssl_certificate_key ${C}/a.test.key;`],
  ['a key as certificate', `ssl_certificate ${C}/a.test.key; ssl_certificate_key ${C}/a.test.key;`],
  ['missing key', `ssl_certificate ${C}/a.test.crt; ssl_certificate_key ${C}/nope.key;`],
  ['garbage key', `ssl_certificate ${C}/a.test.crt; ssl_certificate_key ${C}/garbage.pem;`],
  ['a certificate as key', `ssl_certificate ${C}/a.test.crt; ssl_certificate_key ${C}/a.test.crt;`],
  ['mismatched key', `ssl_certificate ${C}/a.test.crt; ssl_certificate_key ${C}/b.test.key;`],
  ['no certificate', ''],
  ['certificate without key', `ssl_certificate ${C}/a.test.crt;`],
  ['two certificates, one key', `${PAIR} ssl_certificate ${C}/b.test.crt;`],
  ['encrypted key, password file', `ssl_certificate ${C}/enc.crt; ssl_certificate_key ${C}/enc.key; ssl_password_file ${C}/pass.txt;`],
  ['missing password file', `ssl_certificate ${C}/enc.crt; ssl_certificate_key ${C}/enc.key; ssl_password_file ${C}/nope.txt;`],
  ['password file twice', `ssl_password_file ${C}/pass.txt; ssl_password_file ${C}/pass.txt; ${PAIR}`],
  ['bad ciphers', `${PAIR} ssl_ciphers NOPE;`],
  ['good ciphers', `${PAIR} ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:!aNULL;`],
  ['bad curve', `${PAIR} ssl_ecdh_curve nope;`],
  ['bad curve in a list', `${PAIR} ssl_ecdh_curve X25519:prime256v1:nope;`],
  ['good curves', `${PAIR} ssl_ecdh_curve X25519:secp384r1;`],
  ['missing dhparam', `${PAIR} ssl_dhparam ${C}/nope.pem;`],
  ['garbage dhparam', `${PAIR} ssl_dhparam ${C}/garbage.pem;`],
  ['verify without CA', `${PAIR} ssl_verify_client on;`],
  ['verify optional_no_ca without CA', `${PAIR} ssl_verify_client optional_no_ca;`],
  ['verify, missing CA', `${PAIR} ssl_verify_client optional; ssl_client_certificate ${C}/nope.pem;`],
  ['verify, bad value', `${PAIR} ssl_verify_client maybe;`],
  ['verify twice', `${PAIR} ssl_verify_client on; ssl_verify_client on;`],
  ['ticket key', `${PAIR} ssl_session_ticket_key ${C}/ticket48.key;`],
  ['ticket key, wrong size', `${PAIR} ssl_session_ticket_key ${C}/ticket10.key;`],
  ['ticket key, missing', `${PAIR} ssl_session_ticket_key ${C}/nope.key;`],
  ['stapling, self-signed', `${PAIR} ssl_stapling on;`],
  ['stapling, no responder URL', `ssl_certificate ${C}/leaf.crt; ssl_certificate_key ${C}/leaf.key; ssl_stapling on;`],
  ['protocols, bad value', `${PAIR} ssl_protocols TLSv1.2 TLSv9;`],
  ['protocols, duplicate value', `${PAIR} ssl_protocols TLSv1.2 TLSv1.2;`],
  ['protocols twice', `${PAIR} ssl_protocols TLSv1.2; ssl_protocols TLSv1.3;`],
  ['session cache forms', `${PAIR} ssl_session_cache off; ssl_session_cache builtin:1000 shared:S:1m;`],
  ['session cache too small', `${PAIR} ssl_session_cache shared:S:10k;`],
  ['session cache bad', `${PAIR} ssl_session_cache shared::1m;`],
  ['session timeout bad', `${PAIR} ssl_session_timeout 5x;`],
  ['buffer size bad', `${PAIR} ssl_buffer_size big;`],
  ['prefer twice', `${PAIR} ssl_prefer_server_ciphers on; ssl_prefer_server_ciphers off;`],
  ['ssl on (deprecated)', `ssl on; ${PAIR}`],
  ['ssl on without certificate', 'ssl on;'],
  ['ssl on, certificate without key', `ssl on; ssl_certificate ${C}/a.test.crt;`],
  ['ssl_reject_handshake', 'ssl_reject_handshake on;'],
  ['ssl in a location', `${PAIR} location / { ssl_ciphers HIGH; }`],
  ['engine key', `ssl_certificate ${C}/a.test.crt; ssl_certificate_key engine:x:y;`],
];

/** the config of a case: a TLS server on a loopback port (nginx -t binds nothing here) and a plain one */
function confOf(body: string, listen = 'listen 127.0.0.1:18931 ssl;'): string {
  return `events {}\nhttp {\n  server {\n    ${listen}\n    ${body}\n  }\n  server { listen 127.0.0.1:18932; }\n}\n`;
}

async function judge(name: string, conf: string): Promise<{ ours: Verdict; theirs: Verdict }> {
  const file = join(C, `${name.replace(/[^a-z0-9]+/gi, '-')}.conf`);
  writeFileSync(file, conf);
  return judgeBoth(file, prefix);
}

t.test('ssl directives at -t, as nginx judges them', { skip }, async (t) => {
  for (const [name, body] of CASES) {
    const { ours, theirs } = await judge(name, confOf(body));
    t.equal(ours.status, theirs.status, `${name}: exit code`);
    t.same(verdictLines(ours.stderr, 'redis2d'), verdictLines(theirs.stderr, 'nginx'), `${name}: messages`);
  }
});

t.test('listen parameters', { skip }, async (t) => {
  const cases: Array<[string, string, string]> = [
    ['ssl on the listen of a non-default server', 'listen 127.0.0.1:18931;', 'server { listen 127.0.0.1:18931 ssl; server_name x; }'],
    ['http2 with ssl', 'listen 127.0.0.1:18931 ssl http2;', PAIR],
    ['ssl from another server of the address', 'listen 127.0.0.1:18931 default_server;', 'server { listen 127.0.0.1:18931 ssl; server_name y; ssl_certificate a.test.crt; ssl_certificate_key a.test.key; }'],
  ];
  for (const [name, listen, extra] of cases) {
    const conf = extra.startsWith('server')
      ? `events {}\nhttp {\n  server {\n    ${listen}\n  }\n  ${extra}\n}\n`
      : confOf(extra, listen);
    const { ours, theirs } = await judge(name, conf);
    t.equal(ours.status, theirs.status, `${name}: exit code`);
    t.same(verdictLines(ours.stderr, 'redis2d'), verdictLines(theirs.stderr, 'nginx'), `${name}: messages`);
  }
});

t.test("redis2d's notes for what node:tls cannot do", async (t) => {
  const file = join(C, 'notes.conf');
  writeFileSync(file, confOf(`${PAIR} ssl_early_data on; ssl_conf_command Options PrioritizeChaCha;`, 'listen 127.0.0.1:18931 ssl http2;'));
  const r = await judgeRedis2d(file, prefix);
  t.equal(r.status, 0);
  t.match(r.stderr, /\[warn\] the "ssl_early_data" directive has no effect in redis2d/);
  t.match(r.stderr, /\[warn\] the "ssl_conf_command" directive has no effect in redis2d/);
  // HTTP/2 on TLS is served (lib/http/h2.ts): no note for it
  t.notMatch(r.stderr, /http2/);
});
