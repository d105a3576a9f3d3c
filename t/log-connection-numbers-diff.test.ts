import t from 'tap';
import { hasNginx, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';
import { scriptedServer } from './helpers/redis.js';

/*
 * The error log's `*N` as nginx counts it: one counter for every accepted
 * client connection and every upstream connection (ngx_event_accept and
 * ngx_event_connect_peer both take the next number). After a proxied
 * request, the next client connection's number has skipped the upstream
 * connection's. redis2d's side uses redis2_pass, nginx's proxy_pass (Debian's
 * nginx has no redis2): each opens one upstream connection per request.
 */

const conf = (up: string): string => `
  server {
    listen 127.0.0.1:{port};
    root {dir}/html;
    location /up { ${up} }
  }
`;

/** the *N of the error lines naming a missing file, in order */
async function play(srv: Running): Promise<number[]> {
  await raw(srv.port, 'GET /up HTTP/1.0\r\n\r\n');
  await raw(srv.port, 'GET /missing1 HTTP/1.0\r\n\r\n');
  // two upstream requests on one keep-alive client connection: two upstream connections
  await raw(srv.port, 'GET /up HTTP/1.1\r\nHost: h\r\n\r\nGET /up HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
  await raw(srv.port, 'GET /missing2 HTTP/1.0\r\n\r\n');
  await new Promise((r) => setTimeout(r, 100));
  return [...srv.errorLog().matchAll(/\*(\d+) open\(\) "[^"]*\/missing\d" failed/g)].map((m) => Number(m[1]));
}

t.test('upstream connections take connection numbers too', async (t) => {
  const redisPort = await scriptedServer(t, '+PONG\r\n');
  const ours = await startRedis2d(conf(`redis2_query ping; redis2_pass 127.0.0.1:${redisPort};`));
  t.teardown(() => ours.stop());
  const mine = await play(ours);
  // the harness's port probe is *1; then /up *2 (its upstream *3), /missing1 *4, keep-alive *5 (*6, *7), /missing2 *8
  t.same(mine, [4, 8]);
  if (!hasNginx) return;
  const httpPort = await scriptedServer(t, 'HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n', true);
  const ngx = await startNginx(conf(`proxy_pass http://127.0.0.1:${httpPort};`));
  t.teardown(() => ngx.stop());
  t.same(mine, await play(ngx), 'as nginx');
});
