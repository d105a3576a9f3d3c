import t from 'tap';
import { existsSync } from 'node:fs';
import { hashedUpstreamPick } from '../lib/modules/set_misc/filters.js';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * set_misc under Debian's nginx (ndk + set_misc loaded) and under redis2d:
 * every directive over inputs with escaping edge cases, the same bytes.
 * Inputs travel raw in the query string ($arg_v is not decoded), so
 * `%`, `+`, invalid escapes and UTF-8 reach the directives as written;
 * the `dec*` locations decode first to feed arbitrary bytes.
 */

const MODS = '/usr/lib/nginx/modules';
const LOAD = `load_module ${MODS}/ndk_http_module.so;\nload_module ${MODS}/ngx_http_set_misc_module.so;\nload_module ${MODS}/ngx_http_echo_module.so;`;
const skip = !hasNginx || !existsSync(`${MODS}/ngx_http_echo_module.so`) || !existsSync(`${MODS}/ngx_http_set_misc_module.so`) ? 'Debian nginx with echo/set_misc not installed' : false;

const ONE_ARG = [
  'set_unescape_uri', 'set_escape_uri', 'set_quote_sql_str', 'set_quote_json_str', 'set_encode_base64', 'set_decode_base64',
  'set_encode_hex', 'set_decode_hex', 'set_md5', 'set_sha1',
];

const HTTP = `
  default_type text/plain;
  keepalive_requests 100000;
  upstream_list three a b c;
  upstream_list weighted 2:w1 w2 3:w3;
  upstream_list single only;
  server {
    listen 127.0.0.1:{port};
    ${ONE_ARG.map((d) => `location /${d} { ${d} $v $arg_v; echo -n "[$v]"; }`).join('\n    ')}
    ${ONE_ARG.map((d) => `location /dec/${d} { set_unescape_uri $in $arg_v; ${d} $v $in; echo -n "[$v]"; }`).join('\n    ')}
    ${ONE_ARG.map((d) => `location /self/${d} { set $v $arg_v; ${d} $v; echo -n "[$v]"; }`).join('\n    ')}
    location /if_empty { set $v $arg_v; set_if_empty $v "dflt $arg_d"; echo -n "[$v]"; }
    location /if_empty_unset { set_if_empty $never fallback; echo -n "[$never]"; }
    location /hashed { set_hashed_upstream $b three $arg_key; echo -n $b; }
    location /hashed_w { set_hashed_upstream $b weighted $arg_key; echo -n $b; }
    location /hashed_single { set_hashed_upstream $b single $arg_key; echo -n $b; }
    location /hashed_var { set_hashed_upstream $b $arg_list $arg_key; echo -n "[$b]"; }
    location /random { set_random $r $arg_from $arg_to; echo -n $r; }
    location /secure { set_secure_random_alphanum $r $arg_n; echo -n $r; }
    location /today { set_local_today $d; echo -n $d; }
    location /gmt { set_formatted_gmt_time $t $arg_f; echo -n "[$t]"; }
    location /gmtflags { set_formatted_gmt_time $t "%25Y|%-d|%_m|%^a|%10B|%#b|%-j|%_H|%3e|%-e|%05y|%Ey|%Od|%Z|%z|%c|%x|%X|%r|%P|%k|%l|%h|%s"; echo -n "[$t]"; }
    location /gmt255 { set_formatted_gmt_time $t "${'x'.repeat(255)}"; echo -n "[$t]"; }
    location /gmt256 { set_formatted_gmt_time $t "${'x'.repeat(256)}"; echo -n "[$t]"; }
    location /gmt254y { set_formatted_gmt_time $t "${'x'.repeat(252)}%Y"; echo -n "[$t]"; }
    location /gmtfix { set_formatted_gmt_time $t "%Y-%m-%d|%a %A|%b %B|%C %y|%e|%D|%F|%j|%u %w|%U %W %V %G %g|%%|%n|%t|%Q"; echo -n "[$t]"; }
    location /chain { set_unescape_uri $k $arg_k; set_quote_json_str $j $k; set_escape_uri $e $k; set_encode_base64 $b $k; echo -n "$j $e $b"; }
    location /inif { if ($arg_x) { set_md5 $m $arg_x; } echo -n "[$m]"; }
  }
`;

/** query-string spellings: percent edge cases, plus, UTF-8, controls, quotes */
const INPUTS = [
  '', 'abc', 'a+b', 'a%20b', '%', '%%', '%4', '%zz', '%4z', '%z4', '%41%42', '%e4%B8%ad', '%2B', '%25', '%2525',
  'caf\xc3\xa9', '\xe4\xb8\xad\xe6\x96\x87', '%00x', '%0a%0d%09', "it's", '"q"', '\\', '$x', '%1a', '%7f%80%ff',
  'AZaz09-_.~!*()', ';/?:@=&,<>#{}|^[]`', 'aGVsbG8=', 'aGVsbG8', 'aGVsbG', 'a', 'ab==', '====', 'YQ', '@@@@',
  '48656c6C6f', '4', 'zz', '0g', '00ff', '%1F%20%7E',
];

const req = (path: string, last: boolean): string =>
  `GET ${path} HTTP/1.1\r\nHost: h\r\n${last ? 'Connection: close\r\n' : ''}\r\n`;

/** all requests pipelined on one connection: one exchange per server */
function pipeline(paths: string[]): string {
  return paths.map((p, i) => req(p, i === paths.length - 1)).join('');
}

/** the bodies of a pipelined exchange of chunked responses */
function bodies(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  while ((i = s.indexOf('HTTP/1.1 ', i)) !== -1) {
    const h = s.indexOf('\r\n\r\n', i);
    let p = h + 4;
    let body = '';
    for (;;) {
      const e = s.indexOf('\r\n', p);
      const n = parseInt(s.slice(p, e), 16);
      if (!n) break;
      body += s.slice(e + 2, e + 2 + n);
      p = e + 2 + n + 2;
    }
    out.push(body);
    i = p;
  }
  return out;
}

t.test('set_misc directives give nginx bytes', { skip }, async (t) => {
  let ours: Running | undefined;
  let theirs: Running | undefined;
  try {
    ours = await startRedis2d(HTTP, LOAD);
    theirs = await startNginx(HTTP, LOAD);
    const paths: string[] = [];
    for (const d of ONE_ARG) {
      for (const v of INPUTS) {
        paths.push(`/${d}?v=${v}`, `/dec/${d}?v=${v}`, `/self/${d}?v=${v}`);
      }
      paths.push(`/${d}`); // no argument at all: not found, empty
    }
    paths.push('/if_empty?v=x&d=1', '/if_empty?v=&d=2', '/if_empty?d=3', '/if_empty_unset');
    paths.push('/hashed_var?list=three&key=abc', '/hashed_var?list=THREE&key=abc', '/hashed_var?list=nope&key=abc', '/hashed_single?key=x');
    paths.push('/random?from=5&to=5', '/random?from=-1&to=3', '/random?from=1&to=x', '/secure?n=0', '/secure?n=65', '/secure?n=x');
    // formats from the query string are not NUL-terminated for libc: nginx's strftime reads past them
    // (undefined behaviour), so formats are literals here, where the config's NUL ends them
    paths.push('/gmtfix', '/gmt?f=', '/gmtflags', '/gmt255', '/gmt256', '/gmt254y');
    for (const v of INPUTS) paths.push(`/chain?k=${v}`);
    paths.push('/inif?x=a', '/inif?x=');
    // one connection per request (a 500 closes the connection), 16 at a time
    const oa: string[] = [];
    const ob: string[] = [];
    for (let i = 0; i < paths.length; i += 16) {
      const batch = paths.slice(i, i + 16);
      const got = await Promise.all(batch.flatMap((p) => [raw(ours!.port, req(p, true), 1000), raw(theirs!.port, req(p, true), 1000)]));
      for (let j = 0; j < batch.length; j++) {
        oa.push(normalize(got[2 * j]!, ours.port));
        ob.push(normalize(got[2 * j + 1]!, theirs.port));
      }
    }
    t.equal(oa.length, paths.length, 'one response per request (redis2d)');
    t.equal(ob.length, paths.length, 'one response per request (nginx)');
    for (let i = 0; i < paths.length; i++) {
      // error pages carry the server name: compare those by status line only
      const x = oa[i] ?? '';
      const y = ob[i] ?? '';
      if (y.includes('<html>')) t.equal(x.split('\r\n')[0], y.split('\r\n')[0], paths[i]!);
      else t.equal(x, y, paths[i]!);
    }
    const log = ours.errorLog();
    for (const line of [
      'set_decode_base64: invalid value',
      'set_decode_hex: invalid value',
      'set_hashed_upstream: upstream list "nope" not defined yet',
      'set_random: bad "from" argument: -1',
      'set_random: bad "to" argument: x',
      'set_random: bad "length" argument: 65',
    ]) {
      t.ok(log.includes(`[error] `) && log.includes(`${line}, client: 127.0.0.1, server: , request: "GET `), line);
      t.ok(theirs.errorLog().includes(line), `nginx logs it too: ${line}`);
    }
  } finally {
    await ours?.stop();
    await theirs?.stop();
  }
});

t.test('random, secure random and today: the same shapes as nginx', { skip }, async (t) => {
  let ours: Running | undefined;
  try {
    ours = await startRedis2d(HTTP, LOAD);
    const paths: string[] = [];
    for (let i = 0; i < 200; i++) paths.push('/random?from=7&to=3', '/secure?n=64', '/secure?n=1');
    paths.push('/today');
    const got = bodies(await raw(ours.port, pipeline(paths), 1500));
    t.equal(got.length, paths.length);
    const rnd = new Set<string>();
    const sec = new Set<string>();
    for (let i = 0; i < 200; i++) {
      rnd.add(got[3 * i]!);
      t.match(got[3 * i + 1]!, /^[a-zA-Z0-9]{64}$/);
      t.match(got[3 * i + 2]!, /^[a-zA-Z0-9]$/);
      sec.add(got[3 * i + 1]!);
    }
    t.same([...rnd].sort(), ['3', '4', '5', '6', '7'], 'from > to swaps; every value of the range comes up');
    t.equal(sec.size, 200, 'secure random strings differ');
    const d = new Date();
    const pad = (n: number): string => String(n).padStart(2, '0');
    t.equal(got[got.length - 1], `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`);
  } finally {
    await ours?.stop();
  }
});

t.test('set_hashed_upstream picks what nginx picks, over 1,000 keys', { skip }, async (t) => {
  let ours: Running | undefined;
  let theirs: Running | undefined;
  try {
    ours = await startRedis2d(HTTP, LOAD);
    theirs = await startNginx(HTTP, LOAD);
    const keys: string[] = [];
    for (let i = 0; i < 1000; i++) keys.push(i % 7 === 0 ? `User:${i}:Mixed` : `key${i * 7919}`);
    for (const list of ['three', 'weighted']) {
      const paths = keys.map((k) => `/${list === 'three' ? 'hashed' : 'hashed_w'}?key=${k}`);
      const [a, b] = await Promise.all([raw(ours.port, pipeline(paths), 1500), raw(theirs.port, pipeline(paths), 1500)]);
      const ba = bodies(a);
      const bb = bodies(b);
      t.equal(bb.length, 1000, `nginx answered every ${list} key`);
      t.same(ba, bb, `redis2d's picks equal nginx's (${list})`);
      const buckets = list === 'three' ? ['a', 'b', 'c'] : ['w1', 'w1', 'w2', 'w3', 'w3', 'w3'];
      const picks = keys.map((k) => hashedUpstreamPick({ name: list, buckets }, k));
      t.same(picks, bb, `hashedUpstreamPick (ngx_hash_key_lc % n) is nginx's function (${list})`);
      t.equal(new Set(bb).size, new Set(buckets).size, 'every member is used');
    }
  } finally {
    await ours?.stop();
    await theirs?.stop();
  }
});
