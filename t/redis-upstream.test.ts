import t, { type Test } from 'tap';
import net from 'node:net';
import { encodeCommands } from '../lib/modules/redis2/resp.js';
import {
  startUpstreamRequest,
  type LogLevel,
  type ReplySink,
  type UpstreamOutcome,
  type UpstreamRequestOptions,
} from '../lib/modules/redis2/exclusive.js';
import { startRedis, freePort, silentServer, scriptedServer, blackholePort, type RedisServer } from './helpers/redis.js';

interface Run {
  body: string;
  out: UpstreamOutcome;
  logs: string[];
  starts: number;
}

function opts(port: number, query: Buffer, expected: number, extra: Partial<UpstreamRequestOptions> = {}): UpstreamRequestOptions & { logs: string[] } {
  const logs: string[] = [];
  return {
    peer: { name: `127.0.0.1:${port}`, host: '127.0.0.1', port },
    query,
    expected,
    connectTimeout: 2000,
    sendTimeout: 2000,
    readTimeout: 2000,
    bufferSize: 4096,
    log: (level: LogLevel, msg: string) => logs.push(`[${level}] ${msg}`),
    logs,
    ...extra,
  };
}

/* a sink that keeps up */
async function run(port: number, query: Buffer | string[][], expected?: number, extra: Partial<UpstreamRequestOptions> = {}): Promise<Run> {
  const q = Buffer.isBuffer(query) ? query : encodeCommands(query);
  const o = opts(port, q, expected ?? (Buffer.isBuffer(query) ? 1 : query.length), extra);
  const chunks: Buffer[] = [];
  let starts = 0;
  const sink: ReplySink = {
    start: () => void starts++,
    write: (c) => {
      chunks.push(Buffer.from(c));
      return true;
    },
    onDrain: () => {},
  };
  const out = await startUpstreamRequest(o, sink).done;
  return { body: Buffer.concat(chunks).toString('latin1'), out, logs: o.logs, starts };
}

const okDone = { status: 200, started: true, complete: true, reusable: true, aborted: false };

function outcome(t: Test, r: Run, want: Partial<UpstreamOutcome>, msg: string): void {
  const got: Partial<UpstreamOutcome> = {};
  for (const k of Object.keys(want) as (keyof UpstreamOutcome)[]) (got as Record<string, unknown>)[k] = r.out[k];
  t.same(got, want, msg);
}

t.test('replies against a real redis-server', async (t) => {
  const redis = await startRedis(t);
  const p = redis.port;
  let r = await run(p, [['set', 'k', 'hello']]);
  t.equal(r.body, '+OK\r\n');
  outcome(t, r, okDone, 'set');
  t.equal(r.starts, 1);
  t.same(r.logs, []);
  t.ok(r.out.connectTime !== undefined && r.out.connectTime >= 0);

  r = await run(p, [['get', 'k']]);
  t.equal(r.body, '$5\r\nhello\r\n');

  r = await run(p, [['set', 'e', ''], ['get', 'e'], ['get', 'nosuch']]);
  t.equal(r.body, '+OK\r\n$0\r\n\r\n$-1\r\n', 'empty bulk and nil bulk');
  outcome(t, r, okDone, 'empty/nil');

  r = await run(p, [['blpop', 'nolist', '0.01'], ['lrange', 'nolist', '0', '-1'], ['ping']]);
  t.equal(r.body, '*-1\r\n*0\r\n+PONG\r\n', 'null array and empty array');

  r = await run(p, [['set', 'crlf', 'a\r\nb\r\n'], ['get', 'crlf'], ['strlen', 'crlf']]);
  t.equal(r.body, '+OK\r\n$6\r\na\r\nb\r\n\r\n:6\r\n', 'values with CR LF');

  const mget: string[][] = [];
  for (let i = 0; i < 10; i++) mget.push(['mget', 'k', 'e', 'nosuch']);
  r = await run(p, mget);
  t.equal(r.body, '*3\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n'.repeat(10), '10 x mget pipelined');
  outcome(t, r, okDone, 'mget');

  r = await run(p, [['nosuchcommand', 'x'], ['incr', 'k']]);
  t.equal(r.body, "-ERR unknown command 'nosuchcommand', with args beginning with: 'x' \r\n-ERR value is not an integer or out of range\r\n");
  outcome(t, r, okDone, '-ERR passes through');

  r = await run(p, [['del', 'l'], ['rpush', 'l', 'a', 'b'], ['multi'], ['lrange', 'l', '0', '-1'], ['incr', 'n'], ['exec']]);
  t.equal(r.body, ':0\r\n:2\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n:1\r\n', 'EXEC of LRANGE: nested');
  outcome(t, r, okDone, 'exec');

  // the module frames this pipeline wrongly (200, empty body); every reply must come through
  r = await run(p, [['set', 'a', '1'], ['get', 'a'], ['lrange', 'l', '0', '-1'], ['incr', 'a'], ['incr', 'k'], ['mget', 'a', 'nosuch']]);
  t.equal(r.body, '+OK\r\n$1\r\n1\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n:2\r\n-ERR value is not an integer or out of range\r\n*2\r\n$1\r\n2\r\n$-1\r\n');
  outcome(t, r, okDone, 'set/get/lrange/incr/error/mget');

  r = await run(p, [['scan', '0', 'match', 'l', 'count', '1000']]);
  t.equal(r.body, '*2\r\n$1\r\n0\r\n*1\r\n$1\r\nl\r\n', 'SCAN');

  r = await run(p, [['xadd', 's', '1-1', 'f', 'v'], ['xrange', 's', '-', '+']]);
  t.equal(r.body, '$3\r\n1-1\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n', 'XRANGE');

  r = await run(p, [['hello', '3'], ['hset', 'h', 'a', '1'], ['hgetall', 'h'], ['get', 'nosuch'], ['sismember', 'nosuchset', 'x']]);
  t.match(r.body, /^%7\r\n\$6\r\nserver\r\n\$5\r\nredis\r\n/, 'HELLO 3 answers a map');
  t.equal(r.body.slice(r.body.indexOf('\r\n:1\r\n%1')), '\r\n:1\r\n%1\r\n$1\r\na\r\n$1\r\n1\r\n_\r\n:0\r\n', 'RESP3 map and null');
  outcome(t, r, okDone, 'resp3');
});

t.test('a unix socket peer', async (t) => {
  const redis = await startRedis(t, { unixSocket: true });
  const r = await run(0, [['set', 'u', 'x'], ['get', 'u']], 2, { peer: { name: `unix:${redis.socketPath}`, path: redis.socketPath } });
  t.equal(r.body, '+OK\r\n$1\r\nx\r\n');
  outcome(t, r, okDone, 'unix socket');
});

t.test('redis2_raw_queries with a wrong N', async (t) => {
  const redis = await startRedis(t);
  let r = await run(redis.port, Buffer.from('ping\r\nping\r\n', 'latin1'), 1);
  t.equal(r.body, '+PONG\r\n', 'only the expected reply is sent');
  t.same(r.logs, ['[warn] Redis server returned extra bytes: "+PONG\r\n" (len 7) while reading response header from upstream']);
  outcome(t, r, { status: 200, complete: true, reusable: false }, 'extra bytes: not reusable');

  r = await run(redis.port, Buffer.from('flushall\r\nget key\r\n', 'latin1'), 3, { readTimeout: 100 });
  t.equal(r.body, '+OK\r\n$-1\r\n');
  t.same(r.logs, ['[error] upstream timed out (110: Connection timed out) while reading upstream']);
  outcome(t, r, { status: 200, started: true, complete: false, reusable: false, failure: 'timeout' }, 'read timeout after the start');
});

t.test('requirepass', async (t) => {
  const redis = await startRedis(t, { requirepass: 's3cret' });
  let r = await run(redis.port, [['get', 'x']]);
  t.equal(r.body, '-NOAUTH Authentication required.\r\n');
  r = await run(redis.port, [['auth', 's3cret'], ['ping']]);
  t.equal(r.body, '+OK\r\n+PONG\r\n');
  t.equal(await redis.command(['PING']), '+PONG\r\n', 'the helper authenticates');
});

t.test('connect failures and timeouts', async (t) => {
  const dead = await freePort();
  let r = await run(dead, [['ping']]);
  t.same(r.logs, ['[error] connect() failed (111: Connection refused) while connecting to upstream']);
  outcome(t, r, { status: 502, started: false, complete: false, failure: 'error', connectTime: undefined }, 'refused');
  t.equal(r.starts, 0);

  const hole = await blackholePort(t);
  r = await run(hole, [['ping']], 1, { connectTimeout: 100 });
  t.same(r.logs, ['[error] upstream timed out (110: Connection timed out) while connecting to upstream']);
  outcome(t, r, { status: 504, started: false, failure: 'timeout' }, 'connect timeout');

  const silent = await silentServer(t);
  r = await run(silent.port, [['ping']], 1, { readTimeout: 100 });
  t.same(r.logs, ['[error] upstream timed out (110: Connection timed out) while reading response header from upstream']);
  outcome(t, r, { status: 504, started: false, failure: 'timeout' }, 'read timeout before the first byte');
  t.equal(silent.received(), 14, 'the query was sent');

  // a peer that never reads: the query cannot leave the socket buffers
  const deaf = await new Promise<{ port: number; close: () => void }>((resolve) => {
    const socks: net.Socket[] = [];
    const srv = net.createServer((s) => {
      s.pause();
      s.on('error', () => {});
      socks.push(s);
    });
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      resolve({ port: typeof a === 'object' && a ? a.port : 0, close: () => (socks.forEach((s) => s.destroy()), srv.close()) });
    });
  });
  t.teardown(deaf.close);
  r = await run(deaf.port, encodeCommands([['set', 'x', Buffer.alloc(48 * 1024 * 1024)]]), 1, { sendTimeout: 200 });
  t.same(r.logs, ['[error] upstream timed out (110: Connection timed out) while sending request to upstream']);
  outcome(t, r, { status: 504, started: false, failure: 'timeout' }, 'send timeout');

  r = await run(dead, [['ping']], 1, { peer: { name: 'unix:/nonexistent/redis.sock', path: '/nonexistent/redis.sock' } });
  t.same(r.logs, ['[crit] connect() to unix:/nonexistent/redis.sock failed (2: No such file or directory) while connecting to upstream']);
  outcome(t, r, { status: 502, failure: 'error' }, 'unix socket missing');
});

t.test('redis2_bind: the local address of the connection', async (t) => {
  // still listening on 127.0.0.1 only; protected mode would refuse 127.0.0.2 as "external"
  const redis = await startRedis(t, { args: ['--protected-mode', 'no'] });
  // a Redis command that reports the peer address it sees
  let r = await run(redis.port, [['client', 'info']], 1, { bind: { host: '127.0.0.2', port: 0, text: '127.0.0.2' } });
  t.match(r.body, / addr=127\.0\.0\.2:\d+ /, 'Redis sees the bound address');
  t.same(r.logs, []);
  r = await run(redis.port, [['ping']], 1, { bind: { host: '192.0.2.1', port: 0, text: '192.0.2.1' } });
  t.same(r.logs, ['[crit] bind(192.0.2.1) failed (99: Cannot assign requested address) while connecting to upstream']);
  outcome(t, r, { status: 500, started: false, failure: 'error' }, 'bind failure: 500, no next upstream');
});

t.test('bad peers', async (t) => {
  let port = await scriptedServer(t, 'HTTP/1.1 200 OK\r\n\r\n');
  let r = await run(port, [['ping']]);
  t.same(r.logs, ['[error] redis2 sent invalid response: "HTTP/1.1 200 OK\r\n\r\n" while reading response header from upstream']);
  outcome(t, r, { status: 502, started: false, failure: 'invalid_response' }, 'first byte is no reply type');

  port = await scriptedServer(t, '+OK\r\n$3\r\nabcd\r\n');
  r = await run(port, [['a'], ['b']]);
  t.equal(r.body, '', 'the bytes of the bad read are dropped');
  t.same(r.logs, ['[error] Redis server returned invalid response near pos 12 in "+OK\r\n$3\r\nabcd\r\n" while reading response header from upstream']);
  outcome(t, r, { status: 200, started: true, complete: true, reusable: false }, 'invalid later: the response ends');

  port = await scriptedServer(t, '$5\r\nhel', true);
  r = await run(port, [['get', 'x']]);
  t.equal(r.body, '$5\r\nhel');
  // redis2 leaves u->length at -1: nginx ends the response at EOF as complete, logging nothing
  t.same(r.logs, []);
  outcome(t, r, { status: 200, started: true, complete: true, reusable: false }, 'closed mid-reply: complete');

  port = await scriptedServer(t, '', true);
  r = await run(port, [['get', 'x']]);
  t.same(r.logs, ['[error] upstream prematurely closed connection while reading response header from upstream']);
  outcome(t, r, { status: 502, started: false, failure: 'error' }, 'closed before the reply');
});

t.test('invalid reply in a later read: pos counts from the buffer start', async (t) => {
  // bufferSize 8 cuts the stream into reads of 8 bytes: the bad byte is at 14 = read 2, pos 6
  const port = await scriptedServer(t, '+OKAY\r\n$3\r\nabcd\r\n');
  const r = await run(port, [['a'], ['b']], 2, { bufferSize: 8 });
  t.equal(r.body, '+OKAY\r\n$', 'earlier reads went out');
  t.same(r.logs, ['[error] Redis server returned invalid response near pos 6 in "3\r\nabcd\r" while reading upstream']);
});

async function bigValue(t: Test, redis: RedisServer, size: number): Promise<void> {
  const value = Buffer.alloc(size, 0x61);
  value.write('\r\n$-1\r\n', 1000, 'latin1'); // framing bytes inside the payload must not matter
  const r = await run(redis.port, encodeCommands([['set', 'big', value]]), 1, { sendTimeout: 20000 });
  t.equal(r.body, '+OK\r\n', `stored ${size} bytes`);
}

t.test('a 64 MiB value to a slow sink: bounded buffering, backpressure to Redis', async (t) => {
  const redis = await startRedis(t);
  const size = 64 * 1024 * 1024;
  await bigValue(t, redis, size);
  const bufferSize = 16384;
  const o = opts(redis.port, encodeCommands([['get', 'big'], ['ping']]), 2, { bufferSize, readTimeout: 20000 });
  let total = 0;
  let outstanding = 0;
  let maxOutstanding = 0;
  let drains = 0;
  let drainCb: (() => void) | undefined;
  let head = '';
  let tail = '';
  const sink: ReplySink = {
    start: () => {},
    write: (c) => {
      if (head.length < 20) head += c.toString('latin1', 0, 20);
      tail = (tail + c.toString('latin1', Math.max(0, c.length - 40))).slice(-40);
      total += c.length;
      outstanding += c.length;
      maxOutstanding = Math.max(maxOutstanding, outstanding);
      return false; // always "slow": every write must wait for a drain
    },
    onDrain: (cb) => {
      drainCb = cb;
      setImmediate(() => {
        outstanding = 0;
        drains++;
        const f = drainCb;
        drainCb = undefined;
        f?.();
      });
    },
  };
  const out = await startUpstreamRequest(o, sink).done;
  t.same(o.logs, []);
  t.equal(out.complete, true);
  t.equal(out.reusable, true);
  const header = `$${size}\r\n`;
  t.equal(total, header.length + size + 2 + 7, 'every byte arrived');
  t.equal(head.slice(0, header.length), header);
  t.equal(tail.slice(-9), 'a\r\n+PONG\r\n'.slice(-9));
  t.ok(maxOutstanding <= bufferSize, `never more than one buffer unconsumed (max ${maxOutstanding})`);
  t.ok(drains >= size / bufferSize, `waited for the sink ${drains} times`);
});

t.test('a sink that goes away mid-reply leaves no Redis connection open', async (t) => {
  const redis = await startRedis(t);
  await bigValue(t, redis, 8 * 1024 * 1024);
  const baseline = await redis.clientCount();
  const o = opts(redis.port, encodeCommands([['get', 'big']]), 1, { bufferSize: 4096 });
  let writes = 0;
  let abort: (() => void) | undefined;
  const sink: ReplySink = {
    start: () => {},
    write: () => {
      if (++writes === 1) setImmediate(() => abort?.());
      return false;
    },
    onDrain: () => {},
  };
  const req = startUpstreamRequest(o, sink);
  abort = () => req.abort();
  const out = await req.done;
  t.equal(out.aborted, true);
  t.equal(out.reusable, false);
  let count = -1;
  for (let i = 0; i < 50; i++) {
    count = await redis.clientCount();
    if (count === baseline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(count, baseline, 'CLIENT LIST is back to the baseline');
});
