import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import t from 'tap';
import { startBackend } from './helpers/backend.js';
import { runCmd } from './helpers/proc.js';
import { startRedis } from './helpers/redis.js';
import { freePort, hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * An operator's whole site config, end to end (fixtures/site/operator.conf):
 * a TLS server (`listen ... ssl http2`, HTTP/1.1 and HTTP/2) with gzip, a static root with expires
 * and try_files, real_ip behind a proxy, auth_basic on an admin location, a
 * rate-limited API with a redis2 location on a keepalive upstream, and
 * proxy_pass to an app; a plain-HTTP server redirecting to it. The same file
 * runs under Debian's nginx (with the redis2 module when NGINX_REDIS2_MODULE
 * names one; otherwise its redis2 location answers with echo there and only
 * redis2d's answer is checked, against the bytes Redis holds) and every
 * answer is compared.
 */

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'site', 'operator.conf');
const MODULES = ['ndk_http_module', 'ngx_http_echo_module'];
const REDIS2_SO = process.env.NGINX_REDIS2_MODULE;

interface Site {
  srv: Running;
  tls: number;
}

function setUp(dir: string): void {
  mkdirSync(join(dir, 'www', 'admin'), { recursive: true });
  writeFileSync(join(dir, 'www', 'index.html'), '<html><body>home</body></html>\n');
  writeFileSync(join(dir, 'www', 'admin', 'index.html'), 'admin area\n');
  writeFileSync(join(dir, 'www', 'style.css'), `body { color: #333; }\n${'.c { margin: 0 auto; padding: 1em; }\n'.repeat(40)}`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=example.test'], { stdio: 'ignore' });
  const hash = execFileSync('openssl', ['passwd', '-apr1', 'secret'], { encoding: 'latin1' }).trim();
  writeFileSync(join(dir, 'htpasswd'), `admin:${hash}\n`);
}

function config(dir: string, tls: number, redis: number, app: number, nginxWithoutRedis2: boolean): string {
  let text = readFileSync(FIXTURE, 'latin1')
    .replaceAll('{site}', dir)
    .replaceAll('{tls}', String(tls))
    .replaceAll('{redis}', String(redis))
    .replaceAll('{app}', String(app));
  // Debian has no redis2 module: that location answers with echo under nginx
  if (nginxWithoutRedis2) text = text.replace(/set_unescape_uri \$key \$arg_key; redis2_query get \$key; redis2_pass redis_pool;/, 'echo "no redis2 module";');
  return text;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, servername: 'example.test', rejectUnauthorized: false, agent: false, headers: { Host: 'example.test', ...headers } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const FOOTER = /<hr><center>((?:nginx|redis2d)(?:\/[0-9.]+)?)<\/center>/;

/** an error page's footer names the server: take it out of the body and its length */
function footerless(a: Answer): { body: string; cut: number } {
  const text = a.body.toString('latin1');
  const m = FOOTER.exec(text);
  return m ? { body: text.replace(FOOTER, '<hr><center>S</center>'), cut: m[1]!.length } : { body: text, cut: 0 };
}

/** the headers that must be equal (Date and Server legitimately differ; Expires and Last-Modified are times) */
function sameHeaders(a: Answer): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a.headers)) {
    if (k === 'date' || k === 'server' || k === 'expires' || k === 'last-modified' || k === 'etag') continue;
    out[k] = k === 'content-length' ? Number(v) - footerless(a).cut : v;
  }
  out.expiresIsSet = a.headers.expires !== undefined;
  return out;
}

/** the body to compare: gzip bodies decompressed (zlib's bytes may differ), footers named alike */
function sameBody(a: Answer): string {
  if (a.headers['content-encoding'] === 'gzip') return gunzipSync(a.body).toString('latin1');
  return footerless(a).body;
}

t.test('an operator site config loads, and serves as nginx does', { timeout: 120000 }, async (t) => {
  const redis = await startRedis(t);
  await redis.command(['SET', 'k', '0123456789']);
  const app = await startBackend(t);
  const site = mkdtempSync(join(tmpdir(), 'site-op-'));
  t.teardown(() => rmSync(site, { recursive: true, force: true }));
  setUp(site);

  // -t: the file as an operator writes it
  const tlsForT = await freePort();
  const confT = join(site, 'check.conf');
  writeFileSync(confT, `events {}\nhttp {\n${config(site, tlsForT, redis.port, app.port, false).replaceAll('{port}', '8080').replaceAll('{dir}', site)}\n}\n`);
  const check = await runCmd(['-t', '-c', confT]);
  t.equal(
    check.stderr,
    `redis2d: [warn] the "sendfile" directive has no effect in redis2d\nredis2d: the configuration file ${confT} syntax is ok\nredis2d: configuration file ${confT} test is successful\n`,
    '-t: syntax ok (sendfile noted: it changes nothing a client sees)',
  );

  const start = async (kind: 'redis2d' | 'nginx'): Promise<Site> => {
    const tls = await freePort();
    const loads = kind === 'nginx' ? [...MODULES.map((m) => `load_module /usr/lib/nginx/modules/${m}.so;`), ...(REDIS2_SO ? [`load_module ${REDIS2_SO};`] : [])].join('\n') : '';
    const srv = kind === 'redis2d'
      ? await startRedis2d(config(site, tls, redis.port, app.port, false))
      : await startNginx(config(site, tls, redis.port, app.port, REDIS2_SO === undefined), loads);
    t.teardown(() => srv.stop());
    return { srv, tls };
  };
  const mine = await start('redis2d');
  const theirs = hasNginx ? await start('nginx') : undefined;
  if (!theirs) t.comment('Debian nginx is not installed: only redis2d is checked');

  const both = async (what: string, path: string, headers: Record<string, string> = {}, check?: (a: Answer) => void): Promise<Answer> => {
    const a = await get(mine.tls, path, headers);
    check?.(a);
    if (theirs) {
      const b = await get(theirs.tls, path, headers);
      t.equal(a.status, b.status, `${what}: status as nginx`);
      t.same(sameHeaders(a), sameHeaders(b), `${what}: headers as nginx`);
      t.equal(sameBody(a), sameBody(b), `${what}: body as nginx`);
    }
    return a;
  };

  // the plain server sends everyone to https
  const redirect = (port: number, tls: number): Promise<string> =>
    raw(port, 'GET /x?y=1 HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n').then((s) => normalize(s, port).replaceAll(String(tls), 'TLS'));
  const r1 = await redirect(mine.srv.port, mine.tls);
  t.match(r1, /^HTTP\/1\.1 301 Moved Permanently\r\n/);
  t.match(r1, /\r\nLocation: https:\/\/example\.test:TLS\/x\?y=1\r\n/);
  if (theirs) t.equal(r1, await redirect(theirs.srv.port, theirs.tls), 'the redirect as nginx');

  // static root: expires, try_files, gzip
  const home = await both('home', '/', {}, (a) => {
    t.equal(a.status, 200);
    t.equal(a.headers['cache-control'], 'max-age=3600');
    t.equal(a.body.toString(), '<html><body>home</body></html>\n');
  });
  void home;
  await both('try_files fallback', '/no/such/page', {}, (a) => t.equal(a.body.toString(), '<html><body>home</body></html>\n'));
  const css = await both('gzip', '/style.css', { 'Accept-Encoding': 'gzip' }, (a) => {
    t.equal(a.headers['content-encoding'], 'gzip');
    t.equal(a.headers.vary, 'Accept-Encoding');
    t.equal(a.headers['cache-control'], 'max-age=2592000');
  });
  t.equal(gunzipSync(css.body).toString(), readFileSync(join(site, 'www', 'style.css'), 'latin1'), 'the gzip body decompresses to the file');
  await both('no gzip asked', '/style.css', {}, (a) => t.equal(a.headers['content-encoding'], undefined));

  // the same page over HTTP/2 (ALPN h2 on the TLS listen)
  const h2get = (port: number, path: string): Promise<{ status: number; body: string; type: string | undefined }> =>
    new Promise((resolve, reject) => {
      const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'example.test' });
      session.on('error', reject);
      const req = session.request({ ':path': path, ':authority': 'example.test' });
      let status = 0;
      let type: string | undefined;
      const parts: Buffer[] = [];
      req.on('response', (h) => {
        status = Number(h[':status']);
        type = h['content-type'] as string | undefined;
      });
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => {
        session.close();
        resolve({ status, body: Buffer.concat(parts).toString('latin1'), type });
      });
      req.on('error', reject);
      req.end();
    });
  const h2 = await h2get(mine.tls, '/');
  t.same(h2, { status: 200, body: '<html><body>home</body></html>\n', type: 'text/html' }, 'HTTP/2: the home page');
  if (theirs) t.same(h2, await h2get(theirs.tls, '/'), 'HTTP/2 as nginx');

  // auth_basic on the admin location
  await both('admin without credentials', '/admin/', {}, (a) => {
    t.equal(a.status, 401);
    t.equal(a.headers['www-authenticate'], 'Basic realm="Admin area"');
  });
  await both('admin, wrong password', '/admin/', { Authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` }, (a) => t.equal(a.status, 401));
  await both('admin, right password', '/admin/', { Authorization: `Basic ${Buffer.from('admin:secret').toString('base64')}` }, (a) => {
    t.equal(a.status, 200);
    t.equal(a.body.toString(), 'admin area\n');
  });

  // real_ip: the proxy in front (127.0.0.1) is trusted, the client is the address it names
  const appAnswer = await get(mine.tls, '/app/hello?x=1', { 'X-Forwarded-For': '203.0.113.7, 127.0.0.1' });
  t.equal(appAnswer.status, 200);
  const seen = JSON.parse(appAnswer.body.toString()) as { url: string; rawHeaders: string[] };
  t.equal(seen.url, '/echo/hello?x=1', 'proxy_pass with a URI part replaces the location prefix');
  t.equal(seen.rawHeaders[seen.rawHeaders.indexOf('X-Real-IP') + 1], '203.0.113.7', 'the app sees the real client address');
  if (theirs) {
    const b = await get(theirs.tls, '/app/hello?x=1', { 'X-Forwarded-For': '203.0.113.7, 127.0.0.1' });
    const bseen = JSON.parse(b.body.toString()) as { url: string; rawHeaders: string[] };
    t.same(seen.rawHeaders, bseen.rawHeaders, 'the app gets the same request headers from both');
  }

  // the API: redis2 through the keepalive upstream, under limit_req
  const apiGet = await get(mine.tls, '/api/get?key=k');
  t.equal(apiGet.status, 200);
  t.equal(apiGet.body.toString('latin1'), '$10\r\n0123456789\r\n', 'redis2 GET through the keepalive upstream');
  if (theirs && REDIS2_SO) t.same((await get(theirs.tls, '/api/get?key=k')).body, apiGet.body, 'redis2 as nginx+redis2');
  // the zone allows 2 r/s with burst 3 nodelay: a quick burst of 7 gets 200 × 4 then 503
  // (/api/get above spent one token on each server; wait for it to come back)
  await new Promise((r) => setTimeout(r, 1100));
  const burst = async (port: number): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < 7; i++) out.push((await get(port, '/api/ping')).status);
    return out;
  };
  const mineBurst = await burst(mine.tls);
  t.same(mineBurst, [200, 200, 200, 200, 503, 503, 503], 'limit_req: burst 3 nodelay');
  if (theirs) t.same(await burst(theirs.tls), mineBurst, 'limit_req as nginx');

  // the access log: the real client address, and the proxy's as $realip_remote_addr
  await new Promise((r) => setTimeout(r, 200));
  const log = readFileSync(join(mine.srv.dir, 'access.log'), 'latin1');
  t.match(log, /^203\.0\.113\.7 127\.0\.0\.1 "GET \/app\/hello\?x=1 HTTP\/1\.1" 200$/m);
  t.notMatch(mine.srv.errorLog(), /\[(alert|crit|emerg)\]/);
});
