import t from 'tap';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * docs/behaviour.md §4 variables, evaluated by Debian's nginx and by redis2d for the same
 * requests. Values that differ run to run (ports, times, connection numbers,
 * pids) are checked for their shape instead.
 */

const STABLE = [
  'request_method', 'uri', 'document_uri', 'args', 'query_string', 'is_args', 'arg_a', 'arg_B', 'arg_none',
  'request_uri', 'request', 'server_protocol', 'host', 'http_host', 'http_x_foo', 'http_user_agent',
  'cookie_c', 'cookie_d', 'content_length', 'content_type', 'remote_addr', 'server_addr', 'server_name',
  'scheme', 'https', 'nginx_version', 'document_root', 'connection_requests', 'request_length',
];
const SHAPED: Array<[string, RegExp]> = [
  ['remote_port', /^\d+$/],
  ['server_port', /^\d+$/],
  ['connection', /^\d+$/],
  ['pid', /^\d+$/],
  ['msec', /^\d+\.\d{3}$/],
  ['time_local', /^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}$/],
  ['time_iso8601', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/],
  ['request_time', /^\d+\.\d{3}$/],
  ['hostname', /^.+$/],
];

const line = (names: string[]): string => names.map((n) => `${n}=[$${n}]`).join('\\n');

const HTTP = `
  server {
    listen 127.0.0.1:{port};
    server_name vars.test;
    root {dir}/html;
    location / { return 200 "${line(STABLE)}\\n"; }
    location /shaped { return 200 "${line(SHAPED.map(([n]) => n))}\\n"; }
    location ~ ^/cap/(?<word>[a-z]+)/(\\d+)$ { return 200 "word=[$word] 1=[$1] 2=[$2]\\n"; }
  }
`;

const REQUESTS: Array<[string, string]> = [
  ['plain', 'GET /a/b?a=1&B=2&a=3 HTTP/1.1\r\nHost: vars.test\r\nX-Foo: bar\r\nCookie: c=1; d=two\r\nUser-Agent: t/1\r\nConnection: close\r\n\r\n'],
  ['no args, 1.0', 'GET /x HTTP/1.0\r\n\r\n'],
  ['encoded', 'GET /p%20q/%41?arg_none=&a=%20 HTTP/1.1\r\nHost: VARS.test:81\r\nConnection: close\r\n\r\n'],
  ['body headers', 'POST /post?x HTTP/1.1\r\nHost: h\r\nContent-Type: text/x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc'],
  ['captures', 'GET /cap/hello/42 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
];

function body(resp: string): string {
  return resp.slice(resp.indexOf('\r\n\r\n') + 4);
}

t.test('variables match nginx', { skip: !hasNginx && 'Debian nginx is not installed' }, async (t) => {
  const ours = await startRedis2d(HTTP);
  t.teardown(() => ours.stop());
  const theirs: Running = await startNginx(HTTP);
  t.teardown(() => theirs.stop());
  for (const [name, req] of REQUESTS) {
    const a = body(normalize(await raw(ours.port, req), ours.port)).replaceAll(ours.dir, 'DIR');
    const b = body(normalize(await raw(theirs.port, req), theirs.port)).replaceAll(theirs.dir, 'DIR');
    t.equal(a, b, name);
  }
});

t.test('variables whose values vary have nginx shape', async (t) => {
  const ours = await startRedis2d(HTTP);
  t.teardown(() => ours.stop());
  const out = body(await raw(ours.port, 'GET /shaped HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'));
  const values = new Map(out.trim().split('\n').map((l) => {
    const m = /^([a-z_0-9]+)=\[(.*)\]$/.exec(l)!;
    return [m[1]!, m[2]!] as const;
  }));
  for (const [name, shape] of SHAPED) t.match(values.get(name), shape, name);
  t.equal(values.get('server_port'), String(ours.port), 'server_port is the listening port');
});
