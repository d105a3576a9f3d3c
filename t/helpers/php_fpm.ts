import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/*
 * Debian's php-fpm as an instance of its own, for FastCGI tests: its own
 * php-fpm.conf and php.ini in a temporary directory (no system pool, no
 * system ini scan directory), one static pool of 2 workers on an ephemeral
 * 127.0.0.1 port, in the foreground, and a docroot of test scripts:
 *
 *   index.php   text/plain lines SCRIPT_FILENAME=, SCRIPT_NAME=, PATH_INFO=,
 *               REQUEST_METHOD=, QUERY_STRING=, CONTENT_TYPE=, CONTENT_LENGTH=,
 *               BODY_LENGTH=, then BODY= and the request body (php://input)
 *   header.php  header('X-A: b') and http_response_code(404), body "not here\n"
 *   stderr.php  error_log() (reaches the web server as FastCGI STDERR,
 *               "PHP message: ...") and a write to the worker's stderr (caught
 *               by php-fpm into its error log: catch_workers_output)
 *   env.php     $_SERVER as JSON (the FastCGI params as PHP sees them)
 *   big.php     ?n=N bytes of 'x' in 8 KiB echoes
 *
 * As root, the workers run as nobody (docroot made world-readable).
 */

export const PHP_FPM = '/usr/sbin/php-fpm8.2';

export interface PhpFpm {
  port: number;
  /** the docroot holding the test scripts */
  root: string;
  /** the temporary directory (php-fpm.conf, logs, docroot) */
  dir: string;
  /** php-fpm's own error log (worker stderr lands here) */
  errorLogPath: string;
  errorLog(): string;
  /** stop php-fpm (SIGQUIT, SIGKILL after 3 s), wait, remove the directory */
  stop(): Promise<void>;
}

export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

/** why php-fpm tests cannot run here, or undefined when they can */
export function phpFpmMissing(): string | undefined {
  return existsSync(PHP_FPM) ? undefined : `${PHP_FPM} is not installed (Debian's php8.2-fpm)`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function exited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null;
}

function waitExit(proc: ChildProcess, ms: number): Promise<boolean> {
  if (exited(proc)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      proc.off('exit', onExit);
      resolve(false);
    }, ms);
    proc.once('exit', onExit);
  });
}

const SCRIPTS: Record<string, string> = {
  'index.php': `<?php
header('Content-Type: text/plain');
$in = file_get_contents('php://input');
foreach (['SCRIPT_FILENAME', 'SCRIPT_NAME', 'PATH_INFO', 'REQUEST_METHOD', 'QUERY_STRING', 'CONTENT_TYPE', 'CONTENT_LENGTH'] as $k) {
    echo $k, '=', $_SERVER[$k] ?? '', "\\n";
}
echo 'BODY_LENGTH=', strlen($in), "\\n";
echo 'BODY=', $in;
`,
  'header.php': `<?php
header('X-A: b');
http_response_code(404);
echo "not here\\n";
`,
  'stderr.php': `<?php
error_log('to the web server via error_log');
$err = defined('STDERR') ? STDERR : fopen('php://stderr', 'w');
fwrite($err, "to the worker stderr\\n");
echo "logged\\n";
`,
  'env.php': `<?php
header('Content-Type: application/json');
$s = $_SERVER;
ksort($s);
echo json_encode($s, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
`,
  'big.php': `<?php
header('Content-Type: application/octet-stream');
$n = max(0, min((int) ($_GET['n'] ?? 0), 1 << 28));
$piece = str_repeat('x', 8192);
for (; $n >= 8192; $n -= 8192) echo $piece;
echo str_repeat('x', $n);
`,
};

/** Start a php-fpm instance; with `t`, it is stopped in t.teardown. Ready within 15 s or it throws. */
export async function startPhpFpm(t?: TeardownHost): Promise<PhpFpm> {
  const missing = phpFpmMissing();
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), 'redis2d-php-fpm-'));
  const root = join(dir, 'www');
  const scanDir = join(dir, 'conf.d'); // empty: no system extensions' ini files
  mkdirSync(root);
  mkdirSync(scanDir);
  for (const [name, text] of Object.entries(SCRIPTS)) writeFileSync(join(root, name), text);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    /* the workers run as nobody: they must reach the scripts */
    chmodSync(dir, 0o755);
    chmodSync(root, 0o755);
    for (const name of Object.keys(SCRIPTS)) chmodSync(join(root, name), 0o644);
  }
  const port = await freePort();
  const errorLogPath = join(dir, 'php-fpm.log');
  const conf = join(dir, 'php-fpm.conf');
  const group = existsSync('/etc/group') && /^nobody:/m.test(readFileSync('/etc/group', 'latin1')) ? 'nobody' : 'nogroup';
  writeFileSync(
    conf,
    [
      '[global]',
      `pid = ${join(dir, 'php-fpm.pid')}`,
      `error_log = ${errorLogPath}`,
      'daemonize = no',
      'log_level = notice',
      '',
      '[test]',
      ...(asRoot ? ['user = nobody', `group = ${group}`] : []),
      `listen = 127.0.0.1:${port}`,
      'listen.allowed_clients = 127.0.0.1',
      'pm = static',
      'pm.max_children = 2',
      'clear_env = no',
      'catch_workers_output = yes',
      'decorate_workers_output = no',
      '',
    ].join('\n'),
  );
  const ini = join(dir, 'php.ini');
  writeFileSync(ini, ['log_errors = On', 'display_errors = Off', 'error_reporting = E_ALL', 'html_errors = Off', ''].join('\n'));
  const env = { ...process.env, PHP_INI_SCAN_DIR: scanDir };
  const args = ['--nodaemonize', '--fpm-config', conf, '-c', ini];
  if (asRoot) args.push('-R'); // allowed to start as root; the pool itself runs as nobody
  const proc = spawn(PHP_FPM, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.setEncoding('latin1');
  proc.stderr!.on('data', (d: string) => {
    if (stderr.length < 65536) stderr += d;
  });
  const errorLog = (): string => (existsSync(errorLogPath) ? readFileSync(errorLogPath, 'latin1') : '');
  const stop = async (): Promise<void> => {
    if (!exited(proc)) {
      proc.kill('SIGQUIT');
      if (!(await waitExit(proc, 3000))) {
        proc.kill('SIGKILL');
        await waitExit(proc, 3000);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  t?.teardown(stop);
  const deadline = Date.now() + 15000;
  for (;;) {
    if (exited(proc)) {
      const why = `php-fpm exited (${proc.exitCode ?? proc.signalCode}): ${stderr}${errorLog()}`;
      await stop();
      throw new Error(why);
    }
    if (await canConnect(port)) break;
    if (Date.now() > deadline) {
      const why = `php-fpm did not listen on ${port} within 15 s: ${stderr}${errorLog()}`;
      await stop();
      throw new Error(why);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, root, dir, errorLogPath, errorLog, stop };
}
