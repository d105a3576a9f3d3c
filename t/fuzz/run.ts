/*
 * The fuzzers from the command line (the tests run a bounded slice of each):
 *
 *   node --import tsx t/fuzz/run.ts http [--seed N] [--cases N] [--from N] [--parallel N]
 *   node --import tsx t/fuzz/run.ts resp [--seed N] [--cases N]
 *   node --import tsx t/fuzz/run.ts conf [--seed N] [--cases N]
 *
 * (`npm run build` first: the servers run dist/.) Prints progress, then
 * every difference kept (case number, bytes sent, both sides) and the
 * totals; exits 1 when anything was found. A case is replayed alone with
 * --from I --cases 1 and the same seed.
 */
import { runHttpFuzz } from './http.js';
import { runRespFuzz } from './resp.js';
import { runConfFuzz } from './conf.js';
import { spawnSync } from 'node:child_process';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : Number(process.argv[i + 1]);
}

const kind = process.argv[2] ?? 'http';
const seed = arg('seed', 1);
const cases = arg('cases', 1000);
const from = arg('from', 0);

if (kind === 'http') {
  const t0 = process.cpuUsage();
  const rep = await runHttpFuzz({ seed, from, count: cases, parallel: arg('parallel', 24), maxDiffs: arg('max-diffs', 20), log: (s) => process.stderr.write(`\r${s}   `) });
  process.stderr.write('\n');
  const cut = (s: string): string => (s.length > 600 ? `${JSON.stringify(s.slice(0, 400))}...(${s.length} bytes)` : JSON.stringify(s));
  for (const d of rep.diffs) {
    console.log(`--- case ${d.index} (${d.what}) sent ${cut(d.case.parts.join('|'))}${d.case.fin ? ' + FIN' : ''}`);
    console.log(`redis2d: ${cut(d.redis2d)}`);
    console.log(`nginx:   ${cut(d.nginx)}`);
  }
  const cpu = process.cpuUsage(t0);
  const n = (rep as typeof rep & { diffCount: number }).diffCount;
  console.log(`http: seed ${seed}, ${rep.cases} cases in ${(rep.ms / 1000).toFixed(1)} s (harness CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s): ${n} differences, ${rep.crashes.length} crashes, ${rep.hangs.length} hangs (${rep.timing} split cases differed only in how much of a refused line had arrived)`);
  for (const c of rep.crashes) console.log(`crash: ${c}`);
  if (rep.hangs.length) console.log(`hangs: ${rep.hangs.slice(0, 20).join(' ')}`);
  process.exit(n || rep.crashes.length || rep.hangs.length ? 1 : 0);
} else if (kind === 'resp') {
  const rep = await runRespFuzz({ seed, from, count: cases, parallel: arg('parallel', 48), maxProblems: arg('max-diffs', 20), log: (s) => process.stderr.write(`\r${s}   `) });
  process.stderr.write('\n');
  for (const p of rep.problems) {
    console.log(`--- case ${p.index} (${p.what}) reply ${JSON.stringify(p.c.reply.slice(0, 300))} cuts ${JSON.stringify(p.c.cuts)} close ${p.c.close} expected ${p.c.expected} ${p.c.pipelined ? 'pipelined' : 'exclusive'}`);
    console.log(`got: ${p.got}`);
  }
  const n = (rep as typeof rep & { problemCount?: number }).problemCount ?? 0;
  console.log(`resp: seed ${seed}, ${rep.cases} cases in ${(rep.ms / 1000).toFixed(1)} s: ${n} problems, ${rep.crashes.length} crashes, ${rep.hangs.length} hangs`);
  for (const c of rep.crashes) console.log(`crash: ${c}`);
  if (rep.hangs.length) console.log(`hangs: ${rep.hangs.slice(0, 20).join(' ')}`);
  process.exit(n || rep.crashes.length || rep.hangs.length ? 1 : 0);
} else if (kind === 'conf') {
  // nginx -t binds listen sockets: compare with it only from a private network namespace
  if (process.env.REDIS2D_FUZZ_NETNS !== '1' && !process.argv.includes('--no-netns')) {
    const env = { ...process.env, REDIS2D_FUZZ_NETNS: '1' };
    const args = ['--import', 'tsx', ...process.argv.slice(1)];
    const q = (a: string): string => `'${a.replaceAll("'", "'\\''")}'`;
    const r = spawnSync('unshare', ['-n', 'sh', '-c', `ip link set lo up && exec ${q(process.execPath)} ${args.map(q).join(' ')}`], { stdio: 'inherit', env });
    if (r.status !== null && !r.error) process.exit(r.status);
    console.error('unshare -n unavailable: redis2d alone (no nginx comparison)');
  }
  const rep = await runConfFuzz({ seed, from, count: cases, maxDiffs: arg('max-diffs', 20), log: (s) => process.stderr.write(`\r${s}   `) });
  process.stderr.write('\n');
  const cut = (s: string): string => JSON.stringify(s.length > 400 ? `${s.slice(0, 400)}...` : s);
  for (const c of rep.crashes) console.log(`--- crash, config ${c.index}: ${cut(c.text)}\n${c.stack}`);
  for (const h of rep.hangs) console.log(`--- hang, config ${h.index}: ${cut(h.text)}`);
  for (const d of rep.diffs) console.log(`--- config ${d.index}: ${cut(d.text)}\nredis2d: ${d.redis2d}\nnginx:   ${d.nginx}`);
  for (const d of rep.messageExamples) console.log(`--- message, config ${d.index}\nredis2d: ${d.redis2d}\nnginx:   ${d.nginx}`);
  console.log(`conf: seed ${seed}, ${rep.cases} configs in ${(rep.ms / 1000).toFixed(1)} s: ${rep.crashes.length} crashes, ${rep.hangs.length} hangs; ${rep.nginx ? `${rep.compared} compared with nginx -t: ${rep.diffCount} pass/fail differences, ${rep.messageDiffs} with another first error` : 'not compared with nginx'}`);
  process.exit(rep.crashes.length || rep.hangs.length ? 1 : 0);
} else {
  console.error(`unknown fuzzer ${kind}`);
  process.exit(2);
}
