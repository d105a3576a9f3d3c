import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getVariable } from '../lib/http/eval.js';
import { addHostKey, findHost, newHostTable } from '../lib/modules/map/hosts.js';
import { load, loadError, request } from './helpers/rewrite.js';

const inc = join(mkdtempSync(join(tmpdir(), 'redis2d-map-')), 'keys.map');
writeFileSync(inc, '/inc included;\n~^/re-inc/(\\d+) "inc $1";\n');

const { servers, vars } = load(`events {}
http {
    map $arg_h $host_kind {
        hostnames;
        default other;
        example.com exact;
        .example.org org-any;
        *.example.net net-sub;
        *.a.example.net a-net-sub;
        www.example.* www-tail;
    }
    map $uri $by_uri {
        default "def:$uri";
        /A upper-key;
        \\~tilde escaped;
        ~^/re/(?<word>[a-z]+)/(\\d+)$ "re $word $2";
        ~*^/CASE/ caseless;
        ~^/re/ never-reached-for-first;
        include ${inc};
    }
    map $arg_v $vol { volatile; default "v=$arg_v"; }
    map $arg_v $cached { default "v=$arg_v"; }
    map $uri $nodefault { /x x; }
    server {
        listen 127.0.0.1:18094;
    }
}
`);
const srv = servers[0]!;
// the maps' variables are not referenced by the config: index them here
for (const name of ['host_kind', 'by_uri', 'vol', 'cached', 'nodefault']) vars.getIndex(name);
vars.initVars();
const get = (name: string, uri: string, args = '') => {
  const r = request(srv, undefined, uri, args);
  return getVariable(r, vars.getIndex(name));
};

t.test('exact keys are case-insensitive; regexes in order with captures', async (t) => {
  t.equal(get('by_uri', '/a'), 'upper-key');
  t.equal(get('by_uri', '/A'), 'upper-key');
  t.equal(get('by_uri', '~tilde'), 'escaped');
  t.equal(get('by_uri', '/re/abc/42'), 're abc 42');
  t.equal(get('by_uri', '/case/x'), 'caseless');
  t.equal(get('by_uri', '/re/x'), 'never-reached-for-first');
  t.equal(get('by_uri', '/zzz'), 'def:/zzz');
  t.equal(get('by_uri', '/inc'), 'included');
  t.equal(get('by_uri', '/re-inc/7'), 'inc 7');
  t.equal(get('nodefault', '/y'), '', 'no default: empty');
});

t.test('hostnames', async (t) => {
  const h = (host: string) => get('host_kind', '/', `h=${host}`);
  t.equal(h('example.com'), 'exact');
  t.equal(h('EXAMPLE.com.'), 'exact', 'case and a trailing dot ignored');
  t.equal(h('www.example.com'), 'www-tail', 'exact does not cover subdomains; tail wildcard does');
  t.equal(h('example.org'), 'org-any', '.example.org covers the domain itself');
  t.equal(h('a.b.example.org'), 'org-any');
  t.equal(h('example.net'), 'other', '*.example.net does not cover the domain');
  t.equal(h('x.example.net'), 'net-sub');
  t.equal(h('x.a.example.net'), 'a-net-sub', 'most specific wildcard wins');
  t.equal(h('www.example.co.uk'), 'www-tail');
  t.equal(h('www.example'), 'other');
  t.equal(h(''), 'other');
});

t.test('volatile maps are evaluated on every read', async (t) => {
  const r = request(srv, undefined, '/', 'v=1');
  t.equal(getVariable(r, vars.getIndex('vol')), 'v=1');
  t.equal(getVariable(r, vars.getIndex('cached')), 'v=1');
  r.args = 'v=2';
  t.equal(getVariable(r, vars.getIndex('vol')), 'v=2');
  t.equal(getVariable(r, vars.getIndex('cached')), 'v=1', 'cached for the request');
});

t.test('config errors', async (t) => {
  const M = (body: string, head = '$uri $a') => `events {}\nhttp {\n map ${head} {\n${body}\n }\n}\n`;
  t.equal(loadError(M('a b c;')), 'invalid number of the map parameters');
  t.equal(loadError(M('lonely;')), 'invalid number of the map parameters');
  t.equal(loadError(M('default 1; default 2;')), 'duplicate default map parameter');
  t.equal(loadError(M('/a 1; /A 2;')), 'conflicting parameter "/A"');
  t.equal(loadError(M('hostnames; *.a.* 1;')), 'invalid hostname or wildcard "*.a.*"');
  t.equal(loadError(M('hostnames; a..b 1;')), 'invalid hostname or wildcard "a..b"');
  t.equal(loadError(M('hostnames; *.a 1; .a 2;')), 'conflicting parameter ".a"');
  t.equal(loadError(M('~(a 1;')), 'pcre2_compile() failed: missing closing parenthesis in "(a"');
  t.equal(loadError(M('', '$uri a')), 'invalid variable name "a"');
  t.equal(loadError(M('', '$uri $uri')), 'the duplicate "uri" variable');
  t.equal(loadError(M('default $nope;')), 'unknown "nope" variable');
  t.equal(loadError(M('a { }')), 'unexpected "{"');
  t.equal(loadError(`events {}\nhttp {\n map $uri $a { }\n map_hash_max_size 1;\n}\n`), '"map_hash_max_size" directive is duplicate');
});

t.test('host table unit', async (t) => {
  const tb = newHostTable<string>();
  t.equal(addHostKey(tb, 'Foo.com', 'a', true), 'ok');
  t.equal(addHostKey(tb, 'foo.COM', 'b', true), 'busy');
  t.equal(addHostKey(tb, '*', 'c', true), 'declined');
  t.equal(addHostKey(tb, '*', 'c', false), 'ok', 'without hostnames a star is an exact key');
  t.equal(findHost(tb, 'foo.com', true), 'a');
  t.equal(findHost(tb, '*', false), 'c');
});
