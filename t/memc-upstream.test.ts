import { existsSync } from 'node:fs';
import t from 'tap';
import { hasMemcached, startMemcached, type Memcached } from './helpers/memcached.js';
import { freePort } from './helpers/redis.js';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * memc_pass and the upstream layer, against Debian's nginx with
 * ngx_http_memc_module on real memcached servers: connections kept by the
 * upstream's keepalive cache (memcached's own connection count says how
 * many were opened), memc_next_upstream not_found and error across two
 * servers, a large value streamed byte for byte, and memc locations
 * reached through echo's subrequests (the module's own test shape).
 */

const DIR = '/usr/lib/nginx/modules';
const MODULES = ['ngx_http_echo_module', 'ngx_http_memc_module'];
const LOAD = MODULES.map((m) => `load_module ${DIR}/${m}.so;`).join('\n');
const skip = !hasMemcached ? 'memcached is not installed' : !hasNginx || !MODULES.every((m) => existsSync(`${DIR}/${m}.so`)) ? 'Debian nginx with the echo and memc modules is not installed' : false;

const conf = (a: number, b: number, dead: number): string => `
  upstream kept { server 127.0.0.1:${a}; keepalive 4; }
  upstream two { server 127.0.0.1:${a}; server 127.0.0.1:${b}; }
  upstream deadfirst { server 127.0.0.1:${dead}; server 127.0.0.1:${b}; }
  server {
    listen 127.0.0.1:{port};
    location /kept { set $memc_key $arg_key; memc_pass kept; }
    location /nf { set $memc_key $arg_key; memc_next_upstream not_found; memc_pass two; }
    location /nonf { set $memc_key $arg_key; memc_pass two; }
    location /err { set $memc_key $arg_key; memc_pass deadfirst; }
    location /memc {
      internal;
      set $memc_cmd $arg_cmd;
      set $memc_key $arg_key;
      set $memc_value $arg_val;
      memc_pass 127.0.0.1:${a};
    }
    location /main {
      echo_location /memc "cmd=set&key=sub&val=from+subrequest";
      echo_location /memc "cmd=get&key=sub";
      echo_location /memc "cmd=incr&key=sub&val=1";
      echo_location /memc "cmd=delete&key=sub";
      echo_location /memc "cmd=get&key=sub";
      echo " end";
    }
  }`;

const GET = (p: string): string => `GET ${p} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`;

async function totalConnections(m: Memcached): Promise<number> {
  const s = await m.command('stats\r\n', ['END\r\n']);
  return Number(/STAT total_connections (\d+)/.exec(s)?.[1] ?? -1);
}

function logLines(srv: Running, from: number, ports: number[]): string[] {
  return srv
    .errorLog()
    .slice(from)
    .split('\n')
    .filter((l) => /\[(error|warn|crit|alert)\]/.test(l))
    .map((l) => {
      let s = l.replace(/^.*?\[(\w+)\] \d+#\d+: (\*\d+ )?/, '[$1] ').replaceAll(`:${srv.port}`, ':PORT');
      for (const p of ports) s = s.replaceAll(`:${p}`, `:P${ports.indexOf(p)}`);
      return s;
    });
}

interface Seen {
  opened: number;
  kept: string[];
  nf: string[];
  nonf: string[];
  err: string[];
  errLog: string[];
  big: string;
  main: string;
}

async function scenario(srv: Running, a: Memcached, b: Memcached, dead: number): Promise<Seen> {
  await a.flush();
  await b.flush();
  await a.command('set k 0 0 5\r\nfromA\r\n');
  await b.command('set k 0 0 5\r\nfromB\r\nset onlyb 0 0 5\r\nfromB\r\n', ['STORED\r\nSTORED\r\n']);
  const big = 'x'.repeat(200000) + 'y'.repeat(300000);
  await a.command(`set big 0 0 ${big.length}\r\n${big}\r\n`);
  const t0 = await totalConnections(a);
  const kept: string[] = [];
  for (let i = 0; i < 6; i++) kept.push(normalize(await raw(srv.port, GET('/kept?key=k')), srv.port));
  // the stats connection itself counts one
  const opened = (await totalConnections(a)) - t0 - 1;
  const nf: string[] = [];
  const nonf: string[] = [];
  for (let i = 0; i < 4; i++) nf.push(normalize(await raw(srv.port, GET('/nf?key=onlyb')), srv.port));
  for (let i = 0; i < 4; i++) nonf.push(normalize(await raw(srv.port, GET('/nonf?key=onlyb')), srv.port));
  const from = srv.errorLog().length;
  const err: string[] = [];
  for (let i = 0; i < 2; i++) err.push(normalize(await raw(srv.port, GET('/err?key=k')), srv.port));
  await new Promise((r) => setTimeout(r, 60));
  const errLog = logLines(srv, from, [a.port, b.port, dead]);
  const bigResp = await raw(srv.port, GET('/kept?key=big'), 500);
  // an error page's chunk counts the server's name in its footer: its size is set aside
  const main = normalize(await raw(srv.port, GET('/main')), srv.port).replace(/\r\n[0-9a-f]+(\r\n<html>)/g, '\r\nN$1');
  return { opened, kept, nf, nonf, err, errLog, big: normalize(bigResp, srv.port), main };
}

t.test('memc_pass through upstreams: as nginx', { skip }, async (t) => {
  const a = await startMemcached(t);
  const b = await startMemcached(t);
  const dead = await freePort();
  const http = conf(a.port, b.port, dead);
  const ngx = await startNginx(http, LOAD);
  t.teardown(() => ngx.stop());
  const theirs = await scenario(ngx, a, b, dead);
  await ngx.stop();
  const ours = await startRedis2d(http);
  t.teardown(() => ours.stop());
  const mine = await scenario(ours, a, b, dead);

  t.equal(theirs.opened, 1, 'nginx: six gets on one kept connection');
  t.equal(mine.opened, theirs.opened, 'redis2d keeps the connection as nginx');
  t.same(mine.kept, theirs.kept, 'the kept responses');
  t.match(theirs.nf.join(''), /fromB/, 'nginx: not_found goes to the next server');
  t.same(mine.nf, theirs.nf, 'memc_next_upstream not_found');
  t.match(theirs.nonf.join(''), /404 Not Found/, 'nginx: without it, a 404 from the first');
  t.same(mine.nonf, theirs.nonf, 'no next upstream on not found');
  t.same(mine.err, theirs.err, 'a dead first server: the next one answers');
  t.same(mine.errLog, theirs.errLog, 'a dead first server: the error log');
  t.equal(mine.big.length, theirs.big.length, 'a 500 KB value: the length');
  t.ok(mine.big === theirs.big, 'a 500 KB value: the bytes');
  t.match(theirs.main, /STORED\r\n\r\nf\r\nfrom\+subrequest\r\n/, 'nginx: echo_location subrequests');
  t.equal(mine.main, theirs.main, 'memc through echo_location subrequests');
});
