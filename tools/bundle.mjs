#!/usr/bin/env node
/*
 * `npm run build`'s second step: join tsc's output (dist/lib/**) into one
 * file, dist/redis2d.js, which bin/redis2d loads. Node's ES module loader
 * spends about as long per file (resolve, stat, read, link, compile) as on
 * what the files do, and redis2d is ~270 files: a start (two node
 * processes with `daemon on`) loaded 2 × ~150 ms of modules, the bundle
 * loads in ~70 ms (docs/behaviour.md §1, bench/startup.ts).
 *
 * The bundle is made from dist/lib, not from lib/: tsc has judged and
 * compiled it already, esbuild only joins. Packages (commander, fengari)
 * stay outside, loaded from node_modules as before (fengari only when a
 * configuration uses Lua). A dynamic import() inside lib/ stays lazy: its
 * module is in the file but runs only when imported.
 *
 * esbuild comes with tsx (a devDependency); without it the bundle is
 * skipped with a note and bin/redis2d runs dist/lib as it is.
 *
 * Plain JavaScript so that it runs right after tsc.
 */
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(ROOT, 'dist/lib/cli.js');
const out = join(ROOT, 'dist/redis2d.js');

if (!existsSync(entry)) {
  process.stderr.write('bundle: dist/lib/cli.js is missing: run tsc first\n');
  process.exit(1);
}

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  // a stale bundle must not shadow the new dist/lib
  rmSync(out, { force: true });
  process.stderr.write('bundle: esbuild is not installed: bin/redis2d runs dist/lib unbundled (a slower start)\n');
  process.exit(0);
}

await esbuild.build({
  entryPoints: [entry],
  outfile: out,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  // the sources' map: stack traces name lib/*.ts under --enable-source-maps
  sourcemap: 'linked',
  logLevel: 'warning',
});
