import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NGINX, judgeBoth, judgeRedis2d, verdictLines, type Verdict } from './helpers/judge.js';

/*
 * Stock nginx directives that only tune nginx's processes and memory
 * (lib/modules/noop/module.ts and main.ts; docs/behaviour.md §3): judged by
 * Debian's nginx -t and redis2d -t on the same files (exit code and every
 * [emerg]/[warn] line): good values, bad values, wrong contexts, duplicates.
 */

const skip = !existsSync(NGINX) ? `${NGINX} is not installed` : false;

const dir = mkdtempSync(join(tmpdir(), 'r2d-stockconf-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const prefix = join(dir, 'prefix');
mkdirSync(join(prefix, 'logs'), { recursive: true });

// [name, main, events, http, server, location]
type Case = [string, string, string, string, string, string];
const CASES: Case[] = [
  ['main: all good', 'worker_priority -5; worker_cpu_affinity auto; worker_rlimit_core 500M; pcre_jit on; lock_file logs/nginx.lock; thread_pool default threads=32 max_queue=65536; thread_pool two threads=2;', 'accept_mutex_delay 500ms; worker_aio_requests 32; debug_connection 127.0.0.1; debug_connection ::1; debug_connection 10.0.0.0/8; debug_connection unix:; debug_connection localhost;', '', '', ''],
  ['shutdown timeout', 'worker_shutdown_timeout 10s;', '', '', '', ''],
  ['shutdown timeout bad', 'worker_shutdown_timeout soon;', '', '', '', ''],
  ['shutdown timeout twice', 'worker_shutdown_timeout 1s; worker_shutdown_timeout 2s;', '', '', '', ''],
  ['shutdown timeout in http', '', '', 'worker_shutdown_timeout 1s;', '', ''],
  ['ssl_engine dynamic', 'ssl_engine dynamic;', '', '', '', ''],
  ['ssl_engine from ENGINESDIR', 'ssl_engine padlock;', '', '', '', ''],
  ['ssl_engine unknown', 'ssl_engine nosuch;', '', '', '', ''],
  ['ssl_engine twice', 'ssl_engine dynamic; ssl_engine dynamic;', '', '', '', ''],
  ['ssl_engine in http', '', '', 'ssl_engine dynamic;', '', ''],
  ['priority +N', 'worker_priority +3;', '', '', '', ''],
  ['priority bad', 'worker_priority x;', '', '', '', ''],
  ['priority twice', 'worker_priority 1; worker_priority 2;', '', '', '', ''],
  ['priority 0 then N', 'worker_priority 0; worker_priority 2;', '', '', '', ''],
  ['priority in http', '', '', 'worker_priority 1;', '', ''],
  ['affinity masks', 'worker_processes 2; worker_cpu_affinity 01 10;', '', '', '', ''],
  ['affinity masks vs workers', 'worker_processes 3; worker_cpu_affinity 01 10;', '', '', '', ''],
  ['affinity one mask', 'worker_processes 3; worker_cpu_affinity 0101;', '', '', '', ''],
  ['affinity auto mask', 'worker_cpu_affinity auto 0101;', '', '', '', ''],
  ['affinity auto too many', 'worker_cpu_affinity auto 01 10;', '', '', '', ''],
  ['affinity bad char', 'worker_cpu_affinity 0x;', '', '', '', ''],
  ['affinity twice', 'worker_cpu_affinity 01; worker_cpu_affinity 10;', '', '', '', ''],
  ['rlimit_core bad', 'worker_rlimit_core lots;', '', '', '', ''],
  ['rlimit_core twice', 'worker_rlimit_core 1m; worker_rlimit_core 1m;', '', '', '', ''],
  ['pcre_jit bad', 'pcre_jit yes;', '', '', '', ''],
  ['pcre_jit twice', 'pcre_jit on; pcre_jit off;', '', '', '', ''],
  ['pcre_jit in events', '', 'pcre_jit on;', '', '', ''],
  ['lock_file twice', 'lock_file a; lock_file b;', '', '', '', ''],
  ['thread_pool no threads', 'thread_pool a max_queue=4;', '', '', '', ''],
  ['thread_pool threads=0', 'thread_pool a threads=0;', '', '', '', ''],
  ['thread_pool bad queue', 'thread_pool a threads=2 max_queue=x;', '', '', '', ''],
  ['thread_pool dup', 'thread_pool a threads=2; thread_pool a threads=3;', '', '', '', ''],
  ['thread_pool arity', 'thread_pool a;', '', '', '', ''],
  ['thread_pool unknown word skipped', 'thread_pool a threads=2 foo=1;', '', '', '', ''],
  ['accept_mutex_delay bad', '', 'accept_mutex_delay soon;', '', '', ''],
  ['accept_mutex_delay main', 'accept_mutex_delay 1s;', '', '', '', ''],
  ['aio requests bad', '', 'worker_aio_requests -1;', '', '', ''],
  ['aio requests twice', '', 'worker_aio_requests 1; worker_aio_requests 2;', '', '', ''],
  ['debug_connection low bits', '', 'debug_connection 10.1.2.3/8;', '', '', ''],
  ['debug_connection in http', '', '', 'debug_connection 127.0.0.1;', '', ''],
  ['http: all good', '', '', 'variables_hash_max_size 2048; variables_hash_bucket_size 128; connection_pool_size 512; request_pool_size 4k; read_ahead 0; directio_alignment 4k; sendfile_max_chunk 1m; subrequest_output_buffer_size 8k; client_body_in_single_buffer on; proxy_headers_hash_max_size 1024; proxy_headers_hash_bucket_size 128;', 'connection_pool_size 1k; request_pool_size 8k; read_ahead 1k;', 'sendfile_max_chunk 512k; directio_alignment 512; subrequest_output_buffer_size 16k; client_body_in_single_buffer off; proxy_headers_hash_max_size 512;'],
  ['send_lowat ignored', '', '', 'send_lowat 1k;', '', 'send_lowat 0;'],
  ['send_lowat bad', '', '', 'send_lowat many;', '', ''],
  ['upstream send_lowat', '', '', 'proxy_send_lowat 1k;', 'fastcgi_send_lowat 2k;', 'proxy_send_lowat 0;'],
  ['upstream send_lowat bad', '', '', '', '', 'fastcgi_send_lowat x;'],
  ['upstream send_lowat twice', '', '', '', '', 'proxy_send_lowat 1k; proxy_send_lowat 1k;'],
  ['pool too small', '', '', 'connection_pool_size 100;', '', ''],
  ['pool not aligned', '', '', '', 'request_pool_size 1000;', ''],
  ['pool bad', '', '', '', 'request_pool_size x;', ''],
  ['pool twice', '', '', '', 'request_pool_size 4k; request_pool_size 4k;', ''],
  ['pool in location', '', '', '', '', 'connection_pool_size 1k;'],
  ['variables hash in server', '', '', '', 'variables_hash_max_size 1024;', ''],
  ['variables hash bad', '', '', 'variables_hash_bucket_size 1k;', '', ''],
  ['directio_alignment bad', '', '', 'directio_alignment 1x;', '', ''],
  ['sendfile_max_chunk twice', '', '', '', '', 'sendfile_max_chunk 1m; sendfile_max_chunk 2m;'],
  ['single buffer bad', '', '', '', '', 'client_body_in_single_buffer x;'],
  ['request parsing flags', '', '', 'merge_slashes off; underscores_in_headers on; ignore_invalid_headers off;', 'merge_slashes on; underscores_in_headers off; ignore_invalid_headers on;', ''],
  ['merge_slashes in location', '', '', '', '', 'merge_slashes off;'],
  ['underscores bad flag', '', '', 'underscores_in_headers yes;', '', ''],
  ['ignore_invalid twice', '', '', '', 'ignore_invalid_headers on; ignore_invalid_headers off;', ''],
  ['recursive_error_pages', '', '', 'recursive_error_pages on;', 'recursive_error_pages off;', 'recursive_error_pages on;'],
  ['recursive_error_pages bad', '', '', '', '', 'recursive_error_pages 1;'],
  ['recursive_error_pages twice', '', '', 'recursive_error_pages on; recursive_error_pages on;', '', ''],
  ['limit_rate', '', '', 'limit_rate 100k; limit_rate_after 1m;', 'limit_rate 0;', 'limit_rate $arg_r; limit_rate_after $arg_a; if ($arg_x) { limit_rate 1k; limit_rate_after 2k; }'],
  ['limit_rate bad', '', '', '', '', 'limit_rate fast;'],
  ['limit_rate_after bad', '', '', 'limit_rate_after 1x;', '', ''],
  ['limit_rate twice', '', '', '', '', 'limit_rate 1k; limit_rate 2k;'],
  ['limit_rate unknown variable', '', '', '', '', 'limit_rate $nope;'],
  ['limit_rate arity', '', '', '', '', 'limit_rate 1k 2k;'],
  ['msie_padding', '', '', 'msie_padding off;', '', 'msie_padding on;'],
  ['msie_refresh', '', '', 'msie_refresh on;', 'msie_refresh off;', 'msie_refresh on;'],
  ['msie_refresh twice', '', '', '', '', 'msie_refresh on; msie_refresh on;'],
  ['msie_padding bad', '', '', '', '', 'msie_padding no;'],
  ['chunked and keepalive_disable', '', '', 'chunked_transfer_encoding off; keepalive_disable msie6 safari;', 'keepalive_disable none;', 'chunked_transfer_encoding on; keepalive_disable safari;'],
  ['chunked bad', '', '', '', '', 'chunked_transfer_encoding 0;'],
  ['keepalive_disable bad', '', '', 'keepalive_disable firefox;', '', ''],
  ['keepalive_disable repeated word', '', '', '', '', 'keepalive_disable safari Safari;'],
  ['keepalive_disable twice', '', '', '', '', 'keepalive_disable safari; keepalive_disable msie6;'],
  ['add_trailer', '', '', 'add_trailer X-A a;', 'add_trailer X-B $uri always;', 'if ($arg_x) { add_trailer X-C c; } add_trailer X-D "";'],
  ['add_trailer bad flag', '', '', '', '', 'add_trailer X-A a sometimes;'],
  ['add_trailer arity', '', '', '', '', 'add_trailer X-A;'],
  ['upstream limit_rate', '', '', 'proxy_limit_rate 1m;', 'fastcgi_limit_rate 100k;', 'proxy_limit_rate 0;'],
  ['upstream limit_rate bad', '', '', '', '', 'fastcgi_limit_rate x;'],
  ['upstream limit_rate twice', '', '', '', '', 'proxy_limit_rate 1k; proxy_limit_rate 1k;'],
  ['force_ranges', '', '', 'proxy_force_ranges on;', 'fastcgi_force_ranges off;', 'proxy_force_ranges off;'],
  ['force_ranges bad', '', '', '', '', 'fastcgi_force_ranges yes;'],
  ['proxy headers hash bad', '', '', '', '', 'proxy_headers_hash_bucket_size 64k;'],
];

function confOf(c: Case): string {
  const [, main, events, http, srv, loc] = c;
  return `${main}\nevents { ${events} }\nhttp {\n  ${http}\n  server {\n    listen 127.0.0.1:18951;\n    ${srv}\n    location / {\n      ${loc}\n    }\n  }\n}\n`;
}

async function judge(c: Case): Promise<{ ours: Verdict; theirs: Verdict }> {
  const file = join(dir, `${c[0].replace(/[^a-z0-9]+/gi, '-')}.conf`);
  writeFileSync(file, confOf(c));
  return judgeBoth(file, prefix);
}

t.test('tuning-only directives at -t, as nginx judges them', { skip }, async (t) => {
  for (const c of CASES) {
    const { ours, theirs } = await judge(c);
    t.equal(ours.status, theirs.status, `${c[0]}: exit code`);
    t.same(verdictLines(ours.stderr, 'redis2d'), verdictLines(theirs.stderr, 'nginx'), `${c[0]}: messages`);
  }
});

t.test('each is noted as having no effect in redis2d', async (t) => {
  const file = join(dir, 'notes.conf');
  writeFileSync(file, confOf(CASES[0]!).replace('http {', 'http {\n  read_ahead 1k; connection_pool_size 1k;'));
  const r = await judgeRedis2d(file, prefix);
  t.equal(r.status, 0);
  for (const name of ['worker_priority', 'worker_cpu_affinity', 'worker_rlimit_core', 'pcre_jit', 'lock_file', 'thread_pool', 'accept_mutex_delay', 'worker_aio_requests', 'debug_connection', 'read_ahead', 'connection_pool_size']) {
    t.match(r.stderr, `[warn] the "${name}" directive has no effect in redis2d`, name);
  }
});
