import t from 'tap';
import { modelParse, runRespFuzz } from './fuzz/resp.js';

/*
 * A bounded, deterministic slice of the RESP fuzzer (t/fuzz/resp.ts; run
 * it longer with `node --import tsx t/fuzz/run.ts resp --cases N`): 600
 * generated replies from a fake Redis, seed 1, through pipelined and
 * exclusive locations; no crash, no hang, every response as the module's
 * grammar (the model) says.
 */

t.test('the model of the module grammar', async (t) => {
  t.same(modelParse('+OK\r\n', 1), { kind: 'complete', end: 5 });
  t.same(modelParse('*-5\r\n', 1), { kind: 'invalid', at: 2 });
  t.same(modelParse('*-1\r\n$-5\r\n', 2), { kind: 'complete', end: 10 });
  t.same(modelParse('$5\r\nhel', 1), { kind: 'incomplete' });
  t.same(modelParse('$01\r\na\r\n', 1), { kind: 'invalid', at: 2 });
  t.same(modelParse('*2\r\n:1\r\n*1\r\n+a\r\n', 1), { kind: 'complete', end: 16 });
});

t.test('600 fuzzed replies: as the grammar says, no crash, no hang', async (t) => {
  const rep = await runRespFuzz({ seed: 1, count: 600, maxProblems: 5 });
  t.equal(rep.cases, 600);
  t.same(rep.crashes, [], 'no crash');
  t.same(rep.hangs, [], 'no hang');
  t.same(rep.problems.map((p) => `case ${p.index} ${p.what}: ${JSON.stringify(p.c).slice(0, 300)} got ${p.got.slice(0, 200)}`), [], 'no problem');
});
