import { Pool } from 'undici';
import http from 'node:http';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNginx, type Running } from './server.js';

/*
 * Which upstream server nginx picks, for the balancer tests: the mapping is
 * produced with Debian's nginx (proxy_pass to an upstream of three
 * loopback listeners, $upstream_addr in a response header) and recorded in
 * fixtures/upstream-mapping/ for machines without nginx.
 *
 * The consistent-hash ring is built from the `server` text, so the servers
 * have fixed addresses: 127.0.0.2-4 port 16379 (loopback, outside the
 * ephemeral range, away from the usual 127.0.0.1). A lock directory keeps
 * two test runs from using them at once.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURE_DIR = join(ROOT, 'fixtures/upstream-mapping');
export const MAP_SERVERS = ['127.0.0.2:16379', '127.0.0.3:16379', '127.0.0.4:16379'];

/** deterministic, varied keys */
export function mappingKeys(n: number): string[] {
  const keys: string[] = [];
  for (let i = 0; i < n; i++) keys.push(i % 3 === 0 ? `k${i}` : `user:${((i * 2654435761) >>> 0).toString(36)}:${i % 97}`);
  return keys;
}

/** GET every path (keep-alive, a few connections), returning `header` of each response in order */
export async function headerOfAll(port: number, paths: string[], header: string, connections = 8): Promise<string[]> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections, pipelining: 1 });
  const out: string[] = new Array<string>(paths.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < paths.length) {
      const i = next++;
      const res = await pool.request({ path: paths[i]!, method: 'GET' });
      await res.body.text();
      const v = res.headers[header];
      out[i] = Array.isArray(v) ? v.join(',') : (v ?? '');
    }
  };
  try {
    await Promise.all(Array.from({ length: connections }, worker));
  } finally {
    await pool.close();
  }
  return out;
}

/** GET / once from each local source address (sequentially, fresh connections), returning `header` */
export async function headerFromSources(port: number, sources: string[], header: string): Promise<string[]> {
  const out: string[] = [];
  for (const localAddress of sources) {
    out.push(
      await new Promise<string>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/', localAddress, agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(String(res.headers[header] ?? '')));
        });
        req.on('error', reject);
      }),
    );
  }
  return out;
}

/** the server index of each `$upstream_addr` (first try), as a digit string */
export function toDigits(addrs: string[], servers: string[]): string {
  return addrs.map((a) => String(servers.indexOf(a.split(', ')[0]!))).join('');
}

/** Serialise the fixed servers for a whole test run (stale locks older than 2 minutes are broken). */
export async function lockServers(): Promise<() => void> {
  const lock = '/tmp/redis2d-upstream-mapping.lock';
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock);
      return () => rmSync(lock, { recursive: true, force: true });
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > 120000) rmSync(lock, { recursive: true, force: true });
      } catch {
        // gone meanwhile
      }
      if (i > 600) throw new Error(`${lock} held too long`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/**
 * nginx's choices for `balancer` lines over MAP_SERVERS (with per-server
 * parameters), one request per path: a digit string of server indices.
 */
export async function nginxChoices(
  balancer: string,
  params: string[],
  paths: string[],
  fetch: (port: number) => Promise<string[]> = (port) => headerOfAll(port, paths, 'x-up'),
): Promise<string> {
  const backends = MAP_SERVERS.map((s) => `server { listen ${s}; access_log off; location / { return 200; } }`).join('\n');
  const ups = MAP_SERVERS.map((s, i) => `server ${s}${params[i] ? ' ' + params[i] : ''};`).join(' ');
  let nginx: Running | undefined;
  try {
    nginx = await startNginx(`
      access_log off;
      upstream up { ${balancer} ${ups} }
      ${backends}
      server { listen 127.0.0.1:{port};
        location / { proxy_pass http://up; add_header X-Up $upstream_addr always; }
      }`);
    return toDigits(await fetch(nginx.port), MAP_SERVERS);
  } finally {
    await nginx?.stop();
  }
}

/*
 * Fixture format: `# comment` lines, then the digits in lines of 100.
 */
export function readMapping(name: string): string {
  return readFileSync(join(FIXTURE_DIR, name), 'latin1')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .join('');
}

export function writeMapping(name: string, comment: string, requests: string, digits: string): void {
  mkdirSync(FIXTURE_DIR, { recursive: true });
  let text = `# ${comment}\n# servers: ${MAP_SERVERS.join(' ')} (digit = index); ${requests}\n`;
  for (let i = 0; i < digits.length; i += 100) text += digits.slice(i, i + 100) + '\n';
  writeFileSync(join(FIXTURE_DIR, name), text);
}
