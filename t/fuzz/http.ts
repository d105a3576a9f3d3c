import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { normalize, startNginx, startRedis2d, type Running } from '../helpers/server.js';
import { Rng, caseSeed } from './prng.js';

/*
 * HTTP fuzzing against Debian's nginx: requests generated from a seeded
 * PRNG (a grammar of request lines, headers and bodies near nginx's edges,
 * then byte mutations), sent the same way (one write or the same splits,
 * mostly ending with a FIN) to redis2d and to nginx running the same
 * config. Compared per case: the response bytes (Date, Server and the
 * error pages' footer normalised), the access log line and the info lines
 * of the error log. Also reported: redis2d crashing (its process gone, an
 * [alert] or a stack on stderr) and hanging (no end within HANG_MS where
 * nginx ended).
 */

export interface HttpCase {
  /** the request bytes, in the writes they are sent in */
  parts: string[];
  /** end with a FIN (half-close) after the last write; else close after an idle wait */
  fin: boolean;
}

const METHODS = ['GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT', 'MKCOL', 'G_ET', 'GE-T', 'get', 'Get', ''];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/1.0', '', 'HTTP/2.0', 'HTTP/1.10', 'HTTP/1.100', 'HTTP/01.1', 'HTTP/1.', 'HTTP/1', 'http/1.1', 'HTTP/1.1 ', 'HTTP/9.9', 'HTTP/1.01', 'HTTP/10.0', 'HTX/1.1'];
const PATHS = ['/', '/a', '/a/b', '/static/f.txt', '/static/', '/static/nope', '/echo', '/e404', '/a%20b', '/%zz', '/%', '/a/../b', '/../x', '/./a', '//a//b', '/a?x=1&y=2', '/?', '/a#frag', '/a+b', '/\xe9t\xe9', '/a/.', '/a/..', '/%2e%2e/x', '/a%00b', '/a;b'];
const HOSTS = ['localhost', 'example.com', 'Example.COM.', 'a..b', '[::1]', '[::1]:80', 'a:80', 'a:', 'a/b', '', ' x', 'a b', 'xn--e1a', '*.x', '.a', 'a.', '127.0.0.1', '[fe80::1', '\xe9'];
const NAME_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!#$%&\'*+^`|';
const VALUE_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789 ,;=-_./:"\t\xe9\xff';

function uri(rnd: Rng): string {
  const r = rnd.next();
  if (r < 0.6) return rnd.pick(PATHS);
  if (r < 0.7) return `http://${rnd.pick(HOSTS)}${rnd.pick(['', '/', '/a', '?x', ':8080/', ':x/'])}`;
  if (r < 0.75) return rnd.pick(['*', 'a', '.', 'http:/x', 'http:x', 'HTTP://h/', 'h://h/', '1://h/', 'http://[::1]/', 'http://[::1/', 'http://a_b/']);
  if (r < 0.9) return `/${rnd.str('abc/.%?&=+#;', rnd.range(0, 20))}`;
  return `/${rnd.str('abc/%\x00\x01\x7f\x80\xff\t\r', rnd.range(0, 8))}`;
}

function header(rnd: Rng): string {
  const r = rnd.next();
  if (r < 0.2) return `Host: ${rnd.pick(HOSTS)}`;
  if (r < 0.3) return `Connection: ${rnd.pick(['close', 'keep-alive', 'Keep-Alive', 'upgrade', 'close, foo', ''])}`;
  if (r < 0.4) return `Content-Length: ${rnd.pick(['0', '1', '5', '12', '-1', '1 2', ' 5', '5 ', '+5', '0x5', '9223372036854775807', '9223372036854775808', '9007199254740993', '18446744073709551616', '00000000000000000000005', ''])}`;
  if (r < 0.47) return `Transfer-Encoding: ${rnd.pick(['chunked', 'Chunked', 'gzip', 'chunked, gzip', 'identity', ''])}`;
  if (r < 0.52) return `Expect: ${rnd.pick(['100-continue', '100-Continue', 'foo'])}`;
  if (r < 0.6) return `X-Foo: ${rnd.str(VALUE_CHARS, rnd.range(0, 30))}`;
  if (r < 0.66) return `${rnd.str(NAME_CHARS, rnd.range(1, 12))}: ${rnd.str(VALUE_CHARS, rnd.range(0, 10))}`;
  if (r < 0.7) return rnd.pick([' folded', '\tfolded', 'NoColon', ': empty-name', 'A b: c', 'A\x00: b', 'X: a\x00b', 'X:', 'X: \r', 'X: a\rb', 'Host:', 'Cookie: a=1', 'User-Agent: MSIE 6', 'Referer: http://r/']);
  if (r < 0.72) return `X-Long: ${'a'.repeat(rnd.pick([1000, 1008, 4000, 8100, 8180, 8181, 8182, 8183, 8190, 9000]))}`;
  return `X-${rnd.int(100)}: ${rnd.int(1000)}`;
}

function chunked(rnd: Rng): string {
  const r = rnd.next();
  if (r < 0.6) return `5\r\nhello\r\n${rnd.chance(0.5) ? '3\r\nabc\r\n' : ''}0\r\n\r\n`;
  return rnd.pick(['0\r\n\r\n', 'z\r\n', '5\r\nhel', '5;ext=1\r\nhello\r\n0\r\n\r\n', 'ffffffffffffffffff\r\n', '5\r\nhelloX\r\n0\r\n\r\n', '0\r\nTrailer: x\r\n\r\n', '-1\r\n']);
}

function request(rnd: Rng): string {
  const method = rnd.chance(0.05) ? rnd.str('ABCXYZ_-az!', rnd.range(1, 6)) : rnd.pick(METHODS);
  const version = rnd.pick(VERSIONS);
  const sp = rnd.chance(0.9) ? ' ' : rnd.pick(['  ', '\t', '']);
  const eol = rnd.chance(0.9) ? '\r\n' : rnd.pick(['\n', '\r\r\n', '\r']);
  let line = `${method}${sp}${uri(rnd)}`;
  if (version !== '') line += `${rnd.chance(0.95) ? ' ' : '  '}${version}`;
  let s = line + eol;
  if (version === '') return s; // HTTP/0.9: no headers
  const headers: string[] = [];
  if (rnd.chance(0.85)) headers.push(`Host: ${rnd.chance(0.85) ? 'localhost' : rnd.pick(HOSTS)}`);
  const n = rnd.chance(0.02) ? rnd.range(990, 1010) : rnd.range(0, 5);
  for (let i = 0; i < n; i++) headers.push(n > 100 ? `h${i}: v` : header(rnd));
  if (rnd.chance(0.3)) headers.push(`Connection: ${rnd.pick(['close', 'keep-alive'])}`);
  for (const h of headers) s += h + (rnd.chance(0.97) ? '\r\n' : rnd.pick(['\n', '\r\r\n']));
  s += rnd.chance(0.97) ? '\r\n' : '\n';
  const te = headers.some((h) => /^transfer-encoding: *chunked/i.test(h));
  const cl = /^content-length: *(\d+)/im.exec(headers.join('\n'));
  if (te) s += chunked(rnd);
  else if (cl) {
    const want = Math.min(Number(cl[1]), 64);
    s += rnd.str('abcdef', rnd.chance(0.8) ? want : rnd.int(want + 4));
  }
  return s;
}

function mutate(rnd: Rng, s: string): string {
  const n = rnd.range(1, 3);
  for (let i = 0; i < n && s.length; i++) {
    const at = rnd.int(s.length);
    const k = rnd.int(4);
    if (k === 0) s = s.slice(0, at) + rnd.byte() + s.slice(at + 1);
    else if (k === 1) s = s.slice(0, at) + rnd.byte() + s.slice(at);
    else if (k === 2) s = s.slice(0, at) + s.slice(at + 1);
    else s = s.slice(0, at) + rnd.pick(['\r\n', '\n', ' ', '\x00', ':', '%', '/', '\r\n\r\n']) + s.slice(at);
  }
  return s;
}

/** case `i` of the run seeded `seed` */
export function genHttpCase(seed: number, i: number): HttpCase {
  const rnd = new Rng(caseSeed(seed, i));
  let data = '';
  const count = rnd.chance(0.8) ? 1 : rnd.range(2, 4);
  for (let k = 0; k < count; k++) data += request(rnd);
  if (rnd.chance(0.03)) data = rnd.str('\r\n', rnd.range(1, 4)) + data;
  if (rnd.chance(0.25)) data = mutate(rnd, data);
  if (rnd.chance(0.02)) data += rnd.str('xyz\x00\r\n ', rnd.range(1, 10));
  const parts: string[] = [];
  if (rnd.chance(0.8) || data.length < 2) parts.push(data);
  else {
    const cuts = [...new Set(Array.from({ length: rnd.range(1, 3) }, () => rnd.range(1, data.length - 1)))].sort((a, b) => a - b);
    let last = 0;
    for (const c of cuts) {
      parts.push(data.slice(last, c));
      last = c;
    }
    parts.push(data.slice(last));
  }
  return { parts, fin: rnd.chance(0.995) };
}

/** the config both servers run (the http block's body; {port}, {dir} substituted) */
export const HTTP_FUZZ_CONF = `
  log_format fz '$remote_port $status $request_length "$request" $body_bytes_sent';
  access_log {dir}/access.log fz;
  client_header_timeout 2s;
  client_body_timeout 2s;
  keepalive_timeout 2s;
  client_max_body_size 32;
  server {
    listen 127.0.0.1:{port};
    server_name localhost;
    location / { return 200 "$request_method|$uri|$args|$host|$request_uri|$http_x_foo|$content_length|$http_connection|$is_args\\n"; }
    location /echo { echo_read_request_body; echo "[$request_body]"; }
    location /static { root {dir}/html; }
    location = /e404 { return 404; }
  }`;

const ECHO = '/usr/lib/nginx/modules/ngx_http_echo_module.so';

export interface Outcome {
  /** the response bytes, normalised */
  resp: string;
  /** true when the server ended the connection before HANG_MS */
  ended: boolean;
}

const HANG_MS = 4000;
/** how long a case waits for its access log lines (nginx's lingering_timeout is 5 s) */
const LOG_WAIT_MS = 6000;
/** the pause between the writes of a split case */
const SPLIT_GAP_MS = 20;
/** a case without FIN waits this long after its last byte, then closes */
const IDLE_MS = 500;

function runOne(port: number, c: HttpCase, onConnect: () => void): Promise<Outcome & { localPort: number }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let out = '';
    let ended = false;
    let localPort = 0;
    const hang = setTimeout(() => sock.destroy(), HANG_MS);
    let idle: NodeJS.Timeout | undefined;
    sock.on('data', (d) => {
      out += d.toString('latin1');
      if (idle) idle.refresh();
    });
    sock.on('end', () => (ended = true));
    sock.on('error', () => (ended = true));
    sock.on('close', () => {
      clearTimeout(hang);
      if (idle) clearTimeout(idle);
      resolve({ resp: normalize(out, port), ended, localPort });
    });
    sock.once('connect', async () => {
      localPort = sock.localPort ?? 0;
      onConnect();
      for (let k = 0; k < c.parts.length; k++) {
        if (k) await new Promise((r) => setTimeout(r, SPLIT_GAP_MS));
        if (sock.destroyed) return;
        sock.write(Buffer.from(c.parts[k]!, 'latin1'));
      }
      if (c.fin) sock.end();
      else {
        // no FIN: wait for the server, then leave (a keep-alive connection stays open)
        idle = setTimeout(() => {
          ended = true;
          sock.destroy();
        }, IDLE_MS);
      }
    });
  });
}

export interface HttpDiff {
  index: number;
  what: string;
  case: HttpCase;
  redis2d: string;
  nginx: string;
}

export interface HttpReport {
  cases: number;
  /** split cases whose only difference was how much of a refused line had arrived */
  timing: number;
  diffs: HttpDiff[];
  crashes: string[];
  hangs: number[];
  ms: number;
}

interface Side {
  srv: Running;
  logOffset: number;
  errOffset: number;
}

function readFrom(path: string, off: number): [string, number] {
  if (!existsSync(path)) return ['', off];
  const b = readFileSync(path);
  return [b.subarray(off).toString('latin1'), b.length];
}

function sizes(dirs: string[]): string {
  return dirs
    .map((d) => ['access.log', 'error.log'].map((f) => (existsSync(join(d, f)) ? statSync(join(d, f)).size : 0)).join(','))
    .join(';');
}

async function settleLogs(dirs: string[]): Promise<void> {
  let last = '';
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, i === 0 ? 20 : 30));
    const now = sizes(dirs);
    if (now === last) return;
    last = now;
  }
}

/** the info lines of the error log since `off`, grouped by connection number, in connection order */
function errorGroups(text: string, port: number, dir: string): string[] {
  const byConn = new Map<number, string[]>();
  for (const line of text.split('\n')) {
    const m = /\[(info|error|warn|alert|crit|emerg)\] \d+#\d+: \*(\d+) (.*)$/.exec(line);
    if (!m) continue;
    // the idle probes of the start-up helper are no case's
    if (m[3]!.includes('while waiting for request')) continue;
    const n = Number(m[2]);
    const msg = `[${m[1]}] ${m[3]!.replaceAll(`127.0.0.1:${port}`, '127.0.0.1:PORT').replaceAll(dir, 'DIR')}`;
    (byConn.get(n) ?? byConn.set(n, []).get(n)!).push(msg);
  }
  return [...byConn.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v.join('\n'));
}

/** two error-log groups that differ only in how much of a refused request line is in `request: "..."` */
function sameRequestSoFar(a: string, b: string | undefined): boolean {
  if (b === undefined) return false;
  const re = /request: "([^"]*)"/;
  const ma = re.exec(a);
  const mb = re.exec(b);
  if (!ma || !mb) return false;
  if (a.replace(re, '') !== b.replace(re, '')) return false;
  return ma[1]!.startsWith(mb[1]!) || mb[1]!.startsWith(ma[1]!);
}

/** two access log lines that differ only in how much of a refused request line is in $request */
function sameButReadSoFar(a: string, b: string): boolean {
  const re = /^(\d+ \d+ )"(.*)"( N|\s\d+)$/;
  const ma = re.exec(a);
  const mb = re.exec(b);
  if (!ma || !mb || ma[1] !== mb[1] || ma[3] !== mb[3]) return false;
  return ma[2]!.startsWith(mb[2]!) || mb[2]!.startsWith(ma[2]!);
}

/** access log lines keyed by the client's port, the port removed */
function accessByPort(text: string): Map<number, string[]> {
  const m = new Map<number, string[]>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const sp = line.indexOf(' ');
    const port = Number(line.slice(0, sp));
    // $body_bytes_sent of an error page counts the server's name: compared for 2xx only
    const rest = line.slice(sp + 1).replace(/^([3-5]\d\d .*) \d+$/, '$1 N');
    (m.get(port) ?? m.set(port, []).get(port)!).push(rest);
  }
  return m;
}

/**
 * Run cases [from, from + count) of `seed` against both servers, `parallel`
 * at a time; returns the differences (at most `maxDiffs` kept).
 */
export async function runHttpFuzz(opts: { seed: number; from?: number; count: number; parallel?: number; maxDiffs?: number; log?: (s: string) => void }): Promise<HttpReport> {
  const t0 = Date.now();
  const parallel = opts.parallel ?? 24;
  const from = opts.from ?? 0;
  const maxDiffs = opts.maxDiffs ?? 20;
  const r2d = await startRedis2d(HTTP_FUZZ_CONF);
  const ngx = await startNginx(HTTP_FUZZ_CONF, `load_module ${ECHO};`);
  const sides: Side[] = [
    { srv: r2d, logOffset: 0, errOffset: 0 },
    { srv: ngx, logOffset: 0, errOffset: 0 },
  ];
  for (const s of sides) {
    writeFileSync(join(s.srv.dir, 'html', 'f.txt'), 'static file\n');
    s.errOffset = readFrom(join(s.srv.dir, 'error.log'), 0)[1];
  }
  const report: HttpReport = { cases: 0, timing: 0, diffs: [], crashes: [], hangs: [], ms: 0 };
  const addDiff = (d: HttpDiff): void => {
    if (report.diffs.length < maxDiffs) report.diffs.push(d);
  };
  let diffCount = 0;
  /*
   * access log lines by client port, and the cases still waiting for theirs: nginx writes a
   * request's line when its lingering close ends, which can be lingering_timeout (5 s) later
   */
  const logged: Array<Map<number, string[]>> = [new Map(), new Map()];
  const waiting: Array<{ index: number; c: HttpCase; ports: [number, number]; until: number }> = [];
  const compareLogs = (final: boolean): void => {
    const now = Date.now();
    for (let w = 0; w < waiting.length; w++) {
      const x = waiting[w]!;
      const la = logged[0]!.get(x.ports[0]);
      const lb = logged[1]!.get(x.ports[1]);
      const complete = la !== undefined && lb !== undefined && la.length === lb.length;
      if (!complete && !final && now < x.until) continue;
      waiting.splice(w--, 1);
      logged[0]!.delete(x.ports[0]);
      logged[1]!.delete(x.ports[1]);
      const ta = (la ?? []).join('\n');
      const tb = (lb ?? []).join('\n');
      if (ta === tb) continue;
      // a request refused mid-line is logged with the bytes read so far: how a split case's
      // writes were read together can differ between two servers (timing, not behaviour)
      if (x.c.parts.length > 1 && sameButReadSoFar(ta, tb)) {
        report.timing++;
        continue;
      }
      diffCount++;
      addDiff({ index: x.index, what: 'access log', case: x.c, redis2d: ta, nginx: tb });
    }
  };
  try {
    for (let base = from; base < from + opts.count; base += parallel) {
      const n = Math.min(parallel, from + opts.count - base);
      const cases = Array.from({ length: n }, (_, k) => genHttpCase(opts.seed, base + k));
      const results: Array<Array<Outcome & { localPort: number }>> = [[], []];
      const pending: Promise<void>[] = [];
      // connections are opened in case order on both servers, so connection numbers follow cases
      for (let k = 0; k < n; k++) {
        for (let side = 0; side < 2; side++) {
          await new Promise<void>((connected) => {
            pending.push(runOne(sides[side]!.srv.port, cases[k]!, connected).then((o) => void (results[side]![k] = o)));
          });
        }
      }
      await Promise.all(pending);
      // the servers write their last log lines as their lingering closes end: wait until the logs stop growing
      await settleLogs(sides.map((x) => x.srv.dir));
      const texts = sides.map((s) => {
        const [acc, aoff] = readFrom(join(s.srv.dir, 'access.log'), s.logOffset);
        s.logOffset = aoff;
        const [err, eoff] = readFrom(join(s.srv.dir, 'error.log'), s.errOffset);
        s.errOffset = eoff;
        return { acc: accessByPort(acc), err: errorGroups(err, s.srv.port, s.srv.dir), rawErr: err };
      });
      if (/\[(alert|crit|emerg)\]/.test(texts[0]!.rawErr) || /\n\s+at /.test(r2d.stderr())) {
        report.crashes.push(`cases ${base}..${base + n - 1}: ${(texts[0]!.rawErr.match(/^.*\[(alert|crit|emerg)\].*$/m) ?? [r2d.stderr().slice(-2000)])[0]}`);
      }
      try {
        process.kill(r2d.pid, 0);
      } catch {
        report.crashes.push(`redis2d exited during cases ${base}..${base + n - 1}\n${r2d.stderr().slice(-2000)}`);
        break;
      }
      for (let side = 0; side < 2; side++) {
        for (const [port, lines] of texts[side]!.acc) {
          const have = logged[side]!.get(port);
          if (have) have.push(...lines);
          else logged[side]!.set(port, lines);
        }
      }
      for (let k = 0; k < n; k++) {
        const a = results[0]![k]!;
        const b = results[1]![k]!;
        const c = cases[k]!;
        report.cases++;
        if (!a.ended && b.ended) report.hangs.push(base + k);
        if (a.resp !== b.resp) {
          diffCount++;
          addDiff({ index: base + k, what: 'response', case: c, redis2d: a.resp, nginx: b.resp });
        }
        waiting.push({ index: base + k, c, ports: [a.localPort, b.localPort], until: Date.now() + LOG_WAIT_MS });
      }
      compareLogs(false);
      const ga = texts[0]!.err;
      const gb = texts[1]!.err;
      const split = cases.some((c) => c.parts.length > 1);
      if (ga.join('\n--\n') !== gb.join('\n--\n') && !(split && ga.length === gb.length && ga.every((x, i) => x === gb[i] || sameRequestSoFar(x, gb[i])))) {
        let g = 0;
        while (g < ga.length && ga[g] === gb[g]) g++;
        diffCount++;
        addDiff({ index: base, what: `error log of cases ${base}..${base + n - 1}, connection #${g + 1} with lines`, case: cases[0]!, redis2d: ga[g] ?? '(none)', nginx: gb[g] ?? '(none)' });
      }
      opts.log?.(`${report.cases} cases, ${diffCount} differences, ${report.crashes.length} crashes, ${report.hangs.length} hangs`);
    }
    // the stragglers: wait for lines still due (bounded), then compare what there is
    const until = Date.now() + LOG_WAIT_MS;
    while (waiting.length && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
      for (let side = 0; side < 2; side++) {
        const sd = sides[side]!;
        const [acc, aoff] = readFrom(join(sd.srv.dir, 'access.log'), sd.logOffset);
        sd.logOffset = aoff;
        for (const [port, lines] of accessByPort(acc)) (logged[side]!.get(port) ?? logged[side]!.set(port, []).get(port)!).push(...lines);
      }
      compareLogs(false);
    }
    compareLogs(true);
  } finally {
    await r2d.stop();
    await ngx.stop();
  }
  report.ms = Date.now() - t0;
  (report as HttpReport & { diffCount: number }).diffCount = diffCount;
  return report;
}
