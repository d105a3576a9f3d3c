import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { NGINX, hasNginx, normalize, startNginx, startRedis2d, type Running } from './helpers/server.js';
import { runCmd } from './helpers/proc.js';

/*
 * Request heads at nginx's edges, each sent the same way to redis2d and to
 * Debian's nginx: the responses, access log lines and info lines must be
 * the same bytes.
 * - Header limits hold however the bytes arrive (one packet or in pieces):
 *   nginx's header buffers are simulated (client_header_buffer_size, then
 *   large_client_header_buffers), so an 8,200-byte header line is a 494
 *   with nginx's page, 2,000 header lines are 494 (Debian's max_headers,
 *   1000), a 8,200-byte URI 414.
 * - Bytes that cannot start or continue a request line are refused at once
 *   (`xyz`, `PRI * H`), not after a line feed.
 * - HTTP/0.9 errors send the page without a head; Expect: 100-continue is
 *   answered when the body is read or discarded, never with an error page;
 *   Content-Length is nginx's off_t (up to 2^63-1, leading zeros allowed,
 *   logged exactly).
 */

const ECHO = '/usr/lib/nginx/modules/ngx_http_echo_module.so';
const canDiff = hasNginx && existsSync(ECHO);

const HTTP = `
  log_format st '$status $request_length "$request" $body_bytes_sent';
  access_log {dir}/access.log st;
  client_max_body_size 100;
  server {
    listen 127.0.0.1:{port};
    location / { return 200 "ok $request_method $uri $content_length\\n"; }
    location /body { echo_read_request_body; echo "[$request_body]"; }
    location = /e404 { return 404; }
  }`;

/** send `parts` (each a write, `gapMs` apart), then wait: FIN when `fin`, else until the server is silent `idleMs` */
function exchange(port: number, parts: string[], opts: { fin?: boolean; gapMs?: number; idleMs?: number } = {}): Promise<{ out: string; ms: number }> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    let out = '';
    const t0 = Date.now();
    let firstByte = 0;
    const idle = setTimeout(() => c.destroy(), opts.idleMs ?? 3000);
    c.on('data', (d) => {
      if (!firstByte) firstByte = Date.now();
      out += d.toString('latin1');
      idle.refresh();
    });
    c.on('error', () => {});
    c.on('close', () => {
      clearTimeout(idle);
      resolve({ out, ms: (firstByte || Date.now()) - t0 });
    });
    c.once('connect', async () => {
      for (let i = 0; i < parts.length; i++) {
        if (i && opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
        c.write(Buffer.from(parts[i]!, 'latin1'));
      }
      if (opts.fin ?? true) c.end();
    });
  });
}

function lines(srv: Running, file: string): string[] {
  const p = join(srv.dir, file);
  const all = existsSync(p) ? readFileSync(p, 'latin1').split('\n').filter(Boolean) : [];
  // an error page's $body_bytes_sent counts the server's name
  return file === 'access.log' ? all.map((l) => l.replace(/^([3-5]\d\d .*) \d+$/, '$1 N')) : all;
}

function infoLines(srv: Running): string[] {
  return lines(srv, 'error.log')
    .filter((l) => / \[(info|error)\] /.test(l) && !l.includes('while waiting for request'))
    .map((l) => l.replace(/^.*\[(info|error)\] \d+#\d+: \*\d+ /, '[$1] ').replaceAll(srv.dir, 'DIR'));
}

const chunks = (s: string, n: number): string[] => s.match(new RegExp(`[^]{1,${n}}`, 'g')) ?? [];
const header = (n: number): string => `X-Long: ${'a'.repeat(n)}\r\n`;
const many = (n: number): string => Array.from({ length: n }, (_, i) => `X-H${i}: v${i}\r\n`).join('');

const CASES: Array<[string, string]> = [
  ['an 8,200-byte header line', `GET / HTTP/1.0\r\nHost: a\r\n${header(8190)}\r\n`],
  ['a header line of exactly one large buffer (8,192 bytes)', `GET / HTTP/1.0\r\n${header(8182)}\r\n`],
  ['one byte more', `GET / HTTP/1.0\r\n${header(8183)}\r\n`],
  ['2,000 header lines', `GET / HTTP/1.0\r\n${many(2000)}\r\n`],
  ['1,000 header lines (max_headers)', `GET / HTTP/1.0\r\n${Array(1000).fill('a: b\r\n').join('')}\r\n`],
  ['1,001 header lines', `GET / HTTP/1.0\r\n${Array(1001).fill('a: b\r\n').join('')}\r\n`],
  ['four 7,000-byte headers fit the four large buffers', `GET / HTTP/1.0\r\n${header(7000).repeat(4)}\r\n`],
  ['five do not', `GET / HTTP/1.0\r\n${header(7000).repeat(5)}\r\n`],
  ['an 8,200-byte URI', `GET /${'u'.repeat(8200)} HTTP/1.0\r\n\r\n`],
  ['an 8,170-byte URI', `GET /${'u'.repeat(8170)} HTTP/1.0\r\n\r\n`],
  ['leading CR LF and a lone CR before the request line', '\r\n\rGET / HTTP/1.0\r\n\r\n'],
  ['CR CR LF ends a header', 'GET / HTTP/1.0\r\nX: a\r\r\n\r\n'],
  ['a CR inside a value', 'GET / HTTP/1.0\r\nX: a\rb\r\n\r\n'],
  ['a space inside a name', 'GET / HTTP/1.0\r\nA b: c\r\n\r\n'],
  ['an ignored header is logged', 'GET / HTTP/1.0\r\nX_y: z \r\nHost: h\r\n\r\n'],
  ['an absolute URI with a host nginx refuses', 'GET http://a_b/ HTTP/1.0\r\n\r\n'],
  ['HTTP/1.1 with an absolute URI still wants Host', 'GET http://h/ HTTP/1.1\r\n\r\n'],
  ['a HEAD refused in its request line gets no body', 'HEAD /x HTTP/2.0\r\n\r\n'],
  ['an HTTP/0.9 POST: the page without a head', 'POST /x\r\n'],
  ['an HTTP/0.9 HEAD: the page without a head', 'HEAD /x\r\n'],
  ['Expect: 100-continue without a body, return with text', 'GET /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n'],
  ['Expect: 100-continue and an error page', 'GET /e404 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n'],
  ['Expect: 100-continue and a body read', 'POST /body HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc'],
  ['Content-Length with leading zeros', 'POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 00000000000000000000003\r\nConnection: close\r\n\r\nabc'],
  ['Content-Length past 2^53: 413, logged exactly', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740993\r\nConnection: close\r\n\r\n'],
  ['Content-Length 2^63 - 1', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\nConnection: close\r\n\r\n'],
  ['Content-Length 2^63', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\nConnection: close\r\n\r\n'],
  ['a chunked body discarded: $content_length 0', 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n'],
  ['a chunked body read: request_length counts its framing', 'POST /body HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n'],
  ['an invalid chunked body while an error page goes out', 'TRACE / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
  ['Connection: the last close/keep-alive wins', 'GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nConnection: close\r\n\r\n'],
  ['garbage after a keep-alive request', 'GET / HTTP/1.1\r\nHost: a\r\n\r\nxyz'],
  ['Host bytes past 0x7f keep their case', 'GET /x HTTP/1.0\r\nHost: A\xdc\r\n\r\n'],
];

/** the lines nginx logs for CASES and the ten replays (a keep-alive case logs two, a head never finished none) */
const ACCESS_LINES = 44;

t.test('heads at nginx limits: the same bytes, however they arrive', { skip: !canDiff && 'Debian nginx with the echo module is not installed' }, async (t) => {
  const got: Array<{ outs: string[]; access: string[]; info: string[] }> = [];
  for (const start of [startRedis2d, (h: string) => startNginx(h, `load_module ${ECHO};`)]) {
    const srv = await start(HTTP);
    t.teardown(() => srv.stop());
    const outs: string[] = [];
    for (const [, data] of CASES) outs.push(normalize((await exchange(srv.port, [data])).out, srv.port));
    // the limits again, the bytes in 100-byte writes
    for (const [, data] of CASES.slice(0, 10)) outs.push(normalize((await exchange(srv.port, chunks(data, 100), { gapMs: 1 })).out, srv.port));
    // nginx logs a request when its lingering close ends, after the client
    // saw its FIN (the shutdown that starts the lingering close): wait for
    // the known number of lines, each server on its own
    for (let i = 0; i < 200 && lines(srv, 'access.log').length < ACCESS_LINES; i++) await new Promise((r) => setTimeout(r, 50));
    got.push({ outs, access: lines(srv, 'access.log'), info: infoLines(srv) });
  }
  const [mine, theirs] = got as [(typeof got)[0], (typeof got)[0]];
  CASES.forEach(([name], i) => t.equal(mine.outs[i], theirs.outs[i], name));
  CASES.slice(0, 10).forEach(([name], i) => t.equal(mine.outs[CASES.length + i], mine.outs[i], `${name}, in 100-byte writes: the same answer`));
  // (in the order each server finished the requests: a lingering close delays nginx's line)
  t.equal(theirs.access.length, ACCESS_LINES, `nginx logged ${ACCESS_LINES} lines (update ACCESS_LINES with the cases)`);
  t.same([...mine.access].sort(), [...theirs.access].sort(), 'the same access log');
  t.same(mine.info, theirs.info, 'the same info and error lines');
  t.match(mine.outs[0]!, /<center><h1>400 Bad Request<\/h1><\/center>\r\n<center>Request Header Or Cookie Too Large<\/center>/, "nginx's 494 page");
  t.ok(mine.info.some((l) => l.startsWith('[info] client sent too many header lines while reading client request headers')));
  t.ok(mine.info.some((l) => l.startsWith('[error] client intended to send too large body: 9007199254740993 bytes')), 'the exact Content-Length');
});

t.test('a byte that cannot start a request line is refused at once', async (t) => {
  const srv = await startRedis2d(HTTP);
  t.teardown(() => srv.stop());
  for (const data of ['xyz', 'PRI * H', 'GET /a\x01', 'GET / HTTP/1.1\r\nHost: a\r\n\r\nxyz', 'GET / HTTP/1.1\r\nA\x00']) {
    // no line feed, no FIN: the answer may not wait for either
    const { out, ms } = await exchange(srv.port, [data], { fin: false, idleMs: 1000 });
    t.match(out, /HTTP\/1\.1 400 Bad Request\r\n[^]*Connection: close\r\n\r\n<html>[^]*<\/html>\r\n$/, `${JSON.stringify(data)}: 400`);
    t.ok(ms < 900, `${JSON.stringify(data)}: at once (${ms} ms)`);
  }
});

t.test('nginx -t and redis2d -t agree on the largest numbers', { skip: !hasNginx && 'Debian nginx is not installed' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'r2d-bignum-'));
  mkdirSync(join(dir, 'logs'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const confs = [
    'client_max_body_size 9223372036854775807;',
    'client_max_body_size 9223372036854775808;',
    'client_max_body_size 8589934591G;',
    'client_max_body_size 8589934592G;',
    'keepalive_requests 9223372036854775807;',
    'upstream u { server 127.0.0.1:1; keepalive 4294967296; }',
    'upstream u { server 127.0.0.1:1; keepalive 100; }',
  ];
  for (const c of confs) {
    writeFileSync(join(dir, 'nginx.conf'), `events {} http { ${c} }\n`);
    const ngx = await runCmd(['-t', '-p', `${dir}/`, '-e', 'stderr', '-c', join(dir, 'nginx.conf')], NGINX);
    const mine = await runCmd(['-t', '-p', dir, '-c', join(dir, 'nginx.conf')]);
    const norm = (s: string): string => s.replace(/^.*?\[emerg\] (\d+#\d+: )?/m, '[emerg] ').split('\n')[0]!.replace(/^(nginx|redis2d): /, '');
    t.equal(mine.code, ngx.code, `${c}: exit code`);
    t.equal(norm(mine.stderr), norm(ngx.stderr), `${c}: first line`);
  }
});

t.test('files nginx cannot open: its status and wording for each errno', { skip: !hasNginx && 'Debian nginx is not installed' }, async (t) => {
  const http = `
    log_format st '$status "$request"';
    access_log {dir}/access.log st;
    server { listen 127.0.0.1:{port};
      location /s/ { root {dir}/html; }
      location /i/ { root {dir}/html; index ${'n'.repeat(300)}.html; }
      location /t/ { root {dir}/html; try_files $uri =404; }
    }`;
  const got: Array<{ outs: string[]; access: string[]; info: string[] }> = [];
  for (const start of [startRedis2d, startNginx]) {
    const srv = await start(http);
    t.teardown(() => srv.stop());
    mkdirSync(join(srv.dir, 'html', 's'));
    mkdirSync(join(srv.dir, 'html', 'i'));
    writeFileSync(join(srv.dir, 'html', 's', 'file'), 'x');
    // a symbolic link to itself: ELOOP
    await runCmd(['-s', 'loop', join(srv.dir, 'html', 's', 'loop')], '/bin/ln');
    const outs: string[] = [];
    for (const path of [`/s/${'n'.repeat(300)}`, '/s/file/below', '/s/loop', '/s/missing', '/i/', `/t/${'n'.repeat(300)}`]) {
      outs.push(normalize((await exchange(srv.port, [`GET ${path} HTTP/1.0\r\n\r\n`])).out, srv.port));
    }
    await new Promise((r) => setTimeout(r, 150));
    got.push({ outs, access: lines(srv, 'access.log'), info: infoLines(srv) });
  }
  t.same(got[0]!.outs, got[1]!.outs, 'the same responses');
  t.same(got[0]!.access, got[1]!.access, 'the same statuses');
  t.same(got[0]!.info, got[1]!.info, 'the same error lines');
  t.match(got[0]!.access.join('\n'), /^404 "GET \/s\/n+ HTTP\/1\.0"$/m, 'a name over NAME_MAX is 404');
  t.ok(got[0]!.info.some((l) => l.endsWith('failed (36: File name too long), client: 127.0.0.1, server: , request: "GET /s/' + 'n'.repeat(300) + ' HTTP/1.0"')), 'logged with errno 36');
});
