import t from 'tap';
import { runConfFuzz } from './fuzz/conf.js';

/*
 * A bounded, deterministic slice of the config fuzzer (t/fuzz/conf.ts; run
 * it longer, compared with nginx -t in a private network namespace, with
 * `node --import tsx t/fuzz/run.ts conf --cases N`): 300 mutated configs,
 * seed 1, loaded by redis2d's loader: every one ends in `ok` or an
 * [emerg], never an exception or a hang.
 */

t.test('300 mutated configs: no crash, no hang', async (t) => {
  const rep = await runConfFuzz({ seed: 1, count: 300, maxDiffs: 5 });
  t.equal(rep.cases, 300);
  t.same(rep.crashes.map((c) => `config ${c.index}: ${c.stack.split('\n').slice(0, 3).join(' | ')}`), [], 'no crash');
  t.same(rep.hangs.map((h) => h.index), [], 'no hang');
});
