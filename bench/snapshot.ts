import { execFileSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './targets.js';

/*
 * `--head`: measure the committed HEAD instead of the working tree. Several
 * people edit this tree at once, so dist/ may hold half-finished work; the
 * snapshot is `git archive HEAD` of the server's files, compiled with the
 * repo's own tsc into a temp dir (node_modules linked, not copied).
 */

export interface Tree {
  root: string;
  /** short commit, `+dirty` when the working tree differs from it */
  commit: string;
  cleanup?: string;
}

function git(args: string[], cwd = ROOT): string {
  return execFileSync('git', args, { cwd, encoding: 'latin1', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

export function workingTree(): Tree {
  let commit = 'unknown';
  try {
    commit = git(['rev-parse', '--short', 'HEAD']);
    if (git(['status', '--porcelain', '--', 'lib', 'bin']).length) commit += '+dirty';
  } catch {
    // not a git checkout
  }
  return { root: ROOT, commit };
}

/**
 * HEAD (`git archive`), or with `working` the files as they are now (a
 * frozen copy of lib/ being edited, built apart from the shared dist/).
 */
export function headSnapshot(working = false, rev = 'HEAD'): Tree {
  let commit = git(['rev-parse', '--short', rev]);
  if (working) commit += '+working-tree';
  const dir = mkdtempSync(join(tmpdir(), `redis2d-head-${commit}-`));
  if (working) {
    execFileSync('cp', ['-r', join(ROOT, 'lib'), join(ROOT, 'bin'), join(ROOT, 'package.json'), join(ROOT, 'tsconfig.json'), dir]);
  } else {
    const tar = execFileSync('git', ['archive', '--format=tar', commit, 'lib', 'bin', 'package.json', 'tsconfig.json'], {
      cwd: ROOT,
      maxBuffer: 256 << 20,
    });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  process.stderr.write(`bench: building ${commit} in ${dir}\n`);
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    // tsc emits despite type errors; only a missing output is fatal
    const out = String((e as { stdout?: Buffer }).stdout ?? '');
    process.stderr.write(`bench: tsc reported errors at HEAD:\n${out.split('\n').slice(0, 5).join('\n')}\n`);
  }
  return { root: dir, commit, cleanup: dir };
}
