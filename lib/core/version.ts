import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: dist/lib/version.js → ../../ (or lib/version.ts → ../ under tsx). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      readFileSync(resolve(dir, 'package.json'));
      return dir;
    } catch {
      dir = dirname(dir);
    }
  }
  return process.cwd();
}

export const PACKAGE_ROOT = packageRoot();
export const VERSION = (JSON.parse(readFileSync(resolve(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** the nginx version whose behaviour redis2d follows; tools read it from -V */
export const NGINX_VERSION = '1.22.1';
export const PROGRAM = 'redis2d';
/** what `Server:` says and error pages show (nginx says `nginx/1.22.1`) */
export const SERVER_TOKEN = `${PROGRAM}/${VERSION}`;
