import t from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { freePort } from './helpers/server.js';
import { alive, bodyOf, cleanup, killTree, readPid, request, runCmd, statusOf, tempPrefix, waitFor } from './helpers/proc.js';

/*
 * Play Test::Nginx's part (docs/behaviour.md §8): its layout (PREFIX/conf, logs, html),
 * the directives it generates, `-V`, a daemon start whose foreground exits
 * 0 once listening, requests with `Connection: close`, error.log read after
 * each response, QUIT through the pid file, and nothing created under the
 * prefix beyond the files its config names.
 */

const isRoot = process.getuid?.() === 0;

function config(prefix: string, port: number): string {
  return `daemon on;
master_process off;
worker_processes  1;
pid        ${prefix}/logs/nginx.pid;
error_log ${prefix}/logs/error.log debug;
${isRoot ? 'user root;\n' : ''}env MOCKEAGAIN_VERBOSE;
env MOCKEAGAIN;
env LD_PRELOAD;
env ASAN_OPTIONS;

http {
    access_log ${prefix}/logs/access.log;
    #access_log off;

    default_type text/plain;
    keepalive_timeout  68;

    client_body_temp_path ${prefix}/client_body_temp;
    proxy_temp_path ${prefix}/proxy_temp;
    fastcgi_temp_path ${prefix}/fastcgi_temp;
    uwsgi_temp_path ${prefix}/uwsgi_temp;
    scgi_temp_path ${prefix}/scgi_temp;

    server {
        listen          127.0.0.1:${port};
        server_name     'localhost';

        client_max_body_size 30M;
        #client_body_buffer_size 4k;

        # Begin preamble config...
        # End preamble config...

        # Begin test case config...
        location = /t { echo hello; }
        location = /boom { return 500; } location = /nf { return 404; }
        # End test case config.

        location / {
            root ${prefix}/html;
            index index.html index.htm;
        }
    }
}

events {
    accept_mutex off;

    worker_connections  64;
}
`;
}

function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

t.test('-V: exit 0, the nginx version where Test::Nginx looks for it', async (t) => {
  const r = await runCmd(['-V']);
  t.equal(r.code, 0);
  t.match(r.stderr, /^redis2d version: redis2d\/\S+ \(nginx\/1\.22\.1\)\n/);
  t.match(r.stderr, /\nconfigure arguments: .*--prefix=/);
});

t.test('a Test::Nginx run', async (t) => {
  const prefix = tempPrefix('testnginx');
  for (const d of ['conf', 'html']) mkdirSync(join(prefix, d));
  const port = await freePort();
  const conf = join(prefix, 'conf/nginx.conf');
  writeFileSync(conf, config(prefix, port));
  writeFileSync(join(prefix, 'html/index.html'), 'It works!\n');
  const errLog = join(prefix, 'logs/error.log');
  const pidPath = join(prefix, 'logs/nginx.pid');
  t.teardown(async () => {
    await killTree(readPid(pidPath));
    cleanup(prefix);
  });

  const started = await runCmd(['-e', errLog, '-p', `${prefix}/`, '-c', conf]);
  t.equal(started.code, 0, 'the foreground exits 0');
  t.equal(started.stderr, '', 'and says nothing');
  const pid = await waitFor('pid file', () => readPid(pidPath));
  t.ok(alive(pid), 'the daemon runs');

  let seen = 0;
  /** Test::Nginx reads what was appended to error.log since its last look */
  const newLog = (): string => {
    const all = readFileSync(errLog, 'latin1');
    const fresh = all.slice(seen);
    seen = all.length;
    return fresh;
  };
  newLog();

  const hello = await request(port, '/t');
  t.equal(statusOf(hello), 200);
  t.match(hello, /\r\nTransfer-Encoding: chunked\r\n/);
  t.match(hello, /\r\nConnection: close\r\n/);
  t.equal(bodyOf(hello), '6\r\nhello\n\r\n0\r\n\r\n');
  await new Promise((r) => setTimeout(r, 45));
  t.notMatch(newLog(), /\[(error|crit|alert|emerg)\]/, 'no error logged for /t');

  const index = await request(port, '/');
  t.equal(bodyOf(index), 'It works!\n', 'location / serves html/index.html');

  const boom = await request(port, '/boom');
  t.equal(statusOf(boom), 500);
  t.equal(
    bodyOf(boom),
    '<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n' +
      '<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>redis2d/' +
      /redis2d\/([^<]+)<\/center>/.exec(boom)![1] +
      '</center>\r\n</body>\r\n</html>\r\n',
    "nginx's 500 page",
  );

  const missing = await request(port, '/missing.html');
  t.equal(statusOf(missing), 404);
  await new Promise((r) => setTimeout(r, 45));
  t.match(
    newLog(),
    new RegExp(
      `^\\d{4}/\\d\\d/\\d\\d \\d\\d:\\d\\d:\\d\\d \\[error\\] ${pid}#${pid}: \\*\\d+ open\\(\\) "${prefix}/html/missing\\.html" failed \\(2: No such file or directory\\), client: 127\\.0\\.0\\.1, server: localhost, request: "GET /missing\\.html HTTP/1\\.1", host: "localhost"$`,
      'm',
    ),
    'the error line is there 45 ms after the response',
  );

  process.kill(pid, 'SIGQUIT');
  await waitFor('exit after QUIT', () => !alive(pid), 3000);
  t.notOk(existsSync(pidPath), 'pid file removed');
  t.same(tree(prefix), ['conf/nginx.conf', 'html/index.html', 'logs/access.log', 'logs/error.log'], 'nothing else under the prefix');
  const access = readFileSync(join(prefix, 'logs/access.log'), 'latin1');
  t.match(access, /^127\.0\.0\.1 - - \[[^\]]+\] "GET \/t HTTP\/1\.1" 200 \d+ "-" "-"\n/, 'access log in combined format');
  t.equal(access.split('\n').length - 1, 4, 'one line per request');
});
