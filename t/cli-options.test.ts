import t from 'tap';
import { runCmd } from './helpers/proc.js';
import { hasNginx, NGINX } from './helpers/server.js';

/*
 * An option that needs a value and is given none: nginx's one line
 * `option "-X" requires ...` (the flag alone, nginx 1.22's words) and exit 1.
 * When Debian's nginx is installed its output is the reference.
 */

const MISSING: [string, string][] = [
  ['-c', 'file name'],
  ['-e', 'file name'],
  ['-p', 'directory name'],
  ['-g', 'parameter'],
  ['-s', 'parameter'],
];

for (const [flag, what] of MISSING) {
  t.test(`${flag} without its value`, async (t) => {
    const r = await runCmd([flag]);
    t.equal(r.stderr, `redis2d: option "${flag}" requires ${what}\n`, 'the message nginx prints');
    t.equal(r.code, 1, 'exit 1');
    t.equal(r.stdout, '', 'nothing on stdout');
    const after = await runCmd(['-t', flag]);
    t.equal(after.stderr, `redis2d: option "${flag}" requires ${what}\n`, 'the same after another flag');
    t.equal(after.code, 1);
    if (hasNginx) {
      const n = await runCmd([flag], NGINX);
      t.equal(r.stderr, n.stderr.replace(/^nginx: /gm, 'redis2d: '), 'the same line as Debian\'s nginx');
      t.equal(r.code, n.code, 'the same exit status as nginx');
    } else {
      t.comment('Debian nginx not installed: compared with the expected text only');
    }
  });
}

t.test('unknown option and unknown signal keep their messages', async (t) => {
  const x = await runCmd(['-x']);
  t.equal(x.stderr, 'redis2d: invalid option: "x"\n');
  t.equal(x.code, 1);
  const s = await runCmd(['-s', 'bogus']);
  t.equal(s.stderr, 'redis2d: invalid option: "-s bogus"\n');
  t.equal(s.code, 1);
});
