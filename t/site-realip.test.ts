import t from 'tap';
import { normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';
import { LOAD_ECHO, logLines, skipEcho } from './helpers/site.js';

/*
 * realip against Debian's nginx: X-Real-IP, X-Forwarded-For (one line or
 * several, recursive or not, trusted chains, ports, IPv6), a custom
 * header, an untrusted peer, set_real_ip_from at the location level (the
 * pre-access pass), $realip_remote_addr/_port, allow/deny and the error
 * log's `client:` seeing the new address, and the address coming back
 * for the next request on a keep-alive connection.
 */

const SHOW = 'echo "ra=$remote_addr rp=$remote_port real=$realip_remote_addr"';
const HTTP = `
  access_log off;
  default_type text/plain;
  limit_req_zone $binary_remote_addr zone=ip:32k rate=1r/m;
  server {
    listen 127.0.0.1:{port};
    set_real_ip_from 127.0.0.0/8;
    set_real_ip_from 10.0.0.0/8;
    set_real_ip_from 2001:db8::/32;
    location / { ${SHOW}; }
    location /deny { deny 203.0.113.9; allow all; ${SHOW}; }
    location /missing { ${SHOW}; echo_location /nothere; }
    location /lim { limit_req zone=ip; ${SHOW}; }
  }
  server {
    listen 127.0.0.1:{port2};
    set_real_ip_from 127.0.0.1;
    set_real_ip_from 10.0.0.0/8;
    real_ip_header X-Forwarded-For;
    location / { ${SHOW}; }
    location /rec { real_ip_recursive on; ${SHOW}; }
    location /hdr { real_ip_header X-Client; ${SHOW}; }
  }
  server {
    listen 127.0.0.1:{port3};
    location / { ${SHOW}; }
    location /loc { set_real_ip_from 127.0.0.1; real_ip_header X-Forwarded-For; ${SHOW}; }
    location /untrusted { set_real_ip_from 192.0.2.0/24; ${SHOW}; }
  }
`;

const get = (path: string, headers: string[] = [], v = '1.0'): string => `GET ${path} HTTP/${v}\r\nHost: h\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;

interface Case {
  server: 0 | 1 | 2;
  req: string | string[];
}

const cases: Case[] = [
  { server: 0, req: get('/') },
  { server: 0, req: get('/', ['X-Real-IP: 203.0.113.7']) },
  { server: 0, req: get('/', ['X-Real-IP: 203.0.113.7:8080']) },
  { server: 0, req: get('/', ['X-Real-IP: 2001:DB8:0:0::1']) },
  { server: 0, req: get('/', ['X-Real-IP: [2001:db8::5]:443']) },
  { server: 0, req: get('/', ['X-Real-IP: ::ffff:1.2.3.4']) },
  { server: 0, req: get('/', ['X-Real-IP: not-an-ip']) },
  { server: 0, req: get('/', ['X-Real-IP: 1.2.3.4', 'X-Real-IP: 5.6.7.8']) },
  { server: 0, req: get('/', ['X-Forwarded-For: 1.1.1.1']) },
  { server: 0, req: get('/deny', ['X-Real-IP: 203.0.113.9']) },
  { server: 0, req: get('/deny', ['X-Real-IP: 203.0.113.10']) },
  { server: 0, req: get('/missing', ['X-Real-IP: 198.51.100.1']) },
  // keep-alive: the second request is the connection's own address again
  { server: 0, req: [get('/', ['X-Real-IP: 198.51.100.2', 'Connection: keep-alive'], '1.1') + get('/', ['Connection: close'], '1.1')] },
  // limit_req keyed by $binary_remote_addr sees the real address (one bucket per address, v4 and v6)
  { server: 0, req: get('/lim', ['X-Real-IP: 2001:db8::1']) },
  { server: 0, req: get('/lim', ['X-Real-IP: 2001:db8::2']) },
  { server: 0, req: get('/lim', ['X-Real-IP: 2001:db8:0::1']) },
  { server: 0, req: get('/lim', ['X-Real-IP: 192.0.2.1']) },
  { server: 0, req: get('/lim', ['X-Real-IP: 192.0.2.2']) },
  { server: 0, req: get('/lim', ['X-Real-IP: 192.0.2.1']) },
  { server: 1, req: get('/', ['X-Forwarded-For: 1.1.1.1, 10.0.0.1']) },
  { server: 1, req: get('/rec', ['X-Forwarded-For: 1.1.1.1, 10.0.0.1']) },
  { server: 1, req: get('/rec', ['X-Forwarded-For: 1.1.1.1, 10.0.0.1, 10.2.2.2']) },
  { server: 1, req: get('/rec', ['X-Forwarded-For: 10.9.9.9, 10.0.0.1']) },
  { server: 1, req: get('/rec', ['X-Forwarded-For: 1.1.1.1', 'X-Forwarded-For: 10.0.0.3, 10.0.0.4']) },
  { server: 1, req: get('/', ['X-Forwarded-For: 1.1.1.1', 'X-Forwarded-For: 10.0.0.3, 10.0.0.4']) },
  { server: 1, req: get('/rec', ['X-Forwarded-For: junk, 10.0.0.1']) },
  { server: 1, req: get('/', ['X-Forwarded-For: 1.1.1.1,,  ']) },
  { server: 1, req: get('/', ['X-Forwarded-For: ']) },
  { server: 1, req: get('/', ['X-Real-IP: 9.9.9.9']) },
  { server: 1, req: get('/hdr', ['X-Client: 4.4.4.4', 'X-Forwarded-For: 5.5.5.5']) },
  { server: 1, req: get('/hdr', ['x-client: 4.4.4.5:99']) },
  { server: 2, req: get('/', ['X-Real-IP: 1.2.3.4']) },
  { server: 2, req: get('/loc', ['X-Forwarded-For: 7.7.7.7']) },
  { server: 2, req: get('/untrusted', ['X-Real-IP: 8.8.8.8']) },
];

async function run(start: (h: string) => Promise<Running>): Promise<{ out: string[]; log: string[] }> {
  const { freePort } = await import('./helpers/server.js');
  const p2 = await freePort();
  const p3 = await freePort();
  const s = await start(HTTP.replace('{port2}', String(p2)).replace('{port3}', String(p3)));
  const ports = [s.port, p2, p3];
  const out: string[] = [];
  try {
    for (const c of cases) {
      const port = ports[c.server]!;
      const text = normalize(await raw(port, c.req), port).replace(/rp=\d{4,5} /g, 'rp=EPHEMERAL ');
      out.push(text);
    }
    await new Promise((r) => setTimeout(r, 100));
    return { out, log: logLines(s, ['error', 'warn']).map((l) => l.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')) };
  } finally {
    await s.stop();
  }
}

t.test('realip: headers, trust, recursion, variables, as nginx', { skip: skipEcho }, async (t) => {
  const ng = await run((h) => startNginx(h, LOAD_ECHO));
  const rd = await run((h) => startRedis2d(h));
  for (let i = 0; i < cases.length; i++) t.equal(rd.out[i], ng.out[i], `server ${cases[i]!.server}: ${JSON.stringify(cases[i]!.req)}`);
  t.same(rd.log, ng.log, 'error log lines (client: is the real address)');
  t.ok(ng.out.some((o) => o.includes('ra=1.1.1.1 ')), 'an address was taken from a header');
  t.ok(ng.out.some((o) => o.includes('403 Forbidden')), 'deny saw the real address');
  t.ok(ng.log.some((l) => l.includes('access forbidden by rule, client: 203.0.113.9,')), 'the log names the real address');
  t.ok(ng.out.some((o) => o.includes('ra=2001:db8::5 rp=443 real=127.0.0.1')), 'IPv6 with a port');
  t.equal(ng.out.filter((o) => o.startsWith('HTTP/1.1 503')).length, 2, 'limit_req: the second request of each real address');
});
