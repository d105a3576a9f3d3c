import { existsSync } from 'node:fs';
import t from 'tap';
import { hasNginx } from './helpers/server.js';
import { runHttpFuzz } from './fuzz/http.js';

/*
 * A bounded, deterministic slice of the HTTP fuzzer (t/fuzz/http.ts; run
 * it longer with `node --import tsx t/fuzz/run.ts http --cases N`): 300
 * generated requests, seed 1, against redis2d and Debian's nginx; no crash,
 * no hang, no difference in responses, access log or info lines.
 */

const ECHO = '/usr/lib/nginx/modules/ngx_http_echo_module.so';

t.test('300 fuzzed requests: the same as nginx, no crash, no hang', { skip: (!hasNginx || !existsSync(ECHO)) && 'Debian nginx with the echo module is not installed' }, async (t) => {
  const rep = await runHttpFuzz({ seed: 1, count: 300, maxDiffs: 5 });
  t.equal(rep.cases, 300);
  t.same(rep.crashes, [], 'no crash');
  t.same(rep.hangs, [], 'no hang');
  t.same(rep.diffs.map((d) => `case ${d.index} ${d.what}: ${JSON.stringify(d.case.parts).slice(0, 300)}\nredis2d: ${d.redis2d.slice(0, 300)}\nnginx:   ${d.nginx.slice(0, 300)}`), [], 'no difference');
});
