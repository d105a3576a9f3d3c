#!/usr/bin/env node
/*
 * `npm run build`'s second step: join tsc's output (dist/lib/**) into one
 * file, dist/redis2d.cjs, with V8's code cache for it beside it
 * (dist/redis2d.cjs.cache); bin/redis2d loads the two. Node's ES module
 * loader spends about as long per file (resolve, stat, read, link,
 * compile) as on what the files do, and redis2d is ~270 files: a start
 * (two node processes with `daemon on`) loaded 2 × ~150 ms of modules;
 * the bundle with its code cache loads in ~30 ms (docs/behaviour.md §8,
 * bench/startup.ts).
 *
 * The bundle is made from dist/lib, not from lib/: tsc has judged and
 * compiled it already, esbuild only joins. Packages (commander, fengari)
 * stay outside, loaded from node_modules as before (fengari only when a
 * configuration uses Lua). A dynamic import() inside lib/ stays lazy: its
 * module is in the file but runs only when imported.
 *
 * The file is CommonJS wrapped as node wraps a CommonJS module, so that
 * bin/redis2d compiles it with vm.Script, which takes a code cache (Node 20
 * has none for ES modules). Strict mode as the ES modules had; import.meta.url
 * is the file's URL. The cache is made here by compiling and running the
 * bundle's top level, then `-t` on the bundled conf/nginx.conf, in this node;
 * another node version or other V8 flags reject it, and bin/redis2d then
 * compiles the source as any script.
 *
 * esbuild is a devDependency (the same one tsx uses); without it the bundle is
 * skipped with a note and bin/redis2d runs dist/lib as it is.
 *
 * Plain JavaScript so that it runs right after tsc.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(ROOT, 'dist/lib/cli.js');
const out = join(ROOT, 'dist/redis2d.cjs');
const cache = `${out}.cache`;

if (!existsSync(entry)) {
  process.stderr.write('bundle: dist/lib/cli.js is missing: run tsc first\n');
  process.exit(1);
}
// an old bundle must never run with the new dist/lib, nor an old cache with a new bundle
rmSync(cache, { force: true });
rmSync(out, { force: true });

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  process.stderr.write('bundle: esbuild is not installed: bin/redis2d runs dist/lib unbundled (a slower start)\n');
  process.exit(0);
}

const URL_NAME = '__redis2d_import_meta_url';
const res = await esbuild.build({
  entryPoints: [entry],
  outfile: out,
  write: false,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  packages: 'external',
  define: { 'import.meta.url': URL_NAME },
  logLevel: 'warning',
});
const body = res.outputFiles[0].text;
// node's own CommonJS wrapper, the strictness the ES modules had, and their import.meta.url
const text =
  `(function (exports, require, module, __filename, __dirname) { 'use strict'; ` +
  `const ${URL_NAME} = require('node:url').pathToFileURL(__filename).href;\n${body}\n})`;
writeFileSync(out, text);

// the code cache: compiled and run as bin/redis2d does (same source, same file name)
const script = new vm.Script(text, { filename: out });
const mod = { exports: {} };
script.runInThisContext()(mod.exports, createRequire(out), mod, out, dirname(out));
if (typeof mod.exports.main !== 'function') {
  rmSync(out, { force: true });
  process.stderr.write(`bundle: ${pathToFileURL(out).href} exports no main()\n`);
  process.exit(1);
}
// warm: judge the bundled configuration once (-t, in a temp prefix, quiet), so that the cache also holds
// the functions a start runs (module set-up, the parser): a start compiles ~15% less; -V is unchanged
const warm = mkdtempSync(join(tmpdir(), 'redis2d-bundle-'));
const write = process.stderr.write;
try {
  mkdirSync(join(warm, 'logs'));
  process.stderr.write = () => true;
  await mod.exports.main(['-t', '-q', '-p', `${warm}/`, '-e', join(warm, 'logs/error.log'), '-c', join(ROOT, 'conf/nginx.conf')]);
} catch {
  // only a warm-up: the cache of what did run is still good
} finally {
  process.stderr.write = write;
  rmSync(warm, { recursive: true, force: true });
}
writeFileSync(cache, script.createCachedData());
// the bundle's top level may leave timers behind
process.exit(0);
