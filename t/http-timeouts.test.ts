import net from 'node:net';
import t from 'tap';
import { hasNginx, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * Client timeouts with nginx's semantics (docs/behaviour.md §4; one timer per
 * connection in lib/http/connection.ts): client_header_timeout runs from
 * the accept, or from the first bytes of a later request, and is NOT
 * refreshed by each read (a client dripping its head is cut at 1 s);
 * client_body_timeout is the time between two reads; keepalive_timeout
 * the idle time between requests. Each case is run against Debian's
 * nginx too: the connection must close at the same time (±, the machine
 * is busy) for both.
 */

const MAIN = `load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;`;

const HTTP = `
  access_log off;
  client_header_timeout 1s;
  client_body_timeout 1s;
  keepalive_timeout 1s;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {
    listen 127.0.0.1:{port};
    location / { echo_read_request_body; echo ok; }
  }
`;

const GET = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
const POST = 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n';

interface Case {
  name: string;
  /** [ms after connect, bytes] */
  steps: Array<[number, string]>;
  /** when the server closes, seconds after connect */
  closeAt: number;
  /** responses expected before the close */
  responses: number;
}

const CASES: Case[] = [
  { name: 'idle connection: client_header_timeout from the accept', steps: [], closeAt: 1.0, responses: 0 },
  {
    name: 'a head dripped byte by byte: the header timeout is not refreshed by reads',
    steps: [[0, 'GET / HTTP/1.1\r\n'], [300, 'X'], [600, 'Y'], [900, 'Z'], [1200, 'W'], [1500, 'V']],
    closeAt: 1.0,
    responses: 0,
  },
  { name: 'keep-alive after a response', steps: [[0, GET]], closeAt: 1.0, responses: 1 },
  {
    name: 'keep-alive, then a partial head: client_header_timeout from its first bytes',
    steps: [[0, GET], [600, 'GET / HT']],
    closeAt: 1.6,
    responses: 1,
  },
  {
    name: 'a body dripped every 0.6 s: client_body_timeout between reads',
    steps: [[0, `${POST}a`], [600, 'b'], [1200, 'c'], [1800, 'd']],
    closeAt: 2.8,
    responses: 0,
  },
  { name: 'a body that stalls', steps: [[0, `${POST}abc`]], closeAt: 1.0, responses: 0 },
];

function run(port: number, c: Case): Promise<{ closedAfter: number; responses: number }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const t0 = Date.now();
    let got = '';
    const timers: NodeJS.Timeout[] = [];
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => {
      for (const tm of timers) clearTimeout(tm);
      resolve({ closedAfter: (Date.now() - t0) / 1000, responses: got.split('HTTP/1.1 200').length - 1 });
    });
    for (const [at, data] of c.steps) timers.push(setTimeout(() => !s.destroyed && s.write(data), at));
    // a server that never closes: give up well after every expected close
    timers.push(setTimeout(() => s.destroy(), 5000));
  });
}

async function measure(srv: Running): Promise<Array<{ closedAfter: number; responses: number }>> {
  return Promise.all(CASES.map((c) => run(srv.port, c)));
}

const servers: Array<[string, () => Promise<Running>]> = [['redis2d', () => startRedis2d(HTTP, MAIN)]];
if (hasNginx) servers.push(['nginx', () => startNginx(HTTP, MAIN)]);

for (const [name, start] of servers) {
  t.test(`${name}: client timeouts close the connection when nginx does`, async (t) => {
    const srv = await start();
    t.teardown(() => srv.stop());
    const got = await measure(srv);
    CASES.forEach((c, i) => {
      const g = got[i]!;
      // closes are late by scheduling on a busy machine, never early
      t.ok(g.closedAfter >= c.closeAt - 0.1 && g.closedAfter <= c.closeAt + 0.6, `${c.name}: closed after ${g.closedAfter.toFixed(2)} s, want ~${c.closeAt} s`);
      t.equal(g.responses, c.responses, `${c.name}: responses`);
    });
  });
}
