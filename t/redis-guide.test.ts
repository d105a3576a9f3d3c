import t from 'tap';
import { startRedis } from './helpers/redis.js';
import { startRedis2d } from './helpers/server.js';
import { request } from './helpers/http_redis.js';

/*
 * The redis2 guide's curl examples, end to end: redis2d in front of a real
 * redis-server, answers compared byte for byte.
 */

t.test("the guide's examples answer as documented", async (t) => {
  const redis = await startRedis(t);
  const R = `127.0.0.1:${redis.port}`;
  const srv = await startRedis2d(`
    upstream redis_backend {
        server ${R};
        keepalive 32;
    }
    server {
        listen 127.0.0.1:{port};
        location = /cache/get { redis2_query get $arg_key; redis2_pass redis_backend; }
        location = /cache/set { redis2_query set $arg_key $arg_val; redis2_pass redis_backend; }
        location = /cache/del { redis2_query del $arg_key; redis2_pass redis_backend; }
        location = /cache/exists { redis2_query exists $arg_key; redis2_pass redis_backend; }
        location = /db1/get { redis2_query select 1; redis2_query get $arg_key; redis2_pass redis_backend; }
        location = /db1/set { redis2_query select 1; redis2_query set $arg_key $arg_val; redis2_pass redis_backend; }
        location = /list/push { redis2_query lpush $arg_list $arg_val; redis2_pass redis_backend; }
        location = /list/range { redis2_query lrange $arg_list 0 -1; redis2_pass redis_backend; }
        location = /health/redis { redis2_query ping; redis2_pass redis_backend; }
        location = /redis/pipeline {
            redis2_query set mykey "hello";
            redis2_query get mykey;
            redis2_query del mykey;
            redis2_pass ${R};
        }
        location = /redis { redis2_query ping; redis2_pass ${R}; }
        location = /redis/dyn { redis2_query get $arg_key; redis2_pass $arg_backend; }
        location = /redis/raw { redis2_raw_query "ping\\r\\n"; redis2_pass ${R}; }
        location = /redis/multi-raw {
            redis2_raw_queries 2 "*1\\r\\n$4\\r\\nping\\r\\n*1\\r\\n$4\\r\\nping\\r\\n";
            redis2_pass ${R};
        }
        location = /redis/literal { redis2_literal_raw_query "*1\\r\\n$4\\r\\nping\\r\\n"; redis2_pass ${R}; }
        location = /redis/timeouts {
            redis2_connect_timeout 200ms;
            redis2_send_timeout 200ms;
            redis2_read_timeout 200ms;
            redis2_query get $arg_key;
            redis2_pass redis_backend;
        }
        location = /batch {
            redis2_query set key1 val1;
            redis2_query set key2 val2;
            redis2_query get key1;
            redis2_query get key2;
            redis2_pass redis_backend;
        }
    }`);
  t.teardown(() => srv.stop());
  const body = async (path: string): Promise<string> => {
    const r = await request(srv.port, path);
    t.equal(r.status, 200, `${path}: 200`);
    t.ok(r.complete, `${path}: complete chunked body`);
    return r.body;
  };

  t.equal(await body('/cache/set?key=greeting&val=hello'), '+OK\r\n');
  t.equal(await body('/cache/get?key=greeting'), '$5\r\nhello\r\n');
  t.equal(await body('/cache/exists?key=greeting'), ':1\r\n');
  t.equal(await body('/cache/get?key=nothing'), '$-1\r\n', 'a missing key is $-1');
  t.equal(await body('/cache/del?key=greeting'), ':1\r\n');
  t.equal(await body('/cache/exists?key=greeting'), ':0\r\n');

  t.equal(await body('/db1/set?key=a&val=one'), '+OK\r\n+OK\r\n');
  t.equal(await body('/db1/get?key=a'), '+OK\r\n$3\r\none\r\n');
  t.equal(await body('/cache/get?key=a'), '$-1\r\n', 'db 0 does not have it');

  t.equal(await body('/list/push?list=mylist&val=first'), ':1\r\n');
  t.equal(await body('/list/push?list=mylist&val=second'), ':2\r\n');
  t.equal(await body('/list/push?list=mylist&val=third'), ':3\r\n');
  t.equal(await body('/list/range?list=mylist'), '*3\r\n$5\r\nthird\r\n$6\r\nsecond\r\n$5\r\nfirst\r\n');
  t.equal(await body('/list/range?list=nolist'), '*0\r\n', 'an empty array is *0');

  t.equal(await body('/health/redis'), '+PONG\r\n');
  t.equal(await body('/redis'), '+PONG\r\n');
  t.equal(await body('/redis/pipeline'), '+OK\r\n$5\r\nhello\r\n:1\r\n');
  t.equal(await body('/redis/raw'), '+PONG\r\n');
  // nginx reads `$4` at a line start as capture 4 and breaks the protocol;
  // redis2d keeps RESP length markers literal (beyond), so the guide's example works
  t.equal(await body('/redis/multi-raw'), '+PONG\r\n+PONG\r\n');
  t.equal(await body('/redis/literal'), '+PONG\r\n');
  t.equal(await body('/redis/timeouts?key=key1'), '$-1\r\n');
  t.equal(await body('/batch'), '+OK\r\n+OK\r\n$4\r\nval1\r\n$4\r\nval2\r\n');
  t.equal(await body('/redis/dyn?key=key2&backend=redis_backend'), '$4\r\nval2\r\n', 'redis2_pass $var naming an upstream block');

  const r = await request(srv.port, `/redis/dyn?key=key2&backend=${R}`);
  t.equal(r.status, 500, 'a bare host:port in a variable is not an upstream');
  t.match(srv.errorLog(), `[error] `);
  t.match(srv.errorLog(), `redis2: upstream "${R}" not found, client: 127.0.0.1, server: , request: "GET /redis/dyn?key=key2&backend=${R} HTTP/1.1", host: "x"`);
});

t.test('the guide\'s authentication example', async (t) => {
  const redis = await startRedis(t, { requirepass: 'your_redis_password' });
  const srv = await startRedis2d(`
    upstream redis_backend { server 127.0.0.1:${redis.port}; keepalive 32; }
    server {
        listen 127.0.0.1:{port};
        location = /redis/secure { redis2_query auth your_redis_password; redis2_query get $arg_key; redis2_pass redis_backend; }
        location = /cache/get { redis2_query get $arg_key; redis2_pass redis_backend; }
    }`);
  t.teardown(() => srv.stop());
  t.equal((await request(srv.port, '/redis/secure?key=k')).body, '+OK\r\n$-1\r\n');
  t.equal((await request(srv.port, '/cache/get?key=k')).body, '-NOAUTH Authentication required.\r\n');
});
