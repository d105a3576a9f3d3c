import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../lib/process/config.js';
import type { HttpState } from '../lib/http/module.js';
import { httpCoreModule, type CoreLocConf, type CoreMainConf } from '../lib/http/core/module.js';
import { noEffectDirectives } from '../lib/modules/noop/module.js';

/* Merged http core values: nginx's defaults and inheritance, read as the engine reads them. */

const dir = mkdtempSync(join(tmpdir(), 'redis2d-core-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function load(http: string) {
  const confFile = join(dir, 'nginx.conf');
  writeFileSync(confFile, `events {}\nhttp {\n${http}\n}\n`);
  const cycle = loadConfig({ confFile, prefix: '/srv/r2' });
  const state = cycle.state.get('http') as HttpState;
  const cmcf = state.ctx.main[httpCoreModule.index] as CoreMainConf;
  const loc = (srv: number, ...path: number[]): CoreLocConf => {
    let l = cmcf.servers[srv]!.ctx.loc[httpCoreModule.index] as CoreLocConf;
    for (const i of path) l = l.locations[i]!;
    return l;
  };
  return { cycle, cmcf, loc };
}

t.test('defaults', async (tt) => {
  const { loc, cmcf } = load('server { listen 127.0.0.1:8080; location / { } }');
  const l = loc(0, 0);
  tt.equal(l.root, '/srv/r2/html');
  tt.equal(l.alias, false);
  tt.same(l.index.map((v) => v.constant), ['index.html']);
  tt.same([...l.types], [['html', 'text/html'], ['gif', 'image/gif'], ['jpg', 'image/jpeg']]);
  tt.equal(l.defaultType, 'text/plain');
  tt.equal(l.clientMaxBodySize, 1048576);
  tt.equal(l.keepaliveTimeout, 75000);
  tt.equal(l.keepaliveHeaderTimeout, 0);
  tt.equal(l.keepaliveRequests, 1000);
  tt.equal(l.sendTimeout, 60000);
  tt.equal(l.serverTokens, 1);
  tt.equal(l.internal, 0);
  tt.equal(l.errorPages, undefined);
  const s = cmcf.servers[0]!;
  tt.equal(s.clientHeaderTimeout, 60000);
  tt.same(s.largeClientHeaderBuffers, { num: 4, size: 8192 });
  tt.same(s.serverNames, [{ name: '', regex: undefined }]);
  tt.equal(cmcf.ports.length, 1);
  tt.equal(cmcf.ports[0]!.addrs[0]!.opt.text, '127.0.0.1:8080');
});

t.test('inheritance and overrides', async (tt) => {
  const { loc, cmcf } = load(`
    root /var/www/;
    keepalive_timeout 10s 5;
    types { text/x-a a; }
    error_page 404 =200 /nf.html?x=1;
    server {
      listen 127.0.0.1:8080 default_server;
      listen [::1]:8080;
      server_name A.Example ~^(?<h>.+)$;
      location /a/ { alias /data/a/; internal; location /a/b/ { } }
      location /c { root rel; error_page 500 /e; index i.html $uri.html; }
      location /t { try_files $uri $uri/ =404; keepalive_timeout 0; }
    }`);
  const a = loc(0, 0);
  tt.equal(a.root, '/data/a/');
  tt.equal(a.alias, true);
  tt.equal(a.internal, 1);
  const b = loc(0, 0, 0);
  tt.equal(b.root, '/data/a/', 'nested location inherits the alias');
  tt.equal(b.alias, true);
  const c = loc(0, 1);
  tt.equal(c.root, '/srv/r2/rel');
  tt.same(c.errorPages!.map((p) => [p.status, p.overwrite, p.value.source]), [[500, -1, '/e']]);
  tt.equal(c.index.length, 2);
  tt.equal(c.index[1]!.constant, undefined);
  const tf = loc(0, 2);
  tt.same(tf.tryFiles!.map((f) => [f.value.source, f.testDir, f.code]), [['$uri', false, 0], ['$uri', true, 0], ['=404', false, 404]]);
  tt.equal(tf.keepaliveTimeout, 0);
  tt.equal(tf.keepaliveHeaderTimeout, 5);
  tt.equal(loc(0).root, '/var/www', 'root loses its trailing slash');
  tt.same([...loc(0).types], [['a', 'text/x-a']]);
  const ep = loc(0).errorPages![0]!;
  tt.same([ep.status, ep.overwrite, ep.value.constant, ep.args], [404, 200, '/nf.html', 'x=1']);
  const s = cmcf.servers[0]!;
  tt.same(s.serverNames.map((n) => [n.name, !!n.regex]), [['a.example', false], ['^(?<h>.+)$', true]]);
  tt.same(cmcf.ports.map((p) => p.addrs.map((x) => [x.opt.text, x.opt.defaultServer])), [
    [['127.0.0.1:8080', true]],
    [['[::1]:8080', false]],
  ]);
});

t.test('no-effect directives are recorded once each', async (tt) => {
  // (gzip is real now: lib/modules/gzip)
  const { cycle } = load('sendfile on; gzip on; tcp_nodelay on; server { listen 127.0.0.1:8080; tcp_nodelay off; tcp_nopush on; }');
  tt.same(noEffectDirectives(cycle), ['sendfile', 'tcp_nodelay', 'tcp_nopush']);
  const quiet = load('server { listen 127.0.0.1:8080; }');
  tt.same(noEffectDirectives(quiet.cycle), []);
});
