import t from 'tap';
import { WORKER_HEAP_FLAGS, workerHeapFlags } from '../lib/process/heap_flags.js';

/*
 * The heap flags the master adds to a worker's node flags
 * (lib/process/heap_flags.ts): added unless the same flag was given, in
 * node's flags or NODE_OPTIONS, in either spelling (dashes or underscores).
 */

t.test('a worker gets the semi-space flag unless one was given', async (t) => {
  t.same(WORKER_HEAP_FLAGS, ['--max-semi-space-size=2']);
  t.same(workerHeapFlags([], undefined), ['--max-semi-space-size=2'], 'nothing given');
  t.same(workerHeapFlags(['--cpu-prof'], ''), ['--max-semi-space-size=2'], 'other flags kept apart');
  t.same(workerHeapFlags(['--max-semi-space-size=32'], undefined), [], 'node flag given');
  t.same(workerHeapFlags(['--max_semi_space_size=2'], undefined), [], 'underscore spelling');
  t.same(workerHeapFlags([], '--max-old-space-size=512 --max-semi-space-size=4'), [], 'NODE_OPTIONS');
});
