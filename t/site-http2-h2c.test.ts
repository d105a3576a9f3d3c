import t from 'tap';
import { readFileSync, rmSync } from 'node:fs';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { hasNginx, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';
import { makeCerts, tlsRaw } from './helpers/tls.js';

/*
 * HTTP/2 as nginx 1.22.1 counts and names it, against Debian's nginx on
 * the same configs: prior knowledge (h2c) on a plain `listen ... http2`
 * (requests, $server_protocol/$request/$http2/$connection/
 * $connection_requests in bodies and access logs; what an HTTP/1.x client,
 * a client that stops inside the preface, one that closes at once and one
 * that times out get, bytes and info lines); stub_status with HTTP/2
 * connections (h2 and h2c) open, idle or busy; $http2 over TLS; the SETTINGS
 * http2_max_concurrent_streams and http2_body_preread_size give; and
 * keepalive_requests ending a connection with GOAWAY.
 */

const skip = !hasNginx ? 'Debian nginx is not installed' : false;
const certs = makeCerts(['h.test']);
t.teardown(() => rmSync(certs.dir, { recursive: true, force: true }));

const VARS = 'p=$server_protocol r=[$request] h=[$http2] cr=$connection_requests';
const LOG = `log_format f '$status|$server_protocol|$request|$http2|$connection_requests|$body_bytes_sent|$request_method';`;

const H2C = `
  ${LOG}
  server {
    listen 127.0.0.1:{port} http2;
    access_log {dir}/logs/a.log f;
    client_header_timeout 1s;
    location = /status { stub_status; }
    location /v { return 200 "${VARS}\\n"; }
    location /redir { return 302 /elsewhere; }
    location /post { return 201 "m=$request_method cl=[$http_content_length]\\n"; }
  }
`;

const TLS = `
  ${LOG}
  server {
    listen 127.0.0.1:{port} ssl http2;
    server_name h.test;
    access_log {dir}/logs/a.log f;
    ssl_certificate ${certs.dir}/h.test.crt;
    ssl_certificate_key ${certs.dir}/h.test.key;
    location = /status { stub_status; }
    location /v { return 200 "${VARS}\\n"; }
  }
`;

function session(port: number, tls: boolean): ClientHttp2Session {
  const s = tls ? h2connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'h.test' }) : h2connect(`http://127.0.0.1:${port}`);
  s.on('error', () => {});
  return s;
}

/** one request on a session: `STATUS [location] body` (the server's name and port taken out) */
function req(s: ClientHttp2Session, headers: Record<string, string>, body?: string): Promise<string> {
  return new Promise((resolve) => {
    const r = s.request({ ':authority': 'h.test', ...headers }, { endStream: body === undefined });
    let out = '';
    r.on('response', (h) => {
      out += `${h[':status']} `;
      if (h.location !== undefined) out += `[${String(h.location).replace(/:\d+/, ':PORT')}] `;
    });
    r.on('data', (d: Buffer) => (out += d.toString('latin1')));
    r.on('end', () => resolve(out.replace(/redis2d\/[0-9.]+|nginx\/[0-9.]+/g, 'S')));
    r.on('error', (e: Error) => resolve(`error ${(e as { code?: string }).code ?? e.message}`));
    if (body !== undefined) r.end(body);
  });
}

const close = (s: ClientHttp2Session): Promise<void> => new Promise((r) => s.close(() => r()));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** the info lines of the error log, without time, pid and the connection number's spelling */
const infoLines = (srv: Running): string[] =>
  srv
    .errorLog()
    .split('\n')
    .filter((l) => l.includes('[info]'))
    .map((l) => l.replace(/^\S+ \S+ \[info\] \d+#\d+: /, '').replace(`:${srv.port}`, ':PORT'));

const accessLog = (srv: Running): string => readFileSync(join(srv.dir, 'logs/a.log'), 'latin1');

async function both(http: string): Promise<[Running, Running]> {
  const ours = await startRedis2d(http);
  t.teardown(() => ours.stop());
  const theirs = await startNginx(http);
  t.teardown(() => theirs.stop());
  return [ours, theirs];
}

t.test('h2c: prior knowledge on a plain http2 listen', { skip }, async (t) => {
  const [ours, theirs] = await both(H2C);
  const run = async (port: number): Promise<string[]> => {
    const s = session(port, false);
    const out = [
      await req(s, { ':path': '/v?a=1' }),
      await req(s, { ':path': '/v', ':method': 'HEAD' }),
      await req(s, { ':path': '/redir' }),
      await req(s, { ':path': '/nope' }),
      await req(s, { ':path': '/post', ':method': 'POST', 'content-length': '3' }, 'abc'),
      await req(s, { ':path': '/post', ':method': 'POST' }, 'streamed'),
      await req(s, { ':path': '/v?last' }),
    ];
    await close(s);
    return out;
  };
  const a = await run(ours.port);
  t.same(a, await run(theirs.port), 'statuses, locations, bodies');
  t.equal(a[0], '200 p=HTTP/2.0 r=[GET /v?a=1 HTTP/2.0] h=[h2c] cr=1\n', 'HTTP/2.0, h2c, the first request of its connection');
  t.equal(a[6], '200 p=HTTP/2.0 r=[GET /v?last HTTP/2.0] h=[h2c] cr=7\n', 'the seventh');
  await sleep(200);
  // an error page's length counts the server's name in its footer
  const errBytes = (log: string): string => log.replace(/^([3-5]\d\d\|(?:[^|]*\|){4})\d+/gm, '$1N');
  t.equal(errBytes(accessLog(ours)), errBytes(accessLog(theirs)), 'access log lines');
  t.match(accessLog(ours), /^200\|HTTP\/2\.0\|GET \/v\?a=1 HTTP\/2\.0\|h2c\|1\|/);
});

t.test('h2c: what a client without the preface gets', { skip }, async (t) => {
  const [ours, theirs] = await both(H2C);
  for (const srv of [ours, theirs]) {
    srv.errorLog(); // the start-up probe's connection is in both logs alike
  }
  const cases: Array<[string, string | string[]]> = [
    ['an HTTP/1.1 request', 'GET /v HTTP/1.1\r\nHost: h.test\r\n\r\n'],
    ['an HTTP/1.0 request line in pieces', ['GET /v HT', 'TP/1.0\r\n\r\n']],
    ['the preface, then garbage', 'PRI * HTTP/2.0\r\n\r\nXX\r\n\r\nmore'],
  ];
  for (const [name, data] of cases) {
    const a = await raw(ours.port, data);
    const b = await raw(theirs.port, data);
    t.equal(Buffer.from(a, 'latin1').toString('hex'), Buffer.from(b, 'latin1').toString('hex'), `${name}: SETTINGS, WINDOW_UPDATE, GOAWAY(PROTOCOL_ERROR) as nginx's`);
    t.equal(a.length, 9 + 18 + 13 + 17, `${name}: three frames`);
  }
  // inside the preface, then FIN; and a connection that sends nothing
  // (nginx has sent its SETTINGS by then; redis2d sends nothing before the preface: docs/behaviour.md §11)
  await raw(ours.port, 'PRI * HTT');
  await raw(theirs.port, 'PRI * HTT');
  t.equal(await raw(ours.port, ''), await raw(theirs.port, ''), 'a connection that sends nothing, closed by the client');
  await sleep(200);
  const lines = (srv: Running): string[] => infoLines(srv).map((l) => l.replace(/^\*\d+ /, '*N '));
  t.same(lines(ours), lines(theirs), 'info lines');
  t.ok(lines(ours).includes('*N invalid connection preface while processing HTTP/2 connection, client: 127.0.0.1, server: 127.0.0.1:PORT'));
  t.ok(lines(ours).includes('*N client prematurely closed connection while processing HTTP/2 connection, client: 127.0.0.1, server: 127.0.0.1:PORT'));

  await t.test('client_header_timeout before the preface', async (t) => {
    const silent = (port: number): Promise<string> =>
      new Promise((resolve) => {
        const c = tcpConnect(port, '127.0.0.1');
        let out = Buffer.alloc(0);
        c.on('data', (d: Buffer) => (out = Buffer.concat([out, d])));
        c.on('error', () => {});
        c.on('close', () => resolve(out.toString('hex')));
        setTimeout(() => c.destroy(), 4000).unref();
      });
    const [x, y] = await Promise.all([silent(ours.port), silent(theirs.port)]);
    t.equal(x, y, 'SETTINGS, WINDOW_UPDATE, GOAWAY after the timeout');
    t.ok(x.length > 0);
    await sleep(100);
    const timedOut = (srv: Running): string[] => lines(srv).filter((l) => l.includes('timed out'));
    t.same(timedOut(ours), timedOut(theirs), 'info line');
    t.equal(timedOut(ours).length, 1);
  });
});

/** the stub_status page asked over `via`, or over a connection of its own */
async function status(port: number, via: ClientHttp2Session | 'new', tls = false): Promise<string> {
  if (via !== 'new') return req(via, { ':path': '/status' });
  const s = session(port, tls);
  const page = await req(s, { ':path': '/status' });
  await close(s);
  // the server sees that close on its own time: let it, before the next page is asked
  await sleep(100);
  return page;
}

for (const tls of [false, true]) {
  t.test(`stub_status with HTTP/2 connections (${tls ? 'h2' : 'h2c'})`, { skip }, async (t) => {
    const [ours, theirs] = await both(tls ? TLS : H2C);
    const play = async (port: number): Promise<string[]> => {
      const out: string[] = [];
      const idle = session(port, tls);
      await req(idle, { ':path': '/v' });
      await req(idle, { ':path': '/v' });
      const busy = session(port, tls);
      out.push(await status(port, busy));
      out.push(await status(port, busy));
      // a stream left open (its request body not ended) keeps its connection busy
      const open = busy.request({ ':path': '/nope', ':method': 'POST', ':authority': 'h.test' }, { endStream: false });
      open.on('error', () => {});
      open.resume();
      await sleep(150);
      out.push(await status(port, 'new', tls));
      // several streams at once
      out.push(...(await Promise.all([status(port, busy), status(port, idle)])));
      open.close();
      await close(idle);
      await close(busy);
      await sleep(150);
      out.push(await status(port, 'new', tls));
      return out;
    };
    const a = await play(ours.port);
    t.same(a, await play(theirs.port), 'the pages');
    t.match(a[0], /^200 Active connections: 2 \nserver accepts handled requests\n 3 3 3 \nReading: 0 Writing: 1 Waiting: 1 \n$/, 'one idle h2 connection waits, streams are requests');
  });
}

t.test('$http2 over TLS: h2, and empty on HTTP/1.1', { skip }, async (t) => {
  const [ours, theirs] = await both(TLS);
  for (const srv of [ours, theirs]) {
    const s = session(srv.port, true);
    t.equal(await req(s, { ':path': '/v' }), '200 p=HTTP/2.0 r=[GET /v HTTP/2.0] h=[h2] cr=1\n', `${srv === ours ? 'redis2d' : 'nginx'}: h2`);
    await close(s);
    const r = await tlsRaw(srv.port, 'GET /v HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n', { servername: 'h.test', ALPNProtocols: ['http/1.1'] });
    t.match(r.out, /\r\n\r\np=HTTP\/1\.1 r=\[GET \/v HTTP\/1\.1\] h=\[\] cr=1\n$/, `${srv === ours ? 'redis2d' : 'nginx'}: HTTP/1.1`);
  }
  await sleep(200);
  t.equal(accessLog(ours), accessLog(theirs), 'access log lines');
});

t.test('SETTINGS and keepalive_requests', { skip }, async (t) => {
  const conf = `
    server {
      listen 127.0.0.1:{port} http2;
      http2_max_concurrent_streams 3;
      http2_body_preread_size 1k;
      keepalive_requests 2;
      access_log off;
      location / { return 200 "ok\\n"; }
    }`;
  const [ours, theirs] = await both(conf);
  const run = async (port: number): Promise<unknown> => {
    const s = session(port, false);
    const settings = await new Promise<Record<string, unknown>>((r) => s.once('remoteSettings', (st) => r(st as Record<string, unknown>)));
    let goaway = 'none';
    s.on('goaway', (code, last) => (goaway = `${code} ${last}`));
    const out = [await req(s, { ':path': '/1' }), await req(s, { ':path': '/2' })];
    await sleep(100);
    out.push(s.closed || s.destroyed ? 'closed' : await req(s, { ':path': '/3' }));
    s.destroy();
    return { streams: settings.maxConcurrentStreams, window: settings.initialWindowSize, frame: settings.maxFrameSize, out, goaway };
  };
  const a = await run(ours.port);
  t.same(a, await run(theirs.port), 'the same SETTINGS, answers and GOAWAY');
  t.same(a, { streams: 3, window: 1024, frame: 16777215, out: ['200 ok\n', '200 ok\n', 'closed'], goaway: '0 3' });
});

t.test('keepalive_timeout 0: GOAWAY after the first stream', { skip }, async (t) => {
  const conf = `server { listen 127.0.0.1:{port} http2; keepalive_timeout 0; access_log off; location / { return 200 "ok\\n"; } }`;
  const [ours, theirs] = await both(conf);
  const run = async (port: number): Promise<unknown> => {
    const s = session(port, false);
    let goaway = 'none';
    s.on('goaway', (code, last) => (goaway = `${code} ${last}`));
    const out = [await req(s, { ':path': '/1' })];
    await sleep(100);
    out.push(s.closed || s.destroyed ? 'closed' : await req(s, { ':path': '/2' }));
    s.destroy();
    return { out, goaway };
  };
  const a = await run(ours.port);
  t.same(a, await run(theirs.port), 'as nginx');
  t.same(a, { out: ['200 ok\n', 'closed'], goaway: '0 1' });
});

t.test('keepalive_timeout: an idle HTTP/2 connection ends with GOAWAY', { skip }, async (t) => {
  const conf = `server { listen 127.0.0.1:{port} http2; keepalive_timeout 1s; access_log off; location / { return 200 "ok\\n"; } }`;
  const [ours, theirs] = await both(conf);
  const run = async (port: number): Promise<unknown> => {
    const s = session(port, false);
    const ends = new Promise<string>((resolve) => {
      s.on('goaway', (code, last) => resolve(`goaway ${code} ${last}`));
      s.on('close', () => resolve('closed without GOAWAY'));
      setTimeout(() => resolve('still open'), 3000).unref();
    });
    const out = [await req(s, { ':path': '/1' }), await req(s, { ':path': '/2' })];
    const early = await Promise.race([ends, sleep(500).then(() => 'open at 0.5 s')]);
    const end = await ends;
    s.destroy();
    return { out, early, end };
  };
  const a = await run(ours.port);
  t.same(a, await run(theirs.port), 'as nginx');
  t.same(a, { out: ['200 ok\n', '200 ok\n'], early: 'open at 0.5 s', end: 'goaway 0 3' });
});
