import t from 'tap';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startRedis } from './helpers/redis.js';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';
import { makeCerts, tlsRaw, type TlsResult } from './helpers/tls.js';

/*
 * TLS termination against Debian's nginx on the same configs, with
 * certificates the test makes (t/helpers/tls.ts): handshakes under each
 * protocol and cipher setting, SNI choosing the certificate and the
 * server, RSA and ECDSA pairs in one server, the ssl variables, plain
 * HTTP on the TLS port (497 page, error_page 497), client certificates
 * (on, optional, optional_no_ca: 495, 496, the verify variables), the
 * 421 of a Host other than the SNI name on a verifying server, keep-alive
 * over TLS with echo and redis2 locations, and the info lines nginx logs.
 */

const MODS = '/usr/lib/nginx/modules';
const LOAD = `load_module ${MODS}/ngx_http_echo_module.so;`;
const skip = !hasNginx || !existsSync(`${MODS}/ngx_http_echo_module.so`) ? 'Debian nginx with the echo module is not installed' : false;

const certs = makeCerts(['a.test', 'b.test', 'w.test', 'v.test'], ['a.test']);
t.teardown(() => rmSync(certs.dir, { recursive: true, force: true }));
const C = certs.dir;

const VARS = 'scheme=$scheme https=$https proto=$ssl_protocol cipher=$ssl_cipher sni=$ssl_server_name reused=$ssl_session_reused alpn=$ssl_alpn_protocol host=$host server=$server_name';
const CLIENT_VARS = 'verify=$ssl_client_verify s_dn=$ssl_client_s_dn i_dn=$ssl_client_i_dn legacy=$ssl_client_s_dn_legacy serial=$ssl_client_serial fp=$ssl_client_fingerprint start=$ssl_client_v_start end=$ssl_client_v_end';

const SITE = `
  access_log off;
  ssl_session_timeout 10m;
  server {
    listen 127.0.0.1:{port} ssl default_server;
    server_name a.test;
    ssl_certificate ${C}/a.test.crt;
    ssl_certificate_key ${C}/a.test.key;
    ssl_certificate ${C}/ec-a.test.crt;
    ssl_certificate_key ${C}/ec-a.test.key;
    location / { return 200 "A ${VARS}\\n"; }
    location /id { return 200 "$ssl_session_id\\n"; }
    location /echo { echo "echo $uri $https"; echo_duplicate 3 "ab"; }
    location /redir { return 301 /there; }
    location /rel { return 302 /here; }
    location /err { return 404; }
  }
  server {
    listen 127.0.0.1:{port} ssl;
    server_name b.test;
    ssl_certificate ${C}/b.test.crt;
    ssl_certificate_key ${C}/b.test.key;
    location / { return 200 "B ${VARS}\\n"; }
  }
  server {
    listen 127.0.0.1:{port} ssl;
    server_name *.w.test;
    ssl_certificate ${C}/w.test.crt;
    ssl_certificate_key ${C}/w.test.key;
    location / { return 200 "W ${VARS}\\n"; }
  }
  server {
    listen 127.0.0.1:{port} ssl;
    server_name v.test;
    ssl_certificate ${C}/v.test.crt;
    ssl_certificate_key ${C}/v.test.key;
    ssl_client_certificate ${C}/ca.pem;
    ssl_verify_client on;
    location / { return 200 "V ${CLIENT_VARS}\\n"; }
  }
  server {
    listen 127.0.0.1:{port} ssl;
    server_name o.test;
    ssl_certificate ${C}/v.test.crt;
    ssl_certificate_key ${C}/v.test.key;
    ssl_client_certificate ${C}/ca.pem;
    ssl_verify_client optional;
    location / { return 200 "O ${CLIENT_VARS}\\n"; }
  }
  server {
    listen 127.0.0.1:{port} ssl;
    server_name n.test;
    ssl_certificate ${C}/v.test.crt;
    ssl_certificate_key ${C}/v.test.key;
    ssl_verify_client optional_no_ca;
    location / { return 200 "N verify=$ssl_client_verify s_dn=$ssl_client_s_dn\\n"; }
  }
  server {
    listen 127.0.0.1:{port} ssl;
    server_name e.test;
    ssl_certificate ${C}/b.test.crt;
    ssl_certificate_key ${C}/b.test.key;
    error_page 497 https://$host:$server_port$request_uri;
    location / { return 200 "E\\n"; }
  }
`;

const get = (path: string, host: string, close = true): string => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
const readFile = (p: string): Buffer => readFileSync(join(C, p));

interface Pair {
  ours: Running;
  theirs: Running;
}

async function both(http: string, main = ''): Promise<Pair> {
  const ours = await startRedis2d(http, main);
  const theirs = await startNginx(http, main);
  return { ours, theirs };
}

/** what a TLS exchange settled, with the server's bytes normalised */
function settled(r: TlsResult, port: number): Omit<TlsResult, 'session'> {
  const { session: _s, ...rest } = r;
  return { ...rest, out: normalize(r.out, port) };
}

t.test('TLS site against nginx', { skip }, async (t) => {
  const { ours, theirs } = await both(SITE, LOAD);
  t.teardown(() => ours.stop());
  t.teardown(() => theirs.stop());

  const cmp = async (name: string, data: string | string[], opts: Parameters<typeof tlsRaw>[2] = {}): Promise<[TlsResult, TlsResult]> => {
    const a = await tlsRaw(ours.port, data, opts);
    const b = await tlsRaw(theirs.port, data, opts);
    t.same(settled(a, ours.port), settled(b, theirs.port), name);
    return [a, b];
  };

  await t.test('SNI chooses the certificate and the server', async (t) => {
    for (const [sni, host] of [
      ['a.test', 'a.test'],
      ['b.test', 'b.test'],
      ['x.w.test', 'x.w.test'],
      ['unknown.test', 'unknown.test'],
      ['b.test', 'a.test'],
      ['a.test', 'b.test'],
      ['B.TEST', 'b.test'],
    ] as const) {
      const [a] = await cmp(`SNI ${sni}, Host ${host}`, get('/', host), { servername: sni, maxVersion: 'TLSv1.2' });
      t.ok(a.out.startsWith('HTTP/1.1 200'), `200 for ${sni}/${host}`);
    }
    // no SNI (an IP address): the default server's certificate; HTTP/1.0 without Host
    const [a] = await cmp('no SNI', 'GET / HTTP/1.0\r\n\r\n', { maxVersion: 'TLSv1.2' });
    t.equal(a.peer, 'a.test');
  });

  await t.test('RSA and ECDSA pairs in one server', async () => {
    const [ec] = await cmp('ECDSA cipher', get('/', 'a.test'), { servername: 'a.test', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    t.equal(ec.peer, 'ec-a.test');
    const [rsa] = await cmp('RSA cipher', get('/', 'a.test'), { servername: 'a.test', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
    t.equal(rsa.peer, 'a.test');
  });

  await t.test('protocols: nginx 1.22 offers TLSv1 to TLSv1.2 by default', async () => {
    const [v13] = await cmp('TLSv1.3 only', get('/', 'a.test'), { servername: 'a.test', minVersion: 'TLSv1.3' });
    t.not(v13.error, '', 'a TLSv1.3-only client is refused');
    await cmp('TLSv1.2', get('/', 'a.test'), { servername: 'a.test', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    await cmp('TLSv1.1', get('/', 'a.test'), { servername: 'a.test', minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' });
    await cmp('ALPN http/1.1', get('/', 'a.test'), { servername: 'a.test', maxVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'] });
    await cmp('ALPN h2 and http/1.1 (no http2 listen)', get('/', 'a.test'), { servername: 'a.test', maxVersion: 'TLSv1.2', ALPNProtocols: ['h2', 'http/1.1'] });
    await cmp('ALPN h2 only: no protocol in common', get('/', 'a.test'), { servername: 'a.test', maxVersion: 'TLSv1.2', ALPNProtocols: ['h2'] });
  });

  await t.test('session resumption and $ssl_session_id', async (t) => {
    for (const [port, who] of [[ours.port, 'ours'], [theirs.port, 'nginx']] as const) {
      const first = await tlsRaw(port, get('/', 'a.test'), { servername: 'a.test', maxVersion: 'TLSv1.2' });
      t.match(first.out, /reused=\./, `${who}: a new session`);
      const again = await tlsRaw(port, get('/', 'a.test'), { servername: 'a.test', maxVersion: 'TLSv1.2', session: first.session });
      t.match(again.out, /reused=r/, `${who}: resumed with the ticket`);
      const id = await tlsRaw(port, get('/id', 'a.test'), { servername: 'a.test', maxVersion: 'TLSv1.2' });
      t.match(id.out, /\r\n\r\n\n$/, `${who}: no session id under a ticket (TLSv1.2)`);
    }
  });

  await t.test('plain HTTP on the TLS port: the 497 page, closed', async () => {
    const req = 'GET /x HTTP/1.1\r\nHost: a.test\r\n\r\nGET /y HTTP/1.1\r\nHost: a.test\r\n\r\n';
    const a = normalize(await raw(ours.port, req), ours.port);
    const b = normalize(await raw(theirs.port, req), theirs.port);
    t.equal(a, b, 'same bytes');
    t.match(a, /^HTTP\/1\.1 400 Bad Request\r\n[^]*Connection: close\r\n[^]*The plain HTTP request was sent to HTTPS port/);
    const hd = 'HEAD / HTTP/1.0\r\n\r\n';
    t.equal(normalize(await raw(ours.port, hd), ours.port), normalize(await raw(theirs.port, hd), theirs.port), 'HEAD, HTTP/1.0');
    const e = 'GET /p?q=1 HTTP/1.1\r\nHost: e.test\r\n\r\n';
    const ea = normalize(await raw(ours.port, e), ours.port);
    t.equal(ea, normalize(await raw(theirs.port, e), theirs.port), 'error_page 497 redirects');
    t.match(ea, /^HTTP\/1\.1 302 Moved Temporarily\r\n[^]*Location: https:\/\/e\.test:PORT\/p\?q=1\r\n/);
  });

  await t.test('keep-alive over TLS: echo, redirects, errors', async () => {
    const reqs = [get('/echo', 'a.test', false), get('/redir', 'a.test', false), get('/rel', 'a.test', false), get('/err', 'a.test', false), get('/', 'b.test')];
    await cmp('one connection, requests one by one', reqs, { servername: 'a.test', maxVersion: 'TLSv1.2' });
    await cmp('pipelined', reqs.join(''), { servername: 'a.test', maxVersion: 'TLSv1.2' });
  });

  await t.test('client certificates', async () => {
    const client = { cert: readFile('client.crt'), key: readFile('client.key') };
    const rogue = { cert: readFile('rogue.crt'), key: readFile('rogue.key') };
    await cmp('on, no certificate: 496', get('/', 'v.test'), { servername: 'v.test', maxVersion: 'TLSv1.2' });
    await cmp('on, signed by the CA', get('/', 'v.test'), { servername: 'v.test', maxVersion: 'TLSv1.2', ...client });
    await cmp('on, self-signed: 495', get('/', 'v.test'), { servername: 'v.test', maxVersion: 'TLSv1.2', ...rogue });
    await cmp('optional, none', get('/', 'o.test'), { servername: 'o.test', maxVersion: 'TLSv1.2' });
    await cmp('optional, signed', get('/', 'o.test'), { servername: 'o.test', maxVersion: 'TLSv1.2', ...client });
    await cmp('optional_no_ca, self-signed', get('/', 'n.test'), { servername: 'n.test', maxVersion: 'TLSv1.2', ...rogue });
    await cmp('Host of a verifying server under another SNI name: 421', get('/', 'v.test'), { servername: 'a.test', maxVersion: 'TLSv1.2', ...client });
    await cmp('SNI of a verifying server, Host elsewhere', get('/', 'b.test'), { servername: 'v.test', maxVersion: 'TLSv1.2', ...client });
  });

  await t.test('the info lines nginx logs', async (t) => {
    const lines = (log: string): string[] =>
      log
        .split('\n')
        .filter((l) => /plain HTTP|SSL_do_handshake|certificate|server name different/.test(l))
        .map((l) => l.replace(/^.*?\[info\] \d+#\d+: \*\d+ /, '').replaceAll(/:\d{4,5}\b/g, ':PORT'));
    await new Promise((r) => setTimeout(r, 200));
    t.same(lines(ours.errorLog()), lines(theirs.errorLog()), 'same lines');
    t.ok(lines(ours.errorLog()).length >= 5, 'the 497, 495, 496, 421 and handshake lines are there');
  });
});

t.test('ssl_protocols and ssl_ciphers settings', { skip }, async (t) => {
  const conf = (extra: string): string => `
    access_log off;
    server {
      listen 127.0.0.1:{port} ssl;
      ssl_certificate ${C}/a.test.crt;
      ssl_certificate_key ${C}/a.test.key;
      ${extra}
      location / { return 200 "proto=$ssl_protocol cipher=$ssl_cipher\\n"; }
    }`;
  const settings: Array<[string, Array<[string, Parameters<typeof tlsRaw>[2]]>]> = [
    [
      'ssl_protocols TLSv1.2 TLSv1.3;',
      [
        ['default client', {}],
        ['TLSv1.2 client', { maxVersion: 'TLSv1.2' }],
        ['TLSv1.1 client', { maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }],
      ],
    ],
    [
      'ssl_protocols TLSv1.3;',
      [
        ['default client', {}],
        ['TLSv1.2 client', { maxVersion: 'TLSv1.2' }],
      ],
    ],
    [
      'ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384; ssl_prefer_server_ciphers on;',
      [
        ['server order', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256' }],
        ['no shared cipher', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-CHACHA20-POLY1305' }],
      ],
    ],
    [
      'ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384; ssl_prefer_server_ciphers off;',
      [['client order', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256' }]],
    ],
    [
      'ssl_protocols TLSv1.2 TLSv1.3; ssl_ecdh_curve secp384r1;',
      [['TLSv1.3 on P-384', {}]],
    ],
    [
      'ssl_session_tickets off;',
      [['no ticket', { maxVersion: 'TLSv1.2' }]],
    ],
  ];
  for (const [extra, clients] of settings) {
    const { ours, theirs } = await both(conf(extra));
    for (const [name, opts] of clients) {
      const a = await tlsRaw(ours.port, get('/', 'a.test'), opts);
      const b = await tlsRaw(theirs.port, get('/', 'a.test'), opts);
      t.same(settled(a, ours.port), settled(b, theirs.port), `${extra} ${name}`);
      if (extra.startsWith('ssl_session_tickets')) t.equal(a.session === undefined, b.session === undefined, 'a ticket only where nginx sends one');
    }
    await ours.stop();
    await theirs.stop();
  }
});

t.test('redis2 over TLS with keep-alive: the bytes plain HTTP gets', async (t) => {
  const redis = await startRedis(t);
  await redis.command(['SET', 'k', 'v1']);
  const up = `127.0.0.1:${redis.port}`;
  const http = (ssl: string): string => `
    access_log off;
    server {
      listen 127.0.0.1:{port}${ssl};
      ssl_certificate ${C}/a.test.crt;
      ssl_certificate_key ${C}/a.test.key;
      location /get { redis2_query get k; redis2_pass ${up}; }
      location /two { redis2_query ping; redis2_query get k; redis2_pass ${up}; }
    }`;
  const tls = await startRedis2d(http(' ssl'));
  t.teardown(() => tls.stop());
  const plain = await startRedis2d(http(''));
  t.teardown(() => plain.stop());
  const reqs = [get('/get', 'x', false), get('/two', 'x', false), get('/get', 'x')];
  const overTls = await tlsRaw(tls.port, reqs);
  const overPlain = await raw(plain.port, reqs);
  t.equal(normalize(overTls.out, tls.port), normalize(overPlain, plain.port), 'same bytes as plain HTTP');
  t.equal(overTls.out.split('HTTP/1.1 200 OK').length - 1, 3, 'three responses on one connection');
  t.match(overTls.out, /\r\n\+PONG\r\n\$2\r\nv1\r\n/);
});

t.test('session tickets work across workers (keys shared as nginx shares its master’s)', async (t) => {
  const { mkdtempSync, writeFileSync, mkdirSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { spawn } = await import('node:child_process');
  const { freePort } = await import('./helpers/server.js');
  const { ROOT } = await import('./helpers/proc.js');
  const dir = mkdtempSync(join(tmpdir(), 'tls-workers-'));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off; master_process on; worker_processes 2; pid ${dir}/nginx.pid; error_log ${dir}/error.log info;
     events {}
     http { access_log off;
       server { listen 127.0.0.1:${port} ssl; ssl_certificate ${C}/a.test.crt; ssl_certificate_key ${C}/a.test.key;
         location / { return 200 "$pid $ssl_session_reused\\n"; } } }`,
  );
  const proc = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, join(ROOT, 'bin/redis2d'), '-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
  t.teardown(() => {
    proc.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });
  const until = Date.now() + 8000;
  let first: TlsResult | undefined;
  while (Date.now() < until) {
    first = await tlsRaw(port, get('/', 'a.test'), { maxVersion: 'TLSv1.2' });
    if (first.out.includes('200 OK')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.ok(first?.session, 'a ticket');
  const pids = new Set<string>();
  let resumed = 0;
  for (let i = 0; i < 12; i++) {
    const r = await tlsRaw(port, get('/', 'a.test'), { maxVersion: 'TLSv1.2', session: first!.session });
    const m = /\r\n\r\n(\d+) (.)\n/.exec(r.out);
    if (m) {
      pids.add(m[1]!);
      if (m[2] === 'r') resumed++;
    }
  }
  t.equal(resumed, 12, 'every connection resumed the session');
  t.comment(`served by ${pids.size} worker(s)`);
});

t.test('handshake timeouts and closes: nginx info lines', { skip }, async (t) => {
  const { connect } = await import('node:net');
  const http = `
    access_log off;
    client_header_timeout 1s;
    server {
      listen 127.0.0.1:{port} ssl;
      ssl_certificate ${C}/a.test.crt;
      ssl_certificate_key ${C}/a.test.key;
      location / { return 200 "ok\\n"; }
    }`;
  const { ours, theirs } = await both(http);
  t.teardown(() => ours.stop());
  t.teardown(() => theirs.stop());
  // a partial ClientHello: a TLS record header and a few bytes of the hello
  const partial = Buffer.from('16030100c8010000c40303', 'hex');
  const scenario = (port: number, send: Buffer | undefined, end: boolean): Promise<void> =>
    new Promise((res) => {
      const c = connect(port, '127.0.0.1', () => {
        if (send) c.write(send);
        if (end) c.end();
      });
      c.on('error', () => {});
      c.on('close', () => res());
      setTimeout(() => c.destroy(), 2500).unref();
    });
  for (const port of [ours.port, theirs.port]) {
    await Promise.all([scenario(port, undefined, false), scenario(port, partial, false), scenario(port, undefined, true), scenario(port, Buffer.from('GE'), true)]);
  }
  await new Promise((r) => setTimeout(r, 200));
  const lines = (log: string): string[] =>
    log
      .split('\n')
      .filter((l) => /\[info\]/.test(l))
      .map((l) => l.replace(/^.*?\[info\] \d+#\d+: \*\d+ /, '').replaceAll(/:\d{4,5}\b/g, ':PORT'))
      .sort();
  t.same(lines(ours.errorLog()), lines(theirs.errorLog()), 'same info lines');
  t.ok(lines(ours.errorLog()).some((l) => l.includes('while SSL handshaking')), 'lines while SSL handshaking');
});

t.test('ssl_reject_handshake in the default server', { skip }, async (t) => {
  const http = `
    access_log off;
    server { listen 127.0.0.1:{port} ssl default_server; ssl_reject_handshake on; }
    server {
      listen 127.0.0.1:{port} ssl;
      server_name b.test;
      ssl_certificate ${C}/b.test.crt;
      ssl_certificate_key ${C}/b.test.key;
      location / { return 200 "b\\n"; }
    }`;
  const { ours, theirs } = await both(http);
  t.teardown(() => ours.stop());
  t.teardown(() => theirs.stop());
  for (const [name, opts] of [
    ['a known name', { servername: 'b.test', maxVersion: 'TLSv1.2' }],
    ['an unknown name', { servername: 'x.test', maxVersion: 'TLSv1.2' }],
    ['no name', { maxVersion: 'TLSv1.2' }],
  ] as const) {
    const a = await tlsRaw(ours.port, get('/', 'b.test'), opts);
    const b = await tlsRaw(theirs.port, get('/', 'b.test'), opts);
    t.same(settled(a, ours.port), settled(b, theirs.port), name);
  }
  await new Promise((r) => setTimeout(r, 200));
  const lines = (log: string): string[] =>
    log
      .split('\n')
      .filter((l) => /\[info\]/.test(l))
      .map((l) => l.replace(/^.*?\[info\] \d+#\d+: \*\d+ /, '').replaceAll(/:\d{4,5}\b/g, ':PORT'));
  t.same(lines(ours.errorLog()), lines(theirs.errorLog()), 'same info lines');
});
