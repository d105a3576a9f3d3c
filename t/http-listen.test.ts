import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { freePort, hasNginx, normalize, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * docs/behaviour.md §4 virtual servers over several listening sockets: two ports, IPv6
 * loopback and a unix socket; Host matched against exact, wildcard and regex
 * names, else the default_server, else the first server on the address.
 * The same requests go to Debian's nginx and to redis2d.
 */

function send(target: { port?: number; host?: string; path?: string }, req: string): Promise<string> {
  return new Promise((resolve) => {
    const c = target.path ? net.connect(target.path) : net.connect(target.port!, target.host!);
    let out = '';
    c.on('data', (d) => (out += d.toString('latin1')));
    c.on('close', () => resolve(out));
    c.on('error', () => resolve(out));
    c.write(req);
  });
}

const v6 = await new Promise<boolean>((resolve) => {
  const s = net.createServer().listen(0, '::1', () => s.close(() => resolve(true)));
  s.on('error', () => resolve(false));
});

async function configFor(p2: number, p6: number, sock: string): Promise<string> {
  return `
  server { listen 127.0.0.1:{port}; return 200 "first-on-A $host\\n"; }
  server { listen 127.0.0.1:{port}; server_name exact.test; return 200 "exact\\n"; }
  server { listen 127.0.0.1:{port}; server_name *.wild.test; return 200 "head-wildcard\\n"; }
  server { listen 127.0.0.1:{port}; server_name www.tail.*; return 200 "tail-wildcard\\n"; }
  server { listen 127.0.0.1:{port}; server_name ~^(?<sub>[a-z]+)\\.re\\.test$; return 200 "regex $sub\\n"; }
  server { listen 127.0.0.1:${p2}; return 200 "first-on-B\\n"; }
  server { listen 127.0.0.1:${p2} default_server; server_name b.test; return 200 "default-on-B $server_name\\n"; }
  ${v6 ? `server { listen [::1]:${p6}; server_name six.test; return 200 "ipv6 $server_addr $server_port\\n"; }` : ''}
  server { listen unix:${sock}; return 200 "unix [$remote_addr] [$server_addr]\\n"; }
  `;
}

const CASES: Array<[string, string, 'A' | 'B' | '6' | 'U']> = [
  ['no Host match: first server', 'other.test', 'A'],
  ['exact', 'exact.test', 'A'],
  ['exact, case and trailing dot', 'EXACT.test.', 'A'],
  ['head wildcard', 'a.b.wild.test', 'A'],
  ['tail wildcard', 'www.tail.org', 'A'],
  ['regex with a capture', 'abc.re.test', 'A'],
  ['default_server wins over first', 'nomatch', 'B'],
  ['name on the second port', 'b.test', 'B'],
  ['exact.test is not served on B', 'exact.test', 'B'],
  ['ipv6', 'six.test', '6'],
  ['unix socket', 'u', 'U'],
];

t.test('listen sockets and virtual servers as nginx', { skip: !hasNginx && 'Debian nginx is not installed' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'r2d-listen-'));
  const servers: Array<{ run: Running; p2: number; p6: number; sock: string }> = [];
  for (const kind of ['redis2d', 'nginx'] as const) {
    const p2 = await freePort();
    const p6 = await freePort();
    const sock = join(dir, kind === 'redis2d' ? 'r2d.sock' : 'ngx.sock');
    const http = await configFor(p2, p6, sock);
    const run = kind === 'redis2d' ? await startRedis2d(http) : await startNginx(http);
    t.teardown(() => run.stop());
    servers.push({ run, p2, p6, sock });
  }
  for (const [name, host, where] of CASES) {
    if (where === '6' && !v6) continue;
    const got = [];
    for (const s of servers) {
      const target =
        where === 'A' ? { port: s.run.port, host: '127.0.0.1' } :
        where === 'B' ? { port: s.p2, host: '127.0.0.1' } :
        where === '6' ? { port: s.p6, host: '::1' } : { path: s.sock };
      const resp = await send(target, `GET / HTTP/1.0\r\nHost: ${host}\r\n\r\n`);
      got.push(normalize(resp, s.run.port).replaceAll(String(s.p6), 'P6').replaceAll(String(s.p2), 'P2').replaceAll(s.sock, 'SOCK'));
    }
    t.equal(got[0], got[1], name);
    t.match(got[0], /^HTTP\/1\.1 200 OK\r\n/, `${name}: served`);
  }
});
