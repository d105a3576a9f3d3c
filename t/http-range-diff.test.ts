import t from 'tap';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * Static files under Range and conditional requests, byte for byte against
 * Debian's nginx: 206 (one range; several as multipart/byteranges, whose
 * random 20-digit boundary is masked), 416 with `Content-Range: bytes *` `/SIZE`,
 * 304 from If-None-Match (ETag "mtime-size") and If-Modified-Since
 * (`if_modified_since off|exact|before`), 412 from If-Match and
 * If-Unmodified-Since, If-Range, `etag off`, `max_ranges`, HEAD, and the
 * header order (Accept-Ranges after add_header's headers), error_page for a
 * 412 or 416 (with nginx's leftovers of the first response's header). The
 * files get the same mtime under both servers.
 */

const HTTP = `
  server {
    listen 127.0.0.1:{port};
    root {dir}/html;
    add_header X-A a;
    location /noetag/ { etag off; }
    location /imsoff/ { if_modified_since off; }
    location /imsbefore/ { if_modified_since before; }
    location /one/ { max_ranges 1; }
    location /none/ { max_ranges 0; }
    location /always/ { add_header X-B b always; }
    location /ret { return 200 "ret\\n"; }
    location /ep/ { error_page 412 416 /e4xx; }
    location = /e4xx { return 200 "custom $status\\n"; }
    location /ep2/ { error_page 416 = /ep/f.txt; }
  }
`;

const BODY = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyzAB';
const MTIME = Date.UTC(2024, 0, 2, 3, 4, 5) / 1000;
const LM = 'Tue, 02 Jan 2024 03:04:05 GMT';
const ETAG = `"${MTIME.toString(16)}-${BODY.length.toString(16)}"`;

const get = (path: string, ...headers: string[]): string =>
  `GET ${path} HTTP/1.1\r\nHost: h\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`;
const head = (path: string, ...headers: string[]): string => get(path, ...headers).replace(/^GET/, 'HEAD');

const CASES: Array<[string, string]> = [
  ['plain', get('/f.txt')],
  ['HEAD', head('/f.txt')],
  ['HTTP/1.0', 'GET /f.txt HTTP/1.0\r\nRange: bytes=3-5\r\n\r\n'],
  ['first bytes', get('/f.txt', 'Range: bytes=0-9')],
  ['open end', get('/f.txt', 'Range: bytes=90-')],
  ['suffix', get('/f.txt', 'Range: bytes=-5')],
  ['suffix longer than the file', get('/f.txt', 'Range: bytes=-500')],
  ['end past the size', get('/f.txt', 'Range: bytes=50-200')],
  ['spaces and case', get('/f.txt', 'Range: BYTES= 1 - 2 ')],
  ['start at the size: 416', get('/f.txt', 'Range: bytes=100-')],
  ['past the end: 416', get('/f.txt', 'Range: bytes=200-300')],
  ['garbage: 416', get('/f.txt', 'Range: bytes=abc')],
  ['reversed: 416', get('/f.txt', 'Range: bytes=5-1')],
  ['HEAD 416', head('/f.txt', 'Range: bytes=200-')],
  ['two ranges', get('/f.txt', 'Range: bytes=0-0,-1')],
  ['three ranges', get('/f.txt', 'Range: bytes=0-4, 10-14,20-24')],
  ['HEAD two ranges', head('/f.txt', 'Range: bytes=0-4,10-14')],
  ['overlap beyond the size: the whole file', get('/f.txt', 'Range: bytes=0-50,40-90')],
  ['zero-length start', get('/f.txt', 'Range: bytes=0-9,200-300')],
  ['not bytes', get('/f.txt', 'Range: items=0-1')],
  ['too short', get('/f.txt', 'Range: bytes=')],
  ['If-Range with the ETag', get('/f.txt', 'Range: bytes=0-1', `If-Range: ${ETAG}`)],
  ['If-Range with another ETag', get('/f.txt', 'Range: bytes=0-1', 'If-Range: "x"')],
  ['If-Range with the date', get('/f.txt', 'Range: bytes=0-1', `If-Range: ${LM}`)],
  ['If-Range with another date', get('/f.txt', 'Range: bytes=0-1', 'If-Range: Tue, 02 Jan 2024 03:04:06 GMT')],
  ['If-None-Match', get('/f.txt', `If-None-Match: ${ETAG}`)],
  ['If-None-Match weak', get('/f.txt', `If-None-Match: W/${ETAG}`)],
  ['If-None-Match list', get('/f.txt', `If-None-Match: "a", ${ETAG} , "b"`)],
  ['If-None-Match other', get('/f.txt', 'If-None-Match: "a"')],
  ['If-None-Match star', get('/f.txt', 'If-None-Match: *')],
  ['HEAD If-None-Match', head('/f.txt', `If-None-Match: ${ETAG}`)],
  ['If-Modified-Since equal', get('/f.txt', `If-Modified-Since: ${LM}`)],
  ['If-Modified-Since rfc850', get('/f.txt', 'If-Modified-Since: Tuesday, 02-Jan-24 03:04:05 GMT')],
  ['If-Modified-Since asctime', get('/f.txt', 'If-Modified-Since: Tue Jan  2 03:04:05 2024')],
  ['If-Modified-Since later (exact)', get('/f.txt', 'If-Modified-Since: Wed, 03 Jan 2024 00:00:00 GMT')],
  ['If-Modified-Since earlier', get('/f.txt', 'If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT')],
  ['If-Modified-Since garbage', get('/f.txt', 'If-Modified-Since: yesterday')],
  ['If-Modified-Since and a different If-None-Match', get('/f.txt', `If-Modified-Since: ${LM}`, 'If-None-Match: "a"')],
  ['before: later', get('/imsbefore/f.txt', 'If-Modified-Since: Wed, 03 Jan 2024 00:00:00 GMT')],
  ['before: earlier', get('/imsbefore/f.txt', 'If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT')],
  ['off', get('/imsoff/f.txt', `If-Modified-Since: ${LM}`)],
  ['If-Match other', get('/f.txt', 'If-Match: "a"')],
  ['If-Match', get('/f.txt', `If-Match: ${ETAG}`)],
  ['If-Match weak is no match', get('/f.txt', `If-Match: W/${ETAG}`)],
  ['If-Unmodified-Since earlier', get('/f.txt', 'If-Unmodified-Since: Mon, 01 Jan 2024 00:00:00 GMT')],
  ['If-Unmodified-Since equal', get('/f.txt', `If-Unmodified-Since: ${LM}`)],
  ['If-Unmodified-Since garbage', get('/f.txt', 'If-Unmodified-Since: x')],
  ['etag off', get('/noetag/f.txt')],
  ['etag off, If-None-Match star', get('/noetag/f.txt', 'If-None-Match: *')],
  ['etag off, If-Match', get('/noetag/f.txt', 'If-Match: "x"')],
  ['etag off, If-Range quoted', get('/noetag/f.txt', 'Range: bytes=0-1', 'If-Range: "x"')],
  ['max_ranges 1, two', get('/one/f.txt', 'Range: bytes=0-1,3-4')],
  ['max_ranges 1, one', get('/one/f.txt', 'Range: bytes=0-1')],
  ['max_ranges 0', get('/none/f.txt', 'Range: bytes=0-1')],
  ['always header on 416', get('/always/f.txt', 'Range: bytes=500-')],
  ['always header on 206', get('/always/f.txt', 'Range: bytes=1-1')],
  ['return 200: no ranges', get('/ret', 'Range: bytes=0-1')],
  ['return 200, If-None-Match star', get('/ret', 'If-None-Match: *')],
  ['return 200, If-Match', get('/ret', 'If-Match: "x"')],
  ['return 200, If-Unmodified-Since', get('/ret', `If-Unmodified-Since: ${LM}`)],
  ['error_page for a 416', get('/ep/f.txt', 'Range: bytes=500-')],
  ['error_page for a 412', get('/ep/f.txt', 'If-Match: "a"')],
  ['error_page = a file for a 416', get('/ep2/f.txt', 'Range: bytes=500-')],
];

async function play(srv: Running): Promise<string[]> {
  for (const d of ['', 'noetag', 'imsoff', 'imsbefore', 'one', 'none', 'always', 'ep', 'ep2']) {
    mkdirSync(join(srv.dir, 'html', d), { recursive: true });
    const f = join(srv.dir, 'html', d, 'f.txt');
    writeFileSync(f, BODY);
    utimesSync(f, MTIME, MTIME);
  }
  const out: string[] = [];
  for (const [, req] of CASES) {
    const res = normalize(await raw(srv.port, req, 300), srv.port).replace(/\b\d{20}\b/g, 'BOUNDARY');
    // a HEAD error page's length still counts the server's name in the page it did not send
    out.push(req.startsWith('HEAD') && / 4\d\d /.test(res) ? res.replace(/^Content-Length: \d+\r$/m, 'Content-Length: N\r') : res);
  }
  return out;
}

t.test('ranges and conditional requests as nginx', async (t) => {
  const ours = await startRedis2d(HTTP);
  t.teardown(() => ours.stop());
  const mine = await play(ours);
  const at = (name: string): string => mine[CASES.findIndex(([n]) => n === name)]!;
  t.match(at('first bytes'), /^HTTP\/1\.1 206 Partial Content\r\n[^]*Content-Length: 10\r\nLast-Modified: Tue, 02 Jan 2024 03:04:05 GMT\r\nConnection: close\r\nETag: "[0-9a-f]+-64"\r\nX-A: a\r\nContent-Range: bytes 0-9\/100\r\n\r\n0123456789$/);
  t.match(at('plain'), /\r\nETag: "[0-9a-f]+-64"\r\nX-A: a\r\nAccept-Ranges: bytes\r\n\r\n/, 'Accept-Ranges after add_header');
  t.match(at('past the end: 416'), /^HTTP\/1\.1 416 Requested Range Not Satisfiable\r\n[^]*Content-Range: bytes \*\/100\r\n/);
  t.match(at('If-None-Match'), /^HTTP\/1\.1 304 Not Modified\r\n/);
  t.match(at('two ranges'), /Content-Type: multipart\/byteranges; boundary=BOUNDARY\r\n[^]*\r\n\r\n\r\n--BOUNDARY\r\nContent-Type: text\/plain\r\nContent-Range: bytes 0-0\/100\r\n\r\n0\r\n--BOUNDARY\r\nContent-Type: text\/plain\r\nContent-Range: bytes 99-99\/100\r\n\r\nB\r\n--BOUNDARY--\r\n$/);
  t.match(at('If-Match other'), /^HTTP\/1\.1 412 Precondition Failed\r\n/);
  if (!hasNginx) return;
  const ngx = await startNginx(HTTP);
  t.teardown(() => ngx.stop());
  const theirs = await play(ngx);
  CASES.forEach(([name], i) => t.equal(mine[i], theirs[i], name));
});
