import t from 'tap';
import { WORKER_HEAP_FLAGS, workerHeapFlags } from '../lib/process/heap_flags.js';

/*
 * The heap flags the master adds to a worker's node flags
 * (lib/process/heap_flags.ts): each added unless the same flag was given,
 * in node's flags or NODE_OPTIONS, in either spelling (dashes or
 * underscores), with a value or as its `--no-` form.
 */

const SEMI = '--max-semi-space-size=2';
const SINGLE = '--single-threaded-gc';

t.test('a worker gets the semi-space and GC flags unless given', async (t) => {
  t.same(WORKER_HEAP_FLAGS, [SEMI, SINGLE]);
  t.same(workerHeapFlags([], undefined), [SEMI, SINGLE], 'nothing given');
  t.same(workerHeapFlags(['--cpu-prof'], ''), [SEMI, SINGLE], 'other flags kept apart');
  t.same(workerHeapFlags(['--max-semi-space-size=32'], undefined), [SINGLE], 'node flag given');
  t.same(workerHeapFlags(['--max_semi_space_size=2'], undefined), [SINGLE], 'underscore spelling');
  t.same(workerHeapFlags([], '--max-old-space-size=512 --max-semi-space-size=4'), [SINGLE], 'NODE_OPTIONS');
  t.same(workerHeapFlags(['--no-single-threaded-gc'], undefined), [SEMI], 'the --no- form keeps the user\'s choice');
  t.same(workerHeapFlags([], '--single_threaded_gc --max-semi-space-size=1'), [], 'both in NODE_OPTIONS');
  t.same(workerHeapFlags(['--single-threaded'], undefined), [SEMI, SINGLE], 'a flag whose name only begins the same is another flag');
});

t.test('the flags are ones this node takes', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(process.execPath, [...WORKER_HEAP_FLAGS, '-e', 'process.stdout.write("ok")'], { encoding: 'utf8' });
  t.equal(r.stderr, '', 'no warning or error from node');
  t.equal(r.stdout, 'ok');
});
