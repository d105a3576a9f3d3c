import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * Request bodies and response framing against Debian's nginx (with the echo
 * module, whose output is streamed like redis2's): Expect: 100-continue,
 * chunked request bodies, HTTP/1.1 chunked vs HTTP/1.0 close-delimited
 * responses, and static files from root/index/try_files.
 */

const MOD = '/usr/lib/nginx/modules/ngx_http_echo_module.so';
const skip = !hasNginx ? 'Debian nginx is not installed' : !existsSync(MOD) ? 'the echo module is not installed' : false;

const HTTP = `
  server {
    listen 127.0.0.1:{port};
    root {dir}/html;
    location /body { echo_read_request_body; echo "got [$request_body] $content_length"; }
    location /stream { echo a; echo b; echo_sleep 0.05; echo c; }
    location /files/ { index idx.html; try_files $uri $uri/ =404; }
    location /small { client_max_body_size 4; echo_read_request_body; echo ok; }
  }
`;

const CASES: Array<[string, string | string[]]> = [
  ['100-continue, then the body', ['POST /body HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n', 'hello']],
  ['100-continue on HTTP/1.0 is not answered', ['POST /body HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n', 'hi']],
  ['chunked request body', 'POST /body HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n'],
  ['body in two writes', ['POST /body HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nConnection: close\r\n\r\nabc', 'def']],
  ['HTTP/1.1 streamed output is chunked', 'GET /stream HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['HTTP/1.0 streamed output is close-delimited', 'GET /stream HTTP/1.0\r\n\r\n'],
  ['HEAD of streamed output', 'HEAD /stream HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['keep-alive: two requests, one connection', 'GET /stream HTTP/1.1\r\nHost: h\r\n\r\nGET /stream HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['413 with 100-continue', 'POST /small HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 10\r\nConnection: close\r\n\r\n'],
  ['static file', 'GET /files/a.txt HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['directory index', 'GET /files/ HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['directory without slash: 301', 'GET /files/sub HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['try_files =404', 'GET /files/missing HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
];

function files(dir: string): void {
  mkdirSync(join(dir, 'html/files/sub'), { recursive: true });
  writeFileSync(join(dir, 'html/files/a.txt'), 'plain text\n');
  writeFileSync(join(dir, 'html/files/idx.html'), '<p>index</p>\n');
  writeFileSync(join(dir, 'html/files/sub/idx.html'), 'sub\n');
}

// static responses carry Last-Modified and ETag of files written separately for each server
const stat = (s: string): string => s.replace(/^Last-Modified: .*\r$/gm, 'Last-Modified: X\r').replace(/^ETag: .*\r$/gm, 'ETag: X\r');

t.test('bodies, framing and static files as nginx', { skip }, async (t) => {
  const ours: Running = await startRedis2d(HTTP);
  t.teardown(() => ours.stop());
  const theirs: Running = await startNginx(HTTP, `load_module ${MOD};`);
  t.teardown(() => theirs.stop());
  files(ours.dir);
  files(theirs.dir);
  for (const [name, req] of CASES) {
    const a = stat(normalize(await raw(ours.port, req, 300, 150), ours.port));
    const b = stat(normalize(await raw(theirs.port, req, 300, 150), theirs.port));
    t.equal(a, b, name);
  }
});
