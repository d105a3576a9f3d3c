import t from 'tap';
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as h2connect } from 'node:http2';
import { connect, type ConnectionOptions } from 'node:tls';
import { NGINX, hasNginx, startNginx, startRedis2d, type Running } from './helpers/server.js';
import { sleep, startWorkers } from './helpers/site.js';
import { makeCerts } from './helpers/tls.js';

/*
 * ssl_session_cache (lib/modules/ssl/sessions.ts): session-ID resumption
 * for TLS 1.2 clients without tickets, against Debian's nginx on the same
 * configs, read through $ssl_session_reused on each of a series of
 * connections offering the first one's session: none and off (never),
 * builtin and builtin:N, shared:NAME:SIZE (one worker, and two workers
 * sharing the zone: every connection after the first resumes whichever
 * worker it lands on), ssl_session_timeout running out, the default
 * server's cache serving an SNI-chosen server, HTTP/2 on TLS; and at -t a
 * zone name used by limit_req_zone too.
 */

const skip = !hasNginx ? 'Debian nginx is not installed' : false;
const certs = makeCerts(['a.test', 'b.test']);
t.teardown(() => rmSync(certs.dir, { recursive: true, force: true }));
const C = certs.dir;

function site(cache: string, extra = '', listen = 'ssl'): string {
  return `
    access_log off;
    ${cache}
    ssl_session_tickets off;
    ssl_certificate ${C}/a.test.crt;
    ssl_certificate_key ${C}/a.test.key;
    ${extra}
    server {
      listen 127.0.0.1:{port} ${listen};
      server_name a.test;
      location / { return 200 "$ssl_session_reused $ssl_protocol $pid\\n"; }
    }
    server {
      listen 127.0.0.1:{port} ${listen};
      server_name b.test;
      location / { return 200 "b $ssl_session_reused\\n"; }
    }`;
}

const TLS12: ConnectionOptions = { host: '127.0.0.1', rejectUnauthorized: false, maxVersion: 'TLSv1.2', servername: 'a.test' };

/** one GET over TLS 1.2 offering `session`: the body and the session the server gave */
function get(port: number, session: Buffer | undefined, servername = 'a.test'): Promise<{ body: string; session: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    const c = connect({ ...TLS12, port, servername, ...(session ? { session } : {}) });
    let got: Buffer | undefined;
    let out = '';
    c.on('session', (s: Buffer) => (got = s));
    c.on('error', reject);
    c.on('secureConnect', () => c.write(`GET / HTTP/1.0\r\nHost: ${servername}\r\n\r\n`));
    c.on('data', (d: Buffer) => (out += d.toString('latin1')));
    c.on('end', () => resolve({ body: out.slice(out.indexOf('\r\n\r\n') + 4), session: got }));
    setTimeout(() => c.destroy(new Error('timeout')), 5000).unref();
  });
}

/** a first connection, then `n` more offering its session: `$ssl_session_reused` of each */
async function series(port: number, n: number, waitMs = 0, second = 'a.test'): Promise<{ reused: string[]; pids: Set<string> }> {
  const first = await get(port, undefined);
  const reused = [first.body.split(' ')[0]!];
  const pids = new Set<string>();
  if (waitMs) await sleep(waitMs);
  for (let i = 0; i < n; i++) {
    const r = await get(port, first.session, second);
    reused.push(r.body.split(' ')[second === 'a.test' ? 0 : 1]!.trim());
    pids.add(r.body.trim().split(' ')[2] ?? '');
  }
  return { reused, pids };
}

async function both(http: string, fn: (s: Running) => Promise<unknown>): Promise<[unknown, unknown]> {
  const ours = await startRedis2d(http);
  let a: unknown;
  try {
    a = await fn(ours);
  } finally {
    await ours.stop();
  }
  const theirs = await startNginx(http);
  try {
    return [a, await fn(theirs)];
  } finally {
    await theirs.stop();
  }
}

t.test('session IDs resumed as nginx resumes them', { skip }, async (t) => {
  const cases: Array<[string, string, string[]]> = [
    ['no ssl_session_cache (none)', '', ['.', '.', '.']],
    ['off', 'ssl_session_cache off;', ['.', '.', '.']],
    ['none', 'ssl_session_cache none;', ['.', '.', '.']],
    ['builtin', 'ssl_session_cache builtin;', ['.', 'r', 'r']],
    ['builtin:1', 'ssl_session_cache builtin:1;', ['.', 'r', 'r']],
    ['shared', 'ssl_session_cache shared:SSL:1m;', ['.', 'r', 'r']],
    ['builtin and shared', 'ssl_session_cache builtin:100 shared:SSL:1m;', ['.', 'r', 'r']],
  ];
  for (const [name, cache, want] of cases) {
    const [a, b] = await both(site(cache), async (s) => (await series(s.port, 2)).reused);
    t.same(a, b, `${name}: as nginx`);
    t.same(a, want, name);
  }
});

t.test('ssl_session_timeout: an expired session is not resumed', { skip }, async (t) => {
  const [a, b] = await both(site('ssl_session_cache shared:SSL:1m;', 'ssl_session_timeout 1s;'), async (s) => (await series(s.port, 1, 1500)).reused);
  t.same(a, b, 'as nginx');
  t.same(a, ['.', '.']);
});

t.test("the default server's cache serves an SNI-chosen server", { skip }, async (t) => {
  const [a, b] = await both(site('ssl_session_cache shared:SSL:1m;'), async (s) => (await series(s.port, 2, 0, 'b.test')).reused);
  t.same(a, b, 'as nginx');
  t.same(a, ['.', 'r', 'r'], 'the session made with a.test resumed for b.test (one certificate, one session id context)');
});

t.test('HTTP/2 on TLS resumes too', { skip }, async (t) => {
  const run = async (s: Running): Promise<string[]> => {
    const out: string[] = [];
    let session: Buffer | undefined;
    for (let i = 0; i < 3; i++) {
      const c = h2connect(`https://127.0.0.1:${s.port}`, { ...TLS12, ...(session ? { session } : {}) });
      c.on('error', () => {});
      c.socket.on('session', (x: Buffer) => (session ??= x));
      out.push(
        await new Promise<string>((resolve) => {
          const r = c.request({ ':path': '/', ':authority': 'a.test' });
          let body = '';
          r.on('data', (d: Buffer) => (body += d.toString('latin1')));
          r.on('end', () => resolve(body.split(' ')[0]!));
          r.end();
        }),
      );
      await new Promise<void>((r) => c.close(() => r()));
    }
    return out;
  };
  const [a, b] = await both(site('ssl_session_cache shared:SSL:1m;', '', 'ssl http2'), run);
  t.same(a, b, 'as nginx');
  t.same(a, ['.', 'r', 'r']);
});

t.test('two workers share a shared:NAME:SIZE cache', { skip }, async (t) => {
  const run = async (kind: 'redis2d' | 'nginx'): Promise<{ reused: string[]; workers: number }> => {
    const s = await startWorkers(kind, site('ssl_session_cache shared:SSL:1m;'), 2);
    try {
      // connections land on both workers sooner or later: ask until two pids answered (bounded)
      let r = await series(s.port, 12);
      for (let i = 0; i < 4 && r.pids.size < 2; i++) r = await series(s.port, 12);
      return { reused: r.reused, workers: r.pids.size };
    } finally {
      await s.stop();
    }
  };
  const ours = await run('redis2d');
  const theirs = await run('nginx');
  t.same(ours.reused, theirs.reused, 'as nginx');
  t.same(ours.reused, ['.', ...Array(12).fill('r')], 'every later connection resumed');
  t.equal(ours.workers, 2, 'both workers answered');
});

t.test('-t: a session cache zone named as a limit_req zone', { skip }, async (t) => {
  const { ROOT } = await import('./helpers/proc.js');
  const file = join(C, 'zones.conf');
  writeFileSync(
    file,
    `events {}\nhttp {\n  limit_req_zone $binary_remote_addr zone=Z:1m rate=1r/s;\n  server {\n    listen 127.0.0.1:18951 ssl;\n    ssl_certificate ${C}/a.test.crt;\n    ssl_certificate_key ${C}/a.test.key;\n    ssl_session_cache shared:Z:1m;\n  }\n}\n`,
  );
  // through /usr/bin/env: tap wraps direct node spawns with its loaders
  const ours = spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, join(ROOT, 'bin/redis2d'), '-t', '-p', `${C}/`, '-c', file], { encoding: 'latin1' });
  const theirs = spawnSync(NGINX, ['-t', '-e', '/dev/null', '-p', `${C}/`, '-c', file], { encoding: 'latin1' });
  const lines = (s: string, p: string): string[] => s.split('\n').filter((l) => l.includes('[emerg]')).map((l) => l.slice(p.length + 2));
  t.equal(ours.status, theirs.status, 'exit code');
  t.same(lines(ours.stderr, 'redis2d'), lines(theirs.stderr, 'nginx'), 'message');
  t.match(lines(ours.stderr, 'redis2d')[0] ?? '', /already declared for a different use/);
});
