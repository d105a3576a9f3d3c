import t from 'tap';
import { startRedis, freePort, silentServer, scriptedServer } from './helpers/redis.js';
import { startRedis2d, raw, normalize } from './helpers/server.js';
import { leaveMidReply, request, type Reply } from './helpers/http_redis.js';

/*
 * The redis2 content handler over HTTP: response framing per protocol and
 * method, the handler's 500s with the module's log words, upstream errors,
 * $upstream_* variables, failover, and a client leaving mid-reply.
 */

const CTX = (path: string, up: string): string => `, client: 127.0.0.1, server: , request: "GET ${path} HTTP/1.1", upstream: "redis2://${up}", host: "x"`;
const CTX0 = (path: string): string => `, client: 127.0.0.1, server: , request: "GET ${path} HTTP/1.1", host: "x"`;

function errorLines(log: string): string[] {
  return log
    .split(/\n(?=\d{4}\/\d\d\/\d\d )/)
    .map((l) => l.replace(/\n$/, ''))
    .filter((l) => / \[(error|warn|crit)\] /.test(l))
    .map((l) => l.replace(/^\S+ \S+ (\[\w+\]) \d+#\d+: \*\d+ /, '$1 '));
}

t.test('response framing as nginx 1.22 + redis2', async (t) => {
  const redis = await startRedis(t);
  await redis.command(['SET', 'k', 'v']);
  const srv = await startRedis2d(`server { listen 127.0.0.1:{port};
    location /get { redis2_query get k; redis2_pass 127.0.0.1:${redis.port}; }
    location /body { redis2_query set pk $request_body; redis2_query get pk; redis2_pass 127.0.0.1:${redis.port}; }
    location /json { default_type application/json; redis2_query get k; redis2_pass 127.0.0.1:${redis.port}; }
  }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  const r11 = await raw(p, 'GET /get HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 3000);
  t.equal(
    normalize(r11, p),
    'HTTP/1.1 200 OK\r\nServer: S\r\nDate: X\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n7\r\n$1\r\nv\r\n\r\n0\r\n\r\n',
    'HTTP/1.1: chunked',
  );
  const r10 = await raw(p, 'GET /get HTTP/1.0\r\nHost: x\r\n\r\n', 3000);
  t.equal(normalize(r10, p), 'HTTP/1.1 200 OK\r\nServer: S\r\nDate: X\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n$1\r\nv\r\n', 'HTTP/1.0: close-delimited');
  const head = await raw(p, 'HEAD /get HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 3000);
  t.equal(normalize(head, p), 'HTTP/1.1 200 OK\r\nServer: S\r\nDate: X\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n', 'HEAD: headers only');

  for (const method of ['POST', 'PUT', 'DELETE']) {
    const r = await request(p, '/body', { method, body: `a b\r\n${method}` });
    t.equal(r.status, 200, method);
    t.equal(r.body, `+OK\r\n$${5 + method.length}\r\na b\r\n${method}\r\n`, `${method}: the body was read first ($request_body)`);
  }
  t.match((await request(p, '/json')).head, /\r\nContent-Type: application\/json\r\n/, 'Content-Type from default_type');

  // keep-alive: two requests on one connection
  const two = await raw(p, 'GET /get HTTP/1.1\r\nHost: x\r\n\r\nGET /get HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 3000);
  t.equal(two.split('7\r\n$1\r\nv\r\n\r\n0\r\n\r\n').length, 3, 'pipelined client requests both answered');
  t.same(errorLines(srv.errorLog()), []);
});

t.test('query and target errors are 500 with the module words', async (t) => {
  const redis = await startRedis(t);
  const R = `127.0.0.1:${redis.port}`;
  const srv = await startRedis2d(`
    upstream backend { server ${R}; }
    server { listen 127.0.0.1:{port};
    location /none { redis2_pass ${R}; }
    location /raw { redis2_raw_query $arg_q; redis2_pass ${R}; }
    location /rawcrlf { redis2_raw_query "$arg_q\\r\\n"; redis2_pass ${R}; }
    location /rawn { redis2_raw_queries $arg_n "ping\\r\\nping\\r\\n"; redis2_pass ${R}; }
    location /pass { redis2_query ping; redis2_pass $arg_b; }
  }`);
  t.teardown(() => srv.stop());
  const p = srv.port;
  const cases: Array<[string, number, string | undefined, string | undefined]> = [
    ['/none', 500, 'no redis2 query specified or the query is empty', undefined],
    ['/raw', 500, 'the redis query is empty', undefined],
    ['/rawcrlf?q=ping', 200, undefined, '+PONG\r\n'],
    ['/rawn', 500, 'the N argument to redis2_raw_queries is empty', undefined],
    ['/rawn?n=x', 500, 'the N argument to redis2_raw_queries is invalid', undefined],
    ['/rawn?n=0', 500, 'the N argument to redis2_raw_queries is invalid', undefined],
    ['/rawn?n=-1', 500, 'the N argument to redis2_raw_queries is invalid', undefined],
    ['/rawn?n=2', 200, undefined, '+PONG\r\n+PONG\r\n'],
    ['/pass', 500, 'handler: empty "redis2_pass" target', undefined],
    ['/pass?b=nosuch', 500, 'redis2: upstream "nosuch" not found', undefined],
    [`/pass?b=${R}`, 500, `redis2: upstream "${R}" not found`, undefined],
    ['/pass?b=BACKEND', 200, undefined, '+PONG\r\n'],
  ];
  for (const [path, status, log, body] of cases) {
    const before = srv.errorLog().length;
    const r = await request(p, path);
    t.equal(r.status, status, `${path}: ${status}`);
    const lines = errorLines(srv.errorLog().slice(before));
    if (log) {
      t.same(lines, [`[error] ${log}${CTX0(path)}`], `${path}: log`);
      t.match(r.body, /<title>500 Internal Server Error<\/title>/);
    } else {
      t.same(lines, [], `${path}: nothing logged`);
      t.equal(r.body, body);
    }
  }
});

t.test('upstream errors over HTTP', async (t) => {
  const dead = await freePort();
  const silent = await silentServer(t);
  const bad = await scriptedServer(t, '-ERR fine\r\nHTTP/1.1\r\n');
  const junk = await scriptedServer(t, 'HTTP/1.1 400\r\n');
  const srv = await startRedis2d(`server { listen 127.0.0.1:{port};
    add_header X-Up "$upstream_addr $upstream_status" always;
    location /refused { redis2_query ping; redis2_pass 127.0.0.1:${dead}; }
    location /slow { redis2_read_timeout 100ms; redis2_query ping; redis2_pass 127.0.0.1:${silent.port}; }
    location /extra { redis2_query ping; redis2_pass 127.0.0.1:${bad}; }
    location /invalid { redis2_query ping; redis2_query ping; redis2_pass 127.0.0.1:${bad}; }
    location /junk { redis2_query ping; redis2_pass 127.0.0.1:${junk}; }
  }`);
  t.teardown(() => srv.stop());
  const p = srv.port;

  const ups: string[] = [];
  const up = (r: Reply): string => /\r\nX-Up: ([^\r]*)/.exec(r.head)?.[1] ?? '';
  let r = await request(p, '/refused');
  ups.push(up(r));
  t.equal(r.status, 502);
  t.match(r.body, /<title>502 Bad Gateway<\/title>/);
  r = await request(p, '/slow');
  ups.push(up(r));
  t.equal(r.status, 504);
  r = await request(p, '/extra');
  ups.push(up(r));
  t.equal(r.status, 200);
  t.equal(r.body, '-ERR fine\r\n');
  t.ok(r.complete);
  r = await request(p, '/invalid');
  ups.push(up(r));
  t.equal(r.status, 200, 'an invalid reply after the start: 200, the bad read dropped');
  t.equal(r.body, '');
  t.ok(r.complete);
  r = await request(p, '/junk');
  ups.push(up(r));
  t.equal(r.status, 502);

  t.same(errorLines(srv.errorLog()), [
    `[error] connect() failed (111: Connection refused) while connecting to upstream${CTX('/refused', `127.0.0.1:${dead}`)}`,
    `[error] upstream timed out (110: Connection timed out) while reading response header from upstream${CTX('/slow', `127.0.0.1:${silent.port}`)}`,
    `[warn] Redis server returned extra bytes: "HTTP/1.1\r\n" (len 10) while reading response header from upstream${CTX('/extra', `127.0.0.1:${bad}`)}`,
    `[error] Redis server returned invalid response near pos 11 in "-ERR fine\r\nHTTP/1.1\r\n" while reading response header from upstream${CTX('/invalid', `127.0.0.1:${bad}`)}`,
    `[error] redis2 sent invalid response: "HTTP/1.1 400\r\n" while reading response header from upstream${CTX('/junk', `127.0.0.1:${junk}`)}`,
  ]);
  t.same(
    ups,
    [`127.0.0.1:${dead} 502`, `127.0.0.1:${silent.port} 504`, `127.0.0.1:${bad} 200`, `127.0.0.1:${bad} 200`, `127.0.0.1:${junk} 502`],
    '$upstream_addr and $upstream_status',
  );
});

t.test('next upstream on error, and off', async (t) => {
  const redis = await startRedis(t);
  const dead = await freePort();
  const srv = await startRedis2d(`
    upstream pair { server 127.0.0.1:${dead}; server 127.0.0.1:${redis.port}; }
    # its own block: /a's failure marks the dead peer down in \`pair\` (max_fails=1), as nginx does
    upstream pair2 { server 127.0.0.1:${dead}; server 127.0.0.1:${redis.port}; }
    server { listen 127.0.0.1:{port};
    add_header X-Up "$upstream_addr|$upstream_status" always;
    location /a { redis2_query ping; redis2_pass pair; }
    location /off { redis2_next_upstream off; redis2_query ping; redis2_pass pair2; }
  }`);
  t.teardown(() => srv.stop());
  let r = await request(srv.port, '/a');
  t.equal(r.status, 200);
  t.equal(r.body, '+PONG\r\n', 'the second server answered');
  t.equal(/\r\nX-Up: [^|]*\|([^\r]*)/.exec(r.head)?.[1], '502, 200', '$upstream_status lists both tries');
  r = await request(srv.port, '/off');
  t.equal(r.status, 502, 'off: no second try');
  t.equal(/\r\nX-Up: ([^\r]*)/.exec(r.head)?.[1], `127.0.0.1:${dead}|502`);
  t.match(srv.errorLog(), `[error] `);
  t.match(srv.errorLog(), `connect() failed (111: Connection refused) while connecting to upstream${CTX('/a', `127.0.0.1:${dead}`)}`);
});

t.test('redis2_pass unix:PATH', async (t) => {
  const redis = await startRedis(t, { unixSocket: true });
  const srv = await startRedis2d(`server { listen 127.0.0.1:{port};
    location /u { redis2_query ping; redis2_pass unix:${redis.socketPath}; }
  }`);
  t.teardown(() => srv.stop());
  const r = await request(srv.port, '/u');
  t.equal(r.status, 200);
  t.equal(r.body, '+PONG\r\n');
});

t.test('a client that leaves mid-reply: the Redis connection is closed', async (t) => {
  const redis = await startRedis(t);
  const big = 'x'.repeat(16 * 1024 * 1024);
  t.equal(await redis.command(['SET', 'big', big]), '+OK\r\n');
  const srv = await startRedis2d(`server { listen 127.0.0.1:{port};
    location /big { redis2_query get big; redis2_pass 127.0.0.1:${redis.port}; }
  }`);
  t.teardown(() => srv.stop());
  const baseline = await redis.clientCount();
  await leaveMidReply(srv.port, '/big');
  let count = -1;
  for (let i = 0; i < 100; i++) {
    count = await redis.clientCount();
    if (count === baseline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(count, baseline, 'CLIENT LIST back to the baseline');

  // and a full read of it is byte-exact
  const whole = await request(srv.port, '/big');
  t.equal(whole.body.length, big.length + 13);
  t.ok(whole.body === `$${big.length}\r\n${big}\r\n`, 'the 16 MiB reply arrives intact');
});
