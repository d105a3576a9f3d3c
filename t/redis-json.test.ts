import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { RespJsonEncoder } from '../lib/modules/redis2/json.js';
import { runCmd, tempPrefix, cleanup } from './helpers/proc.js';
import { scriptedServer, startRedis } from './helpers/redis.js';
import { raw, startRedis2d } from './helpers/server.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/*
 * redis2d_output json (docs/behaviour.md §10): every RESP2 and RESP3 reply
 * type Redis sends, through redis2d's JSON path, checked against the raw
 * bytes of the same queries encoded here by a separate, whole-buffer
 * encoder written from the documented mapping (not the streaming one).
 */

// ---- the independent encoder: parse a whole RESP buffer, then write JSON

type Node =
  | { t: 'str'; b: Buffer }
  | { t: 'err'; b: Buffer }
  | { t: 'tok'; s: string }
  | { t: 'arr'; v: Node[] }
  | { t: 'map'; v: [Node, Node][] };

function parse(b: Buffer, pos: { i: number }): Node {
  const type = String.fromCharCode(b[pos.i]!);
  const eol = b.indexOf('\r\n', pos.i);
  const line = b.toString('latin1', pos.i + 1, eol);
  pos.i = eol + 2;
  const blob = (): Buffer | undefined => {
    const n = Number(line);
    if (n < 0) return undefined;
    const v = b.subarray(pos.i, pos.i + n);
    pos.i += n + 2;
    return v;
  };
  switch (type) {
    case '+':
      return { t: 'str', b: Buffer.from(line, 'latin1') };
    case '-':
      return { t: 'err', b: Buffer.from(line, 'latin1') };
    case ':':
    case '(':
      return { t: 'tok', s: line };
    case ',':
      return { t: 'tok', s: /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(line) ? line : JSON.stringify(line) };
    case '#':
      return { t: 'tok', s: line === 't' ? 'true' : 'false' };
    case '_':
      return { t: 'tok', s: 'null' };
    case '$':
    case '=':
    case '!': {
      const v = blob();
      if (v === undefined) return { t: 'tok', s: 'null' };
      if (type === '!') return { t: 'err', b: v };
      return { t: 'str', b: type === '=' ? v.subarray(4) : v };
    }
    case '|': {
      const n = Number(line);
      for (let k = 0; k < 2 * n; k++) parse(b, pos);
      return parse(b, pos);
    }
    case '%': {
      const n = Number(line);
      if (n < 0) return { t: 'tok', s: 'null' };
      const v: [Node, Node][] = [];
      for (let k = 0; k < n; k++) v.push([parse(b, pos), parse(b, pos)]);
      return { t: 'map', v };
    }
    default: {
      const n = Number(line);
      if (n < 0) return { t: 'tok', s: 'null' };
      const v: Node[] = [];
      for (let k = 0; k < n; k++) v.push(parse(b, pos));
      return { t: 'arr', v };
    }
  }
}

/** bytes → a JS string: valid UTF-8 decoded, every other byte as U+DC00 + byte */
function surrogateEscape(b: Buffer): string {
  let s = '';
  let i = 0;
  while (i < b.length) {
    // try the longest valid sequence at i with the strict decoder
    let done = false;
    for (const n of [1, 2, 3, 4]) {
      if (i + n > b.length) break;
      try {
        const ch = new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(i, i + n));
        if ([...ch].length === 1) {
          s += ch;
          i += n;
          done = true;
          break;
        }
      } catch {
        /* not n bytes long */
      }
    }
    if (!done) s += String.fromCharCode(0xdc00 + b[i++]!);
  }
  return s;
}

function toJson(n: Node): string {
  switch (n.t) {
    case 'str':
      return JSON.stringify(surrogateEscape(n.b));
    case 'err':
      return `{"error":${JSON.stringify(surrogateEscape(n.b))}}`;
    case 'tok':
      return n.s;
    case 'arr':
      return `[${n.v.map(toJson).join(',')}]`;
    case 'map':
      return `{${n.v.map(([k, v]) => `${k.t === 'str' ? toJson(k) : JSON.stringify(toJson(k))}:${toJson(v)}`).join(',')}}`;
  }
}

function expectedJson(rawBody: Buffer, replies: number): string {
  const pos = { i: 0 };
  const out: string[] = [];
  for (let k = 0; k < replies; k++) out.push(toJson(parse(rawBody, pos)));
  return `[${out.join(',')}]`;
}

/** the body of an HTTP/1.0 response (no chunking), as bytes */
function body10(resp: Buffer): Buffer {
  return resp.subarray(resp.indexOf('\r\n\r\n') + 4);
}

function get10(port: number, path: string, method = 'GET'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(`${method} ${path} HTTP/1.0\r\nHost: x\r\n\r\n`));
    const parts: Buffer[] = [];
    c.on('data', (d) => parts.push(d));
    c.on('end', () => resolve(Buffer.concat(parts)));
    c.on('error', reject);
  });
}

// ---- the streaming encoder alone: any split of the input gives the same bytes

t.test('the encoder gives the same bytes for every split of its input', async (t) => {
  const fixed = Buffer.concat([
    Buffer.from('*3\r\n$6\r\n', 'latin1'),
    Buffer.from([0x61, 0xc3, 0xa9, 0xe2, 0x82, 0xff]),
    Buffer.from('\r\n%2\r\n:1\r\n|1\r\n+a\r\n+b\r\n=8\r\ntxt:', 'latin1'),
    Buffer.from([0xf0, 0x9f, 0x98, 0x80]),
    Buffer.from('\r\n*1\r\n_\r\n~1\r\n,-inf\r\n-ERR "x"\r\n', 'latin1'),
  ]);
  const whole = new RespJsonEncoder();
  const ref = Buffer.concat([whole.feed(fixed), whole.finish()!]).toString('utf8');
  t.equal(ref, expectedJson(fixed, 1));
  for (let cut = 1; cut < fixed.length; cut++) {
    const e = new RespJsonEncoder();
    const got = Buffer.concat([e.feed(fixed.subarray(0, cut)), e.feed(fixed.subarray(cut)), e.finish()!]).toString('utf8');
    if (got !== ref) t.fail(`split at ${cut}: ${got}`);
  }
  const e = new RespJsonEncoder();
  const bytes: Buffer[] = [];
  for (let i = 0; i < fixed.length; i++) bytes.push(e.feed(fixed.subarray(i, i + 1)));
  bytes.push(e.finish()!);
  t.equal(Buffer.concat(bytes).toString('utf8'), ref, 'byte by byte');
  // the whole JSON parses back to the bytes (lone surrogates survive JSON.parse)
  const parsed = JSON.parse(ref) as [[string]];
  t.same([...parsed[0][0]].map((c) => c.codePointAt(0)), [0x61, 0xe9, 0xdce2, 0xdc82, 0xdcff]);
});

t.test('a reply stream cut inside a value has no closing bracket', async (t) => {
  const e = new RespJsonEncoder();
  t.equal(e.feed(Buffer.from('*2\r\n:1\r\n')).toString(), '[[1');
  t.equal(e.finish(), undefined);
});

// ---- through redis2d, against a real Redis

const TYPES = ['string', 'integer', 'double', 'bignum', 'null', 'array', 'set', 'map', 'attrib', 'push', 'verbatim', 'true', 'false'];

t.test('every reply type, RESP2 and RESP3, matches the independent encoding', async (t) => {
  const redis = await startRedis(t, { args: ['--enable-debug-command', 'yes'] });
  const binary = Buffer.from([0x00, 0x01, 0x1f, 0x22, 0x5c, 0x7f, 0x80, 0xc0, 0xc3, 0xa9, 0xed, 0xa0, 0x80, 0xf4, 0x90, 0xe2, 0x82, 0xac, 0x0a, 0x0d, 0x09, 0x08, 0x0c]);
  t.equal(await redis.command(['SET', 'bin', binary.toString('latin1')]), '+OK\r\n');
  // keys whose bytes the helper sends as latin1: the value is exactly `binary`
  t.equal(await redis.command(['RPUSH', 'list', 'a', '', 'Ã©']), ':3\r\n');
  t.equal(await redis.command(['HSET', 'hash', 'f', 'v', 'g', '12']), ':2\r\n');
  const up = `127.0.0.1:${redis.port}`;
  const locations = (json: string): string => `
    location /resp2 { ${json} redis2_query get bin; redis2_query get nosuch; redis2_query lrange list 0 -1;
      redis2_query lrange nosuch 0 -1; redis2_query llen list; redis2_query hgetall hash; redis2_query nosuchcmd x;
      redis2_query multi; redis2_query get bin; redis2_query lrange list 0 -1; redis2_query exec; redis2_query set k "va\\"l";
      redis2_pass ${up}; }
    location /resp3 { ${json} redis2_query hello 3; redis2_query hgetall hash; redis2_query smembers nosuch;
      redis2_query debug protocol $arg_t; redis2_query get bin; redis2_query nosuchcmd; redis2_pass ${up}; }
    location /off { ${json} redis2d_pipeline off; redis2_query get bin; redis2_query lrange list 0 -1; redis2_pass ${up}; }
  `;
  const srv = await startRedis2d(`server { listen 127.0.0.1:{port};
    location /json/ { redis2d_output json; ${locations('').replace(/location \//g, 'location /json/')} }
    ${locations('')}
  }`);
  t.teardown(() => srv.stop());

  const check = async (path: string, replies: number, what: string): Promise<void> => {
    const rawResp = await get10(srv.port, path);
    const jsonResp = await get10(srv.port, `/json${path}`);
    t.match(jsonResp.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n(.+\r\n)*Content-Type: application\/json\r\n/, `${what}: content type`);
    // HELLO's client id is the connection's own: the two requests differ there only
    const id = (s: string): string => s.replace(/"id":\d+/, '"id":N');
    t.equal(id(body10(jsonResp).toString('utf8')), id(expectedJson(body10(rawResp), replies)), what);
  };
  await check('/resp2', 12, 'RESP2 replies');
  await check('/off', 2, 'exclusive connection');
  for (const type of TYPES) await check(`/resp3?t=${type}`, 6, `RESP3 ${type}`);
  // the whole thing parses as JSON, and the bytes come back through the surrogates
  const parsed = JSON.parse(body10(await get10(srv.port, '/json/resp2')).toString('utf8')) as unknown[];
  const bin = parsed[0] as string;
  t.same(
    [...bin].map((c) => (c.charCodeAt(0) >= 0xdc00 && c.charCodeAt(0) <= 0xdcff ? c.charCodeAt(0) - 0xdc00 : c.codePointAt(0))),
    [0, 1, 0x1f, 0x22, 0x5c, 0x7f, 0x80, 0xc0, 0xe9, 0xed, 0xa0, 0x80, 0xf4, 0x90, 0x20ac, 10, 13, 9, 8, 12],
  );
  t.equal(parsed[1], null);
  t.same(parsed[6], { error: "ERR unknown command 'nosuchcmd', with args beginning with: 'x' " });
  // HEAD: the header only
  const head = (await get10(srv.port, '/json/resp2', 'HEAD')).toString('latin1');
  t.match(head, /^HTTP\/1\.1 200 OK\r\n/);
  t.equal(body10(Buffer.from(head, 'latin1')).length, 0, 'HEAD has no body');
});

t.test('a malformed reply leaves the JSON cut and logs as the raw path', async (t) => {
  const port = await scriptedServer(t, '*2\r\n:1\r\n?x\r\n');
  const srv = await startRedis2d(`server { listen 127.0.0.1:{port};
    location /bad { redis2d_output json; redis2_query lrange a 0 -1; redis2_pass 127.0.0.1:${port}; } }`);
  t.teardown(() => srv.stop());
  const resp = await raw(srv.port, 'GET /bad HTTP/1.0\r\nHost: x\r\n\r\n');
  // the piece with the bad byte is dropped whole, as on the raw path: nothing of it, no `]`
  t.match(resp, /^HTTP\/1\.1 200 OK\r\n/);
  t.equal(resp.slice(resp.indexOf('\r\n\r\n') + 4), '');
  t.match(srv.errorLog(), /\[error\] .*Redis server returned invalid response near pos 8 in "\*2\r\n:1\r\n\?x\r\n" while reading response header from upstream/);
});

t.test('redis2d_output takes raw or json', async (t) => {
  const dir = tempPrefix('json-conf');
  t.teardown(() => cleanup(dir));
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, 'events {}\nhttp {\n  redis2d_output yaml;\n}\n');
  const r = await runCmd(['-t', '-c', conf]);
  t.equal(r.stderr, `redis2d: [emerg] invalid value "yaml" in ${conf}:3\nredis2d: configuration file ${conf} test failed\n`);
  writeFileSync(conf, 'events {}\nhttp {\n  redis2d_output json;\n  server { redis2d_output raw; redis2d_output json; }\n}\n');
  const d = await runCmd(['-t', '-c', conf]);
  t.equal(d.stderr, `redis2d: [emerg] "redis2d_output" directive is duplicate in ${conf}:4\nredis2d: configuration file ${conf} test failed\n`);
});

const MiB = 1024 * 1024;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  return m ? Number(m[1]) * 1024 : 0;
}

t.test('a 64 MiB value streams as JSON to a slow client in bounded memory', { timeout: 120000 }, async (t) => {
  const redis = await startRedis(t);
  // 16 bytes with a quote, a backslash, a newline, a 2-byte UTF-8 character and an invalid byte
  const unit = Buffer.from([0x61, 0x62, 0x22, 0x63, 0x5c, 0x64, 0x0a, 0xc3, 0xa9, 0xff, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a]);
  const count = (64 * MiB) / unit.length;
  // the value is built inside Redis: neither process holds it in the test's making
  t.equal(
    await redis.command(['EVAL', "redis.call('set', 'big', string.rep(ARGV[1], tonumber(ARGV[2]))) return redis.call('strlen', 'big')", '0', unit.toString('latin1'), String(count)]),
    `:${64 * MiB}\r\n`,
  );
  const srv = await startRedis2d(`server { listen 127.0.0.1:{port};
    location /big { redis2d_output json; redis2_query get big; redis2_pass 127.0.0.1:${redis.port}; }
    location /small { redis2d_output json; redis2_query get small; redis2_pass 127.0.0.1:${redis.port}; }
  }`);
  t.teardown(() => srv.stop());
  t.equal(await redis.command(['SET', 'small', 'v']), '+OK\r\n');
  t.match(await raw(srv.port, 'GET /small HTTP/1.0\r\nHost: x\r\n\r\n'), /\r\n\r\n\["v"\]$/);
  const baseline = rssOf(srv.pid);
  let peak = baseline;

  // the expected body, hashed piece by piece (one unit's encoding repeated)
  const unitJson = JSON.stringify('ab"c\\d\n\u00e9\udcffefghij').slice(1, -1);
  const want = createHash('sha256');
  want.update('["');
  for (let k = 0; k < count; k++) want.update(unitJson);
  want.update('"]');

  const got = createHash('sha256');
  const received = await new Promise<number>((resolve, reject) => {
    const c = net.connect(srv.port, '127.0.0.1', () => c.write('GET /big HTTP/1.0\r\nHost: x\r\n\r\n'));
    let header = Buffer.alloc(0);
    let headerDone = false;
    let n = 0;
    c.pause();
    const timer = setInterval(() => {
      peak = Math.max(peak, rssOf(srv.pid));
      let budget = 512 * 1024;
      for (let chunk: Buffer | null; budget > 0 && (chunk = c.read() as Buffer | null) !== null; ) {
        budget -= chunk.length;
        if (!headerDone) {
          header = Buffer.concat([header, chunk]);
          const end = header.indexOf('\r\n\r\n');
          if (end < 0) continue;
          headerDone = true;
          chunk = header.subarray(end + 4);
        }
        n += chunk.length;
        got.update(chunk);
      }
    }, 5);
    c.on('end', () => {
      clearInterval(timer);
      resolve(n);
    });
    c.on('error', (e) => {
      clearInterval(timer);
      reject(e);
    });
    // 'end' only comes once the stream is read to its end
    c.on('readable', () => undefined);
  });
  t.equal(received, 2 + count * Buffer.byteLength(unitJson) + 2, 'every byte arrived');
  t.equal(got.digest('hex'), want.digest('hex'), 'the bytes are the expected JSON');
  const growth = peak - baseline;
  t.ok(growth < 32 * MiB, `RSS grew by ${(growth / MiB).toFixed(1)} MiB (< 32 MiB)`);
});
