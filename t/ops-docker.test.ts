import { spawn, spawnSync } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import t from 'tap';
import { chunkedBody } from './helpers/http_redis.js';
import { cleanup, request, ROOT, tempPrefix, waitFor } from './helpers/proc.js';
import { freePort, startRedis } from './helpers/redis.js';

/*
 * The Dockerfile without docker: its stages are replayed in a temp dir, one
 * folder per stage standing for the image's filesystem. COPY copies from the
 * checkout (or from an earlier stage's folder), RUN runs through `sh -c` in
 * the stage's WORKDIR with absolute paths moved into the stage folder and
 * npm's global prefix at the stage's /usr/local (the node image's). Every
 * command runs as written: npm ci (from npm's cache when it has the
 * packages), npm pack, the global install of the tarball, the build-time
 * `redis2d -t`. Then the CMD is judged (-t) and run against a loopback copy
 * of the image's config, and stopped with the STOPSIGNAL.
 */

const DOCKERFILE = join(ROOT, 'Dockerfile');

interface Stage {
  from: string;
  name: string | undefined;
  steps: [string, string][];
}

/** instructions per stage: continuation lines joined, comments dropped */
function parse(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`cannot read Dockerfile line: ${line}`);
    const [, op, rest] = m as unknown as [string, string, string];
    if (op.toUpperCase() === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest)!;
      stages.push({ from: f[1]!, name: f[2], steps: [] });
    } else stages.at(-1)!.steps.push([op.toUpperCase(), rest]);
  }
  return stages;
}

const stages = parse(readFileSync(DOCKERFILE, 'utf8'));
const final = stages.at(-1)!;
const step = (s: Stage, op: string): string[] => s.steps.filter(([o]) => o === op).map(([, v]) => v);
const cmd: string[] = JSON.parse(step(final, 'CMD').at(-1)!);
const confIn = (argv: string[]): string => argv[argv.indexOf('-c') + 1]!;

t.test('the Dockerfile has the expected shape', async (t) => {
  t.equal(final.from, 'node:20-bookworm-slim', 'runs on Debian 12 with Node 20');
  t.equal(step(final, 'EXPOSE').join(' '), '8080', 'exposes 8080');
  t.equal(cmd[0], 'redis2d', 'CMD runs redis2d (exec form)');
  t.same(cmd.slice(cmd.indexOf('-g'), cmd.indexOf('-g') + 2), ['-g', 'daemon off;'], "in the foreground (-g 'daemon off;')");
  const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
  for (const p of ['node_modules', 'dist', '.git']) t.ok(ignore.includes(p), `.dockerignore leaves out ${p}`);
  t.equal(Number(process.versions.node.split('.')[0]), 20, 'this Node has the image\'s major version');
});

t.test('the Dockerfile steps, replayed without docker, give a working redis2d', { timeout: 240000 }, async (t) => {
  const tmp = tempPrefix('docker');
  t.teardown(() => cleanup(tmp));
  const roots = new Map<string, string>();
  const env: NodeJS.ProcessEnv = {};
  // npm's own settings from an outer `npm test` must not steer the npm of the steps
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'NODE_OPTIONS' && k !== 'INIT_CWD') env[k] = v;
  let root = '';

  const inRoot = (p: string): string => join(root, p);
  // absolute paths in a command (a word starting with /) move into the stage folder
  const mapCommand = (c: string): string => c.replace(/(^|[\s='"])\/(?=[A-Za-z])/g, `$1${root}/`);

  for (const [i, stage] of stages.entries()) {
    root = join(tmp, `stage${i}`);
    mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
    if (stage.name) roots.set(stage.name, root);
    let workdir = '/';
    const stageEnv = { ...env, PATH: `${root}/usr/local/bin:${env.PATH}`, npm_config_prefix: `${root}/usr/local`, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' };
    for (const [op, arg] of stage.steps) {
      if (op === 'WORKDIR') {
        workdir = arg.startsWith('/') ? arg : join(workdir, arg);
        mkdirSync(inRoot(workdir), { recursive: true });
      } else if (op === 'COPY') {
        const words = arg.split(/\s+/);
        const from = words[0]!.startsWith('--from=') ? roots.get(words.shift()!.slice(7)) : undefined;
        const dest = words.pop()!;
        const to = inRoot(dest.startsWith('/') ? dest : join(workdir, dest));
        for (const src of words) {
          const path = from ? join(from, src) : join(ROOT, src);
          t.ok(existsSync(path), `COPY source ${src} exists`);
          if (statSync(path).isDirectory()) cpSync(path, to, { recursive: true });
          else if (dest.endsWith('/') || words.length > 1) cpSync(path, join(to, basename(src)));
          else cpSync(path, to);
        }
      } else if (op === 'RUN') {
        const command = mapCommand(arg);
        const t0 = Date.now();
        // through /usr/bin/env -u NODE_OPTIONS: tap adds its loaders to spawns, which must not reach these
        // stdout to a file, as docker's build log takes it: a Node pipe is a socket, which /dev/stdout cannot open
        const outFd = openSync(join(tmp, `run-${i}.out`), 'w');
        const r = spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', '/bin/sh', '-c', command], {
          cwd: inRoot(workdir),
          env: stageEnv,
          encoding: 'utf8',
          timeout: 120000,
          stdio: ['ignore', outFd, 'pipe'],
        });
        closeSync(outFd);
        if (r.status !== 0 && /\bnpm\b/.test(arg) && /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ENETUNREACH|ETIMEDOUT|ENOTCACHED/.test(r.stderr)) {
          t.skip(`RUN ${arg}: npm could not fetch packages (no network, and not in npm's cache)`);
          return;
        }
        t.equal(r.status, 0, `RUN ${arg} (${((Date.now() - t0) / 1000).toFixed(1)} s)`, { stderr: r.stderr.slice(-2000) });
        if (r.status !== 0) return;
      } else if (!['EXPOSE', 'CMD', 'STOPSIGNAL', 'ENV', 'USER', 'LABEL'].includes(op)) {
        t.fail(`the replay does not know ${op}`);
      }
    }
  }

  // the final stage: redis2d on PATH from the global install, the config where CMD says
  const installed = join(root, 'usr/local/bin/redis2d');
  t.ok(existsSync(installed), 'npm install --global put redis2d on PATH');
  const conf = inRoot(confIn(cmd));
  const runEnv = { ...env, PATH: `${root}/usr/local/bin:${env.PATH}` };
  const judgedOut = openSync(join(tmp, 'cmd-t.out'), 'w');
  const judged = spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', installed, ...cmd.slice(1).map((a) => (a === confIn(cmd) ? conf : a)), '-t'], {
    env: runEnv,
    encoding: 'utf8',
    timeout: 30000,
    stdio: ['ignore', judgedOut, 'pipe'],
  });
  closeSync(judgedOut);
  t.equal(judged.status, 0, 'CMD with -t: the image config is good', { stderr: judged.stderr });
  t.match(judged.stderr, 'test is successful');
  const text = readFileSync(conf, 'utf8');
  t.match(text, /^\s*listen\s+8080;/m, 'the image config listens on the exposed port');
  t.notMatch(text, /^\s*daemon\s/m, "it leaves daemon to CMD's -g (a second one is a duplicate)");

  // serve: the image config on loopback ports, a pid file in the temp dir
  const redis = await startRedis(t);
  const port = await freePort();
  const local = join(root, 'etc/redis2d/loopback.conf');
  writeFileSync(
    local,
    text
      .replace(/^(\s*)listen\s+8080;/m, `$1listen 127.0.0.1:${port};`)
      .replace(/(upstream\s+\S+\s*\{[^}]*?server\s+)127\.0\.0\.1:6379/, `$1127.0.0.1:${redis.port}`)
      .replace(/^pid\s+\S+;/m, `pid ${tmp}/redis2d.pid;`),
  );
  const args = cmd.slice(1).map((a) => (a === confIn(cmd) ? local : a));
  // stdout a file, as docker gives a FIFO: the access log opens /dev/stdout, which a socket (Node's 'pipe') refuses
  const stdoutFile = join(tmp, 'stdout');
  const stdoutFd = openSync(stdoutFile, 'a');
  const proc = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', installed, ...args], { env: runEnv, stdio: ['ignore', stdoutFd, 'pipe'] });
  closeSync(stdoutFd);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString('latin1')));
  const exited = new Promise<number | null>((res) => proc.on('exit', (c) => res(c)));
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  await waitFor('the installed redis2d to listen', async () => (await request(port, '/health/redis').catch(() => '')) || false, 10000).catch((e) => {
    throw new Error(`${e.message} (exit ${proc.exitCode}); it said:\n${err}`);
  });
  t.equal(chunkedBody(await request(port, '/health/redis')), '+PONG\r\n', 'the installed redis2d serves the image config');
  await waitFor('the access line on stdout', () => readFileSync(stdoutFile, 'latin1').includes('GET /health/redis'), 5000);
  const stop = step(final, 'STOPSIGNAL').at(-1) ?? 'SIGTERM';
  proc.kill(stop as NodeJS.Signals);
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([exited, new Promise<string>((res) => (timer = setTimeout(() => res('timeout'), 10000)))]);
  clearTimeout(timer);
  t.equal(code, 0, `${stop} (STOPSIGNAL) stops it, exit 0`);
});
