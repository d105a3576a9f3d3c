import t from 'tap';
import { DECLINED } from '../lib/http/request.js';
import { coreLoc } from '../lib/http/core/module.js';
import { rewriteModule } from '../lib/modules/rewrite/module.js';
import { OP_COMPLEX, OP_IF, OP_REWRITE, OP_SET_VAR, OP_VALUE, type RewriteLocConf } from '../lib/modules/rewrite/ops.js';
import { escapeArgs, unescapeRedirect } from '../lib/modules/rewrite/uri.js';
import { load, loadError, location, request } from './helpers/rewrite.js';

const CONF = `events {}
http {
    server {
        listen 127.0.0.1:18092;
        set $s srv;
        if ($arg_srv) { return 418; }
        rewrite ^/srvmove/(.*)$ /moved/$1 last;
        location / {
            set $a "A$s";
            if ($uri ~ ^/num/(?<n>\\d+)$) { set $b "n=$n c=$1"; return 200 "$b"; }
            if ($uri = /eq) { return 200 eq; }
            if ($uri != /eq) { set $ne yes; }
            rewrite ^/last/(.*)$ /target/$1 last;
            rewrite ^/brk/(.*)$ /target/$1 break;
            rewrite ^/redir/(.*)$ /t/$1 redirect;
            rewrite ^/perm/(.*)$ /t/$1?x=1 permanent;
            rewrite ^/abs/(.*)$ http://example.com/$1;
            rewrite ^/noargs/(.*)$ /t/$1? last;
            rewrite ^/newargs/(.*)$ /t?v=$1 last;
            rewrite ^/cont/(.*)$ /c/$1;
            if ($uri = /c/stop) { break; }
            return 200 "fall $a $ne $uri";
        }
        location /r404 { return 404; }
        location /r404t { return 404 "custom $uri"; }
        location /r302 { return 302 /there; }
        location /rurl { return https://example.com/x; }
        location /r200 { return 200; }
        location /rempty { return 404 ""; }
        location /unused { set $never x; }
        location /uninit { return 200 "[$never]"; }
        location /quiet { uninitialized_variable_warn off; return 200 "[$never]"; }
        location /f {
            if (-f /etc/passwd) { return 200 file; }
            if (!-d /etc/passwd) { return 200 notdir; }
        }
        location /d { if (-d /nonexistent-dir) { return 200 yes; } return 200 no; }
        location /log { rewrite_log on; rewrite ^/log/(.*) /x/$1; }
        location /zero { rewrite ^ ?; }
        location /ifloc { if ($uri) { rewrite_log on; } }
    }
}
`;

const { servers } = load(CONF);
const srv = servers[0]!;
/** the engine's order: server rewrite at the server level, then the location's */
const run = (loc: string, uri: string, args = '') => {
  const r = request(srv, undefined, uri, args);
  const src = rewriteModule.phases!.serverRewrite!(r);
  if (src !== DECLINED) throw new Error(`server rewrite returned ${src}`);
  const l = location(srv, loc);
  r.locConf = l.locConf;
  r.loc = l;
  const rc = rewriteModule.phases!.rewrite!(r);
  return { r, rc };
};

t.test('compile: set, if and rewrite become one flat op list per level', async (t) => {
  const codes = (location(srv, '/').locConf[rewriteModule.index] as RewriteLocConf).codes!;
  t.equal(codes[0]!.kind, OP_COMPLEX, 'a value with variables');
  t.equal(codes[1]!.kind, OP_SET_VAR);
  const ifs = codes.filter((c) => c.kind === OP_IF);
  t.equal(ifs.length, 4, 'four ifs in location /');
  for (const op of ifs) {
    if (op.kind !== OP_IF) continue;
    t.ok(op.next > codes.indexOf(op), 'if jumps forward');
    t.ok(op.locConf, 'location ifs switch to their own loc conf');
  }
  t.equal(codes.filter((c) => c.kind === OP_REWRITE).length, 8);
  // the if level's own list is left empty: its statements live in the parent's list
  const ifLevels = coreLoc(location(srv, '/').locConf).locations.filter((l) => l.noname);
  t.equal(ifLevels.length, 4);
  t.equal((ifLevels[0]!.locConf[rewriteModule.index] as RewriteLocConf).codes, undefined);
  // server level: its own list, server ifs do not switch confs
  const scodes = (srv.ctx.loc[rewriteModule.index] as RewriteLocConf).codes!;
  const sif = scodes.find((c) => c.kind === OP_IF);
  t.ok(sif && sif.kind === OP_IF && sif.locConf === undefined);
  t.equal(scodes[0]!.kind, OP_VALUE);
});

t.test('if with regex: named and numbered captures, switch to the if level', async (t) => {
  const { r, rc } = run('/', '/num/42');
  t.equal(rc, 200);
  t.equal(r.returnText, 'n=42 c=42');
  t.not(r.locConf, location(srv, '/').locConf, 'request now uses the if level conf');
  t.ok(coreLoc(r.locConf).noname);
});

t.test('= and != compare bytes', async (t) => {
  let x = run('/', '/eq');
  t.equal(x.rc, 200);
  t.equal(x.r.returnText, 'eq');
  x = run('/', '/other');
  t.equal(x.rc, 200);
  t.equal(x.r.returnText, 'fall Asrv yes /other');
  x = run('/', '/EQ');
  t.equal(x.r.returnText, 'fall Asrv yes /EQ', 'case matters');
});

t.test('rewrite flags', async (t) => {
  let x = run('/', '/last/a', 'q=1');
  t.equal(x.rc, DECLINED);
  t.equal(x.r.uri, '/target/a');
  t.equal(x.r.args, 'q=1');
  t.equal(x.r.uriChanged, true);
  t.equal(x.r.internal, true);

  x = run('/', '/brk/b');
  t.equal(x.rc, DECLINED);
  t.equal(x.r.uri, '/target/b');
  t.equal(x.r.uriChanged, false, 'break does not search locations again');

  x = run('/', '/redir/c', 'q=1');
  t.equal(x.rc, 302);
  t.equal(x.r.location, '/t/c?q=1');

  x = run('/', '/perm/d', 'q=1');
  t.equal(x.rc, 301);
  t.equal(x.r.location, '/t/d?x=1&q=1', 'a replacement with ? gets &args');

  x = run('/', '/abs/e');
  t.equal(x.rc, 302);
  t.equal(x.r.location, 'http://example.com/e');

  x = run('/', '/noargs/f', 'q=1');
  t.equal(x.r.uri, '/t/f');
  t.equal(x.r.args, '', 'trailing ? drops the arguments');

  x = run('/', '/newargs/g', 'q=1');
  t.equal(x.r.uri, '/t');
  t.equal(x.r.args, 'v=g&q=1');

  x = run('/', '/cont/stop');
  t.equal(x.rc, DECLINED, 'a rewrite without flag goes on; break stops');
  t.equal(x.r.uri, '/c/stop');
  t.equal(x.r.uriChanged, false, 'break after a rewrite cancels the new search');

  x = run('/', '/cont/more');
  t.equal(x.rc, 200);
  t.equal(x.r.returnText, 'fall Asrv yes /c/more', 'later statements see the new $uri');
  t.equal(x.r.uriChanged, true);
});

t.test('return forms', async (t) => {
  let x = run('/r404', '/r404');
  t.equal(x.rc, 404);
  t.equal(x.r.returnText, undefined, 'error page, no text');
  x = run('/r404t', '/r404t');
  t.equal(x.rc, 404);
  t.equal(x.r.returnText, 'custom /r404t');
  x = run('/r302', '/r302');
  t.equal(x.rc, 302);
  t.equal(x.r.location, '/there');
  t.equal(x.r.returnText, undefined);
  x = run('/rurl', '/rurl');
  t.equal(x.rc, 302);
  t.equal(x.r.location, 'https://example.com/x');
  x = run('/r200', '/r200');
  t.equal(x.rc, 200);
  t.equal(x.r.returnText, '', 'return 200 sends an empty body');
  x = run('/rempty', '/rempty');
  t.equal(x.rc, 404);
  t.equal(x.r.returnText, undefined, 'an empty text is no text (error page)');
});

t.test('uninitialized variables', async (t) => {
  let x = run('/uninit', '/uninit');
  t.equal(x.r.returnText, '[]');
  t.same(x.r.logs, ['[warn] using uninitialized "never" variable']);
  x = run('/quiet', '/quiet');
  t.equal(x.r.returnText, '[]');
  t.same(x.r.logs, []);
});

t.test('file tests', async (t) => {
  let x = run('/f', '/f');
  t.equal(x.r.returnText, 'file');
  x = run('/d', '/d');
  t.equal(x.r.returnText, 'no');
});

t.test('rewrite_log and zero-length URIs', async (t) => {
  let x = run('/log', '/log/a', 'k=v');
  t.same(x.r.logs, ['[notice] "^/log/(.*)" matches "/log/a"', '[notice] rewritten data: "/x/a", args: "k=v"']);
  x = run('/log', '/nolog');
  t.same(x.r.logs, ['[notice] "^/log/(.*)" does not match "/nolog"']);
  x = run('/zero', '/zero');
  t.equal(x.rc, 500);
  t.same(x.r.logs, ['[error] the rewritten URI has a zero length']);
});

t.test('server rewrite phase runs the server list; location phase skips the server level', async (t) => {
  let r = request(srv, undefined, '/srvmove/z');
  t.equal(rewriteModule.phases!.serverRewrite!(r), DECLINED);
  t.equal(r.uri, '/moved/z');
  r = request(srv, undefined, '/x', 'srv=1');
  t.equal(rewriteModule.phases!.serverRewrite!(r), 418);
  t.equal(r.locConf, srv.ctx.loc, 'server ifs do not switch confs');
  r = request(srv, undefined, '/srvmove/z');
  t.equal(rewriteModule.phases!.rewrite!(r), DECLINED);
  t.equal(r.uri, '/srvmove/z', 'not run twice');
});

t.test('captures in redirects are re-escaped when the request URI was escaped', async (t) => {
  const r = request(srv, location(srv, '/'), '/redir/a b&c');
  (r as { requestUri: string }).requestUri = '/redir/a%20b%26c';
  t.equal(rewriteModule.phases!.rewrite!(r), 302);
  // escaped as args, then NGX_UNESCAPE_REDIRECT decodes the printable %26 again
  t.equal(r.location, '/t/a%20b&c');
});

t.test('uri helpers', async (t) => {
  t.equal(escapeArgs('a b&c=d%e+f#;'), 'a%20b%26c=d%25e%2Bf%23%3B', 'nginx keeps = in args');
  t.equal(escapeArgs('plain-._~'), 'plain-._~');
  t.equal(unescapeRedirect('/a%41%20%2F?%41'), '/aA%20/?%41', 'decodes printable ones until ?');
  t.equal(unescapeRedirect('/x%3Fy%41'), '/x?y%41', 'a decoded ? stops decoding');
  t.equal(unescapeRedirect('/%zz'), '/zz', 'nginx drops the % of an invalid escape');
  t.equal(unescapeRedirect('/%4z'), '/', 'and all of an invalid second digit');
});

t.test('config errors', async (t) => {
  const L = (body: string) => `events {}\nhttp {\n server {\n  location / {\n${body}\n  }\n }\n}\n`;
  t.equal(loadError(L('set x 1;')), 'invalid variable name "x"');
  t.equal(loadError(L('set $uri 1;')), 'the duplicate "uri" variable');
  t.equal(loadError(L('set $ 1;')), 'invalid variable name "$"');
  t.equal(loadError(L('if ($a == b) { }')), 'unexpected "==" in condition');
  t.equal(loadError(L('if ($uri = a b) { }')), 'invalid condition "$uri"');
  t.equal(loadError(L('if (-q /x) { }')), 'invalid condition "-q"');
  t.equal(loadError(L('if (!-q /x) { }')), 'invalid condition "!-q"');
  t.equal(loadError(L('if (abc) { }')), 'invalid condition "abc"');
  t.equal(loadError(L('if ( $uri { }')), 'invalid condition "$uri"');
  t.equal(loadError(L('if ($uri ~ "(") { }')), 'pcre2_compile() failed: missing closing parenthesis in "("');
  t.equal(loadError(L('return 99x;')), 'invalid return code "99x"');
  t.equal(loadError(L('return 1000;')), 'invalid return code "1000"');
  t.equal(loadError(L('return https://a b;')), 'invalid return code "https://a"');
  t.equal(loadError(L('rewrite ^ /x never;')), 'invalid parameter "never"');
  t.equal(loadError(L('rewrite ^ "";')), 'empty replacement');
  t.equal(loadError(L('if ($uri) { if ($uri) { } }')), '"if" directive is not allowed here');
  t.equal(loadError(L('if ($nope) { }')), 'unknown "nope" variable');
  t.equal(loadError(L('rewrite_log on; rewrite_log off;')), '"rewrite_log" directive is duplicate');
});
