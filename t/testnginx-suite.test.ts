import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { BIN, cleanup, ROOT, tempPrefix } from './helpers/proc.js';
import { freePort } from './helpers/redis.js';

/*
 * tools/testnginx-suite.sh on a tiny fake suite: plain Test::More files
 * stand for a module's t/*.t, and a stub Test/Nginx/Socket.pm for
 * test-nginx's lib/. Checks its argument handling, the rows and the TOTAL,
 * the exit status, the environment it gives the files, and the private
 * redis-server it starts and stops.
 */

const RUNNER = join(ROOT, 'tools/testnginx-suite.sh');
const haveProve = existsSync('/usr/bin/prove') ? false : 'prove not installed (apt-get install perl)';
const haveRedis = existsSync('/usr/bin/redis-server') ? false : 'redis-server not installed (apt-get install redis-server)';

const FILES: Record<string, string> = {
  'pass.t': `use Test::More tests => 3;
ok(1, 'one');
ok(1, 'two');
SKIP: { skip 'needs lua', 1; ok(0); }
`,
  'fail.t': `use Test::More tests => 3;
ok(1, 'one');
ok(0, 'two');
`,
  'whole.t': `use Test::More skip_all => 'no lua here';
`,
  'bail.t': `use Test::More tests => 4;
ok(1, 'one');
BAIL_OUT('Cannot start nginx');
`,
  'env.t': `use Test::More tests => 7;
use IO::Socket::INET;
like(\`$ENV{TEST_NGINX_BINARY} -V 2>&1\`, qr/redis2d version/, 'TEST_NGINX_BINARY runs');
is($ENV{TEST_NGINX_NO_SHUFFLE}, 1, 'blocks in file order');
is($ENV{TEST_NGINX_IGNORE_MISSING_DIRECTIVES}, $ENV{EXPECT_IGNORE}, 'IGNORE_MISSING passed on');
ok(!defined $ENV{TEST_NGINX_USE_HUP}, "the caller's TEST_NGINX_ settings are dropped");
ok(!defined $ENV{NODE_OPTIONS}, 'no NODE_OPTIONS');
use Cwd; ok(-e 't/env.t' && getcwd() ne $ENV{MODULE_CHECKOUT}, 'runs in a copy of the module dir');
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ENV{TEST_NGINX_REDIS_PORT});
print $s "PING\\r\\n" if $s;
is($s ? scalar <$s> : 'no connection', "+PONG\\r\\n", 'a Redis answers at TEST_NGINX_REDIS_PORT');
`,
};

function fakeSuite(dir: string, socketPm = 'package Test::Nginx::Socket; 1;\n'): { mod: string; lib: string } {
  const mod = join(dir, 'module');
  const lib = join(dir, 'test-nginx-lib');
  mkdirSync(join(mod, 't'), { recursive: true });
  mkdirSync(join(lib, 'Test/Nginx'), { recursive: true });
  writeFileSync(join(lib, 'Test/Nginx/Socket.pm'), socketPm);
  for (const [name, text] of Object.entries(FILES)) writeFileSync(join(mod, 't', name), text);
  return { mod, lib };
}

function run(args: string[], env: Record<string, string> = {}) {
  // through /usr/bin/env -u NODE_OPTIONS: tap adds its loaders to spawns; the runner must drop any it gets anyway
  const r = spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', `NODE_OPTIONS=--no-such-flag`, RUNNER, ...args], {
    env: { ...process.env, TEST_NGINX_USE_HUP: '1', ...env },
    encoding: 'utf8',
    timeout: 60000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function listening(port: number): Promise<boolean> {
  return new Promise((res) => {
    const c = connect(port, '127.0.0.1');
    c.on('connect', () => {
      c.destroy();
      res(true);
    });
    c.on('error', () => res(false));
  });
}

/** the numbers of a row: planned, run, pass, skip, fail */
function row(out: string, name: string): number[] | undefined {
  const m = new RegExp(`^${name.replace('.', '\\.')}\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)`, 'm').exec(out);
  return m?.slice(1).map(Number);
}

t.test('arguments', async (t) => {
  const dir = tempPrefix('tns-args');
  t.teardown(() => cleanup(dir));
  const { mod, lib } = fakeSuite(dir);
  const none = run([]);
  t.equal(none.code, 2, 'no arguments: exit 2');
  t.match(none.err, 'usage: ', 'and the usage line');
  t.equal(run(['--bogus', BIN, mod, lib]).code, 2, 'unknown option: exit 2');
  const bin = run([join(dir, 'nope'), mod, lib]);
  t.equal(bin.code, 2);
  t.match(bin.err, 'is not an executable file');
  const noT = run([BIN, dir, lib]);
  t.equal(noT.code, 2);
  t.match(noT.err, 'has no t/ folder');
  const noLib = run([BIN, mod, dir]);
  t.equal(noLib.code, 2);
  t.match(noLib.err, 'has no Test/Nginx/Socket.pm');
  const file = run([BIN, mod, lib, 't/nope.t']);
  t.equal(file.code, 2);
  t.match(file.err, 't/nope.t not found');
});

t.test('Test::Nginx that does not load: the Debian packages to install', { skip: haveProve }, async (t) => {
  const dir = tempPrefix('tns-perl');
  t.teardown(() => cleanup(dir));
  const { mod, lib } = fakeSuite(dir, 'package Test::Nginx::Socket; use No::Such::Module::Here; 1;\n');
  const r = run([BIN, mod, lib]);
  t.equal(r.code, 2, 'exit 2: the suite could not run');
  t.match(r.err, 'Test::Nginx does not load');
  t.match(r.err, 'apt-get install libtest-base-perl');
});

t.test('a fake suite: rows, TOTAL, exit status, environment, private Redis', { skip: haveProve || haveRedis }, async (t) => {
  const dir = tempPrefix('tns-run');
  t.teardown(() => cleanup(dir));
  const { mod, lib } = fakeSuite(dir);
  const port = await freePort();
  const work = join(dir, 'work');
  const r = run(['--ignore-missing', BIN, mod, lib], { REDIS_PORT: String(port), EXPECT_IGNORE: '1', MODULE_CHECKOUT: mod, WORK_DIR: work });
  t.equal(r.code, 1, 'exit 1: a file failed');
  t.match(r.out, `redis:   private redis-server on 127.0.0.1:${port}`, 'started a private Redis (nothing answered)');
  t.match(r.out, 'missing directives: skipped (IGNORE_MISSING)');
  t.same(row(r.out, 'env.t'), [7, 7, 7, 0, 0], 'env.t: the environment the files get');
  t.same(row(r.out, 'pass.t'), [3, 3, 2, 1, 0], 'pass.t: 2 pass, 1 skip');
  t.same(row(r.out, 'fail.t'), [3, 2, 1, 0, 1], 'fail.t: 1 fail, 1 never ran');
  t.match(r.out, /^fail\.t .*FAIL \(planned 3, ran 2\)$/m, 'with the reason');
  t.match(r.out, /^whole\.t .*skipped: no lua here$/m, 'a file skipped as a whole says why');
  t.same(row(r.out, 'bail.t'), [4, 1, 1, 0, 0], 'bail.t: 1 pass, then the bail-out');
  t.match(r.out, /^bail\.t .*FAIL \(planned 4, ran 1\), bailed out$/m, 'a bail-out is named');
  t.match(r.out, /^ {2}bail\.t: Bailout called\..*Cannot start nginx/m, 'with its reason');
  t.same(row(r.out, 'TOTAL'), [17, 13, 11, 1, 1], 'TOTAL sums the rows');
  t.match(r.out, '  fail.t: not ok 2 - two', 'the failed assertion is listed');
  t.ok(existsSync(join(work, 'tap/fail.tap')), 'the TAP of each file is kept in WORK_DIR');
  t.notOk(existsSync(join(mod, 't/servroot')), 'the module checkout is left alone');
  t.notOk(await listening(port), 'the private Redis is stopped at the end');

  const ok = run([BIN, mod, lib, 't/pass.t', 't/whole.t'], { REDIS_PORT: String(port) });
  t.equal(ok.code, 0, 'exit 0 when every planned assertion ran and none failed');
  t.match(ok.out, 'redis:   not used by these files', 'no Redis for files that do not mention it');
  t.same(row(ok.out, 'TOTAL'), [3, 3, 2, 1, 0]);
});

// A daemon the suite starts is an orphan once its foreground process returns;
// under the runner it must be reparented to tools/subreaper.pl and reaped the
// moment it exits (Test::Nginx waits for `kill 0` to fail after QUIT).
const ORPHAN_T = `use Test::More tests => 2;
use POSIX ();
use Time::HiRes qw(time sleep);
pipe(my $r, my $w) or die;
my $fg = fork() // die;
if ($fg == 0) {
    my $d = fork() // POSIX::_exit(1);
    if ($d == 0) { close $r; print $w "$$\\n"; close $w; sleep 30; POSIX::_exit(0); }
    POSIX::_exit(0);
}
close $w;
waitpid($fg, 0);
chomp(my $d = <$r>);
open(my $st, '<', "/proc/$d/status") or die "no /proc/$d";
my ($ppid) = map { /^PPid:\\s*(\\d+)/ ? $1 : () } <$st>;
open(my $cl, '<', "/proc/$ppid/cmdline") or die;
my $cmd = join(' ', split(/\\0/, scalar <$cl>));
is($cmd =~ /subreaper\\.pl/ ? 'subreaper' : 'other', $ENV{EXPECT_PARENT}, "the orphan's parent: $cmd");
kill 'TERM', $d;
my $t0 = time();
sleep 0.01 while kill(0, $d) && time() - $t0 < 5;
my $gone = time() - $t0;
ok($ENV{EXPECT_PARENT} ne 'subreaper' || $gone < 0.5, sprintf('gone %.3f s after TERM', $gone));
`;

t.test('the suite runs under a child subreaper: an exited daemon is reaped at once', { skip: haveProve || (process.platform !== 'linux' && 'Linux only (prctl)') }, async (t) => {
  const dir = tempPrefix('tns-reap');
  t.teardown(() => cleanup(dir));
  const { mod, lib } = fakeSuite(dir);
  writeFileSync(join(mod, 't/orphan.t'), ORPHAN_T);
  const r = run([BIN, mod, lib, 't/orphan.t'], { EXPECT_PARENT: 'subreaper', VERBOSE: '1' });
  if (!t.equal(r.code, 0, 'exit 0')) t.comment(r.out);
  t.same(row(r.out, 'orphan.t'), [2, 2, 2, 0, 0], 'the orphan was the subreaper\'s, and gone at once');
  const off = run([BIN, mod, lib, 't/orphan.t'], { EXPECT_PARENT: 'other', NO_SUBREAPER: '1', VERBOSE: '1' });
  if (!t.equal(off.code, 0, 'exit 0')) t.comment(off.out);
  t.same(row(off.out, 'orphan.t'), [2, 2, 2, 0, 0], 'NO_SUBREAPER=1: the orphan goes to init as before');
});
