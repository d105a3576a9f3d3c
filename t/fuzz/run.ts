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
} else {
  console.error(`unknown fuzzer ${kind}`);
  process.exit(2);
}
