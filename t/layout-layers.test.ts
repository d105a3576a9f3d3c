import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import t from 'tap';
// @ts-expect-error: a plain .mjs tool without type declarations
import { checkLayers } from '../tools/layers.mjs';

/*
 * lib/ is built in layers (tools/layers.mjs): core ← conf ← http ← upstream
 * ← modules ← process ← cli. Every import points to its own layer or one
 * below; no file imports another for its side effects.
 */

const ROOT = join(import.meta.dirname, '..');
const check = checkLayers as (dir: string) => string[];

t.test('lib/ has no import pointing up a layer', async (t) => {
  t.same(check(join(ROOT, 'lib')), [], 'no offending import (no allowed exceptions)');
});

t.test('the check fails on an up-import and on a side-effect import, naming the file and the names', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'layers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const put = (rel: string, text: string): void => {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  };
  put('core/errno.ts', 'export const x = 1;\n');
  put('http/request.ts', "import { x } from '../core/errno.js';\nexport type Request = { n: typeof x };\n");
  put('conf/command.ts', "import type { Request } from '../http/request.js';\nexport type PhaseHandler = (r: Request) => number;\n");
  put('modules/a/module.ts', "import '../b/run.js';\nexport const a = 1;\n");
  put('modules/b/run.ts', 'export {};\n');
  // an import after other statements is read as itself, not as part of what comes before
  put('conf/values.ts', "export const UNSET = -1;\nexport function f(): number { return 1; }\nimport type { Request } from '../http/request.js';\n");
  t.same(check(dir).sort(), [
    'lib/conf/command.ts imports Request from lib/http/request.ts: conf may not import http (core ← conf ← http ← upstream ← modules ← process ← cli)',
    'lib/conf/values.ts imports Request from lib/http/request.ts: conf may not import http (core ← conf ← http ← upstream ← modules ← process ← cli)',
    'lib/modules/a/module.ts imports lib/modules/b/run.ts for its side effects (register through lib/modules/index.ts instead)',
  ]);
});
