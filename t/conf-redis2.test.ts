import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../lib/process/config.js';
import type { Cycle } from '../lib/conf/parser.js';
import type { HttpState } from '../lib/http/module.js';
import { coreLoc, httpCoreModule, type CoreMainConf, type CoreLocConf } from '../lib/http/core/module.js';
import { redis2Handler, redis2Module, type Redis2LocConf } from '../lib/modules/redis2/module.js';
import {
  NEXT_UPSTREAM_ERROR,
  NEXT_UPSTREAM_INVALID_RESPONSE,
  NEXT_UPSTREAM_OFF,
  NEXT_UPSTREAM_SET,
  NEXT_UPSTREAM_TIMEOUT,
} from '../lib/upstream/run.js';
import { findUpstream, upstreamMainConf } from '../lib/upstream/module.js';

/* The conf shapes the redis2 runtime reads: merge results, targets, peers. */

const dir = mkdtempSync(join(tmpdir(), 'redis2d-conf-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function load(text: string): Cycle {
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, text);
  return loadConfig({ confFile: file, prefix: dir });
}

function locations(cycle: Cycle): CoreLocConf[] {
  const http = cycle.state.get('http') as HttpState;
  const main = http.ctx.main[httpCoreModule.index] as CoreMainConf;
  return coreLoc(main.servers[0]!.ctx.loc).locations;
}

const r2 = (l: CoreLocConf): Redis2LocConf => l.locConf[redis2Module.index] as Redis2LocConf;

const cycle = load(`events {}
http {
    redis2_read_timeout 5s;
    redis2_next_upstream error invalid_response;
    upstream pool {
        server 127.0.0.1:6379 weight=3 max_fails=2 fail_timeout=7s;
        server [::1]:6380 backup;
        hash $arg_key consistent;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:8080;
        redis2_buffer_size 16k;
        location /q {
            redis2_query set k "";
            redis2_query get $arg_key;
            redis2_pass pool;
            location /q/nested { redis2_connect_timeout 1s; }
        }
        location = /raw {
            redis2_raw_queries $arg_n "ping\\r\\n";
            redis2_next_upstream off;
            redis2_pass 127.0.0.1:6390;
        }
        location /var {
            redis2_literal_raw_query "*1\\r\\n$4\\r\\nping\\r\\n";
            redis2_pass $arg_target;
            location /var/n { }
        }
    }
}
`);

const [q, raw, v] = locations(cycle) as [CoreLocConf, CoreLocConf, CoreLocConf];

t.test('redis2_query: each argument compiled, empty ones constant ""', async (t) => {
  const c = r2(q);
  t.equal(c.queries!.length, 2);
  t.same(c.queries![0]!.map((a) => a.constant), ['set', 'k', '']);
  t.equal(c.queries![1]![1]!.constant, undefined, '$arg_key is not constant');
  t.equal(c.readTimeout, 5000, 'inherited from http');
  t.equal(c.connectTimeout, 60000, 'default');
  t.equal(c.bufferSize, 16384, 'inherited from server');
  // inherited as written: NEXT_UPSTREAM_SET only comes with the default and with off
  t.equal(c.nextUpstream, NEXT_UPSTREAM_ERROR | NEXT_UPSTREAM_INVALID_RESPONSE);
  t.equal(c.bind, null);
  t.equal(q.handler, redis2Handler);
  t.equal(c.target?.kind, 'upstream');
});

t.test('nested location inherits queries and the literal target', async (t) => {
  const n = r2(q.locations[0]!);
  t.equal(n.queries, r2(q).queries);
  t.same(n.target, r2(q).target);
  t.equal(n.connectTimeout, 1000);
});

t.test('raw queries, next_upstream off, implicit upstream', async (t) => {
  const c = r2(raw);
  t.equal(c.rawQueriesCount!.source, '$arg_n');
  t.equal(c.rawQueriesCount!.constant, undefined);
  t.equal(c.rawQuery!.constant, 'ping\r\n');
  t.equal(c.nextUpstream, NEXT_UPSTREAM_SET | NEXT_UPSTREAM_OFF);
  t.notOk(c.nextUpstream & NEXT_UPSTREAM_TIMEOUT);
  if (c.target?.kind !== 'upstream') throw new Error('expected upstream');
  const us = c.target.upstream;
  t.equal(us.host, '127.0.0.1');
  t.equal(us.port, 6390);
  t.equal(us.peers!.peers[0]!.addr.name, '127.0.0.1:6390');
  t.ok(us.peers!.single);
});

t.test('variable target is not inherited (the module does not merge it)', async (t) => {
  t.equal(r2(v).target?.kind, 'complex');
  t.equal(r2(v).literalQuery, '*1\r\n$4\r\nping\r\n');
  t.equal(r2(v.locations[0]!).target, undefined);
});

t.test('upstream block: peers, backup, balancer, keepalive', async (t) => {
  const umcf = upstreamMainConf(cycle)!;
  const pool = findUpstream(umcf, 'POOL')!;
  t.ok(pool, 'found case-insensitively with port 0');
  t.equal(findUpstream(umcf, '127.0.0.1:6390'), undefined, 'host:port text is not a name');
  t.equal(pool.peers!.peers.length, 1);
  t.match(pool.peers!.peers[0], { weight: 3, maxFails: 2, failTimeout: 7, addr: { family: 'inet', port: 6379 } });
  t.equal(pool.peers!.single, false, 'a backup set exists');
  t.equal(pool.backup!.peers[0]!.addr.name, '[::1]:6380');
  t.equal(pool.balancer.kind, 'hash');
  t.match(pool.keepalive, { maxCached: 16, active: true, timeout: 60000, requests: 1000, time: 3600000 });
});

t.test('a balancing method after keepalive disables the cache, with the warning', async (t) => {
  const c = load(`events {}
http { upstream u { server 127.0.0.1:1; keepalive 4; least_conn; } }
`);
  const u = findUpstream(upstreamMainConf(c)!, 'u')!;
  t.equal(u.keepalive.active, false);
  t.equal(u.balancer.kind, 'least_conn');
  t.same(
    c.warnings.map((w) => w.text),
    [`load balancing method redefined in ${join(dir, 'nginx.conf')}:2`],
  );
});
