import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';
import { makeCerts } from './helpers/tls_certs.js';

/*
 * proxy_ssl_* and proxy_socket_keepalive / fastcgi_socket_keepalive against
 * Debian's nginx. The HTTPS backend (node:tls, in this process) answers
 * with what it saw of the handshake: the SNI name, the protocol, the
 * client certificate's CN. Verification failures are compared by status
 * and by the error-log line. SO_KEEPALIVE on the upstream socket is read
 * with `ss -o` (a `keepalive` timer) while the backend holds the request.
 */

const skip = hasNginx ? false : 'Debian nginx not installed';

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`;

t.test('proxy_ssl_* against nginx', { skip }, async (t) => {
  const certs = makeCerts();
  t.teardown(() => certs.cleanup());
  const backend = tls.createServer({ cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey), requestCert: true, rejectUnauthorized: false }, (s) => {
    s.on('error', () => {});
    s.once('data', () => {
      const cn = s.getPeerCertificate()?.subject?.CN ?? '-';
      const sni = (s as tls.TLSSocket & { servername?: string | false }).servername || '-';
      const body = `sni=${sni} proto=${s.getProtocol()} client=${cn}\n`;
      s.end(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    });
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.teardown(() => backend.close());
  const bp = (backend.address() as AddressInfo).port;
  const up = `https://127.0.0.1:${bp}/`;
  const http = `
    server {
      listen 127.0.0.1:{port};
      # nginx keeps one TLS session per upstream peer, whatever location made it: off here, so that
      # each location's own handshake is what the backend sees
      proxy_ssl_session_reuse off;
      location /plain { proxy_pass ${up}; }
      location /sni { proxy_ssl_server_name on; proxy_ssl_name localhost; proxy_pass ${up}; }
      location /sni-ip { proxy_ssl_server_name on; proxy_pass ${up}; }
      location /sni-var { proxy_ssl_server_name on; proxy_ssl_name $arg_n; proxy_pass ${up}; }
      location /verify { proxy_ssl_verify on; proxy_ssl_trusted_certificate ${certs.ca}; proxy_ssl_name localhost; proxy_pass ${up}; }
      location /verify-ca { proxy_ssl_verify on; proxy_ssl_trusted_certificate ${certs.otherCa}; proxy_ssl_name localhost; proxy_pass ${up}; }
      location /verify-name { proxy_ssl_verify on; proxy_ssl_trusted_certificate ${certs.ca}; proxy_ssl_name wrong.example; proxy_pass ${up}; }
      location /client { proxy_ssl_certificate ${certs.clientCert}; proxy_ssl_certificate_key ${certs.clientKey}; proxy_pass ${up}; }
      location /tls13 { proxy_ssl_protocols TLSv1.3; proxy_pass ${up}; }
      location /tls12 { proxy_ssl_protocols TLSv1.2; proxy_ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256; proxy_ssl_session_reuse off; proxy_pass ${up}; }
      location /var { set $u ${up}; proxy_ssl_server_name on; proxy_ssl_name localhost; proxy_pass $u; }
    }`;
  const ng = await startNginx(http);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(http);
  t.teardown(() => rd.stop());
  for (const path of ['/plain', '/sni', '/sni-ip', '/sni-var?n=named.example', '/verify', '/verify-ca', '/verify-name', '/client', '/tls13', '/tls12', '/var']) {
    const a = normalize(await raw(ng.port, get(path), 3000), ng.port);
    const b = normalize(await raw(rd.port, get(path), 3000), rd.port);
    t.equal(b, a, `${path}: the response`);
  }
  t.match(normalize(await raw(rd.port, get('/tls13'), 3000), rd.port), /proto=TLSv1\.3 /, 'the protocol asked for');
  t.match(normalize(await raw(rd.port, get('/client'), 3000), rd.port), /client=client\n/, 'the client certificate');
  await new Promise((r) => setTimeout(r, 300));
  const lines = (s: Running): string[] =>
    s.errorLog().split('\n').filter((l) => /\[(error|crit)\]/.test(l)).map((l) => l.replace(/^.*?\[(error|crit)\] \d+#\d+: \*\d+ /, '[$1] ').replace(/, upstream: .*$/, ''));
  const want = lines(ng);
  t.equal(want.length, 2, 'nginx logged the two verification failures');
  t.same(lines(rd), want, 'the error lines');
});

t.test('proxy_ssl_* at -t', { skip }, async (t) => {
  const { judgeBoth, verdictLines } = await import('./helpers/judge.js');
  const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const certs = makeCerts();
  t.teardown(() => certs.cleanup());
  const dir = mkdtempSync(join(tmpdir(), 'r2d-pssl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'logs'));
  writeFileSync(join(dir, 'pw'), 'one\ntwo\n');
  const cases: Array<[string, string]> = [
    ['verify without trusted', 'proxy_ssl_verify on; proxy_pass https://127.0.0.1:1;'],
    ['verify without trusted, plain http', 'proxy_ssl_verify on; proxy_pass http://127.0.0.1:1;'],
    ['certificate without key', `proxy_ssl_certificate ${certs.clientCert}; proxy_pass https://127.0.0.1:1;`],
    ['missing trusted file', 'proxy_ssl_verify on; proxy_ssl_trusted_certificate /nonexistent.crt; proxy_pass https://127.0.0.1:1;'],
    ['missing crl', `proxy_ssl_verify on; proxy_ssl_trusted_certificate ${certs.ca}; proxy_ssl_crl /nonexistent.crl; proxy_pass https://127.0.0.1:1;`],
    ['trusted file not PEM', 'proxy_ssl_verify on; proxy_ssl_trusted_certificate /etc/hostname; proxy_pass https://127.0.0.1:1;'],
    ['crl not PEM', `proxy_ssl_verify on; proxy_ssl_trusted_certificate ${certs.ca}; proxy_ssl_crl /etc/hostname; proxy_pass https://127.0.0.1:1;`],
    ['crl without verify', 'proxy_ssl_crl /nonexistent.crl; proxy_pass https://127.0.0.1:1;'],
    ['bad protocol', 'proxy_ssl_protocols TLSv9;'],
    ['bad flag', 'proxy_ssl_server_name yes;'],
    ['verify_depth bad', 'proxy_ssl_verify_depth x;'],
    ['name twice', 'proxy_ssl_name a; proxy_ssl_name b;'],
    ['password file', `proxy_ssl_password_file ${join(dir, 'pw')};`],
    ['password file missing', 'proxy_ssl_password_file /nonexistent/pw;'],
    ['password file twice', `proxy_ssl_password_file ${join(dir, 'pw')}; proxy_ssl_password_file ${join(dir, 'pw')};`],
    ['all good', `proxy_ssl_server_name on; proxy_ssl_name $host; proxy_ssl_verify on; proxy_ssl_verify_depth 2; proxy_ssl_trusted_certificate ${certs.ca}; proxy_ssl_certificate ${certs.clientCert}; proxy_ssl_certificate_key ${certs.clientKey}; proxy_ssl_protocols TLSv1.2 TLSv1.3; proxy_ssl_ciphers HIGH; proxy_ssl_session_reuse off; proxy_pass https://127.0.0.1:1;`],
 ['conf command', 'proxy_ssl_conf_command Options -SessionTicket; proxy_ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;'],
    ['conf command arity', 'proxy_ssl_conf_command Options;'],
    ['socket keepalive', 'proxy_socket_keepalive on; fastcgi_socket_keepalive off;'],
    ['socket keepalive bad', 'proxy_socket_keepalive 1;'],
    ['socket keepalive twice', 'fastcgi_socket_keepalive on; fastcgi_socket_keepalive on;'],
  ];
  for (const [name, loc] of cases) {
    const file = join(dir, `${name.replace(/\W+/g, '-')}.conf`);
    writeFileSync(file, `events {}\nhttp {\n server {\n  listen 127.0.0.1:18961;\n  location / {\n   ${loc}\n  }\n }\n}\n`);
    const { ours, theirs } = await judgeBoth(file, dir);
    t.equal(ours.status, theirs.status, `${name}: exit code`);
    t.same(verdictLines(ours.stderr, 'redis2d'), verdictLines(theirs.stderr, 'nginx'), `${name}: messages`);
  }
});

/** the keepalive timer of the established sockets to `port` (`ss -tno`), one entry per socket */
function keepaliveTimers(port: number): boolean[] {
  const out = execFileSync('ss', ['-tno', 'state', 'established', 'dst', `127.0.0.1:${port}`], { encoding: 'latin1' });
  return out.split('\n').slice(1).filter((l) => l.trim()).map((l) => l.includes('timer:(keepalive'));
}

t.test('proxy_socket_keepalive and fastcgi_socket_keepalive: SO_KEEPALIVE on the backend socket', { skip }, async (t) => {
  // a backend that holds each connection open (no answer) until told
  const held: Array<() => void> = [];
  const backend: Server = createServer((s) => {
    s.on('error', () => {});
    held.push(() => s.destroy());
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.teardown(() => backend.close());
  const bp = (backend.address() as AddressInfo).port;
  const http = `
    server {
      listen 127.0.0.1:{port};
      proxy_read_timeout 3s; fastcgi_read_timeout 3s;
      location /on { proxy_socket_keepalive on; proxy_pass http://127.0.0.1:${bp}; }
      location /off { proxy_pass http://127.0.0.1:${bp}; }
      location /fcgi { fastcgi_socket_keepalive on; fastcgi_pass 127.0.0.1:${bp}; }
    }`;
  for (const kind of ['nginx', 'redis2d'] as const) {
    const srv = kind === 'nginx' ? await startNginx(http) : await startRedis2d(http);
    t.teardown(() => srv.stop());
    for (const [path, want] of [['/on', true], ['/off', false], ['/fcgi', true]] as const) {
      const pending = raw(srv.port, get(path), 4000);
      let timers: boolean[] = [];
      for (let i = 0; i < 40 && timers.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        timers = keepaliveTimers(bp);
      }
      t.same(timers, [want], `${kind} ${path}: SO_KEEPALIVE ${want ? 'on' : 'off'}`);
      for (const release of held.splice(0)) release();
      await pending;
    }
  }
});
