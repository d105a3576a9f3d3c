import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { startRedis2d, raw } from './helpers/server.js';
import { freePort } from './helpers/redis.js';
import { makeCerts, type Certs } from './helpers/tls_certs.js';
import { runCmd } from './helpers/proc.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/*
 * TLS to Redis (redis2_ssl_*, lib/upstream/ssl.ts) against a real
 * redis-server with tls-port and certificates made here with openssl:
 * GET/SET with verification on, a wrong CA → 502 with nginx's proxy log
 * line, a name mismatch, client certificates when Redis requires them,
 * keepalive over TLS, and the -t checks.
 */

const certs: Certs = makeCerts();
t.teardown(() => certs.cleanup());

/* `caFile`: what Redis trusts for client certificates; OpenSSL also builds the chain it sends from it */
async function tlsRedis(t: Test, authClients: boolean, caFile = certs.ca, cert = certs.serverCert, key = certs.serverKey): Promise<number> {
  const port = await freePort();
  const proc: ChildProcess = spawn(
    'redis-server',
    ['--port', '0', '--bind', '127.0.0.1', '--tls-port', String(port), '--tls-cert-file', cert, '--tls-key-file', key,
      '--tls-ca-cert-file', caFile, '--tls-auth-clients', authClients ? 'yes' : 'no', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  t.teardown(() => {
    proc.kill('SIGKILL');
  });
  const until = Date.now() + 10000;
  for (;;) {
    const ok = await new Promise<boolean>((res) =>
      execFile('redis-cli', ['--tls', '--cacert', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey, '-p', String(port), 'PING'], (e, out) => res(!e && out.includes('PONG'))),
    );
    if (ok) return port;
    if (Date.now() > until) throw new Error('tls redis never answered');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function body(resp: string): [number, string] {
  const status = Number(resp.slice(9, 12));
  const i = resp.indexOf('\r\n\r\n');
  let b = resp.slice(i + 4);
  // chunked: one chunk then the last one
  const m = /^([0-9a-f]+)\r\n/.exec(b);
  if (m) b = b.slice(m[0].length, m[0].length + parseInt(m[1]!, 16));
  return [status, b];
}

// the server closes after each answer (Connection: close), so a generous idle limit costs
// nothing; a first TLS handshake to a cluster node under a loaded host took over raw's 300 ms
const req = (port: number, path: string): Promise<[number, string]> =>
  raw(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 5000).then(body);

t.test('GET/SET over TLS, verification on; keepalive keeps the TLS connection', async (t) => {
  const rport = await tlsRedis(t, false);
  const srv = await startRedis2d(`
    upstream tr { server 127.0.0.1:${rport}; keepalive 4; }
    server {
      listen 127.0.0.1:{port};
      redis2_ssl on;
      redis2_ssl_verify on;
      redis2_ssl_trusted_certificate ${certs.ca};
      location /set { redis2_query set $arg_k $arg_v; redis2_pass tr; redis2_ssl_name localhost; redis2_ssl_server_name on; }
      location /get { redis2_query get $arg_k; redis2_pass 127.0.0.1:${rport}; }
      location /hr { set $redis_key $arg_k; redis_pass 127.0.0.1:${rport}; redis_ssl on; redis_ssl_verify on; redis_ssl_trusted_certificate ${certs.ca}; }
      location /clients { redis2_query info clients; redis2_pass tr; redis2_ssl_name localhost; redis2_ssl_server_name on; }
    }`);
  t.teardown(() => srv.stop());
  t.same(await req(srv.port, '/set?k=a&v=hello'), [200, '+OK\r\n'], 'SET over TLS (name localhost, SNI on)');
  for (let i = 0; i < 4; i++) {
    // a connection per request here (no keepalive): from the second on, the TLS session is resumed and checked again
    t.same(await req(srv.port, '/get?k=a'), [200, '$5\r\nhello\r\n'], `GET over TLS (name 127.0.0.1, an IP SAN), connection ${i + 1}`);
  }
  t.same(await req(srv.port, '/hr?k=a'), [200, 'hello'], 'redis_pass over TLS (redis_ssl_*)');
  for (let i = 0; i < 5; i++) await req(srv.port, '/set?k=a&v=hello');
  const [, list] = await req(srv.port, '/clients');
  const n = Number(/connected_clients:(\d+)/.exec(list)?.[1]);
  t.equal(n, 1, `one TLS connection served every request of the keepalive upstream: ${list}`);
  t.notMatch(srv.errorLog(), /\[(error|crit|alert)\]/, 'nothing logged');
});

t.test('wrong CA → 502 and nginx\'s verify error line; name mismatch', async (t) => {
  // Redis sends its certificate and the intermediate CA, not the root: OpenSSL's error 20
  const rport = await tlsRedis(t, false, certs.otherCa, certs.chainedCert, certs.chainedKey);
  const srv = await startRedis2d(`
    server {
      listen 127.0.0.1:{port};
      redis2_ssl on;
      redis2_ssl_verify on;
      location /wrongca { redis2_ssl_trusted_certificate ${certs.otherCa}; redis2_query get a; redis2_pass 127.0.0.1:${rport}; }
      location /wrongname { redis2_ssl_trusted_certificate ${certs.ca}; redis2_ssl_name redis.example; redis2_query get a; redis2_pass 127.0.0.1:${rport}; }
      location /noverify { redis2_ssl_verify off; redis2_query ping; redis2_pass 127.0.0.1:${rport}; }
    }`);
  t.teardown(() => srv.stop());
  const [st] = await req(srv.port, '/wrongca');
  t.equal(st, 502);
  t.match(
    srv.errorLog(),
    /\[error\] \d+#\d+: \*\d+ upstream SSL certificate verify error: \(20:unable to get local issuer certificate\) while SSL handshaking to upstream, client: 127\.0\.0\.1, server: , request: "GET \/wrongca HTTP\/1\.1", upstream: "redis2:\/\/127\.0\.0\.1:\d+", host: "x"/,
  );
  const [st2] = await req(srv.port, '/wrongname');
  t.equal(st2, 502);
  t.match(srv.errorLog(), /upstream SSL certificate does not match "redis\.example" while SSL handshaking to upstream/);
  t.same(await req(srv.port, '/noverify'), [200, '+PONG\r\n'], 'verify off: any certificate');
});

t.test('wrong CA, other chains: OpenSSL\'s errors 19 and 21', async (t) => {
  const rport = await tlsRedis(t, false);
  // the leaf alone, its issuer unknown
  const lone = await tlsRedis(t, false, certs.otherCa);
  const srv = await startRedis2d(`
    server {
      listen 127.0.0.1:{port};
      location /wrongca { redis2_ssl on; redis2_ssl_verify on; redis2_ssl_trusted_certificate ${certs.otherCa}; redis2_query get a; redis2_pass 127.0.0.1:${rport}; }
      location /lone { redis2_ssl on; redis2_ssl_verify on; redis2_ssl_trusted_certificate ${certs.otherCa}; redis2_query get a; redis2_pass 127.0.0.1:${lone}; }
    }`);
  t.teardown(() => srv.stop());
  t.equal((await req(srv.port, '/wrongca'))[0], 502);
  t.match(srv.errorLog(), /\[error\] .*upstream SSL certificate verify error: \(19:self-signed certificate in certificate chain\) while SSL handshaking to upstream/, 'Redis sends the root it knows too');
  t.equal((await req(srv.port, '/lone'))[0], 502);
  t.match(srv.errorLog(), /\[error\] .*upstream SSL certificate verify error: \(21:unable to verify the first certificate\) while SSL handshaking to upstream/);
});

t.test('client certificate when Redis requires one (tls-auth-clients yes)', async (t) => {
  const rport = await tlsRedis(t, true);
  const srv = await startRedis2d(`
    server {
      listen 127.0.0.1:{port};
      redis2_ssl on;
      redis2_ssl_verify on;
      redis2_ssl_trusted_certificate ${certs.ca};
      location /cert { redis2_ssl_certificate ${certs.clientCert}; redis2_ssl_certificate_key ${certs.clientKey}; redis2_query ping; redis2_pass 127.0.0.1:${rport}; }
      location /nocert { redis2_query ping; redis2_pass 127.0.0.1:${rport}; }
    }`);
  t.teardown(() => srv.stop());
  t.same(await req(srv.port, '/cert'), [200, '+PONG\r\n'], 'with the client certificate');
  const [st] = await req(srv.port, '/nocert');
  t.equal(st, 502, 'without one: 502');
  t.match(srv.errorLog(), /\[(error|crit)\] .*SSL_(do_handshake|read)\(\) failed \(SSL: error:[0-9A-F]{8}:SSL routines::.*\) while (SSL handshaking to upstream|reading response header from upstream)/);
});

t.test('-t: nginx\'s checks of the proxy_ssl family', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'redis2d-tls-conf-'));
  const check = async (loc: string): Promise<string> => {
    const f = join(dir, 'nginx.conf');
    writeFileSync(f, `pid ${dir}/nginx.pid; error_log ${dir}/error.log; events {} http { access_log off; server { listen 127.0.0.1:1; location / { ${loc} redis2_pass 127.0.0.1:1; } } }\n`);
    const r = await runCmd(['-t', '-p', dir, '-c', f]);
    return r.stderr;
  };
  t.match(await check('redis2_ssl on; redis2_ssl_verify on;'), /\[emerg\] no redis2_ssl_trusted_certificate for redis2_ssl_verify\n/);
  t.match(await check(`redis2_ssl on; redis2_ssl_certificate ${certs.clientCert};`), `[emerg] no "redis2_ssl_certificate_key" is defined for certificate "${certs.clientCert}"`);
  t.match(await check('redis_ssl on; redis_ssl_verify on; set $redis_key a; redis_pass 127.0.0.1:2;'), /\[emerg\] no redis_ssl_trusted_certificate for redis_ssl_verify\n/);
  t.match(await check('redis2_ssl maybe;'), /\[emerg\] invalid value "maybe" in "redis2_ssl" directive, it must be "on" or "off" in .*nginx\.conf:1/);
  t.match(await check('redis2_ssl_protocols TLSv9;'), /\[emerg\] invalid value "TLSv9" in .*nginx\.conf:1/);
  t.match(await check('redis2_ssl on; redis2_ssl_verify on; redis2_ssl_trusted_certificate /nonexistent/ca.pem;'), /\[emerg\] .*"\/nonexistent\/ca\.pem"/);
  const ok = await check('redis2_ssl off; redis2_ssl_verify on;');
  t.match(ok, /test is successful/, `checks apply only with redis2_ssl on: ${ok}`);
});

t.test('a Redis Cluster over TLS (tls-cluster yes): map read over TLS, tls-port used', async (t) => {
  const tlsCli = ['--tls', '--cacert', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey];
  const ports: number[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const bus = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'redis2d-tls-cluster-'));
    const proc = spawn(
      'redis-server',
      ['--port', '0', '--bind', '127.0.0.1', '--tls-port', String(port), '--tls-cluster', 'yes', '--tls-replication', 'yes',
        '--tls-cert-file', certs.serverCert, '--tls-key-file', certs.serverKey, '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'no',
        '--cluster-enabled', 'yes', '--cluster-port', String(bus), '--cluster-config-file', 'nodes.conf', '--dir', dir, '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    t.teardown(() => {
      proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
    ports.push(port);
  }
  const cli = (args: string[]): Promise<string> =>
    new Promise((res) => execFile('redis-cli', [...tlsCli, ...args], { timeout: 20000 }, (_e, out, err) => res(out + err)));
  for (const p of ports) {
    for (let k = 0; k < 200 && !(await cli(['-p', String(p), 'PING'])).includes('PONG'); k++) await new Promise((r) => setTimeout(r, 50));
  }
  const created = await cli(['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
  t.match(created, /All 16384 slots covered/, 'cluster created');
  for (let k = 0; k < 100; k++) {
    const infos = await Promise.all(ports.map((p) => cli(['-p', String(p), 'CLUSTER', 'INFO'])));
    if (infos.every((i) => i.includes('cluster_state:ok'))) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const srv = await startRedis2d(`
    upstream tc { redis_cluster; server 127.0.0.1:${ports[0]}; keepalive 8; }
    server {
      listen 127.0.0.1:{port};
      redis2_ssl on;
      redis2_ssl_verify on;
      redis2_ssl_trusted_certificate ${certs.ca};
      redis2_ssl_name localhost;
      location /set { redis2_query set $arg_k $arg_v; redis2_pass tc; }
      location /get { redis2_query get $arg_k; redis2_pass tc; }
    }`);
  t.teardown(() => srv.stop());
  // the first few wrong answers are kept whole, so a rare loss says what it was
  const wrong: string[] = [];
  const check = (path: string, got: [number, string], want: string): void => {
    if (got[1] !== want && wrong.push(`${path}: ${got[0]} ${JSON.stringify(got[1].slice(0, 120))}`) > 3) wrong.length = 3;
  };
  for (let i = 0; i < 300; i++) check(`/set?k=t${i}`, await req(srv.port, `/set?k=t${i}&v=${i}`), '+OK\r\n');
  for (let i = 0; i < 300; i++) check(`/get?k=t${i}`, await req(srv.port, `/get?k=t${i}`), `$${String(i).length}\r\n${i}\r\n`);
  t.same(wrong, [], 'every key set and read over TLS through the cluster');
  const sizes = await Promise.all(ports.map(async (p) => Number((await cli(['-p', String(p), 'DBSIZE'])).trim())));
  t.equal(sizes.reduce((a, b) => a + b, 0), 300);
  t.ok(sizes.every((s) => s > 50), `keys on every node: ${sizes}`);
  t.notMatch(srv.errorLog(), /\[(error|crit|alert)\]/);
});
