import t from 'tap';
import { connect } from 'node:net';
import { startRedis } from './helpers/redis.js';
import { raw, startRedis2d } from './helpers/server.js';
import { chunkedBody } from './helpers/http_redis.js';

/*
 * Subrequests where only redis2d can be asked: a client leaving while
 * subrequests sleep or wait on Redis, and a slow client reading a large
 * redis2 reply that reaches it through a subrequest (backpressure through
 * the child's onDrain, no deadlock, every byte in order).
 */

const LOAD = 'load_module ndk_http_module.so;\nload_module ngx_http_echo_module.so;';
const get = (path: string, close = true): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;

t.test('a client leaving mid-subrequests', async (t) => {
  const redis = await startRedis(t);
  const srv = await startRedis2d(`server { listen 127.0.0.1:{port};
    location /slow { echo_sleep 0.3; echo slow; }
    location /blpop { redis2_query blpop nothing 1; redis2_pass 127.0.0.1:${redis.port}; }
    location /blpop10 { redis2_query blpop nothing 10; redis2_pass 127.0.0.1:${redis.port}; }
    location /hang { echo a; echo_location_async /blpop10; echo_location /blpop10; echo z; }
    location /fan { echo a; echo_location_async /slow; echo_location_async /blpop; echo_location /slow; echo z; }
  }`, LOAD);
  t.teardown(() => srv.stop());
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((res) => {
      const c = connect(srv.port, '127.0.0.1', () => {
        c.write(get('/fan', false));
        setTimeout(() => c.destroy(), 50);
      });
      c.on('close', () => res());
      c.on('error', () => {});
    });
  }
  await new Promise((r) => setTimeout(r, 1500));
  // a child waiting on Redis: the client goes, the Redis connections close
  const c = connect(srv.port, '127.0.0.1', () => c.write(get('/hang', false)));
  c.on('error', () => {});
  await new Promise((r) => setTimeout(r, 300));
  t.equal(await redis.clientCount(), 2, 'both subrequests wait on Redis');
  // a client that is gone (RST), not one that only half-closed (redis2 ignores a FIN, as nginx's)
  c.resetAndDestroy();
  await new Promise((r) => setTimeout(r, 300));
  t.equal(await redis.clientCount(), 0, 'their Redis connections are closed when the client leaves');
  t.equal(chunkedBody(await raw(srv.port, get('/fan'), 3000)), 'a\nslow\n*-1\r\nslow\nz\n', 'the server goes on answering');
  t.notMatch(srv.errorLog(), /\[(alert|crit|emerg)\]/, 'nothing worse than info logged');
  t.match(srv.stderr(), /^$/, 'no crash output');
});

t.test('a slow client reading a large reply through a subrequest', async (t) => {
  const redis = await startRedis(t);
  const big = Buffer.alloc(4 << 20, 'abcdefghijklmnopqrstuvwxyz').toString('latin1');
  await redis.command(['SET', 'big', big]);
  const srv = await startRedis2d(`server { listen 127.0.0.1:{port};
    location /big { redis2_query get big; redis2_pass 127.0.0.1:${redis.port}; }
    location /wrap { echo head; echo_location /big; echo_location_async /big; echo tail; }
  }`, LOAD);
  t.teardown(() => srv.stop());
  const got = await new Promise<string>((res) => {
    const parts: Buffer[] = [];
    const c = connect(srv.port, '127.0.0.1', () => {
      c.write(get('/wrap'));
      c.pause();
      // stall long enough for every buffer on the way to fill up
      setTimeout(() => c.resume(), 700);
    });
    c.on('data', (d: Buffer) => parts.push(d));
    c.on('close', () => res(Buffer.concat(parts).toString('latin1')));
    c.on('error', () => {});
  });
  const one = `$${big.length}\r\n${big}\r\n`;
  const b = chunkedBody(got);
  t.equal(b.length, 'head\n'.length + 2 * one.length + 'tail\n'.length, 'every byte arrived');
  t.ok(b === `head\n${one}${one}tail\n`, 'in order');
});
