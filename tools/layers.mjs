#!/usr/bin/env node
/*
 * The layer check: lib/ is built in layers, and an import may only point
 * to the same layer or one below it:
 *
 *   core ← conf ← http ← upstream ← modules ← process ← cli
 *
 * core/ imports nothing of ours; conf/ knows no HTTP; http/ is the engine
 * and the module contract; upstream/ is the generic upstream (peers,
 * balancers, keepalive, the try loop); modules/<name>/ are the modules;
 * process/ runs cycles and workers; cli.ts is the command line.
 *
 * Type-only imports count too: a type pointing up a layer ties the lower
 * layer to the upper one as surely as a value does.
 *
 * usage: node tools/layers.mjs [LIB_DIR]   (exit 1 and one line per
 * offending import: FILE imports NAMES from TARGET (LAYER → LAYER))
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

export const LAYERS = ['core', 'conf', 'http', 'upstream', 'modules', 'process', 'cli'];

/** the layer of a file under lib/: its first folder, or `cli` for lib/cli.ts */
export function layerOf(rel) {
  const first = rel.split('/')[0];
  if (first === 'cli.ts') return 'cli';
  return LAYERS.includes(first) ? first : undefined;
}

function walk(dir, out = []) {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (e.endsWith('.ts')) out.push(p);
  }
  return out;
}

// `import X from '...'`, `export {X} from '...'` / `export * from '...'`, `import '...'`, `import('...')`;
// the names part never crosses a `;`, so one statement is never read as another's
const IMPORT_RE =
  /(?:^|\n)\s*import\s+(?:type\s+)?([^;'"]*?)\s*from\s*['"]([^'"]+)['"]|(?:^|\n)\s*export\s+(?:type\s+)?(\*(?:\s+as\s+\w+)?|\{[^}]*\})\s*from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** every relative import of a file: { spec, names } */
export function importsOf(src) {
  const out = [];
  for (const m of src.matchAll(IMPORT_RE)) {
    const spec = m[2] ?? m[4] ?? m[5] ?? m[6];
    if (!spec || !spec.startsWith('.')) continue;
    const raw = m[1] ?? m[3];
    const names = raw !== undefined ? raw.replace(/[{}\n]/g, ' ').replace(/\s+/g, ' ').trim() : m[5] ? '(for its side effects)' : '(dynamic import)';
    out.push({ spec, names, sideEffect: m[5] !== undefined });
  }
  return out;
}

/** check a lib/ tree; returns the offending imports as text lines */
export function checkLayers(libDir) {
  const lib = resolve(libDir);
  const problems = [];
  for (const file of walk(lib)) {
    const rel = relative(lib, file);
    const from = layerOf(rel);
    if (!from) {
      if (rel !== 'version.ts') problems.push(`${rel}: not in a layer (put it under ${LAYERS.slice(0, -1).join('/, ')}/)`);
      continue;
    }
    for (const imp of importsOf(readFileSync(file, 'utf8'))) {
      const target = relative(lib, resolve(dirname(file), imp.spec).replace(/\.js$/, '.ts'));
      if (target.startsWith('..')) continue;
      const to = layerOf(target);
      if (imp.sideEffect) problems.push(`lib/${rel} imports lib/${target} for its side effects (register through lib/modules/index.ts instead)`);
      if (!to) continue;
      if (LAYERS.indexOf(to) > LAYERS.indexOf(from)) {
        problems.push(`lib/${rel} imports ${imp.names} from lib/${target}: ${from} may not import ${to} (${LAYERS.join(' ← ')})`);
      }
    }
  }
  return problems;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const lib = process.argv[2] ?? join(dirname(new URL(import.meta.url).pathname), '..', 'lib');
  const problems = checkLayers(lib);
  for (const p of problems) console.log(p);
  if (problems.length) {
    console.log(`${problems.length} import(s) point up a layer`);
    process.exit(1);
  }
  console.log('layers ok');
}
