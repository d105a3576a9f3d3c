import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/*
 * Modules Debian does not package, built by hand for Debian's nginx 1.22.1
 * (`--with-compat`, `make modules`; nothing of them is in the repo), named
 * by opt-in variables:
 *   NGINX_REDIS2_MODULE     openresty's ngx_http_redis2_module.so
 *   NGINX_HTTPREDIS_MODULE  ngx_http_redis's ngx_http_redis_module.so
 * Tests that compare with them record nginx's answers in fixtures/oracle/
 * (rewritten when REDIS2D_WRITE_FIXTURES=1 or missing), and check redis2d
 * against the fixtures on machines without the modules (CI).
 */

const FIXTURES = resolve(import.meta.dirname, '../../fixtures/oracle');

function moduleFrom(name: string): string | undefined {
  const p = process.env[name];
  return p && existsSync(p) && existsSync('/usr/sbin/nginx') ? p : undefined;
}

export const redis2Module = (): string | undefined => moduleFrom('NGINX_REDIS2_MODULE');
export const httpRedisModule = (): string | undefined => moduleFrom('NGINX_HTTPREDIS_MODULE');

/** the load_module lines for the named modules, or undefined when one is not built */
export function oracleLoad(...which: Array<'redis2' | 'httpredis'>): string | undefined {
  const lines: string[] = [];
  for (const w of which) {
    const p = w === 'redis2' ? redis2Module() : httpRedisModule();
    if (p === undefined) return undefined;
    lines.push(`load_module ${p};`);
  }
  return lines.join('\n');
}

export function fixturePath(name: string): string {
  return join(FIXTURES, name);
}

/** the recorded answers (JSON), or undefined when never recorded */
export function readFixture<T>(name: string): T | undefined {
  const p = fixturePath(name);
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as { value: T }).value : undefined;
}

/** record nginx's answers when asked to (REDIS2D_WRITE_FIXTURES=1) or when none are recorded yet */
export function recordFixture(name: string, what: string, value: unknown): boolean {
  const p = fixturePath(name);
  if (process.env.REDIS2D_WRITE_FIXTURES !== '1' && existsSync(p)) return false;
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, JSON.stringify({ recorded: what, value }, null, 1) + '\n');
  return true;
}
