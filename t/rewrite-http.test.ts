import t from 'tap';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * rewrite / if / set / return / map / allow-deny end to end: the same config
 * under Debian's nginx and redis2d, the same raw requests, the same bytes.
 */

const HTTP = `
  map $arg_h $kind {
    hostnames;
    default other;
    example.com exact;
    .example.org org;
    *.example.net net-sub;
    www.example.* tail;
  }
  map $uri $mapped {
    default "def:$uri";
    /Key upper;
    ~^/m/(?<word>[a-z]+)/(\\d+)$ "re $word $2";
    ~*^/MC/ caseless;
  }
  server {
    listen 127.0.0.1:{port};
    set $srv s1;
    if ($arg_srv = stop) { return 418 "server if\\n"; }
    rewrite ^/srvmove/(.*)$ /moved/$1 last;
    location /moved { return 200 "moved $uri $args $srv\\n"; }
    location / {
      set $a "A-$srv";
      if ($uri ~ ^/num/(?<n>\\d+)$) { set $b "n=$n c=$1"; return 200 "$b\\n"; }
      if ($uri = /eq) { return 200 "eq\\n"; }
      if ($arg_x) { set $hasx "x=$arg_x"; }
      if ($arg_x ~* ^ZERO$) { return 200 "caseless if\\n"; }
      if ($arg_x !~ ^[a-z0-9]*$) { return 400 "bad x\\n"; }
      rewrite ^/last/(.*)$ /t/$1 last;
      rewrite ^/brk/(.*)$ /t/$1 break;
      rewrite ^/redir/(.*)$ /r/$1 redirect;
      rewrite ^/perm/(.*)$ /r/$1?p=1 permanent;
      rewrite ^/abs/(.*)$ http://example.com/$1;
      rewrite ^/noargs/(.*)$ /t/$1? last;
      rewrite ^/newargs/(.*)$ /t?v=$1 last;
      rewrite ^/cont/(.*)$ /c/$1;
      return 200 "fall $a [$hasx] $uri $args\\n";
    }
    location /t { return 200 "t: $uri $args\\n"; }
    location /map { return 200 "kind=$kind mapped=$mapped\\n"; }
    location /m { return 200 "mapped=$mapped\\n"; }
    location /M { return 200 "mapped=$mapped\\n"; }
    location /Key { return 200 "mapped=$mapped\\n"; }
    location ~ ^/item/(?<id>\\d+)$ { return 200 "item $id $1\\n"; }
    location /r404 { return 404; }
    location /r404t { return 404 "custom $uri\\n"; }
    location /r302 { return 302 /there; }
    location /r307 { return 307 "http://e.example/x"; }
    location /rurl { return https://example.com/x; }
    location /r200 { return 200; }
    location /r204 { return 204; }
    location /unset { return 200 "[$never]\\n"; }
    location /never { set $never x; }
    location /denied { deny 127.0.0.1; }
    location /allowed { allow 127.0.0.0/8; deny all; }
    location /v6 { allow ::1; deny all; }
    # return runs in the rewrite phase, before access
    location /retfirst { deny all; return 200 "return wins\\n"; }
    location /loop { rewrite ^ /loop last; }
    location /zero { rewrite ^ ?; }
    location /fstat {
      if (-d /tmp) { return 200 "dir\\n"; }
      return 200 "nodir\\n";
    }
    location /setargs { set $args "a=1&b=2"; return 200 "args=$args arg_b=$arg_b is=$is_args\\n"; }
    location /rlog { rewrite_log on; rewrite ^/rlog/(.*) /t/$1?n=1; rewrite ^/nomatch /x; }
    location /ifrx {
      if ($arg_p ~ "^(\\w+)-(\\w+)$") { rewrite ^ /t/$2/$1? last; }
      return 200 "no p\\n";
    }
    location /ifcontent {
      if ($arg_y) { set $z 1; }
      return 200 "after if $z\\n";
    }
  }
`;

const get = (path: string): string => `GET ${path} HTTP/1.0\r\n\r\n`;
const get11 = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: h.example\r\nConnection: close\r\n\r\n`;

const CASES: Array<[string, string]> = [
  ['server if', get('/x?srv=stop')],
  ['server rewrite', get('/srvmove/a?q=1')],
  ['named + numbered captures in if', get('/num/42')],
  ['if =', get('/eq')],
  ['if $var and set', get('/other?x=abc')],
  ['if ~*', get('/other?x=zero')],
  ['if !~ with return text', get('/other?x=A%20B')],
  ['rewrite last', get('/last/a?q=1')],
  ['rewrite break', get('/brk/b?q=1')],
  ['rewrite redirect', get11('/redir/c?q=1')],
  ['rewrite permanent with args', get11('/perm/d?q=1')],
  ['rewrite absolute', get11('/abs/e')],
  ['rewrite drops args', get('/noargs/f?q=1')],
  ['rewrite new args', get('/newargs/g?q=1')],
  ['rewrite without flag continues', get('/cont/h?q=1')],
  ['escaped capture into a redirect', get11('/redir/a%20b%26c+d')],
  ['map hostnames exact', get('/map?h=example.com')],
  ['map hostnames dot', get('/map?h=a.example.org')],
  ['map hostnames star', get('/map?h=x.example.net')],
  ['map hostnames tail', get('/map?h=www.example.co')],
  ['map default with variable', get('/map?h=zzz')],
  ['map regex captures', get('/m/abc/42')],
  ['map caseless regex', get('/MC/x')],
  ['map exact key case-insensitive', get('/Key')],
  ['location named capture', get('/item/77')],
  ['return 404', get('/r404')],
  ['return 404 text', get('/r404t')],
  ['return 302', get11('/r302')],
  ['return 307 url', get11('/r307')],
  ['return url', get11('/rurl')],
  ['return 200 empty', get('/r200')],
  ['return 204', get('/r204')],
  ['uninitialized', get('/unset')],
  ['deny', get('/denied')],
  ['allow cidr', get('/allowed')],
  ['v6 rules deny an IPv4 client', get('/v6')],
  ['return before deny', get('/retfirst')],
  ['rewrite cycle', get('/loop')],
  ['zero-length rewrite', get('/zero')],
  ['file test', get('/fstat')],
  ['if keeps the content', get('/ifcontent?y=1')],
  ['set $args', get('/setargs?z=9')],
  ['rewrite_log', get('/rlog/a?q=1')],
  ['if captures used by rewrite', get('/ifrx?p=ab-cd')],
];

t.test('rewrite, map and access answer like nginx', { skip: hasNginx ? false : 'no /usr/sbin/nginx' }, async (t) => {
  let ours: Running | undefined;
  let theirs: Running | undefined;
  try {
    ours = await startRedis2d(HTTP);
    theirs = await startNginx(HTTP);
    for (const [name, req] of CASES) {
      const [a, b] = await Promise.all([raw(ours.port, req), raw(theirs.port, req)]);
      t.equal(normalize(a, ours.port), normalize(b, theirs.port), name);
    }
    const log = ours.errorLog();
    // rewrite_log lines, as nginx writes them
    const notices = (l: string): string[] =>
      l.split('\n').filter((x) => x.includes('[notice]') && x.includes('rlog')).map((x) => x.replace(/^.*?\[notice\] \d+#\d+: \*\d+ /, ''));
    t.same(notices(log), notices(theirs.errorLog()), 'rewrite_log lines');
    t.equal(notices(log).length, 3);
    t.match(log, /\[warn\] \d+#\d+: \*\d+ using uninitialized "never" variable, client: 127\.0\.0\.1, server: , request: "GET \/unset HTTP\/1\.0"/);
    t.match(log, /\[error\] \d+#\d+: \*\d+ access forbidden by rule, client: 127\.0\.0\.1, server: , request: "GET \/denied HTTP\/1\.0"/);
    t.match(log, /\[error\] \d+#\d+: \*\d+ the rewritten URI has a zero length, client: 127\.0\.0\.1/);
  } finally {
    await ours?.stop();
    await theirs?.stop();
  }
});
