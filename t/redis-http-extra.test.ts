import t from 'tap';
import net from 'node:net';
import { dechunk, request } from './helpers/http_redis.js';
import { startRedis } from './helpers/redis.js';
import { startRedis2d } from './helpers/server.js';

/*
 * redis2 at the HTTP level: regex captures feeding redis2_query, a request
 * body announced with Expect: 100-continue, and RESP3 replies after HELLO 3.
 */

t.test('regex captures (numbered and named) feed redis2_query', async (t) => {
  const redis = await startRedis(t);
  await redis.command(['SET', 'alpha', 'A1']);
  await redis.command(['SET', 'beta', 'B22']);
  const srv = await startRedis2d(`server { listen 127.0.0.1:{port};
    location ~ ^/num/(\\w+)$ { redis2_query get $1; redis2_pass 127.0.0.1:${redis.port}; }
    location ~ ^/named/(?<key>[a-z]+)/(?<val>[A-Za-z0-9]+)$ {
      redis2_query set $key $val; redis2_query get $key; redis2_pass 127.0.0.1:${redis.port};
    }
    location /rw { rewrite ^/rw/(.*)$ /num/$1 last; }
  }`);
  t.teardown(() => srv.stop());
  t.equal((await request(srv.port, '/num/alpha')).body, '$2\r\nA1\r\n');
  t.equal((await request(srv.port, '/num/missing')).body, '$-1\r\n');
  t.equal((await request(srv.port, '/named/gamma/G3')).body, '+OK\r\n$2\r\nG3\r\n');
  t.equal(await redis.command(['GET', 'gamma']), '$2\r\nG3\r\n', 'the named captures reached Redis');
  t.equal((await request(srv.port, '/rw/beta')).body, '$3\r\nB22\r\n', 'a rewrite last to a capturing location');
});

t.test('Expect: 100-continue, then the body reaches $request_body', async (t) => {
  const redis = await startRedis(t);
  const srv = await startRedis2d(`server { listen 127.0.0.1:{port};
    location /put { redis2_query set putkey $request_body; redis2_query get putkey; redis2_pass 127.0.0.1:${redis.port}; }
  }`);
  t.teardown(() => srv.stop());
  const out = await new Promise<string>((resolve) => {
    const c = net.connect(srv.port, '127.0.0.1');
    let text = '';
    let sentBody = false;
    c.on('data', (d) => {
      text += d.toString('latin1');
      if (!sentBody && text === 'HTTP/1.1 100 Continue\r\n\r\n') {
        sentBody = true;
        c.write('hello');
      }
    });
    c.on('close', () => resolve(text));
    c.write('POST /put HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
  });
  t.ok(out.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n'), 'interim 100, then the response');
  const d = dechunk(out.slice(out.indexOf('\r\n\r\n', 30) + 4));
  t.same(d, { body: '+OK\r\n$5\r\nhello\r\n', complete: true }, 'the body was stored and read back');
});

t.test('RESP3 replies after HELLO 3 are framed (beyond the module)', async (t) => {
  const redis = await startRedis(t);
  await redis.command(['HSET', 'h', 'f', 'v']);
  const srv = await startRedis2d(`server { listen 127.0.0.1:{port};
    location /r3 { redis2_query hello 3; redis2_query hgetall h; redis2_query ping; redis2_pass 127.0.0.1:${redis.port}; }
  }`);
  t.teardown(() => srv.stop());
  const r = await request(srv.port, '/r3');
  t.equal(r.status, 200);
  t.ok(r.complete, 'the response ended with its last chunk: three replies counted');
  t.match(r.body, /^%7\r\n/, 'HELLO 3 answers a map');
  t.ok(r.body.endsWith('%1\r\n$1\r\nf\r\n$1\r\nv\r\n+PONG\r\n'), 'HGETALL answers a map, then PONG');
  t.equal(srv.errorLog().includes('[error]'), false, 'no error logged');
});
