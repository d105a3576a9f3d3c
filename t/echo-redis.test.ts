import t from 'tap';
import { existsSync } from 'node:fs';
import { hashedUpstreamPick } from '../lib/modules/set_misc/filters.js';
import { startRedis } from './helpers/redis.js';
import { hasNginx, normalize, raw, startNginx, startRedis2d } from './helpers/server.js';
import { chunkedBody } from './helpers/http_redis.js';

/*
 * redis2 with its companions, against real redis-servers: set_misc values
 * feeding redis2 queries, redis2 content inside echo subrequests and
 * echo_before/after_body, `if`, and set_hashed_upstream sharding over
 * three servers with nginx's member choice.
 */

const MODS = '/usr/lib/nginx/modules';
const LOAD = `load_module ${MODS}/ndk_http_module.so;\nload_module ${MODS}/ngx_http_set_misc_module.so;\nload_module ${MODS}/ngx_http_echo_module.so;`;
const haveOracle = hasNginx && existsSync(`${MODS}/ngx_http_echo_module.so`) && existsSync(`${MODS}/ngx_http_set_misc_module.so`);

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
const head = 'HTTP/1.1 200 OK\r\nServer: S\r\nDate: X\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n';

t.test('set_misc feeding redis2, redis2 in subrequests and filters', async (t) => {
  const redis = await startRedis(t);
  const up = `127.0.0.1:${redis.port}`;
  // the key's UTF-8 bytes, as the decoded query string gives them
  await redis.command(['SET', Buffer.from('a b+c/é', 'utf8').toString('latin1'), 'spaced']);
  const srv = await startRedis2d(`server { listen 127.0.0.1:{port};
    location /get { set_unescape_uri $key $arg_key; redis2_query get $key; redis2_pass ${up}; }
    location /raw { set_unescape_uri $n $arg_n; set_unescape_uri $cmds $arg_cmds; redis2_raw_queries $n $cmds; redis2_pass ${up}; }
    location /set { redis2_query set seq $arg_v; redis2_pass ${up}; }
    location /getseq { redis2_query get seq; redis2_pass ${up}; }
    location /both { echo_location /set v=first; echo_location /getseq; }
    location /async { echo begin; echo_location_async /getseq; echo_location_async /get key=a%20b%2Bc%2F%C3%A9; echo end; }
    location /wrapped { echo_before_body "<<"; echo_after_body ">>"; redis2_query get seq; redis2_pass ${up}; }
    location /sub-wrapped { echo_location /wrapped; echo tail; }
    location /cond {
      if ($arg_mode = echo) { echo from-echo; }
      redis2_query get seq; redis2_pass ${up};
    }
    location /cond2 {
      if ($arg_mode = redis) { redis2_query get seq; redis2_pass ${up}; }
      echo default-echo;
    }
    location /quoted { set_quote_json_str $q $arg_v; redis2_query set json $q; redis2_query get json; redis2_pass ${up}; }
  }`, LOAD);
  t.teardown(() => srv.stop());
  const p = srv.port;

  t.equal(chunkedBody(await raw(p, get('/get?key=a+b%2Bc%2F%C3%A9'), 3000)), '$6\r\nspaced\r\n', 'set_unescape_uri then redis2_query get $key');
  const cmds = encodeURIComponent('set rk rv\r\nget rk\r\nping\r\n');
  t.equal(chunkedBody(await raw(p, get(`/raw?n=3&cmds=${cmds}`), 3000)), '+OK\r\n$2\r\nrv\r\n+PONG\r\n', 'redis2_raw_queries $n $cmds from decoded args');

  const both = normalize(await raw(p, get('/both'), 3000), p);
  t.equal(both, `${head}5\r\n+OK\r\n\r\nb\r\n$5\r\nfirst\r\n\r\n0\r\n\r\n`, 'echo_location /set; echo_location /get: both replies, in order');
  t.equal(chunkedBody(await raw(p, get('/async'), 3000)), 'begin\n$5\r\nfirst\r\n$6\r\nspaced\r\nend\n', 'redis2 in async subrequests, in order');
  t.equal(chunkedBody(await raw(p, get('/wrapped'), 3000)), '<<\n$5\r\nfirst\r\n>>\n', 'echo_before_body/echo_after_body around redis2');
  t.equal(chunkedBody(await raw(p, get('/sub-wrapped'), 3000)), '<<\n$5\r\nfirst\r\n>>\ntail\n', 'the same inside a subrequest');
  t.equal(chunkedBody(await raw(p, get('/cond?mode=echo'), 3000)), 'from-echo\n', 'echo inside if');
  t.equal(chunkedBody(await raw(p, get('/cond?mode=x'), 3000)), '$5\r\nfirst\r\n', 'redis2 outside the if');
  t.equal(chunkedBody(await raw(p, get('/cond2?mode=redis'), 3000)), '$5\r\nfirst\r\n', 'redis2 inside if');
  t.equal(chunkedBody(await raw(p, get('/cond2?mode=x'), 3000)), 'default-echo\n', 'echo outside the if');
  t.equal(chunkedBody(await raw(p, get('/quoted?v=say+"hi"'), 3000)), '+OK\r\n$12\r\n"say+\\"hi\\""\r\n', 'set_quote_json_str value stored');
  t.notMatch(srv.errorLog(), /\[(error|alert|crit)\]/, 'no errors logged');
});

t.test('a large redis2 reply through a subrequest keeps its bytes and order', async (t) => {
  const redis = await startRedis(t);
  const big = 'x'.repeat(300000) + 'END';
  await redis.command(['SET', 'big', big]);
  const srv = await startRedis2d(`server { listen 127.0.0.1:{port};
    location /big { redis2_query get big; redis2_buffer_size 4k; redis2_pass 127.0.0.1:${redis.port}; }
    location /twice { echo_location_async /big; echo_location_async /big; echo done; }
  }`, LOAD);
  t.teardown(() => srv.stop());
  const got = chunkedBody(await raw(srv.port, get('/twice'), 5000));
  const one = `$${big.length}\r\n${big}\r\n`;
  t.equal(got.length, 2 * one.length + 5);
  t.ok(got === one + one + 'done\n', 'two big replies then the tail');
});

t.test('set_hashed_upstream shards 1,000 keys over three redis-servers as nginx would', async (t) => {
  const servers = [await startRedis(t), await startRedis(t), await startRedis(t)];
  const names = ['r0', 'r1', 'r2'];
  const ups = servers.map((s, i) => `upstream ${names[i]} { server 127.0.0.1:${s.port}; }`).join('\n');
  const srv = await startRedis2d(`${ups}
    upstream_list shards r0 r1 r2;
    keepalive_requests 100000;
    server { listen 127.0.0.1:{port};
      location /put {
        set_unescape_uri $key $arg_key;
        set_hashed_upstream $backend shards $key;
        redis2_query set $key $backend;
        redis2_pass $backend;
      }
    }`, LOAD);
  t.teardown(() => srv.stop());
  const keys: string[] = [];
  for (let i = 0; i < 1000; i++) keys.push(i % 5 === 0 ? `Key:${i}:ÄB` : `user:${i * 104729}`);
  const reqs = keys.map((k, i) => `GET /put?key=${encodeURIComponent(k).replace(/%C3%84/g, '%c3%84')} HTTP/1.1\r\nHost: x\r\n${i === keys.length - 1 ? 'Connection: close\r\n' : ''}\r\n`);
  const out = await raw(srv.port, reqs.join(''), 5000);
  t.equal(out.split('+OK\r\n').length - 1, 1000, 'every SET answered +OK');

  const expected = keys.map((k) => hashedUpstreamPick({ name: 'shards', buckets: names }, Buffer.from(k, 'utf8').toString('latin1')));
  for (let s = 0; s < 3; s++) {
    const mine = keys.filter((_k, i) => expected[i] === names[s]);
    t.ok(mine.length > 200, `${names[s]} holds a fair share (${mine.length})`);
    t.equal(await servers[s]!.command(['DBSIZE']), `:${mine.length}\r\n`, `${names[s]} holds exactly its keys`);
    for (const k of mine.slice(0, 50)) {
      t.equal(await servers[s]!.command(['GET', Buffer.from(k, 'utf8').toString('latin1')]), `$2\r\n${names[s]}\r\n`);
    }
  }

  // the pick function is nginx's: Debian nginx + set_misc over the same keys
  if (!haveOracle) return;
  const ng = await startNginx(`upstream_list shards r0 r1 r2; keepalive_requests 100000;
    server { listen 127.0.0.1:{port};
      location /pick { set_unescape_uri $key $arg_key; set_hashed_upstream $backend shards $key; echo -n $backend; }
    }`, LOAD);
  t.teardown(() => ng.stop());
  const picks = reqs.map((r) => r.replace('/put?', '/pick?'));
  const nout = await raw(ng.port, picks.join(''), 5000);
  const nb: string[] = [];
  for (const part of nout.split(/(?=HTTP\/1\.1 )/)) nb.push(chunkedBody(part));
  t.same(nb, expected, 'nginx picks the same member for each of the 1,000 keys');
});
