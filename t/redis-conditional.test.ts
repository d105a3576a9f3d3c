import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRedis } from './helpers/redis.js';
import { normalize, raw, startRedis2d } from './helpers/server.js';

/*
 * nginx's not-modified filter judges a redis2 response too (a 200 without
 * Last-Modified or ETag): `If-None-Match: *` makes it a 304 and
 * `If-Match: "x"` or `If-Unmodified-Since` a 412, as t/http-range-diff shows
 * nginx doing for `return 200`. The upstream side ends with the header, as
 * for HEAD, and the request ends too: the next request on the connection is
 * answered and every request is access-logged.
 */

t.test('304 and 412 on a redis2 location end the request', async (t) => {
  const redis = await startRedis(t);
  await redis.command(['SET', 'k', 'v']);
  const srv = await startRedis2d(`
    log_format s '$status $request';
    access_log {dir}/access.log s;
    server {
      listen 127.0.0.1:{port};
      location /get { redis2_query get k; redis2_pass 127.0.0.1:${redis.port}; }
    }`);
  t.teardown(() => srv.stop());
  const h = 'Host: h\r\n';
  const out = normalize(
    await raw(srv.port, [
      `GET /get?1 HTTP/1.1\r\n${h}If-None-Match: *\r\n\r\n`,
      `GET /get?2 HTTP/1.1\r\n${h}If-Match: "x"\r\n\r\n`,
      `GET /get?3 HTTP/1.1\r\n${h}If-Unmodified-Since: Tue, 02 Jan 2024 03:04:05 GMT\r\n\r\n`,
      `HEAD /get?4 HTTP/1.1\r\n${h}\r\n`,
      `GET /get?5 HTTP/1.1\r\n${h}Connection: close\r\n\r\n`,
    ], 500, 100),
    srv.port,
  );
  t.match(out, /^HTTP\/1\.1 304 Not Modified\r\nServer: S\r\nDate: X\r\nConnection: keep-alive\r\n\r\nHTTP\/1\.1 412 Precondition Failed\r\n/);
  t.equal(out.match(/HTTP\/1\.1 412 Precondition Failed/g)?.length, 2, 'If-Match and If-Unmodified-Since');
  t.match(out, /\$1\r\nv\r\n\r\n0\r\n\r\n$/, 'the last request has its body');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(
    readFileSync(join(srv.dir, 'access.log'), 'latin1'),
    '304 GET /get?1 HTTP/1.1\n412 GET /get?2 HTTP/1.1\n412 GET /get?3 HTTP/1.1\n200 HEAD /get?4 HTTP/1.1\n200 GET /get?5 HTTP/1.1\n',
  );
});
