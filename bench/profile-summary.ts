/*
 * Summarise a V8 .cpuprofile (node --cpu-prof): self and total time per
 * function and self time per file, from the sample timeline (timeDeltas),
 * so samples of uneven length weigh what they cost.
 *
 * Usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile [--top N] [--markdown]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FnStat {
  key: string;
  name: string;
  where: string;
  selfUs: number;
  totalUs: number;
}

export interface Summary {
  totalUs: number;
  /** time not spent idle */
  busyUs: number;
  functions: FnStat[];
  files: Array<{ file: string; selfUs: number }>;
}

function shortUrl(url: string): string {
  if (!url) return '';
  let p = url.startsWith('file://') ? fileURLToPath(url) : url;
  const dist = p.lastIndexOf('/dist/');
  if (dist !== -1) p = p.slice(dist + 6);
  return p;
}

function where(cf: CallFrame): string {
  const u = shortUrl(cf.url);
  return u ? `${u}:${cf.lineNumber + 1}` : '';
}

export function summarise(profile: CpuProfile): Summary {
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // self time per node from the sample timeline: delta i is the time sample i - 1 ran
  const selfNode = new Map<number, number>();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const dt = i + 1 < timeDeltas.length ? timeDeltas[i + 1]! : 0;
    selfNode.set(samples[i]!, (selfNode.get(samples[i]!) ?? 0) + Math.max(0, dt));
  }

  const keyOf = (n: ProfileNode): string => `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame)}`;
  const stats = new Map<string, FnStat>();
  const files = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfNode) {
    const n = byId.get(id)!;
    totalUs += us;
    if (n.callFrame.functionName === '(idle)') idleUs += us;
    // total time: every distinct function on the stack of this sample (recursion counted once)
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const node = byId.get(cur)!;
      const key = keyOf(node);
      if (seen.has(key)) continue;
      seen.add(key);
      let s = stats.get(key);
      if (!s) {
        s = { key, name: node.callFrame.functionName || '(anonymous)', where: where(node.callFrame), selfUs: 0, totalUs: 0 };
        stats.set(key, s);
      }
      s.totalUs += us;
      if (cur === id) s.selfUs += us;
    }
    const file = shortUrl(n.callFrame.url) || n.callFrame.functionName || '(native)';
    files.set(file, (files.get(file) ?? 0) + us);
  }
  const functions = [...stats.values()].filter((s) => s.name !== '(root)');
  functions.sort((a, b) => b.selfUs - a.selfUs);
  const fileList = [...files].map(([file, selfUs]) => ({ file, selfUs })).sort((a, b) => b.selfUs - a.selfUs);
  return { totalUs, busyUs: totalUs - idleUs, functions, files: fileList };
}

function pct(us: number, of: number): string {
  return of > 0 ? `${((us / of) * 100).toFixed(1)}%` : '-';
}

export function formatSummary(s: Summary, top: number, markdown: boolean): string {
  const lines: string[] = [];
  lines.push(`sampled ${(s.totalUs / 1e6).toFixed(2)} s, busy (not idle) ${(s.busyUs / 1e6).toFixed(2)} s; % are of busy time`);
  lines.push('');
  const fns = s.functions.filter((f) => f.name !== '(idle)').slice(0, top);
  if (markdown) {
    lines.push('| # | function | where | self | total |', '|---:|---|---|---:|---:|');
    fns.forEach((f, i) => lines.push(`| ${i + 1} | \`${f.name}\` | ${f.where || '(native)'} | ${pct(f.selfUs, s.busyUs)} | ${pct(f.totalUs, s.busyUs)} |`));
    lines.push('', '| file | self |', '|---|---:|');
    for (const f of s.files.filter((x) => x.file !== '(idle)').slice(0, top)) lines.push(`| ${f.file} | ${pct(f.selfUs, s.busyUs)} |`);
  } else {
    lines.push('   self   total  function  (where)');
    for (const f of fns) lines.push(`${pct(f.selfUs, s.busyUs).padStart(7)} ${pct(f.totalUs, s.busyUs).padStart(7)}  ${f.name}  ${f.where}`);
    lines.push('', '   self  file');
    for (const f of s.files.filter((x) => x.file !== '(idle)').slice(0, top)) lines.push(`${pct(f.selfUs, s.busyUs).padStart(7)}  ${f.file}`);
  }
  return lines.join('\n');
}

/** coarse groups of self time by file, for "where the time goes" (first matching rule wins) */
const GROUPS: Array<[string, RegExp]> = [
  ['idle', /^\(idle\)$/],
  ['GC', /^\(garbage collector\)$/],
  ['syscalls (writev, write, read)', /^(writev|writeBuffer|read|readv|close|internalConnect|latin1Write|utf8Write)$/],
  ['Lua VM (fengari)', /node_modules\/fengari\//],
  ['Lua host API (lib/modules/lua)', /^lib\/modules\/lua\//],
  ['subrequest (lib/http/subrequest)', /^lib\/http\/subrequest/],
  ['HTTP engine (lib/http, other modules\' filters)', /^lib\/(http|core|conf)\/|^lib\/modules\/(charset|gzip|headers|index)/],
  ['upstream + redis2 (lib/upstream, lib/modules/redis2)', /^lib\/(upstream|modules\/redis2)\//],
  ['other modules', /^lib\//],
  ['Node streams, net, buffers, timers', /^node:|^(FastBuffer|now|set length|slice|subarray|from|concat)$/],
];

export function groupSummary(s: Summary): Array<{ group: string; selfUs: number }> {
  const out = new Map<string, number>();
  for (const f of s.files) {
    const g = GROUPS.find(([, re]) => re.test(f.file))?.[0] ?? 'other (V8 builtins, native)';
    out.set(g, (out.get(g) ?? 0) + f.selfUs);
  }
  return [...out].map(([group, selfUs]) => ({ group, selfUs })).filter((g) => g.group !== 'idle').sort((a, b) => b.selfUs - a.selfUs);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const file = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--top');
  if (!file) {
    process.stderr.write('usage: profile-summary.ts FILE.cpuprofile [--top N] [--markdown]\n');
    process.exit(2);
  }
  const ti = args.indexOf('--top');
  const top = ti !== -1 ? Number(args[ti + 1]) : 15;
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(`${formatSummary(summarise(profile), top, args.includes('--markdown'))}\n`);
}
