import { existsSync } from 'node:fs';
import t from 'tap';
import { hasMemcached, startMemcached, type Memcached } from './helpers/memcached.js';
import { freePort } from './helpers/redis.js';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * memc_pass against a real memcached, through Debian's nginx with
 * ngx_http_memc_module (0.19) and through redis2d, request by request:
 * memcached is flushed and given the same entries before each side's
 * request, and the status, headers and body bytes, the error-log lines
 * and what memcached holds afterwards must be the same. Every command the
 * module has, the default command from the method, the request body as
 * the value, the variables' checks, memc_cmds_allowed, the flags as
 * Last-Modified, error_page over a 502, a peer that is not listening.
 */

const MEMC = '/usr/lib/nginx/modules/ngx_http_memc_module.so';
const skip = !hasMemcached ? 'memcached is not installed' : !hasNginx || !existsSync(MEMC) ? 'Debian nginx with the memc module is not installed' : false;

const conf = (mport: number, dead: number): string => `
  upstream mc { server 127.0.0.1:${mport}; keepalive 4; }
  server {
    listen 127.0.0.1:{port};
    default_type text/plain;
    location /m {
      set $memc_cmd $arg_cmd;
      set $memc_key $arg_key;
      set $memc_flags $arg_flags;
      set $memc_exptime $arg_exptime;
      set $memc_value $arg_val;
      add_header X-Cmd $memc_cmd;
      add_header X-Flags $memc_flags;
      add_header X-Exptime $memc_exptime;
      memc_pass 127.0.0.1:${mport};
    }
    location /body {
      set $memc_cmd $arg_cmd;
      set $memc_key $arg_key;
      add_header X-Cmd $memc_cmd;
      add_header X-Flags $memc_flags;
      memc_pass mc;
    }
    location /rest {
      set $memc_key $arg_key;
      add_header X-Cmd $memc_cmd;
      memc_pass mc;
    }
    location /allowed {
      set $memc_cmd $arg_cmd;
      set $memc_key $arg_key;
      memc_cmds_allowed get delete;
      memc_pass mc;
    }
    location /lm {
      set $memc_key $arg_key;
      memc_flags_to_last_modified on;
      add_header X-T $memc_flags_as_http_time;
      memc_pass mc;
    }
    location /ep {
      set $memc_cmd $arg_cmd;
      set $memc_key $arg_key;
      error_page 502 = /fallback;
      memc_pass mc;
    }
    location /fallback { return 200 "fallback $status\\n"; }
    location /small { set $memc_cmd stats; memc_buffer_size 64; memc_pass mc; }
    location /nokey { memc_pass mc; }
    location /dead { set $memc_key a; memc_pass 127.0.0.1:${dead}; }
    location /var { set $memc_key $arg_key; set $t $arg_t; memc_pass $t; }
    location /inif { set $memc_key $arg_key; if ($arg_x) { memc_pass mc; } return 200 "no if\\n"; }
  }`;

type Case = [name: string, setup: string[], request: string, check?: string[]];

const GET = (p: string): string => `GET ${p} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`;
const REQ = (m: string, p: string, body?: string): string =>
  `${m} ${p} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n${body === undefined ? '' : `Content-Length: ${body.length}\r\n`}\r\n${body ?? ''}`;
const SET = (k: string, v: string, flags = 0): string => `set ${k} ${flags} 0 ${v.length}\r\n${v}\r\n`;

const CASES: Case[] = [
  ['get hit', [SET('a', 'hello', 7)], GET('/m?cmd=get&key=a')],
  ['get hit, HTTP/1.0', [SET('a', 'hello')], 'GET /m?cmd=get&key=a HTTP/1.0\r\n\r\n'],
  ['get miss', [], GET('/m?cmd=get&key=nope')],
  ['get an empty value', [SET('e', '')], GET('/m?cmd=get&key=e')],
  ['HEAD get', [SET('a', 'hello')], REQ('HEAD', '/m?cmd=get&key=a')],
  ['HEAD get, a miss', [], REQ('HEAD', '/m?cmd=get&key=nope')],
  ['HEAD version', [], REQ('HEAD', '/m?cmd=version')],
  ['HEAD set', [], REQ('HEAD', '/m?cmd=set&key=h&val=x'), ['h']],
  ['get a key to escape', [SET('a%20b%25', 'esc')], GET('/m?cmd=get&key=a%20b%25')],
  ['set: STORED 201', [], GET('/m?cmd=set&key=s&val=v1&flags=3&exptime=100'), ['s']],
  ['set without flags / exptime', [], GET('/m?cmd=set&key=s&val=v2'), ['s']],
  ['set an empty $memc_value', [], GET('/m?cmd=set&key=s'), ['s']],
  ['add: NOT_STORED 200', [SET('s', 'old')], GET('/m?cmd=add&key=s&val=new'), ['s']],
  ['add: STORED', [], GET('/m?cmd=add&key=s&val=new'), ['s']],
  ['replace: NOT_STORED', [], GET('/m?cmd=replace&key=s&val=new'), ['s']],
  ['replace: STORED', [SET('s', 'old')], GET('/m?cmd=replace&key=s&val=new'), ['s']],
  ['append', [SET('s', 'old')], GET('/m?cmd=append&key=s&val=+tail'), ['s']],
  ['prepend', [SET('s', 'old')], GET('/m?cmd=prepend&key=s&val=head+'), ['s']],
  ['append to nothing', [], GET('/m?cmd=append&key=s&val=x'), ['s']],
  ['delete: DELETED', [SET('d', 'x')], GET('/m?cmd=delete&key=d'), ['d']],
  ['delete: NOT_FOUND', [], GET('/m?cmd=delete&key=d')],
  ['delete with an exptime (memcached refuses it)', [SET('d', 'x')], GET('/m?cmd=delete&key=d&exptime=5'), ['d']],
  ['incr', [SET('n', '41')], GET('/m?cmd=incr&key=n&val=1'), ['n']],
  ['decr', [SET('n', '41')], GET('/m?cmd=decr&key=n&val=50'), ['n']],
  ['incr: NOT_FOUND', [], GET('/m?cmd=incr&key=n&val=1')],
  ['incr a non-number: CLIENT_ERROR 502', [SET('n', 'abc')], GET('/m?cmd=incr&key=n&val=1')],
  ['flush_all', [SET('f', 'x')], GET('/m?cmd=flush_all'), ['f']],
  ['flush_all with an exptime', [SET('f', 'x')], GET('/m?cmd=flush_all&exptime=0'), ['f']],
  ['version', [], GET('/m?cmd=version')],
  ['stats', [], GET('/m?cmd=stats')],
  ['a key too long: CLIENT_ERROR', [], GET(`/m?cmd=set&key=${'k'.repeat(300)}&val=x`)],
  // the variables' checks
  ['unknown $memc_cmd', [], GET('/m?cmd=cas&key=a')],
  ['$memc_cmd in capitals', [], GET('/m?cmd=GET&key=a')],
  ['no $memc_key', [], GET('/m?cmd=get')],
  ['no $memc_key for set', [], GET('/m?cmd=set&val=x')],
  ['no $memc_key (never set)', [], GET('/nokey')],
  ['bad $memc_flags', [], GET('/m?cmd=set&key=a&val=x&flags=1a')],
  ['$memc_flags too long', [], GET('/m?cmd=set&key=a&val=x&flags=12345678901')],
  ['bad $memc_exptime', [], GET('/m?cmd=set&key=a&val=x&exptime=-1')],
  ['bad $memc_exptime for delete', [], GET('/m?cmd=delete&key=a&exptime=x')],
  ['incr without $memc_value', [], GET('/m?cmd=incr&key=n')],
  ['incr with a bad $memc_value', [], GET('/m?cmd=incr&key=n&val=1.5')],
  ['incr: $memc_value of 20 digits', [], GET('/m?cmd=incr&key=n&val=12345678901234567890')],
  // the command from the method, the body as the value
  ['GET: get', [SET('r', 'rest value', 9)], GET('/rest?key=r')],
  ['POST: add', [], REQ('POST', '/rest?key=r', 'posted'), ['r']],
  ['POST: add, exists', [SET('r', 'old')], REQ('POST', '/rest?key=r', 'posted'), ['r']],
  ['PUT: set', [SET('r', 'old')], REQ('PUT', '/rest?key=r', 'put value'), ['r']],
  ['DELETE: delete', [SET('r', 'old')], REQ('DELETE', '/rest?key=r'), ['r']],
  ['PATCH: no command', [], REQ('PATCH', '/rest?key=r', 'x')],
  ['OPTIONS: no command', [], REQ('OPTIONS', '/rest?key=r')],
  ['PUT without a body', [], REQ('PUT', '/rest?key=r')],
  ['PUT with an empty body', [], REQ('PUT', '/rest?key=r', ''), ['r']],
  ['set without $memc_value nor a body', [], GET('/body?cmd=set&key=r')],
  ['set from an empty chunked body', [], `PUT /body?cmd=set&key=b HTTP/1.1\r\nHost: h\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, ['b']],
  ['set from the body, binary bytes', [], REQ('POST', '/body?cmd=set&key=b', 'a\r\nEND\r\n\x00\xff'), ['b']],
  ['set from a chunked body', [], `PUT /body?cmd=set&key=b HTTP/1.1\r\nHost: h\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n`, ['b']],
  ['get through an upstream block with keepalive', [SET('b', 'kept', 5)], GET('/body?cmd=get&key=b')],
  // memc_cmds_allowed
  ['allowed get', [SET('a', 'x')], GET('/allowed?cmd=get&key=a')],
  ['set not allowed', [], GET('/allowed?cmd=set&key=a')],
  ['default command not allowed', [], REQ('PUT', '/allowed?key=a', 'x')],
  // flags as Last-Modified
  ['flags as Last-Modified', [SET('l', 'lm', 1000000000)], GET('/lm?key=l')],
  ['flags as Last-Modified, If-Modified-Since (no 304)', [SET('l', 'lm', 1000000000)], `GET /lm?key=l HTTP/1.1\r\nHost: h\r\nConnection: close\r\nIf-Modified-Since: Sun, 09 Sep 2001 01:46:40 GMT\r\n\r\n`],
  ['flags 0 as Last-Modified', [SET('l', 'lm', 0)], GET('/lm?key=l')],
  ['$memc_flags_as_http_time for a miss', [], GET('/lm?key=none')],
  // error_page over the module's 502
  ['error_page 502 over CLIENT_ERROR', [SET('n', 'abc')], GET('/ep?cmd=incr&key=n')],
  ['error_page 502 not for a 404', [], GET('/ep?cmd=get&key=none')],
  // too big a reply for memc_buffer_size
  ['stats bigger than memc_buffer_size', [], GET('/small')],
  // peers
  ['memcached not listening', [], GET('/dead')],
  ['memc_pass $var naming the upstream', [SET('v', 'via var')], GET('/var?key=v&t=mc')],
  ['memc_pass $var naming nothing', [], GET('/var?key=v&t=nosuch')],
  ['memc_pass $var empty', [], GET('/var?key=v')],
  ['memc_pass inside if', [SET('i', 'in if')], GET('/inif?key=i&x=1')],
  ['pipelined requests on one connection', [SET('p', 'one'), SET('q', 'two')], `GET /m?cmd=get&key=p HTTP/1.1\r\nHost: h\r\n\r\nGET /m?cmd=get&key=q HTTP/1.1\r\nHost: h\r\n\r\nGET /m?cmd=get&key=zz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`],
];

/* memcached's stats differ run to run (pid, uptime, counters): their lines are compared by name */
function stable(s: string): string {
  return s
    .replace(/(STAT \S+) [^\r]*\r\n/g, '$1\r\n')
    .replace(/(VERSION )[^\r]*/, '$1X')
    .replace(/Content-Length: \d+(\r\n(?:[^\r\n]+\r\n)*\r\n(?:STAT|VERSION))/, 'Content-Length: N$1');
}

function logLines(log: string, srv: Running, ports: number[]): string[] {
  return log
    .split('\n')
    .filter((l) => /\[(error|warn|crit|alert|info)\]/.test(l) && !/\[info\].*(client \d+|closed keepalive|keepalive connection)/.test(l))
    .map((l) => {
      let s = l.replace(/^.*?\[(\w+)\] \d+#\d+: (\*\d+ )?/, '[$1] ');
      s = s.replaceAll(`:${srv.port}`, ':PORT');
      for (const p of ports) s = s.replaceAll(`:${p}`, `:P${ports.indexOf(p)}`);
      return s;
    });
}

async function runCase(srv: Running, m: Memcached, c: Case, ports: number[]): Promise<{ resp: string; log: string[]; held: string[] }> {
  await m.flush();
  for (const s of c[1]) await m.command(s);
  const before = srv.errorLog().length;
  const resp = await raw(srv.port, c[2], 400);
  // nginx writes its log lines as it goes; the last may follow the response by a moment
  await new Promise((r) => setTimeout(r, 60));
  const log = logLines(srv.errorLog().slice(before), srv, ports);
  const held: string[] = [];
  for (const k of c[3] ?? []) {
    const e = await m.get(k);
    held.push(e === undefined ? `${k}: none` : `${k}: ${JSON.stringify(e.value)} flags ${e.flags}`);
  }
  return { resp: stable(normalize(resp, srv.port)), log, held };
}

t.test('memc_pass: redis2d answers as nginx + ngx_http_memc_module', { skip }, async (t) => {
  const m = await startMemcached(t);
  const dead = await freePort();
  const http = conf(m.port, dead);
  const ngx = await startNginx(http, `load_module ${MEMC};`);
  t.teardown(() => ngx.stop());
  const ours = await startRedis2d(http);
  t.teardown(() => ours.stop());
  const ports = [m.port, dead];
  for (const c of CASES) {
    const theirs = await runCase(ngx, m, c, ports);
    const mine = await runCase(ours, m, c, ports);
    t.equal(mine.resp, theirs.resp, `${c[0]}: response`);
    t.same(mine.log, theirs.log, `${c[0]}: error log`);
    t.same(mine.held, theirs.held, `${c[0]}: memcached holds`);
  }
});
