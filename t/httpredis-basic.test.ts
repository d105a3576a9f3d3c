import net from 'node:net';
import t, { type Test } from 'tap';
import { request } from './helpers/http_redis.js';
import { opened, startRedis } from './helpers/redis.js';
import { raw, startRedis2d } from './helpers/server.js';

/*
 * redis_pass (ngx_http_redis 0.4.x) against a real redis-server: what the
 * client gets for a hit, a miss, HEAD, Range, $redis_db, $redis_auth and
 * Redis's error replies, the log lines, and the exact bytes Redis receives.
 * Debian has no build of the module to compare with: the expectations
 * follow the module's source (lib/modules/redis/*.ts say which part).
 */

/** a fake Redis that records what it receives and answers each connection's first read with `reply` */
async function recorder(t: Test, reply: string): Promise<{ port: number; received: () => string }> {
  let got = '';
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    socks.add(s);
    s.on('error', () => {});
    s.on('close', () => socks.delete(s));
    s.on('data', (d) => {
      got += d.toString('latin1');
      s.write(Buffer.from(reply, 'latin1'));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        srv.close(() => r());
      }),
  );
  const a = srv.address();
  return { port: typeof a === 'object' && a ? a.port : 0, received: () => got };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** the error log once a line matching `re` is in it (the log is written as the request ends) */
async function logHas(log: () => string, re: RegExp): Promise<string> {
  for (let i = 0; i < 50 && !re.test(log()); i++) await sleep(20);
  return log();
}

t.test('hit, miss, HEAD, methods, types and the key variable', async (t) => {
  const redis = await startRedis(t);
  t.equal(await redis.command(['SET', '/hello.html', '<p>hi</p>']), '+OK\r\n');
  t.equal(await redis.command(['SET', 'empty', '']), '+OK\r\n');
  const srv = await startRedis2d(`
    types { text/html html; }
    default_type application/x-test;
    upstream rd { server ${redis.addr}; keepalive 4; }
    server { listen 127.0.0.1:{port};
      location / { set $redis_key $uri; redis_pass rd; add_header X-Added yes; }
      location /arg { set $redis_key $arg_k; redis_pass rd; }
      location /fb { set $redis_key $arg_k; redis_pass rd; error_page 404 = /fallback; }
      location = /fallback { return 200 "fallback for $request_uri\\n"; }
      location /nokey { redis_pass rd; }
    }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  const hit = await request(p, '/hello.html');
  t.equal(hit.status, 200);
  t.equal(
    hit.head,
    'HTTP/1.1 200 OK\r\nServer: S\r\nDate: X\r\nContent-Type: text/html\r\nContent-Length: 9\r\nConnection: close\r\nX-Added: yes\r\nAccept-Ranges: bytes',
    'Content-Type from types, Content-Length from $N, add_header before Accept-Ranges',
  );
  t.equal(hit.body, '<p>hi</p>', 'the value, without the CR LF that follows it in the reply');

  const empty = await request(p, '/arg?k=empty');
  t.equal(empty.status, 200);
  t.match(empty.head, /\r\nContent-Type: application\/x-test\r\nContent-Length: 0\r\n/, 'an empty value: default_type, Content-Length: 0');
  t.equal(empty.body, '');

  const miss = await request(p, '/arg?k=nothing');
  t.equal(miss.status, 404, 'a missing key is 404');
  t.match(miss.head, /Content-Type: text\/html/, "nginx's own 404 page");
  t.match(miss.body, /<title>404 Not Found<\/title>/);
  const log = await logHas(srv.errorLog, /was not found by redis/);
  t.match(
    log,
    /\[info\] \d+#\d+: \*\d+ key: "nothing" was not found by redis while reading response header from upstream, client: 127\.0\.0\.1, server: , request: "GET \/arg\?k=nothing HTTP\/1\.1", upstream: "redis:\/\/127\.0\.0\.1:\d+", host: "x"/,
    'the miss is logged at info with the upstream',
  );

  const fb = await request(p, '/fb?k=gone');
  t.equal(fb.status, 200, 'error_page 404 applies (the module intercepts 404)');
  t.equal(fb.body, 'fallback for /fb?k=gone\n');

  const head = await request(p, '/hello.html', { method: 'HEAD' });
  t.equal(head.status, 200);
  t.match(head.head, /Content-Length: 9\r\n/, 'HEAD: the header of the GET');
  t.equal(head.wire, '', 'no body');

  const post = await request(p, '/hello.html', { method: 'POST', body: 'x=1' });
  t.equal(post.status, 405, 'only GET and HEAD');

  const nokey = await request(p, '/nokey');
  t.equal(nokey.status, 500, 'no $redis_key value: 500');
  t.match(
    await logHas(srv.errorLog, /"\$redis_key" variable is not set/),
    /\[error\] \d+#\d+: \*\d+ the "\$redis_key" variable is not set, client: 127\.0\.0\.1, server: , request: "GET \/nokey HTTP\/1\.1", host: "x"\n/,
    'logged before any upstream is chosen (no upstream in the line)',
  );
});

t.test('HEAD closes its Redis connection, GET keeps it (nginx finalizes the upstream after a HEAD header)', async (t) => {
  const redis = await startRedis(t);
  t.equal(await redis.command(['SET', 'k', 'v']), '+OK\r\n');
  const srv = await startRedis2d(`
    upstream rd { server ${redis.addr}; keepalive 4; }
    server { listen 127.0.0.1:{port}; location / { set $redis_key k; redis_pass rd; } }`);
  t.teardown(() => srv.stop());
  const n = await opened(redis, async () => {
    for (let i = 0; i < 3; i++) t.equal((await request(srv.port, '/', { method: 'HEAD' })).status, 200);
  });
  t.equal(n, 3, 'every HEAD opened a connection');
  t.equal(await opened(redis, () => request(srv.port, '/')), 1, 'a GET opens one');
  t.equal(
    await opened(redis, async () => {
      for (let i = 0; i < 3; i++) t.equal((await request(srv.port, '/')).body, 'v');
    }),
    0,
    'and the next GETs reuse it',
  );
});

t.test('the bytes Redis receives: RESP arrays, select 0 by default, the key escaped', async (t) => {
  const fake = await recorder(t, '+OK\r\n$2\r\nok\r\n');
  const srv = await startRedis2d(`
    server { listen 127.0.0.1:{port};
      location /plain { set $redis_key "a b\\"c'%&?/é"; redis_pass 127.0.0.1:${fake.port}; }
      location /db { set $redis_key k; set $redis_db 12; redis_pass 127.0.0.1:${fake.port}; }
    }`);
  t.teardown(() => srv.stop());
  t.equal((await request(srv.port, '/plain')).body, 'ok');
  // `é` is two bytes in the (UTF-8) config file: C3 A9
  const key = 'a%20b%22c%27%&?/%C3%A9';
  t.equal(
    fake.received(),
    `*2\r\n$6\r\nselect\r\n$1\r\n0\r\n*2\r\n$3\r\nget\r\n$${key.length}\r\n${key}\r\n`,
    'select 0, then get with NGX_ESCAPE_REFRESH escaping and the escaped length',
  );
  const before = fake.received().length;
  t.equal((await request(srv.port, '/db')).body, 'ok');
  t.equal(fake.received().slice(before), '*2\r\n$6\r\nselect\r\n$2\r\n12\r\n*2\r\n$3\r\nget\r\n$1\r\nk\r\n', '$redis_db is selected');
});

t.test('$redis_db selects the database; the pooled connection is only reused for the same database', async (t) => {
  const redis = await startRedis(t);
  t.equal(await redis.command(['SET', 'k', 'db0']), '+OK\r\n');
  const srv = await startRedis2d(`
    upstream rd { server ${redis.addr}; keepalive 8; }
    server { listen 127.0.0.1:{port};
      location /get { set $redis_key $arg_k; set $redis_db $arg_db; redis_pass rd; }
      location /r2set { redis2_query select $arg_db; redis2_query set $arg_k $arg_v; redis2_pass rd; }
      location /r2get { redis2_query get $arg_k; redis2_pass rd; }
    }`);
  t.teardown(() => srv.stop());
  const p = srv.port;
  t.match((await request(p, '/r2set?db=3&k=k&v=db3')).body, '+OK\r\n+OK\r\n');

  t.equal((await request(p, '/get?k=k')).body, 'db0', 'no $redis_db: database 0');
  t.equal((await request(p, '/get?k=k&db=3')).body, 'db3', '$redis_db 3');
  t.equal((await request(p, '/get?k=k&db=')).body, 'db0', 'an empty $redis_db is database 0');

  // CLIENT LIST names each connection's database
  const dbs = async (): Promise<string[]> => {
    const list = await redis.command(['CLIENT', 'LIST']);
    return [...list.matchAll(/ db=(\d+) .* cmd=(\w+)/g)].filter((m) => m[2] !== 'client').map((m) => m[1]!).sort();
  };
  t.equal(await opened(redis, () => request(p, '/get?k=k&db=3')), 0, 'db 3 reuses the db 3 connection');
  t.equal(await opened(redis, () => request(p, '/get?k=k')), 0, 'db 0 reuses the db 0 connection');
  t.equal(await opened(redis, () => request(p, '/get?k=k&db=5')), 1, 'db 5 opens its own');
  t.same(await dbs(), ['0', '3', '5'], 'idle connections in databases 0, 3 and 5 (db 3: the one redis2 opened with the same SELECT)');

  // a redis2 query without SELECT never gets a connection httpredis left in database 3 or 5
  for (let i = 0; i < 4; i++) t.equal((await request(p, '/r2get?k=k')).body, '$3\r\ndb0\r\n', 'redis2 reads database 0');
});

t.test("Redis's error replies: 502 and the module's log lines", async (t) => {
  const redis = await startRedis(t);
  t.equal(await redis.command(['RPUSH', 'list', 'a']), ':1\r\n');
  const srv = await startRedis2d(`
    server { listen 127.0.0.1:{port};
      location / { set $redis_key $arg_k; set $redis_db $arg_db; redis_pass ${redis.addr}; }
    }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  const bad = await request(p, '/?k=x&db=99');
  t.equal(bad.status, 502, 'SELECT out of range: 502');
  let log = await logHas(srv.errorLog, /invalid response: "-ERR DB/);
  t.match(log, /\[error\] \d+#\d+: \*\d+ redis sent error in response "-ERR DB index is out of range" for key "x" while reading response header from upstream, client: .*upstream: "redis:\/\/127\.0\.0\.1:\d+"/);
  t.match(log, /\[error\] \d+#\d+: \*\d+ redis sent invalid response: "-ERR DB index is out of range" while reading response header from upstream, client/);

  const wrong = await request(p, '/?k=list');
  t.equal(wrong.status, 502, 'GET on a list: 502');
  log = await logHas(srv.errorLog, /WRONGTYPE/);
  t.match(log, 'redis sent invalid response: "+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value" while reading response header from upstream, client', 'the line quoted from the start of the reply, its CR LF raw, as nginx writes it');
});

t.test('$redis_auth: AUTH first, and a failed one is 502', async (t) => {
  const redis = await startRedis(t, { requirepass: 'sekret' });
  t.equal(await redis.command(['SET', 'k', 'authed']), '+OK\r\n');
  const srv = await startRedis2d(`
    upstream rd { server ${redis.addr}; keepalive 4; }
    server { listen 127.0.0.1:{port};
      location /good { set $redis_key k; set $redis_auth sekret; redis_pass rd; }
      location /bad { set $redis_key k; set $redis_auth nope; redis_pass rd; }
      location /none { set $redis_key k; redis_pass rd; }
    }`);
  t.teardown(() => srv.stop());
  const p = srv.port;
  t.equal((await request(p, '/good')).body, 'authed');
  t.equal(await opened(redis, () => request(p, '/good')), 0, 'the authenticated connection is reused by the same auth');
  t.equal((await request(p, '/none')).status, 502, 'without AUTH: -NOAUTH, 502 (never the authenticated connection)');
  t.match(await logHas(srv.errorLog, /NOAUTH/), 'redis sent invalid response: "-NOAUTH Authentication required."');
  t.equal((await request(p, '/bad')).status, 502, 'a wrong password: 502');
  t.match(await logHas(srv.errorLog, /WRONGPASS/), /redis sent invalid response: "-WRONGPASS [^"]*"/);
});

t.test('redis_gzip_flag and ranges (force_ranges, one range at most)', async (t) => {
  const redis = await startRedis(t);
  t.equal(await redis.command(['SET', 'k', '0123456789']), '+OK\r\n');
  const srv = await startRedis2d(`
    server { listen 127.0.0.1:{port};
      location / { set $redis_key k; redis_pass ${redis.addr}; }
      location /gz { set $redis_key k; redis_gzip_flag 1; redis_pass ${redis.addr}; }
      location /sub { echo_location /; }
    }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  const gz = await request(p, '/gz');
  t.match(gz.head, /Content-Length: 10\r\nConnection: close\r\nContent-Encoding: gzip\r\nAccept-Ranges: bytes$/, 'Content-Encoding: gzip, as stored');

  const part = await request(p, '/', { headers: ['Range: bytes=2-4'] });
  t.equal(part.status, 206);
  t.match(part.head, /Content-Length: 3\r\nConnection: close\r\nContent-Range: bytes 2-4\/10$/);
  t.equal(part.body, '234');
  t.equal((await request(p, '/', { headers: ['Range: bytes=-3'] })).body, '789', 'a suffix range');
  t.equal((await request(p, '/', { headers: ['Range: bytes=7-'] })).body, '789', 'an open range');
  t.equal((await request(p, '/', { headers: ['Range: bytes=8-100'] })).body, '89', 'clipped to the value');

  const two = await request(p, '/', { headers: ['Range: bytes=0-1,4-5'] });
  t.equal(two.status, 200, 'two ranges: the whole value (single_range)');
  t.equal(two.body, '0123456789');
  const ifr = await request(p, '/', { headers: ['Range: bytes=0-1', 'If-Range: "x"'] });
  t.equal(ifr.status, 200, 'If-Range never matches (no ETag, no Last-Modified)');

  const none = await request(p, '/', { headers: ['Range: bytes=20-30'] });
  t.equal(none.status, 416);
  t.match(none.head, /Content-Type: text\/html\r\nContent-Length: \d+\r\nConnection: close\r\nContent-Range: bytes \*\/10$/);
  t.equal((await request(p, '/', { headers: ['Range: bytes=x'] })).status, 416, 'a malformed range is unsatisfiable');
  t.equal((await request(p, '/', { headers: ['Range: items=1-2'] })).status, 200, 'another unit: ignored');

  const sub = await request(p, '/sub', { headers: ['Range: bytes=2-4'] });
  t.equal(sub.body, '0123456789', 'a subrequest ignores Range');
  const http10 = await raw(p, 'GET / HTTP/1.0\r\nRange: bytes=0-0\r\n\r\n', 2000);
  t.match(http10, /^HTTP\/1\.1 206 Partial Content\r\n[^]*\r\n\r\n0$/, 'HTTP/1.0 gets ranges too');
});
