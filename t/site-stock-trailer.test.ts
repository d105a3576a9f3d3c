import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasNginx, normalize, raw, startNginx, startRedis2d } from './helpers/server.js';

/*
 * add_trailer against Debian's nginx: a line that applies to the status
 * (or `always`) makes an HTTP/1.1 response chunked even with a length, and
 * the last chunk carries the lines evaluated at the end (empty values
 * left out); other statuses, HEAD and HTTP/1.0 get no trailers. Bytes
 * compared on keep-alive connections.
 */

const skip = hasNginx ? false : 'Debian nginx not installed';

const HTTP = `
  server {
    listen 127.0.0.1:{port};
    root {dir}/html;
    location = /t { add_trailer X-T "v1"; add_trailer X-Empty ""; add_trailer X-Status $status; return 200 "body\\n"; }
    location = /nf { add_trailer X-T "v1"; return 404 "nope\\n"; }
    location = /always { add_trailer X-T "v1"; add_trailer X-A "a" always; return 404 "nope\\n"; }
    location = /empty { add_trailer X-Empty $arg_none; return 200 "empty trailers\\n"; }
    location /files/ { alias {dir}/html/; add_trailer X-File "f"; add_header X-H "h"; }
    location = /redir { add_trailer X-T "v1"; return 302 /elsewhere; }
    location = /chunked-off { chunked_transfer_encoding off; add_trailer X-T "v1"; return 200 "len\\n"; }
    location /inherit { add_trailer X-Up "up"; location /inherit/in { return 200 "in\\n"; } }
  }
`;

t.test('add_trailer against nginx', { skip }, async (t) => {
  const ng = await startNginx(HTTP);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(HTTP);
  t.teardown(() => rd.stop());
  for (const s of [ng, rd]) writeFileSync(join(s.dir, 'html', 'f.txt'), 'a file\n');
  const get = (path: string, method = 'GET', version = '1.1'): string => `${method} ${path} HTTP/${version}\r\nHost: h\r\n\r\n`;
  const cases: Array<[string, string]> = [
    ['a 200 with a length', get('/t')],
    ['a 404: none', get('/nf')],
    ['a 404 with always', get('/always')],
    ['only empty values', get('/empty')],
    ['a static file', get('/files/f.txt')],
    ['HEAD', get('/t', 'HEAD')],
    ['a 302', get('/redir')],
    ['chunked_transfer_encoding off', get('/chunked-off')],
    ['inherited', get('/inherit/in')],
  ];
  // an error page's chunk size counts the server's name in its footer
  const norm = (s: string, port: number): string => normalize(s, port).replace(/^[0-9a-f]+\r\n<html>/gm, 'N\r\n<html>');
  for (const [name, req] of cases) {
    const two = req + req.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n');
    t.equal(norm(await raw(rd.port, two, 1500), rd.port), norm(await raw(ng.port, two, 1500), ng.port), name);
  }
  const http10 = 'GET /t HTTP/1.0\r\nHost: h\r\n\r\n';
  t.equal(normalize(await raw(rd.port, http10, 1500), rd.port), normalize(await raw(ng.port, http10, 1500), ng.port), 'HTTP/1.0');
});
