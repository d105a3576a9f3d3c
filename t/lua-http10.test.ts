import t from 'tap';
import { normalize, raw, startNginx, startRedis2d } from './helpers/server.js';
import { debianModules } from './helpers/site.js';

/*
 * lua_http10_buffering (on by default): an HTTP/1.0 response of
 * content_by_lua without a length is held to its end and sent with a
 * Content-Length, ngx.flush() meanwhile answering nil, "buffering"; an
 * ngx.exit with an error status after held output sends the error page
 * instead, as the header was not sent yet. Compared with Debian's nginx.
 */

const { load: LOAD, skip } = debianModules('ndk_http_module', 'ngx_http_lua_module');

const HTTP = `
  default_type text/plain;
  access_log off;
  server {
    listen 127.0.0.1:{port};
    location /say { content_by_lua_block { ngx.say("one") ngx.print("two ") local ok, err = ngx.flush() ngx.say(tostring(ok), " ", tostring(err)) } }
    location /exit404 { content_by_lua_block { ngx.say("held") ngx.exit(404) } }
    location /exit200 { content_by_lua_block { ngx.say("held") ngx.exit(200) } }
    location /eof { content_by_lua_block { ngx.say("before eof") ngx.eof() } }
    location /off { lua_http10_buffering off; content_by_lua_block { ngx.say("not held") } }
    location /length { content_by_lua_block { ngx.header.content_length = 5 ngx.say("five") } }
    location /length404 { content_by_lua_block { ngx.header.content_length = 5 ngx.exit(404) } }
    location /proxied { proxy_pass http://127.0.0.1:{port}/say; }
  }
`;

const CASES: Array<[string, string]> = [
  ['HTTP/1.0: one response with its length', 'GET /say HTTP/1.0\r\n\r\n'],
  ['HTTP/1.1: chunked as it goes', 'GET /say HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['HTTP/1.0: exit(404) after held output', 'GET /exit404 HTTP/1.0\r\n\r\n'],
  ['HTTP/1.1: exit(404) after output', 'GET /exit404 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['HTTP/1.0: exit(200)', 'GET /exit200 HTTP/1.0\r\n\r\n'],
  ['HTTP/1.0: ngx.eof', 'GET /eof HTTP/1.0\r\n\r\n'],
  ['HTTP/1.0, buffering off', 'GET /off HTTP/1.0\r\n\r\n'],
  ['HTTP/1.0 with a Content-Length set', 'GET /length HTTP/1.0\r\n\r\n'],
  ['HEAD HTTP/1.0', 'HEAD /say HTTP/1.0\r\n\r\n'],
  ['a Content-Length set, then an error page', 'GET /length404 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['through proxy_pass (HTTP/1.0 to the backend)', 'GET /proxied HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
];

t.test('lua_http10_buffering: as nginx', { skip }, async (t) => {
  const ng = await startNginx(HTTP, LOAD);
  t.teardown(() => ng.stop());
  const rd = await startRedis2d(HTTP, LOAD);
  t.teardown(() => rd.stop());
  for (const [name, req] of CASES) {
    const a = normalize(await raw(ng.port, req, 1500), ng.port);
    const b = normalize(await raw(rd.port, req, 1500), rd.port);
    t.equal(b, a, name);
  }
});
