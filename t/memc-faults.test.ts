import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { hasMemcached, startMemcached } from './helpers/memcached.js';
import { halfClose, hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * memc_pass when memcached misbehaves, against Debian's nginx with
 * ngx_http_memc_module: a scripted peer (a Node server in this process)
 * answers each command with the given bytes, in pieces when asked, then
 * stays, closes, or says nothing; every reply the module calls invalid
 * (and where: `at pos N` counts from the start of the read that failed),
 * error replies, extra bytes, split replies, a cut value, a peer that
 * closes or stays silent (memc_read_timeout). Then a real memcached,
 * stopped with the request in its socket and killed, and killed between
 * two requests of a keepalive upstream. Status, header and body bytes and
 * the error-log lines must be nginx's.
 */

const MEMC = '/usr/lib/nginx/modules/ngx_http_memc_module.so';
const skip = !hasNginx || !existsSync(MEMC) ? 'Debian nginx with the memc module is not installed' : false;

/** what the scripted peer does with the next command */
interface Script {
  pieces: string[];
  /** after the pieces: end (FIN), stay open, or nothing at all then end */
  then: 'close' | 'stay';
}

class ScriptedPeer {
  private readonly server = net.createServer((s) => this.serve(s));
  private readonly socks = new Set<net.Socket>();
  script: Script = { pieces: [], then: 'stay' };
  port = 0;

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  private serve(s: net.Socket): void {
    this.socks.add(s);
    s.on('close', () => this.socks.delete(s));
    s.on('error', () => {});
    let got = '';
    s.on('data', async (d) => {
      got += d.toString('latin1');
      if (!got.endsWith('\r\n')) return;
      got = '';
      const sc = this.script;
      for (let i = 0; i < sc.pieces.length; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 60));
        if (!s.destroyed) s.write(Buffer.from(sc.pieces[i]!, 'latin1'));
      }
      // a FIN right behind the bytes may be read with them or after (nginx's log says `while sending to
      // client` or `while reading upstream`): it comes a moment later here, so the answer is one
      if (sc.then === 'close') {
        if (sc.pieces.length > 0) await new Promise((r) => setTimeout(r, 60));
        s.end();
      }
    });
  }

  /** drop the connections kept from the last case */
  reset(): void {
    for (const s of this.socks) s.destroy();
  }

  stop(): Promise<void> {
    this.reset();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const conf = (fport: number): string => `
  server {
    listen 127.0.0.1:{port};
    default_type text/plain;
    location /m {
      set $memc_cmd $arg_cmd;
      set $memc_key $arg_key;
      set $memc_value $arg_val;
      add_header X-Flags $memc_flags;
      memc_read_timeout 300ms;
      memc_pass 127.0.0.1:${fport};
    }
  }`;

type Case = [name: string, request: string, script: Script];

const GET = (p: string): string => `GET ${p} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`;
const stay = (...pieces: string[]): Script => ({ pieces, then: 'stay' });
const close = (...pieces: string[]): Script => ({ pieces, then: 'close' });

const SET = GET('/m?cmd=set&key=a&val=v');
const GET_A = GET('/m?cmd=get&key=a');

const CASES: Case[] = [
  ['set: an unknown reply', SET, stay('STORXD\r\n')],
  ['set: an unknown reply over two reads (pos from the second)', SET, stay('STO', 'RXD\r\n')],
  ['set: a reply split in three', SET, stay('ST', 'ORE', 'D\r\n')],
  ['set: SERVER_ERROR', SET, stay('SERVER_ERROR out of memory storing object\r\n')],
  ['set: ERROR', SET, stay('ERROR\r\n')],
  ['set: CLIENT_ERROR then ERROR', SET, stay('CLIENT_ERROR bad data chunk\r\nERROR\r\n')],
  ['set: EXISTS', SET, stay('EXISTS\r\n')],
  ['set: STORED with bytes after it', SET, stay('STORED\r\nEXTRA')],
  ['set: a bare LF', SET, stay('STORED\n')],
  ['set: NOT_FOUND (intercepted 404)', SET, stay('NOT_FOUND\r\n')],
  ['delete: DELETED then more', GET('/m?cmd=delete&key=a'), stay('DELETED\r\nNOT_FOUND\r\n')],
  ['incr: a number with spaces', GET('/m?cmd=incr&key=a&val=1'), stay('12  \r\n')],
  ['incr: a number in two reads', GET('/m?cmd=incr&key=a&val=1'), stay('1', '2\r\n')],
  ['incr: not a number', GET('/m?cmd=incr&key=a&val=1'), stay('1x\r\n')],
  ['version', GET('/m?cmd=version'), stay('VERSION 1.2.3\r\n')],
  ['version: empty', GET('/m?cmd=version'), stay('VERSION \r\n')],
  ['stats: two lines', GET('/m?cmd=stats'), stay('STAT a b\r\nSTAT c d\r\nEND\r\n')],
  ['stats: none', GET('/m?cmd=stats'), stay('END\r\n')],
  ['stats: garbage', GET('/m?cmd=stats'), stay('STATS\r\n')],
  ['flush_all: OK', GET('/m?cmd=flush_all'), stay('OK\r\n')],
  ['flush_all: a wrong reply', GET('/m?cmd=flush_all'), stay('OKAY\r\n')],
  ['get: another key', GET_A, stay('VALUE other 0 1\r\nx\r\nEND\r\n')],
  ['get: a bad length', GET_A, stay('VALUE a 0 zz\r\n')],
  ['get: a cas after the length', GET_A, stay('VALUE a 0 3 99\r\nabc\r\nEND\r\n')],
  ['get: no flags', GET_A, stay('VALUE a 3\r\nabc\r\nEND\r\n')],
  ['get: flags', GET_A, stay('VALUE a 123456 3\r\nabc\r\nEND\r\n')],
  ['get: a wrong trailer', GET_A, stay('VALUE a 0 3\r\nabcXXXXXXX')],
  ['get: a wrong trailer in a later read', GET_A, stay('VALUE a 0 3\r\nabc', '\r\nEXD\r\n')],
  ['get: the value in pieces', GET_A, stay('VALUE a 0 10\r\n01234', '56789\r\n', 'END\r\n')],
  ['get: an unknown reply', GET_A, stay('HELLO\r\n')],
  ['get: END in two reads', GET_A, stay('EN', 'D\r\n')],
  ['get: a header longer than memc_buffer_size', GET_A, stay(`VALUE a 0 3${' '.repeat(5000)}`)],
  ['get: the value cut by a close', GET_A, close('VALUE a 0 10\r\nabc')],
  ['get: closed before any reply', GET_A, close()],
  ['set: closed after half a reply', SET, close('STOR')],
  ['get: no reply (memc_read_timeout)', GET_A, stay()],
  ['stats: no end (memc_read_timeout)', GET('/m?cmd=stats'), stay('STAT a b\r\n')],
];

function logLines(log: string, srv: Running, ports: number[]): string[] {
  return log
    .split('\n')
    .filter((l) => /\[(error|warn|crit|alert|info)\]/.test(l) && !/\[info\].*(client \d+|closed keepalive|keepalive connection|client closed)/.test(l))
    .map((l) => {
      let s = l.replace(/^.*?\[(\w+)\] \d+#\d+: (\*\d+ )?/, '[$1] ');
      s = s.replaceAll(`:${srv.port}`, ':PORT');
      for (const p of ports) s = s.replaceAll(`:${p}`, `:P${ports.indexOf(p)}`);
      return s;
    });
}

async function exchange(srv: Running, request: string, ports: number[], idle = 700): Promise<{ resp: string; log: string[] }> {
  const before = srv.errorLog().length;
  const resp = await raw(srv.port, request, idle);
  await new Promise((r) => setTimeout(r, 60));
  return { resp: normalize(resp, srv.port), log: logLines(srv.errorLog().slice(before), srv, ports) };
}

t.test('memc_pass with a misbehaving peer: as nginx + ngx_http_memc_module', { skip }, async (t) => {
  const peer = new ScriptedPeer();
  await peer.start();
  t.teardown(() => peer.stop());
  const http = conf(peer.port);
  const ngx = await startNginx(http, `load_module ${MEMC};`);
  t.teardown(() => ngx.stop());
  const ours = await startRedis2d(http);
  t.teardown(() => ours.stop());
  for (const [name, request, script] of CASES) {
    peer.script = script;
    const theirs = await exchange(ngx, request, [peer.port]);
    peer.reset();
    const mine = await exchange(ours, request, [peer.port]);
    peer.reset();
    t.equal(mine.resp, theirs.resp, `${name}: response`);
    t.same(mine.log, theirs.log, `${name}: error log`);
  }
});

const killConf = (mport: number): string => `
  upstream mc { server 127.0.0.1:${mport}; keepalive 2; }
  server {
    listen 127.0.0.1:{port};
    location /one { set $memc_key $arg_key; memc_pass 127.0.0.1:${mport}; }
    location /kept { set $memc_key $arg_key; memc_pass mc; }
  }`;

const results = new Map<string, { killed: { resp: string; log: string[] }; first: { resp: string; log: string[] }; after: { resp: string; log: string[] } }>();

t.test('a real memcached killed: as nginx', { skip: skip || (!hasMemcached && 'memcached is not installed') }, async (t) => {
  for (const kind of ['nginx', 'redis2d'] as const) {
    // stopped with the request unread in its socket, then killed: the connection is reset
    const m = await startMemcached(t);
    const srv = await (kind === 'nginx' ? startNginx(killConf(m.port), `load_module ${MEMC};`) : startRedis2d(killConf(m.port)));
    t.teardown(() => srv.stop());
    m.proc!.kill('SIGSTOP');
    const pending = exchange(srv, GET('/one?key=a'), [m.port], 1500);
    await new Promise((r) => setTimeout(r, 300));
    m.proc!.kill('SIGKILL');
    const killed = await pending;
    await m.stop();

    // a keepalive upstream: its idle connection dies with memcached, the next request finds nobody
    const m2 = await startMemcached(t);
    const srv2 = await (kind === 'nginx' ? startNginx(killConf(m2.port), `load_module ${MEMC};`) : startRedis2d(killConf(m2.port)));
    t.teardown(() => srv2.stop());
    await m2.command('set a 0 0 2\r\nhi\r\n');
    const first = await exchange(srv2, GET('/kept?key=a'), [m2.port]);
    await m2.stop();
    const after = await exchange(srv2, GET('/kept?key=a'), [m2.port]);
    results.set(kind, { killed, first, after });
  }
  const n = results.get('nginx')!;
  const r = results.get('redis2d')!;
  t.match(n.killed.resp, /^HTTP\/1\.1 502 /, 'nginx: 502 when memcached dies with the request');
  t.match(n.killed.log.join('\n'), /\[error\] (recv\(\) failed \(104: Connection reset by peer\)|upstream prematurely closed connection) while reading response header from upstream/, 'nginx logs the reset');
  t.equal(r.killed.resp, n.killed.resp, 'killed mid-request: response');
  t.same(r.killed.log, n.killed.log, 'killed mid-request: error log');
  t.equal(r.first.resp, n.first.resp, 'keepalive: the first response');
  t.equal(r.after.resp, n.after.resp, 'keepalive, memcached gone: response');
  t.same(r.after.log, n.after.log, 'keepalive, memcached gone: error log');
});


const abortConf = (fport: number): string => `
  log_format st '"$request" $status $body_bytes_sent $upstream_status';
  access_log {dir}/access.log st;
  server {
    listen 127.0.0.1:{port};
    error_log {dir}/error.log info;
    location /watch { set $memc_key a; memc_pass 127.0.0.1:${fport}; }
    location /ignore { set $memc_key a; memc_ignore_client_abort on; memc_pass 127.0.0.1:${fport}; }
  }`;

t.test('a client that half-closes: 499, or answered under memc_ignore_client_abort, as nginx', { skip }, async (t) => {
  // a memcached that answers a get after 300 ms
  const slow = net.createServer((s) => {
    s.on('error', () => {});
    s.on('data', () => setTimeout(() => s.destroyed || s.write('VALUE a 0 2\r\nhi\r\nEND\r\n'), 300));
  });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => slow.close(r)));
  const fport = (slow.address() as net.AddressInfo).port;
  const seen = new Map<string, { watch: string; ignore: string; access: string; info: string[] }>();
  for (const kind of ['nginx', 'redis2d'] as const) {
    const http = abortConf(fport);
    const srv = await (kind === 'nginx' ? startNginx(http, `load_module ${MEMC};`) : startRedis2d(http));
    t.teardown(() => srv.stop());
    const watch = normalize(await halfClose(srv.port, 'GET /watch HTTP/1.0\r\n\r\n'), srv.port);
    const ignore = normalize(await halfClose(srv.port, 'GET /ignore HTTP/1.0\r\n\r\n'), srv.port);
    await new Promise((r) => setTimeout(r, 100));
    const access = readFileSync(join(srv.dir, 'access.log'), 'latin1');
    // whether the loopback connect completed before the FIN was seen is a race in nginx too (as in
    // fixtures/oracle/halfclose-upstream.json): either action counts
    const info = logLines(srv.errorLog(), srv, [fport])
      .filter((l) => l.includes('prematurely'))
      .map((l) => l.replace(/while (connecting to|sending request to) upstream/, 'while CONNECTING|SENDING'));
    seen.set(kind, { watch, ignore, access, info });
    await srv.stop();
  }
  const n = seen.get('nginx')!;
  const r = seen.get('redis2d')!;
  t.equal(n.watch, '', 'nginx: nothing sent to a client that left');
  t.match(n.ignore, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nhi$/, 'nginx: memc_ignore_client_abort answers it');
  t.equal(r.watch, n.watch, 'watched: the response');
  t.equal(r.ignore, n.ignore, 'ignored: the response');
  t.equal(r.access, n.access, 'the access log (499, then 200)');
  t.same(r.info, n.info, 'the info line');
});
