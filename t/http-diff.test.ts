import t from 'tap';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * The same config under Debian's nginx and redis2d; the same raw requests;
 * the bytes must match (Date and the server's name/version normalised).
 */

const HTTP = `
  server {
    listen 127.0.0.1:{port};
    location / { return 200 "root $uri|$args|$request_uri|$host|$server_name|$request_method|$is_args|$arg_x\\n"; }
    location = /exact { return 200 "exact\\n"; }
    location /exact { return 200 "prefix-of-exact $uri\\n"; }
    location ^~ /pre { return 200 "noregex $uri\\n"; }
    location ~ \\.php$ { return 200 "php $uri\\n"; }
    location ~* \\.JPG$ { return 200 "jpg $uri\\n"; }
    location /nest {
      location /nest/deep { return 200 "deep $uri\\n"; }
      location ~ \\.txt$ { return 200 "nested-regex $uri\\n"; }
      return 200 "nest $uri\\n";
    }
    location /int { internal; return 200 "internal\\n"; }
    location /err { error_page 404 /e404; return 404; }
    location = /e404 { internal; return 200 "custom 404 page\\n"; }
    location /named { error_page 403 = @fallback; return 403; }
    location @fallback { return 200 "named $uri\\n"; }
    location /loop { rewrite ^ /loop last; }
    location /small { client_max_body_size 10; return 200 "small\\n"; }
    location /redir { return 302 /elsewhere; }
    location /abs { return 301 http://example.com/x; }
    location /status { return 503; }
    location /bare301 { return 301; }
    location /empty302 { return 302 ""; }
    location /static { }
  }
`;

const CASES: Array<[string, string | string[]]> = [
  ['prefix', 'GET /a/b?x=1 HTTP/1.0\r\n\r\n'],
  ['normalise', 'GET /a/./b/../c//d%41?q HTTP/1.0\r\n\r\n'],
  ['escape root', 'GET /../x HTTP/1.0\r\n\r\n'],
  ['bad percent', 'GET /%zz HTTP/1.0\r\n\r\n'],
  ['exact', 'GET /exact HTTP/1.0\r\n\r\n'],
  ['prefix of exact', 'GET /exact/more HTTP/1.0\r\n\r\n'],
  ['noregex', 'GET /pre/a.php HTTP/1.0\r\n\r\n'],
  ['regex', 'GET /x/a.php HTTP/1.0\r\n\r\n'],
  ['caseless regex', 'GET /p.jpg HTTP/1.0\r\n\r\n'],
  ['nested prefix', 'GET /nest/deep/1 HTTP/1.0\r\n\r\n'],
  ['nested regex', 'GET /nest/a.txt HTTP/1.0\r\n\r\n'],
  ['nested self', 'GET /nest/x HTTP/1.0\r\n\r\n'],
  ['outer regex beats nested prefix', 'GET /nest/deep/a.php HTTP/1.0\r\n\r\n'],
  ['internal', 'GET /int HTTP/1.0\r\n\r\n'],
  ['error_page uri', 'GET /err HTTP/1.0\r\n\r\n'],
  ['error_page named', 'GET /named HTTP/1.0\r\n\r\n'],
  ['rewrite cycle', 'GET /loop HTTP/1.0\r\n\r\n'],
  ['redirect relative', 'GET /redir HTTP/1.1\r\nHost: h.example\r\nConnection: close\r\n\r\n'],
  ['redirect absolute', 'GET /abs HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['return 301 without a URL: an empty Location', 'GET /bare301 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['return 302 "": an empty Location', 'GET /empty302 HTTP/1.0\r\n\r\n'],
  ['503', 'GET /status HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['HEAD', 'HEAD /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['absolute uri without path', 'GET http://h HTTP/1.0\r\n\r\n'],
  ['absolute uri, args only', 'GET http://h?a=1 HTTP/1.0\r\n\r\n'],
  ['keepalive_requests and HEAD chunk-less', 'HEAD /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['static 404', 'GET /static/none HTTP/1.0\r\n\r\n'],
  ['keepalive 1.1 pipelined', 'GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /exact HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['keepalive 1.0', 'GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n'],
  ['split request', ['GET /sp', 'lit HTTP/1.1\r\nHo', 'st: h\r\nConnection: close\r\n\r\n']],
  ['no host 1.1', 'GET / HTTP/1.1\r\n\r\n'],
  ['bad method', 'get / HTTP/1.1\r\nHost: h\r\n\r\n'],
  ['bad version', 'GET / HTTP/2.0\r\nHost: h\r\n\r\n'],
  ['junk version', 'GET / HTTX/1.1\r\nHost: h\r\n\r\n'],
  ['bad header', 'GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n'],
  ['ignored header', 'GET / HTTP/1.1\r\nHost: h\r\nX_Under: 1\r\nConnection: close\r\n\r\n'],
  ['duplicate host', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
  ['invalid host', 'GET / HTTP/1.1\r\nHost: a/b\r\n\r\n'],
  ['bad content-length', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n'],
  ['TE on 1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n'],
  ['unknown TE', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n'],
  ['TRACE', 'TRACE / HTTP/1.1\r\nHost: h\r\n\r\n'],
  ['413', 'POST /small HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n01234567890'],
  ['body then next', 'POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /exact HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['chunked body then next', 'POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /exact HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['absolute uri', 'GET http://Other.Host:99/p?q=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'],
  ['leading CRLF', '\r\n\r\nGET /lead HTTP/1.0\r\n\r\n'],
  ['unknown method', 'FOO /m HTTP/1.0\r\n\r\n'],
];

t.test('redis2d answers like nginx, byte for byte', { skip: hasNginx ? false : 'no /usr/sbin/nginx' }, async (t) => {
  let ours: Running | undefined;
  let theirs: Running | undefined;
  try {
    ours = await startRedis2d(HTTP);
    theirs = await startNginx(HTTP);
    for (const [name, req] of CASES) {
      const [a, b] = await Promise.all([raw(ours.port, req), raw(theirs.port, req)]);
      t.equal(normalize(a, ours.port), normalize(b, theirs.port), name);
    }
    t.match(ours.errorLog(), /\[error\] \d+#\d+: \*\d+ rewrite or internal redirection cycle while processing "\/loop", client: 127\.0\.0\.1, server: , request: "GET \/loop HTTP\/1\.0"/);
    t.match(ours.errorLog(), /client intended to send too large body: 11 bytes, client: 127\.0\.0\.1, server: , request: "POST \/small HTTP\/1\.1", host: "h"/);
  } finally {
    await ours?.stop();
    await theirs?.stop();
  }
});
