import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * conf/fastcgi_params and conf/fastcgi.conf against the files of Debian's
 * nginx (when installed): the same directives with the same arguments in the
 * same order (comments and spacing aside). And Debian's nginx -t accepts a
 * configuration that includes ours.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NGINX = '/usr/sbin/nginx';

/** nginx -t binds the listen sockets: an ephemeral loopback port */
function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** the directives of a file of simple directives: `name arg...;`, comments dropped */
function directives(text: string): string[][] {
  const out: string[][] = [];
  const body = text
    .split('\n')
    .map((l) => l.replace(/#.*$/, ''))
    .join('\n');
  for (const stmt of body.split(';')) {
    const words = stmt.split(/\s+/).filter((w) => w !== '');
    if (words.length) out.push(words);
  }
  return out;
}

t.test('directives() reads simple files', async (t) => {
  t.same(directives('\n# c ; x\nfastcgi_param  A   $a;\nfastcgi_param B b if_not_empty; # trailing\n'), [
    ['fastcgi_param', 'A', '$a'],
    ['fastcgi_param', 'B', 'b', 'if_not_empty'],
  ]);
});

for (const name of ['fastcgi_params', 'fastcgi.conf']) {
  const debian = join('/etc/nginx', name);
  t.test(`conf/${name} has Debian's directives in Debian's order`, { skip: existsSync(debian) ? false : `${debian} is absent (Debian's nginx-common is not installed)` }, async (t) => {
    const ours = directives(readFileSync(join(root, 'conf', name), 'latin1'));
    const theirs = directives(readFileSync(debian, 'latin1'));
    t.ok(ours.length > 15, `${ours.length} directives`);
    t.same(ours, theirs);
  });
}

t.test('fastcgi.conf is fastcgi_params with SCRIPT_FILENAME first', async (t) => {
  const conf = directives(readFileSync(join(root, 'conf', 'fastcgi.conf'), 'latin1'));
  const params = directives(readFileSync(join(root, 'conf', 'fastcgi_params'), 'latin1'));
  t.same(conf[0], ['fastcgi_param', 'SCRIPT_FILENAME', '$document_root$fastcgi_script_name']);
  /* Debian passes HTTP_HOST $host in fastcgi_params only */
  t.same(
    conf.slice(1),
    params.filter((d) => d[1] !== 'HTTP_HOST'),
  );
});

t.test("Debian's nginx -t accepts a location including ours", { skip: existsSync(NGINX) ? false : `${NGINX} is not installed` }, async (t) => {
  const prefix = mkdtempSync(join(tmpdir(), 'redis2d-fcgi-params-'));
  t.teardown(() => rmSync(prefix, { recursive: true, force: true }));
  mkdirSync(join(prefix, 'logs'));
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log;
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:${await freePort()};
    location ~ \\.php$ { include ${root}/conf/fastcgi.conf; fastcgi_pass 127.0.0.1:9; }
    location /p/ { include ${root}/conf/fastcgi_params; fastcgi_pass 127.0.0.1:9; }
  }
}
`,
  );
  const r = spawnSync(NGINX, ['-t', '-e', '/dev/null', '-p', `${prefix}/`, '-c', conf], { encoding: 'latin1' });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /test is successful/);
});
