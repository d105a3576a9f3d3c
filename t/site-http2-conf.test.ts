import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NGINX, judgeBoth, judgeRedis2d, verdictLines, type Verdict } from './helpers/judge.js';

/*
 * ngx_http_v2_module's directives at -t (lib/modules/http2), judged by
 * Debian's nginx -t and redis2d -t on the same files: exit code and every
 * [emerg]/[warn] line (the obsolete ones' warnings, value checks, contexts,
 * duplicates, http2_push's off/URI rules). redis2d's "has no effect" notes
 * are set aside, and checked where they are the point.
 */

const skip = !existsSync(NGINX) ? `${NGINX} is not installed` : false;

const dir = mkdtempSync(join(tmpdir(), 'r2d-h2conf-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const prefix = join(dir, 'prefix');
mkdirSync(join(prefix, 'logs'), { recursive: true });

// [name, http-level text, server-level text, location-level text]
const CASES: Array<[string, string, string, string]> = [
  ['all good', 'http2_recv_buffer_size 128k; http2_chunk_size 16k;', 'http2_max_concurrent_streams 10; http2_body_preread_size 32k; http2_max_concurrent_pushes 5; http2_pool_size 8k; http2_streams_index_size 64;', 'http2_chunk_size 4k; http2_push_preload on;'],
  ['obsolete ones', 'http2_idle_timeout 10s; http2_recv_timeout 5s;', 'http2_max_requests 10; http2_max_field_size 4k; http2_max_header_size 16k;', ''],
  ['obsolete, any value', '', 'http2_idle_timeout garbage;', ''],
  ['recv buffer too small', 'http2_recv_buffer_size 32;', '', ''],
  ['recv buffer just big enough', 'http2_recv_buffer_size 33;', '', ''],
  ['recv buffer in a server', '', 'http2_recv_buffer_size 1m;', ''],
  ['recv buffer bad', 'http2_recv_buffer_size big;', '', ''],
  ['pool size too small', '', 'http2_pool_size 64;', ''],
  ['pool size not aligned', '', 'http2_pool_size 4100;', ''],
  ['streams bad', '', 'http2_max_concurrent_streams many;', ''],
  ['streams twice', '', 'http2_max_concurrent_streams 1; http2_max_concurrent_streams 2;', ''],
  ['streams in a location', '', '', 'http2_max_concurrent_streams 3;'],
  ['preread too big', '', 'http2_body_preread_size 2100m;', ''],
  ['index size not a power of two', '', 'http2_streams_index_size 48;', ''],
  ['index size zero', '', 'http2_streams_index_size 0;', ''],
  ['chunk size zero', '', '', 'http2_chunk_size 0;'],
  ['chunk size huge (capped)', '', '', 'http2_chunk_size 64m;'],
  ['push URIs', '', '', 'http2_push /a.css; http2_push /b$uri;'],
  ['push off then URI', '', '', 'http2_push off; http2_push /a.css;'],
  ['push URI then off', '', '', 'http2_push /a.css; http2_push off;'],
  ['push off twice', '', '', 'http2_push off; http2_push off;'],
  ['push unknown variable', '', '', 'http2_push /$nope;'],
  ['push preload bad', '', '', 'http2_push_preload maybe;'],
  ['arity', '', 'http2_chunk_size;', ''],
];

function confOf(http: string, srv: string, loc: string): string {
  return `events {}\nhttp {\n  ${http}\n  server {\n    listen 127.0.0.1:18941 http2;\n    ${srv}\n    location / {\n      ${loc}\n    }\n  }\n}\n`;
}

async function judge(name: string, conf: string): Promise<{ ours: Verdict; theirs: Verdict }> {
  const file = join(dir, `${name.replace(/[^a-z0-9]+/gi, '-')}.conf`);
  writeFileSync(file, conf);
  return judgeBoth(file, prefix);
}

t.test('http2 directives at -t, as nginx judges them', { skip }, async (t) => {
  for (const [name, http, srv, loc] of CASES) {
    const { ours, theirs } = await judge(name, confOf(http, srv, loc));
    t.equal(ours.status, theirs.status, `${name}: exit code`);
    t.same(verdictLines(ours.stderr, 'redis2d'), verdictLines(theirs.stderr, 'nginx'), `${name}: messages`);
  }
});

t.test("redis2d's notes: what node:http2 cannot apply, and nothing for what it does", async (t) => {
  const file = join(dir, 'notes.conf');
  writeFileSync(file, confOf('http2_recv_buffer_size 1m;', 'http2_pool_size 8k; http2_max_concurrent_streams 4; http2_body_preread_size 1k; http2_max_concurrent_pushes 3;', 'http2_push /a.css; http2_chunk_size 4k; http2_push_preload on;'));
  const r = await judgeRedis2d(file, prefix);
  t.equal(r.status, 0);
  for (const name of ['http2_recv_buffer_size', 'http2_pool_size', 'http2_push', 'http2_chunk_size', 'http2_push_preload', 'http2_max_concurrent_pushes']) {
    t.match(r.stderr, new RegExp(`\\[warn\\] the "${name}" directive has no effect in redis2d`), name);
  }
  t.notMatch(r.stderr, /http2_max_concurrent_streams|http2_body_preread_size|listen \.\.\. http2/, 'applied ones are not noted');
  // a plain http2 listen is served (h2c): no note
  const plain = join(dir, 'plain.conf');
  writeFileSync(plain, confOf('', '', ''));
  const p = await judgeRedis2d(plain, prefix);
  t.equal(p.status, 0);
  t.notMatch(p.stderr, /has no effect/);
});
