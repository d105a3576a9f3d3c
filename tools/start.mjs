#!/usr/bin/env node
/*
 * `npm start`: serve a config (default: the bundled conf/nginx.conf) in the
 * foreground from a fresh clone, in one command.
 *
 *   1. build (tsc, then tools/bundle.mjs) when dist/ is missing or older than lib/;
 *   2. read the Redis address from the config's first upstream block
 *      (`server HOST:PORT`), or its first literal `redis2_pass HOST:PORT`;
 *   3. when nothing answers there and the address is on loopback, start a
 *      private `redis-server` at that address for this session only
 *      (`--save '' --appendonly no`, a temp dir), and say so in one line;
 *   4. run bin/redis2d -c CONFIG in the foreground (with `-g 'daemon off;'`
 *      unless the config already says `daemon off;`), forward INT, TERM,
 *      QUIT, HUP and USR1 to it (TERM too when our parent goes away), and
 *      when it exits stop the private Redis.
 *
 * redis2d itself never starts Redis: this is a development convenience.
 *
 * Environment:
 *   REDIS2D_CONF   the config to serve (default conf/nginx.conf of this package)
 *   REDIS_SERVER   the redis-server program (default: found on PATH)
 * Extra arguments go to redis2d (`npm start -- -e stderr`).
 *
 * Plain JavaScript so that it runs before anything is built.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'redis2d');
const CONF = resolve(process.env.REDIS2D_CONF || join(ROOT, 'conf', 'nginx.conf'));
const FORWARD = ['SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGHUP', 'SIGUSR1'];

function say(line) {
  process.stderr.write(`start: ${line}\n`);
}

function die(line, code = 1) {
  say(line);
  process.exit(code);
}

/** newest mtime (ms) of the files under dir whose name ends with ext */
function newest(dir, ext) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p, ext));
    else if (e.name.endsWith(ext)) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

function buildIfStale() {
  const out = join(ROOT, 'dist', 'lib', 'cli.js');
  const src = join(ROOT, 'lib');
  if (!existsSync(src)) return; // an installed package: dist/ is all there is
  const built = existsSync(out) ? statSync(out).mtimeMs : 0;
  const sources = Math.max(newest(src, '.ts'), statSync(join(ROOT, 'tsconfig.json')).mtimeMs);
  if (built >= sources) return;
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) die('dist/ is missing or older than lib/ and TypeScript is not installed: run `npm install` first');
  say(built ? 'lib/ is newer than dist/: building' : 'dist/ is missing: building');
  const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.json')], { stdio: 'inherit', cwd: ROOT });
  if (r.status !== 0) die('the build failed');
  // the one-file bundle bin/redis2d prefers (npm run build's second step); without it dist/lib runs
  const b = spawnSync(process.execPath, [join(ROOT, 'tools', 'bundle.mjs')], { stdio: 'inherit', cwd: ROOT });
  if (b.status !== 0) die('the bundle step failed');
}

/** the config without comments (a `#` outside quotes starts one) */
function stripComments(text) {
  let out = '';
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
      out += c;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else out += c;
  }
  return out;
}

/**
 * The Redis address the config talks to, read simply: the first `server`
 * line of the first upstream block, else the first `redis2_pass HOST:PORT`.
 * Undefined when neither names a host and port.
 */
export function redisAddress(text) {
  const conf = stripComments(text);
  const up = /\bupstream\s+[^\s{]+\s*\{([^}]*)\}/.exec(conf);
  const server = up && /(?:^|[;{\s])server\s+([^\s;]+)/.exec(up[1]);
  const pass = /\bredis2_pass\s+([^\s;$]+:\d+)\s*;/.exec(conf);
  const addr = server ? server[1] : pass ? pass[1] : undefined;
  const m = addr && /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(addr);
  if (!m) return undefined;
  return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

function isLoopback(host) {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** true when something at host:port answers a PING (any RESP reply) within ms */
function answers(host, port, ms = 1000) {
  return new Promise((res) => {
    const c = connect({ host: host === 'localhost' ? '127.0.0.1' : host, port });
    const done = (v) => {
      clearTimeout(timer);
      c.destroy();
      res(v);
    };
    const timer = setTimeout(() => done(false), ms);
    c.on('connect', () => c.write('PING\r\n'));
    c.on('data', (d) => done(/^[+\-:$*]/.test(d.toString('latin1'))));
    c.on('error', () => done(false));
    c.on('close', () => done(false));
  });
}

function findProgram(name) {
  for (const dir of (process.env.PATH || '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function startRedis(host, port) {
  const program = process.env.REDIS_SERVER || findProgram('redis-server');
  if (!program || !existsSync(program)) {
    die(
      `nothing answers at ${host}:${port} (the Redis of ${CONF}) and redis-server is not installed:\n` +
        '    apt-get install redis-server\n' +
        `  or start any Redis at ${host}:${port} yourself, then run this again`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'redis2d-start-'));
  const bind = host === 'localhost' ? '127.0.0.1' : host;
  // its own process group: a terminal's ^C reaches redis2d, and Redis stays up until redis2d is gone
  const proc = spawn(
    program,
    ['--bind', bind, '--port', String(port), '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir, '--logfile', join(dir, 'redis.log')],
    { stdio: 'ignore', detached: true },
  );
  let exited = false;
  proc.on('exit', () => (exited = true));
  proc.on('error', (e) => die(`could not run ${program}: ${e.message}`));
  for (let i = 0; i < 100 && !exited; i++) {
    if (await answers(host, port, 200)) {
      say(`no Redis answered at ${host}:${port}: started a private redis-server there for this session (pid ${proc.pid}, no persistence); it stops when redis2d exits`);
      return { proc, dir, isExited: () => exited };
    }
    await sleep(50);
  }
  let log = '';
  try {
    log = readFileSync(join(dir, 'redis.log'), 'utf8').trim().split('\n').slice(-3).join('\n    ');
  } catch {
    /* no log */
  }
  if (!exited) proc.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  die(`redis-server did not start at ${host}:${port}${log ? `:\n    ${log}` : ''}`);
}

async function stopRedis(r) {
  if (!r) return;
  if (!r.isExited()) {
    r.proc.kill('SIGTERM');
    for (let i = 0; i < 100 && !r.isExited() && alive(r.proc.pid); i++) await sleep(50);
    if (!r.isExited() && alive(r.proc.pid)) r.proc.kill('SIGKILL');
  }
  rmSync(r.dir, { recursive: true, force: true });
}

async function main() {
  if (!existsSync(CONF)) die(`no config at ${CONF}`);
  buildIfStale();

  const text = readFileSync(CONF, 'latin1');
  const addr = redisAddress(text);
  let redis;
  if (!addr) say(`no upstream server or redis2_pass HOST:PORT found in ${CONF}: not checking for Redis`);
  else if (!(await answers(addr.host, addr.port))) {
    if (isLoopback(addr.host)) redis = await startRedis(addr.host, addr.port);
    else say(`nothing answers at ${addr.host}:${addr.port} (not loopback: not starting a Redis there)`);
  }

  const args = [BIN, '-c', CONF];
  if (!/(^|[;{}\s])daemon\s+off\s*;/.test(stripComments(text))) args.push('-g', 'daemon off;');
  args.push(...process.argv.slice(2));
  const child = spawn(process.execPath, args, { stdio: 'inherit' });
  const forward = (sig) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  for (const sig of FORWARD) process.on(sig, () => forward(sig));
  // our parent gone (npm killed, a shell closed): stop as on SIGTERM rather than leave Redis behind
  const ppid = process.ppid;
  if (ppid > 1) {
    setInterval(() => {
      if (process.ppid !== ppid) forward('SIGTERM');
    }, 500).unref();
  }
  const [code, signal] = await new Promise((res) => {
    child.on('exit', (c, s) => res([c, s]));
    child.on('error', (e) => {
      say(`could not run redis2d: ${e.message}`);
      res([1, null]);
    });
  });
  await stopRedis(redis);
  if (redis) say('stopped the private redis-server');
  process.exit(code ?? (signal === 'SIGINT' || signal === 'SIGTERM' ? 0 : 1));
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  main().catch((e) => die(`${e && e.stack ? e.stack : e}`));
}
