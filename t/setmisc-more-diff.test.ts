import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * The rest of set_misc under Debian's nginx (ndk + set_misc loaded) and
 * under redis2d: base32 with its padding and alphabet settings (and how
 * they inherit into nested locations and `if` blocks), base64url, HMAC,
 * set_quote_pgsql_str, set_rotate's per-location memory, local time
 * formats, set_secure_random_lcalpha, and NDK's set_var on prefix
 * variables (`set_if_empty $arg_bar 15` reads the argument first). The
 * bytes of every response must be nginx's; the error-log lines too.
 */

const MODS = '/usr/lib/nginx/modules';
const LOAD = `load_module ${MODS}/ndk_http_module.so;\nload_module ${MODS}/ngx_http_set_misc_module.so;\nload_module ${MODS}/ngx_http_echo_module.so;`;
const skip =
  !hasNginx || !existsSync(`${MODS}/ngx_http_echo_module.so`) || !existsSync(`${MODS}/ngx_http_set_misc_module.so`)
    ? 'Debian nginx with echo/set_misc not installed'
    : false;

const ONE_ARG = ['set_quote_pgsql_str', 'set_encode_base64url', 'set_decode_base64url', 'set_encode_base32', 'set_decode_base32'];
const RFC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const OTHER = 'efghijklmnopqrstuvwxyz0123456789';

const b32 = (prefix: string): string =>
  `location ${prefix}enc { set_unescape_uri $in $arg_v; set_encode_base32 $v $in; echo -n "[$v]"; }
      location ${prefix}dec { set_unescape_uri $in $arg_v; set_decode_base32 $v $in; echo -n "[$v]"; }`;

const HTTP = `
  default_type text/plain;
  server {
    listen 127.0.0.1:{port};
    ${ONE_ARG.map((d) => `location /d/${d} { set_unescape_uri $in $arg_v; ${d} $v $in; echo -n "[$v]"; }`).join('\n    ')}
    ${ONE_ARG.map((d) => `location /self/${d} { set_unescape_uri $v $arg_v; ${d} $v; echo -n "[$v]"; }`).join('\n    ')}
    location /np/ {
      set_base32_padding off;
      ${b32('/np/')}
    }
    location /rfc/ {
      set_base32_alphabet "${RFC}";
      ${b32('/rfc/')}
      location /rfc/inner/ {
        set_base32_alphabet "${OTHER}";
        set_base32_padding off;
        ${b32('/rfc/inner/')}
      }
    }
    location /old/ {
      set_misc_base32_padding off;
      ${b32('/old/')}
    }
    location /if32 {
      if ($arg_np) {
        set_base32_padding off;
      }
      set_unescape_uri $in $arg_v;
      set_encode_base32 $v $in;
      echo -n "[$v]";
    }
    location /hmac {
      set_unescape_uri $k $arg_k;
      set_unescape_uri $s $arg_s;
      set_hmac_sha1 $h1 $k $s;
      set_hmac_sha256 $h256 $k $s;
      set_encode_hex $x1 $h1;
      set_encode_base64 $x256 $h256;
      echo -n "[$h1|$x1|$h256|$x256]";
    }
    location /rot { set_rotate $r 1 3; echo -n $r; }
    location /rot0 { set_rotate $r 2 0; echo -n $r; }
    location /rotv { set $r $arg_c; set_rotate $r $arg_from $arg_to; echo -n "[$r]"; }
    location /ifarg { set_if_empty $arg_bar 15; set_if_empty $arg_bah 25; echo -n "$arg_bar $arg_bah"; }
    location /setarg { set $y $arg_x; set $arg_x new; echo -n "$y $arg_x"; }
    location /ndkhttp { set_if_empty $http_x dflt; echo -n "[$http_x]"; }
    location /ndkcookie { set_md5 $cookie_c; echo -n "[$cookie_c]"; }
    location /ndktwice { set_if_empty $arg_a 1; set_if_empty $arg_a 2; echo -n "[$arg_a]"; }
    location /ndkargs { set_if_empty $args "z=1"; echo -n "[$args] [$arg_z] [$query_string]"; }
    location /setthenndk { set $arg_d 1; set_if_empty $arg_d 2; echo -n "[$arg_d]"; }
    location /ndkuninit { set_encode_base32 $never; echo -n "[$never]"; }
    location /lt { set_formatted_local_time $t "%Y-%m-%d|%a %b %e|%Z|%z|%C %y %j %U %W %V %G %u %w"; echo -n "[$t]"; }
    location /ltempty { set_formatted_local_time $t ""; echo -n "[$t]"; }
    location /ltconst { set_formatted_local_time $t "hello world"; echo -n "[$t]"; }
    location /lt256 { set_formatted_local_time $t "${'x'.repeat(256)}"; echo -n "[$t]"; }
    location /lcalpha { set_secure_random_lcalpha $r $arg_n; echo -n $r; }
  }
`;

/** URL-encoded inputs: ASCII, UTF-8, invalid UTF-8, quotes, NUL, base32/64 shapes */
const INPUTS = [
  '', 'a', 'ab', 'abc', 'abcd', 'abcde', 'abcdef', 'hello%20world', '%00', '%00%00%00%00%00', '%ff%fe%fd',
  'caf%c3%a9', '%e4%b8%ad%e6%96%87', '%c3', '%e4%b8', '%c0%80', '%ed%a0%80', '%f4%90%80%80', '%f5%80%80%80', '%fc%80%80%80%80%80',
  '%80', 'it%27s', '%22q%22', '%5c', '%24x', '%1a', '%0a%0d%09%08',
  'c5h66p35', 'c5h66p35cpjmg', 'c5h66p35cpjmgrr', 'c5h66p35cpjmgrr5', 'c5h66p35cpjmgrr5%3d%3d%3d', 'C5H66P35', '0', '00', '000',
  '0000', '00000', '000000', '0000000', '00000000', '%21%21%21%21%21%21%21%21', 'w', 'zzzzzzzz', 'NBSWY3DP', 'NBSWY3DPEE%3d%3d%3d%3d%3d%3d',
  'aGVsbG8', 'aGVsbG8%3d', 'Xy1hYg', '_-_-', '%2b%2f', 'a', 'ab%3d%3d', '%3d%3d%3d%3d', 'YQ', '%40%40',
];

const req = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: h\r\n${extra}Connection: close\r\n\r\n`;

/** one connection per request, `width` at a time, on both servers; the normalized responses */
async function both(ours: Running, theirs: Running, reqs: string[], width = 16): Promise<[string[], string[]]> {
  const a: string[] = [];
  const b: string[] = [];
  for (let i = 0; i < reqs.length; i += width) {
    const batch = reqs.slice(i, i + width);
    const got = await Promise.all(batch.flatMap((q) => [raw(ours.port, q, 1000), raw(theirs.port, q, 1000)]));
    for (let j = 0; j < batch.length; j++) {
      a.push(normalize(got[2 * j]!, ours.port));
      b.push(normalize(got[2 * j + 1]!, theirs.port));
    }
  }
  return [a, b];
}

/** error pages carry the server's name: those compare by status line */
function same(t: Test, x: string | undefined, y: string | undefined, name: string): void {
  x ??= '';
  y ??= '';
  if (y.includes('<html>')) t.equal(x.split('\r\n')[0], y.split('\r\n')[0], name);
  else t.equal(x, y, name);
}

/** the messages of a log's [error]/[warn] lines (time and pid set aside) */
function messages(log: string): string[] {
  return log
    .split('\n')
    .map((l) => /\[(error|warn)\] \d+#\d+: (?:\*\d+ )?(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `[${m[1]}] ${m[2]}`);
}

t.test('set_misc transforms, base32 settings, prefix variables: nginx bytes', { skip }, async (t) => {
  let ours: Running | undefined;
  let theirs: Running | undefined;
  try {
    ours = await startRedis2d(HTTP, LOAD);
    theirs = await startNginx(HTTP, LOAD);
    const paths: string[] = [];
    for (const d of ONE_ARG) for (const v of INPUTS) paths.push(`/d/${d}?v=${v}`, `/self/${d}?v=${v}`);
    for (const p of ['/np/', '/rfc/', '/rfc/inner/', '/old/']) {
      for (const v of INPUTS) paths.push(`${p}enc?v=${v}`, `${p}dec?v=${v}`);
    }
    for (const v of ['', 'a', 'abcdef', '%ff']) paths.push(`/if32?v=${v}`, `/if32?np=1&v=${v}`);
    for (const [k, s] of [['', ''], ['key', 'msg'], ['%00k%ff', 'a%00b'], ['k'.repeat(100), 'x'.repeat(300)]]) {
      paths.push(`/hmac?k=${k}&s=${s}`);
    }
    paths.push('/ifarg?bar=71', '/ifarg?bar=', '/ifarg', '/ifarg?bah=1&bar=2');
    paths.push('/setarg?x=1', '/setarg', '/ndkuninit', '/ndkcookie', '/ndktwice?a=x', '/ndktwice', '/ndkargs', '/ndkargs?q=1');
    paths.push('/setthenndk', '/setthenndk?d=7');
    paths.push('/rotv?c=5&from=1&to=9', '/rotv?c=9&from=1&to=9', '/rotv?c=abc&from=1&to=3', '/rotv?c=0&from=3&to=1');
    paths.push('/rotv?c=1&from=x&to=3', '/rotv?c=1&from=1&to=', '/rotv?c=-1&from=4&to=6');
    paths.push('/ltempty', '/ltconst', '/lt256', '/lcalpha?n=0', '/lcalpha?n=65', '/lcalpha?n=x');
    const reqs = paths.map((p) => req(p));
    const names = [...paths];
    for (const h of ['X: given\r\n', 'X: \r\n', '']) {
      reqs.push(req('/ndkhttp', h));
      names.push(`/ndkhttp with ${JSON.stringify(h)}`);
    }
    reqs.push(req('/ndkcookie', 'Cookie: c=abc\r\n'));
    names.push('/ndkcookie with a cookie');
    const [a, b] = await both(ours, theirs, reqs);
    t.equal(b.length, reqs.length, 'nginx answered every request');
    for (let i = 0; i < reqs.length; i++) same(t, a[i], b[i], names[i]!);

    // the log lines, in order (the bad-argument errors, "uninitialized" warnings)
    // nginx, started with -e, also writes the config's warnings there: those are compared apart
    const deprecated = /^\[warn\] the "set_misc_base32_padding" directive is deprecated, use the "set_base32_padding" directive instead in \S+:38$/;
    const ml = messages(ours.errorLog());
    const nl = messages(theirs.errorLog()).filter((m) => !deprecated.test(m));
    t.same(ml.sort(), nl.sort(), 'the same [error]/[warn] lines');
    t.ok(messages(theirs.errorLog()).some((m) => deprecated.test(m)), 'nginx warns of set_misc_base32_padding');
    t.match(ours.stderr(), /\[warn\] the "set_misc_base32_padding" directive is deprecated, use the "set_base32_padding" directive instead in \S+:38\n/, 'so does redis2d');
    for (const line of [
      'set_rotate: bad current value: "abc"',
      'set_rotate: bad "from" argument value: "x"',
      'set_rotate: bad "to" argument value: ""',
      'set_random: bad "length" argument: 65',
      'set_decode_base64url: invalid value',
      'using uninitialized "never" variable',
    ]) {
      t.ok(ml.some((m) => m.includes(line)), `redis2d logs ${line}`);
    }
  } finally {
    await ours?.stop();
    await theirs?.stop();
  }
});

t.test("set_rotate: the location's memory across requests, as nginx", { skip }, async (t) => {
  let ours: Running | undefined;
  let theirs: Running | undefined;
  try {
    ours = await startRedis2d(HTTP, LOAD);
    theirs = await startNginx(HTTP, LOAD);
    // one at a time: each answer depends on the one before
    const seq = ['/rot', '/rot', '/rot', '/rot', '/rot0', '/rot0', '/rotv?c=2&from=1&to=3', '/rot', '/rot0', '/rot0', '/rot0', '/rot'];
    const [a, b] = await both(ours, theirs, seq.map((p) => req(p)), 1);
    for (let i = 0; i < seq.length; i++) same(t, a[i], b[i], `${i}: ${seq[i]}`);
    t.same(
      a.map((x) => x.slice(x.indexOf('\r\n\r\n') + 4).split('\r\n')[1]),
      ['1', '2', '3', '1', '0', '1', '[3]', '2', '2', '0', '1', '3'],
      'rotating values, the variable given wins once, each location its own counter',
    );
  } finally {
    await ours?.stop();
    await theirs?.stop();
  }
});

t.test('local time formats and set_secure_random_lcalpha', { skip }, async (t) => {
  let ours: Running | undefined;
  let theirs: Running | undefined;
  try {
    ours = await startRedis2d(HTTP, LOAD);
    theirs = await startNginx(HTTP, LOAD);
    // a date without seconds: the two answers fall in the same minute but around midnight
    for (let tries = 0; tries < 3; tries++) {
      const [a, b] = await both(ours, theirs, [req('/lt')]);
      if (a[0] !== b[0] && tries < 2) continue;
      t.equal(a[0], b[0], 'set_formatted_local_time: date, zone and week numbers');
      break;
    }
    const [a] = await both(ours, theirs, Array.from({ length: 50 }, () => req('/lcalpha?n=64')));
    const bodies = a.map((x) => x.slice(x.indexOf('\r\n\r\n') + 4).split('\r\n')[1]!);
    for (const s of bodies) t.match(s, /^[a-z]{64}$/);
    t.equal(new Set(bodies).size, 50, 'each string differs');
    t.equal(new Set(bodies.join('')).size, 26, 'every letter comes up');
  } finally {
    await ours?.stop();
    await theirs?.stop();
  }
});
