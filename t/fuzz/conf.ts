import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Rng, caseSeed } from './prng.js';

/*
 * Config fuzzing: the fixtures' configs (fixtures/conf) mutated token by
 * token (deleted, repeated, swapped, replaced by words from nginx's
 * vocabulary and edge values, random bytes, deep nesting, cuts), loaded by
 * redis2d's own loader in a child process (a crash is any exception other
 * than a ConfError; a hang is a load over HANG_MS, the child then killed
 * and restarted), and, where the config does not use redis2, judged by
 * Debian's `nginx -t` too: one passing where the other fails is a
 * difference; both failing with different first [emerg] lines is counted
 * apart. nginx -t binds the listen sockets, so it only runs in a private
 * network namespace (`unshare -n`, loopback up): a mutated config may
 * listen on port 80 there without touching the machine's.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const NGINX = '/usr/sbin/nginx';
const HANG_MS = 5000;

export function confSeeds(): string[] {
  const dir = join(ROOT, 'fixtures', 'conf');
  const seeds = readdirSync(dir)
    .filter((f) => f.endsWith('.conf'))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'latin1'));
  seeds.push('events {}\nhttp {\n  server {\n    listen 127.0.0.1:8099;\n    location / { return 200 "ok"; }\n    location ~ ^/(a|b)$ { set $x $1; return 200 $x; }\n  }\n}\n');
  return seeds;
}

const VOCAB = [
  '{', '}', ';', '"', "'", '\\', '$', '${', '${x}', '#', 'location', 'server', 'if', '(', ')', '~', '~*', '=', '^~', '@n',
  'include', '*', 'on', 'off', '0', '-1', '1', '65535', '65536', '9223372036854775807', '9223372036854775808', '99999999999999999999',
  '1k', '1K', '8g', '1G', '1s', '1d', '1y', '500ms', '1h30m', '$uri', '$arg_', '$1', '$9', 'http', 'events', 'upstream', 'listen',
  '127.0.0.1:8098', '[::1]:8097', 'unix:/tmp/x.sock', 'return', '200', '302', '999', 'rewrite', '^(.*)$', '(?<n>x)', '[', 'redis2_pass',
  'redis2_query', 'map', 'default', 'hostnames', 'set', 'echo', 'error_page', 'root', 'alias', 'try_files', 'index', 'keepalive',
  'worker_connections', 'server_name', '*.x', '.x', '~^(?<h>.+)$', 'types', 'text/html', 'access_log', 'log_format', 'off;',
  'add_header', 'always', 'allow', 'deny', 'all', '10.0.0.0/33', 'limit_except', 'GET', 'internal', 'client_max_body_size',
  'large_client_header_buffers', 'max_headers', 'x'.repeat(5000), '"a\\"b"', "'\\''", '"\\x00"',
];

function tokenize(text: string): string[] {
  return text.match(/"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|[{};]|[^\s{};"']+|\s+|["']/g) ?? [];
}

export function genConf(seed: number, i: number, seeds: string[]): string {
  const rnd = new Rng(caseSeed(seed ^ 0xc0f, i));
  const toks = tokenize(rnd.pick(seeds));
  const words = (): number[] => toks.map((t, k) => (/^\s+$/.test(t) ? -1 : k)).filter((k) => k >= 0);
  const n = rnd.range(1, 3);
  for (let m = 0; m < n; m++) {
    const w = words();
    if (!w.length) break;
    const k = rnd.pick(w);
    switch (rnd.int(8)) {
      case 0:
        toks.splice(k, 1);
        break;
      case 1:
        toks.splice(k, 0, toks[k]!, ' ');
        break;
      case 2: {
        const j = rnd.pick(w);
        [toks[k], toks[j]] = [toks[j]!, toks[k]!];
        break;
      }
      case 3:
      case 4:
        toks[k] = rnd.pick(VOCAB);
        break;
      case 5:
        toks.splice(k, 0, rnd.str('{};"\'$\\#\x00\xff\n ab', rnd.range(1, 4)));
        break;
      case 6: {
        // nest what follows a `{` deeper
        const d = rnd.pick([2, 10, 100, 3000]);
        if (toks[k] === '{') toks.splice(k + 1, 0, `${'location /a { '.repeat(d)}`, `${' }'.repeat(d)}`);
        else toks.splice(k, 0, ' ');
        break;
      }
      default:
        toks.splice(k);
    }
  }
  return toks.join('');
}

export interface ConfReport {
  cases: number;
  crashes: Array<{ index: number; text: string; stack: string }>;
  hangs: Array<{ index: number; text: string }>;
  /** one passes -t, the other fails */
  diffs: Array<{ index: number; text: string; redis2d: string; nginx: string }>;
  diffCount: number;
  /** both fail, with different first [emerg] lines */
  messageDiffs: number;
  messageExamples: Array<{ index: number; redis2d: string; nginx: string }>;
  compared: number;
  nginx: boolean;
  ms: number;
}

/** nginx -t can run here without binding the machine's sockets (a private network namespace) */
function inPrivateNetns(): boolean {
  return process.env.REDIS2D_FUZZ_NETNS === '1';
}

function nginxT(dir: string, text: string): { ok: boolean; first: string } {
  const file = join(dir, 'n.conf');
  writeFileSync(file, text, 'latin1');
  const r = spawnSync(NGINX, ['-t', '-q', '-e', 'stderr', '-p', `${dir}/`, '-c', file], { encoding: 'latin1', timeout: 10000 });
  const first = (r.stderr ?? '').split('\n').find((l) => /\[(emerg|alert|crit)\]/.test(l)) ?? '';
  return { ok: r.status === 0, first: first.replace(/^.*?\[(\w+)\] (\d+#\d+: )?/, '[$1] ').replaceAll(file, 'CONF') };
}

export async function runConfFuzz(opts: { seed: number; from?: number; count: number; maxDiffs?: number; log?: (s: string) => void }): Promise<ConfReport> {
  const t0 = Date.now();
  const from = opts.from ?? 0;
  const max = opts.maxDiffs ?? 20;
  const seeds = confSeeds();
  const dir = mkdtempSync(join(tmpdir(), 'r2d-conffuzz-'));
  mkdirSync(join(dir, 'logs'));
  mkdirSync(join(dir, 'html'));
  const withNginx = existsSync(NGINX) && inPrivateNetns();
  const report: ConfReport = { cases: 0, crashes: [], hangs: [], diffs: [], diffCount: 0, messageDiffs: 0, messageExamples: [], compared: 0, nginx: withNginx, ms: 0 };
  let child: ChildProcess | undefined;
  let pending: ((m: { kind: string; text: string } | undefined) => void) | undefined;
  const startChild = async (): Promise<void> => {
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    child = fork(join(ROOT, 't/fuzz/conf_child.ts'), [dir], { execArgv: ['--import', 'tsx'], env, cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    child.stderr!.on('data', () => {});
    child.on('message', (m: { i: number; kind: string; text: string }) => {
      const p = pending;
      pending = undefined;
      p?.(m);
    });
    child.on('exit', () => {
      const p = pending;
      pending = undefined;
      p?.(undefined);
    });
    await new Promise<void>((r) => (pending = () => r()));
  };
  const load = (i: number, text: string): Promise<{ kind: string; text: string } | 'hang'> =>
    new Promise((resolveLoad) => {
      const timer = setTimeout(() => {
        pending = undefined;
        child?.kill('SIGKILL');
        resolveLoad('hang');
      }, HANG_MS);
      pending = (m) => {
        clearTimeout(timer);
        resolveLoad(m ?? { kind: 'crash', text: 'the loader process died' });
      };
      child!.send({ i, text });
    });
  try {
    await startChild();
    for (let i = from; i < from + opts.count; i++) {
      const text = genConf(opts.seed, i, seeds);
      const r = await load(i, text);
      report.cases++;
      if (r === 'hang') {
        if (report.hangs.length < max) report.hangs.push({ index: i, text });
        await startChild();
        continue;
      }
      if (r.kind === 'crash') {
        if (report.crashes.length < max) report.crashes.push({ index: i, text, stack: r.text });
        if (child?.exitCode !== null) await startChild();
        continue;
      }
      if (withNginx && !/redis2|^# nodiff/.test(text)) {
        report.compared++;
        const n = nginxT(dir, text);
        const mineOk = r.kind === 'ok';
        if (mineOk !== n.ok) {
          report.diffCount++;
          if (report.diffs.length < max) report.diffs.push({ index: i, text, redis2d: mineOk ? 'ok' : r.text, nginx: n.ok ? 'ok' : n.first });
        } else if (!mineOk) {
          const mine = r.text.replace(/^\[(\w+)\] /, '[$1] ').replaceAll(join(dir, 'nginx.conf'), 'CONF');
          if (mine !== n.first) {
            report.messageDiffs++;
            if (report.messageExamples.length < max) report.messageExamples.push({ index: i, redis2d: mine, nginx: n.first });
          }
        }
      }
      if ((i - from) % 100 === 99) opts.log?.(`${report.cases} configs, ${report.crashes.length} crashes, ${report.hangs.length} hangs, ${report.diffCount} pass/fail differences, ${report.messageDiffs} message differences (${report.compared} compared with nginx)`);
    }
  } finally {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
  report.ms = Date.now() - t0;
  return report;
}
