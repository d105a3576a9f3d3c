import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import {
  CgiHeaderParser,
  RecordParser,
  encodeBeginRequest,
  encodeParams,
  encodeParamsEnd,
  encodeStdin,
  encodeStdinEnd,
  stderrLogText,
  type CgiHead,
  type ParamPair,
} from '../lib/modules/fastcgi/record.js';
import { startBackend } from './helpers/backend.js';
import { phpFpmMissing, startPhpFpm } from './helpers/php_fpm.js';

/*
 * The test backends themselves: the Node HTTP backend's routes, and Debian's
 * php-fpm driven with raw FastCGI built by lib/modules/fastcgi/record.ts.
 */

/* ------------------------------------------------------------------ */
/* Node HTTP backend                                                   */

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  error?: string;
  ms: number;
}

function request(port: number, path: string, opts: { method?: string; body?: string; headers?: Record<string, string>; agent?: http.Agent } = {}): Promise<Reply> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false, timeout: 10000 }, (res) => {
      const chunks: Buffer[] = [];
      const done = (error?: string): void =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), error, ms: Date.now() - started });
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => done());
      res.on('error', (e) => done(e.message));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

t.test('Node backend', async (t) => {
  const be = await startBackend(t);
  t.match(be.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.equal(await be.count(), 0, 'nothing served yet; /__count does not count itself');

  const echo = await request(be.port, '/echo?x=1', { method: 'POST', body: 'a=b', headers: { 'X-Test': 'yes', 'Content-Type': 'text/plain' } });
  t.equal(echo.status, 200);
  const j = JSON.parse(echo.body.toString('latin1')) as { method: string; url: string; rawHeaders: string[]; body: string; bodyLength: number };
  t.equal(j.method, 'POST');
  t.equal(j.url, '/echo?x=1');
  t.equal(j.body, 'a=b');
  t.equal(j.bodyLength, 3);
  t.ok(j.rawHeaders.includes('X-Test') && j.rawHeaders.includes('yes'), 'headers as sent, names in their case');

  const bytes = await request(be.port, '/bytes?n=1048576');
  t.equal(bytes.status, 200);
  t.equal(bytes.headers['content-length'], '1048576');
  t.equal(bytes.body.length, 1048576);
  t.equal(bytes.body.toString('latin1', 0, 28), 'abcdefghijklmnopqrstuvwxyzab');
  t.equal(bytes.body[1048575], 0x61 + (1048575 % 26), 'byte i is a + i % 26');

  const chunked = await request(be.port, '/chunked');
  t.equal(chunked.headers['transfer-encoding'], 'chunked');
  t.equal(chunked.body.toString('latin1'), 'piece 0\npiece 1\npiece 2\n');

  const slow = await request(be.port, '/slow?ms=60&n=3');
  t.equal(slow.body.toString('latin1'), 'drip 0\ndrip 1\ndrip 2\n');
  t.ok(slow.ms >= 150, `slow took ${slow.ms} ms`);

  const cut = await request(be.port, '/cut');
  t.equal(cut.status, 200);
  t.equal(cut.headers['content-length'], '1000');
  t.equal(cut.body.length, 500, 'half the body, then the connection closes');
  t.ok(cut.error, `the client saw the cut (${cut.error})`);

  const st = await request(be.port, '/status?code=404');
  t.equal(st.status, 404);
  t.equal(st.body.toString('latin1'), 'status 404\n');
  t.equal((await request(be.port, '/status?code=503')).status, 503);
  t.equal((await request(be.port, '/status?code=204')).body.length, 0);

  const redir = await request(be.port, '/redirect');
  t.equal(redir.status, 302);
  t.equal(redir.headers.location, '/echo');
  t.equal((await request(be.port, '/redirect?to=http://x/y')).headers.location, 'http://x/y');
  t.equal((await request(be.port, '/nope')).status, 404);

  /* keep-alive: three requests, one connection */
  const before = await be.connections();
  const served = await be.count();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < 3; i++) t.equal((await request(be.port, '/echo', { agent })).status, 200);
  agent.destroy();
  t.equal((await be.connections()) - before, 1, 'one connection for three requests');
  t.equal((await be.count()) - served, 3);

  /* a crash */
  await be.kill();
  const refused = await new Promise<string>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: be.port });
    s.on('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
  t.equal(refused, 'ECONNREFUSED');
  await be.stop(); // after a kill: nothing to do
});

t.test('Node backend: SIGSTOP hangs it, stop() still ends it', async (t) => {
  const be = await startBackend(t, { keepAliveTimeout: 1000 });
  await be.kill('SIGSTOP');
  const started = Date.now();
  await be.stop();
  t.ok(Date.now() - started < 3000, 'stopped');
});

/* ------------------------------------------------------------------ */
/* php-fpm over raw FastCGI                                            */

interface FcgiReply {
  head?: CgiHead;
  body: Buffer;
  stderr: string[];
  end?: { appStatus: number; protocolStatus: number };
  error?: string;
  closed: boolean;
}

/** one request on `sock` (id 1, as nginx); resolves at END_REQUEST, an error, or close */
function fcgi(sock: net.Socket, pairs: ParamPair[], body: string | Buffer, keepConn: boolean): Promise<FcgiReply> {
  return new Promise((resolve) => {
    const rp = new RecordParser(1);
    const hp = new CgiHeaderParser(8192);
    const reply: FcgiReply = { body: Buffer.alloc(0), stderr: [], closed: false };
    const bodyParts: Buffer[] = [];
    const finish = (): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      reply.body = Buffer.concat(bodyParts);
      resolve(reply);
    };
    const onData = (chunk: Buffer): void => {
      for (const e of rp.feed(chunk)) {
        switch (e.type) {
          case 'stdout':
            if (hp.done) bodyParts.push(e.data);
            else {
              const r = hp.feed(e.data);
              if (r.state === 'done') {
                reply.head = r.head;
                bodyParts.push(e.data.subarray(r.bodyOffset));
              } else if (r.state === 'error') {
                reply.error = r.message;
                return finish();
              }
            }
            break;
          case 'stderr':
            reply.stderr.push(stderrLogText(e.data));
            break;
          case 'end':
            reply.end = { appStatus: e.appStatus, protocolStatus: e.protocolStatus };
            return finish();
          case 'error':
            reply.error = e.message;
            return finish();
          default:
            break;
        }
      }
    };
    const onClose = (): void => {
      reply.closed = true;
      finish();
    };
    const timer = setTimeout(() => {
      reply.error = 'timed out';
      finish();
    }, 10000);
    sock.on('data', onData);
    sock.on('close', onClose);
    sock.write(Buffer.concat([encodeBeginRequest(1, keepConn), encodeParams(1, pairs), encodeParamsEnd(1), ...encodeStdin(1, body), encodeStdinEnd(1)]));
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** what nginx's fastcgi.conf would send for `uri` (plus PATH_INFO) */
function params(root: string, script: string, opts: { method?: string; query?: string; body?: string | Buffer; pathInfo?: string; extra?: ParamPair[] } = {}): ParamPair[] {
  const body = opts.body ?? '';
  const query = opts.query ?? '';
  return [
    ['SCRIPT_FILENAME', join(root, script)],
    ['QUERY_STRING', query],
    ['REQUEST_METHOD', opts.method ?? 'GET'],
    ['CONTENT_TYPE', body.length ? 'application/x-www-form-urlencoded' : ''],
    ['CONTENT_LENGTH', body.length ? String(body.length) : ''],
    ['SCRIPT_NAME', `/${script}`],
    ['REQUEST_URI', `/${script}${opts.pathInfo ?? ''}${query ? `?${query}` : ''}`],
    ['DOCUMENT_URI', `/${script}`],
    ['DOCUMENT_ROOT', root],
    ['SERVER_PROTOCOL', 'HTTP/1.1'],
    ['REQUEST_SCHEME', 'http'],
    ['GATEWAY_INTERFACE', 'CGI/1.1'],
    ['SERVER_SOFTWARE', 'nginx/1.22.1'],
    ['REMOTE_ADDR', '127.0.0.1'],
    ['REMOTE_PORT', '40000'],
    ['SERVER_ADDR', '127.0.0.1'],
    ['SERVER_PORT', '8080'],
    ['SERVER_NAME', 'localhost'],
    ['REDIRECT_STATUS', '200'],
    ...(opts.pathInfo ? ([['PATH_INFO', opts.pathInfo]] as ParamPair[]) : []),
    ...(opts.extra ?? []),
  ];
}

function header(head: CgiHead | undefined, name: string): string | undefined {
  return head?.headers.find((h) => h.name.toLowerCase() === name.toLowerCase())?.value;
}

t.test('php-fpm over raw FastCGI', { skip: phpFpmMissing() ?? false }, async (t) => {
  const fpm = await startPhpFpm(t);
  t.ok(fpm.port > 0);

  const sock = await connect(fpm.port);
  t.teardown(() => sock.destroy());
  const body = 'hello=world&x=%20';
  const r = await fcgi(sock, params(fpm.root, 'index.php', { method: 'POST', query: 'a=1&b=2', body, pathInfo: '/extra/path' }), body, false);
  t.equal(r.error, undefined);
  t.equal(r.head?.status, 200);
  t.equal(r.head?.statusLine, '200 OK');
  t.match(header(r.head, 'Content-type'), /^text\/plain/);
  const text = r.body.toString('latin1');
  t.match(text, `SCRIPT_FILENAME=${join(fpm.root, 'index.php')}\n`);
  t.match(text, 'PATH_INFO=/extra/path\n');
  t.match(text, 'REQUEST_METHOD=POST\n');
  t.match(text, 'QUERY_STRING=a=1&b=2\n');
  t.match(text, `BODY_LENGTH=${body.length}\n`);
  t.ok(text.endsWith(`BODY=${body}`), 'php://input is the STDIN stream');
  t.same(r.end, { appStatus: 0, protocolStatus: 0 });

  /* header.php: Status and X-A */
  const s2 = await connect(fpm.port);
  t.teardown(() => s2.destroy());
  const h = await fcgi(s2, params(fpm.root, 'header.php'), '', false);
  t.equal(h.head?.status, 404);
  t.equal(h.head?.statusLine, '404 Not Found');
  t.equal(header(h.head, 'X-A'), 'b');
  t.equal(h.body.toString('latin1'), 'not here\n');

  /* a script that is not there: php-fpm's own 404 and its stderr line */
  const s3 = await connect(fpm.port);
  t.teardown(() => s3.destroy());
  const nf = await fcgi(s3, params(fpm.root, 'nope.php'), '', false);
  t.equal(nf.head?.status, 404);
  t.match(nf.body.toString('latin1'), /File not found/);
  t.same(nf.stderr, ['Primary script unknown']);

  /* stderr.php: error_log() arrives as STDERR; the worker's stderr goes to php-fpm's log */
  const s4 = await connect(fpm.port);
  t.teardown(() => s4.destroy());
  const se = await fcgi(s4, params(fpm.root, 'stderr.php'), '', false);
  t.equal(se.head?.status, 200);
  t.equal(se.body.toString('latin1'), 'logged\n');
  t.match(se.stderr.join('|'), 'PHP message: to the web server via error_log');
  const until = Date.now() + 5000;
  while (!fpm.errorLog().includes('to the worker stderr') && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
  t.match(fpm.errorLog(), 'to the worker stderr', 'catch_workers_output');
});

t.test('php-fpm: FCGI_KEEP_CONN, big params, big body', { skip: phpFpmMissing() ?? false }, async (t) => {
  const fpm = await startPhpFpm(t);
  const sock = await connect(fpm.port);
  t.teardown(() => sock.destroy());

  /* two requests on one connection */
  for (const q of ['first=1', 'second=2']) {
    const r = await fcgi(sock, params(fpm.root, 'index.php', { query: q }), '', true);
    t.equal(r.head?.status, 200);
    t.match(r.body.toString('latin1'), `QUERY_STRING=${q}\n`);
    t.notOk(r.closed, 'the connection stays open');
  }

  /* more than 65535 bytes of params: records split between pairs, which php-fpm reads record by record */
  const extra: ParamPair[] = [];
  for (let i = 0; i < 700; i++) extra.push([`HTTP_X_${i}`, 'v'.repeat(100)]);
  const big = await fcgi(sock, params(fpm.root, 'env.php', { extra }), '', true);
  t.equal(big.head?.status, 200);
  const env = JSON.parse(big.body.toString('latin1')) as Record<string, string>;
  t.equal(env.HTTP_X_0, 'v'.repeat(100));
  t.equal(env.HTTP_X_699, 'v'.repeat(100));
  t.equal(env.SCRIPT_FILENAME, join(fpm.root, 'env.php'));

  /* a value > 127 bytes (4-byte length) */
  const long = 'L'.repeat(5000);
  const lv = await fcgi(sock, params(fpm.root, 'env.php', { extra: [['HTTP_X_LONG', long]] }), '', true);
  t.equal((JSON.parse(lv.body.toString('latin1')) as Record<string, string>).HTTP_X_LONG, long);

  /* a body in several 32 KiB STDIN records */
  const body = Buffer.alloc(100001, 0x62);
  const b = await fcgi(sock, params(fpm.root, 'index.php', { method: 'PUT', body }), body, true);
  t.match(b.body.toString('latin1'), 'BODY_LENGTH=100001\n');

  /* a big reply over many STDOUT records */
  const out = await fcgi(sock, params(fpm.root, 'big.php', { query: 'n=300000' }), '', true);
  t.equal(out.body.length, 300000);
  t.notOk(out.closed);
});
