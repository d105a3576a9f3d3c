import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/** ngx_get_full_name before a configuration exists: relative names are under the prefix */
export function prefixed(prefix: string, name: string): string {
  return isAbsolute(name) ? name : join(prefix, name);
}

/**
 * The prefix when `-p` is not given (nginx's compiled-in --prefix). A
 * checkout runs from its own folder (its logs/ is ignored by git). An
 * installed package (under node_modules, possibly read-only, replaced by
 * every reinstall) never keeps runtime files: the prefix is
 * $REDIS2D_PREFIX, else /var/lib/redis2d for root, else
 * $XDG_STATE_HOME/redis2d (~/.local/state/redis2d), created with its logs/
 * on first use.
 */
export function defaultPrefix(packageRoot: string, env: NodeJS.ProcessEnv = process.env): { prefix: string; owned: boolean } {
  if (env.REDIS2D_PREFIX) return { prefix: env.REDIS2D_PREFIX.replace(/\/+$/, '') || '/', owned: true };
  if (!packageRoot.split('/').includes('node_modules')) return { prefix: packageRoot, owned: false };
  if (process.getuid?.() === 0) return { prefix: '/var/lib/redis2d', owned: true };
  const state = env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state');
  return { prefix: join(state, 'redis2d'), owned: true };
}

/** make the default prefix and its logs/ (an explicit -p is taken as it is, as nginx does) */
export function ensurePrefix(prefix: string): void {
  try {
    mkdirSync(join(prefix, 'logs'), { recursive: true });
  } catch {
    // nginx's own open() errors will name the problem
  }
}
