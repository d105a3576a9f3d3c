import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers/proc.js';
import { normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';
import { debianModules, request, sleep, startWorkers } from './helpers/site.js';

/*
 * ngx.shared.DICT against Debian's nginx with ngx_lua 0.10.23 (its dict
 * methods are lua-resty-core's over the C shdict): every operation's
 * answers, Lua types and flags; expiry (get nil, get_stale stale, ttl);
 * flush_all and get_keys; a full dict's eviction (which set is the first
 * `forcible`, how many keys survive, safe_set's "no memory"), which is
 * nginx's slab allocator's arithmetic; and two workers incrementing one
 * counter from many concurrent requests: the total is exact, and every
 * value incr returned is distinct, as the zone's mutex makes them
 * (docs/behaviour.md §14, §15).
 */

const { load: LOAD, skip } = debianModules('ndk_http_module', 'ngx_http_lua_module');

const HTTP = `
  default_type text/plain;
  access_log off;
  lua_shared_dict d 1m;
  lua_shared_dict small 12k;
  lua_shared_dict tiny 16k;
  lua_shared_dict small2 20k;
  server {
    listen 127.0.0.1:{port};
    location /ops {
      content_by_lua_block {
        local d = ngx.shared.d
        local function show(...)
          local n = select("#", ...)
          local out = {}
          for i = 1, n do
            local v = select(i, ...)
            out[#out + 1] = type(v) .. ":" .. tostring(v)
          end
          ngx.say(table.concat(out, " "))
        end
        show(d:set("s", "str"))
        show(d:get("s"))
        show(d:set("n", 42.5, 0, 7))
        show(d:get("n"))
        show(d:set("b", false))
        show(d:get("b"))
        show(d:set("i", 10))
        show(d:get("i"))
        show(d:add("s", "again"))
        show(d:add("new", true))
        show(d:safe_add("new2", "x"))
        show(d:replace("missing", 1))
        show(d:replace("s", "replaced", 0, 3))
        show(d:get("s"))
        show(d:get_stale("s"))
        show(d:incr("i", 5))
        show(d:incr("i", -2.5))
        show(d:incr("s", 1))
        show(d:incr("none", 1))
        show(d:incr("fresh", 2, 40))
        show(d:incr("fresh2", 1, 0, 100))
        show(d:delete("b"))
        show(d:get("b"))
        show(d:get("nothing"))
        show(d:get(nil))
        show(d:get(""))
        show(d:set(nil, 1))
        show(d:set("t", {}))
        show(d:add("nilv", nil))
        show(d:set(12, "numkey"))
        show(d:get("12"))
        show(d:safe_set("safe", "v"))
        show(d:ttl("i"))
        show(d:ttl("missing"))
        show(d:expire("missing", 1))
        show(d:capacity())
        local keys = d:get_keys()
        table.sort(keys)
        show(#keys, table.concat(keys, ","))
        show(#d:get_keys(2))
        show(d:set("bin", "a\\0b\\255"))
        show(#d:get("bin"), d:get("bin") == "a\\0b\\255")
        show(pcall(d.set, d, "x", 1, -1))
        show(pcall(d.incr, d, "x", 1, "zz"))
      }
    }
    location /expiry {
      content_by_lua_block {
        local d = ngx.shared.d
        d:set("e1", "soon", 0.1)
        d:set("e2", 5, 0.1, 9)
        d:set("e3", "later", 10)
        d:set("e4", "never")
        ngx.say(d:get("e1"), " ", d:ttl("e3") > 9, " ", d:ttl("e4"))
        ngx.say(d:expire("e4", 0.1), " ", d:ttl("e4") > 0)
        ngx.sleep(0.2)
        ngx.say(tostring(d:get("e1")), " ", tostring(d:get("e4")))
        ngx.say(d:get_stale("e2"))
        ngx.say(d:add("e4", "back"), " ", d:get("e4"))
        ngx.say(d:replace("e1", "x"))
        ngx.say(d:incr("e2", 1, 100))
        local keys = d:get_keys(0)
        table.sort(keys)
        ngx.say(table.concat(keys, ","))
        d:set("f1", 1, 0.05)
        d:set("f2", 1, 0.05)
        ngx.sleep(0.1)
        ngx.say(d:flush_expired(), " ", d:flush_expired())
        d:flush_all()
        ngx.say(#d:get_keys(0), " ", tostring(d:get("e3")), " ", d:get_stale("e3"))
        ngx.say(d:set("e3", "after"), " ", d:get("e3"), " ", #d:get_keys(0))
      }
    }
    location /lists {
      content_by_lua_block {
        local d = ngx.shared.d
        local function show(...)
          local n = select("#", ...)
          local out = {}
          for i = 1, n do
            local v = select(i, ...)
            out[#out + 1] = type(v) .. ":" .. tostring(v)
          end
          ngx.say(table.concat(out, " "))
        end
        show(d:rpush("l", "a"))
        show(d:rpush("l", 2))
        show(d:lpush("l", "z"))
        show(d:llen("l"))
        show(d:get("l"))
        show(d:get_stale("l"))
        show(d:incr("l", 1))
        show(d:lpop("l"))
        show(d:rpop("l"))
        show(d:rpop("l"))
        show(d:rpop("l"))
        show(d:llen("l"))
        show(d:llen("nolist"))
        show(d:set("str", "s"))
        show(d:lpush("str", 1))
        show(d:lpop("str"))
        show(d:llen("str"))
        show(d:lpush("b", true))
        show(d:lpush(nil, 1))
        show(pcall(d.lpush, d, "x"))
        show(pcall(d.llen, d))
        show(d:rpush("l2", "x"))
        show(d:expire("l2", 0.05))
        show(d:ttl("l2") > 0)
        ngx.sleep(0.1)
        show(d:llen("l2"))
        show(d:rpush("l2", "y"))
        show(d:ttl("l2"))
        show(d:lpop("l2"))
        show(d:rpush("l3", 1))
        show(d:set("l3", "over"))
        show(d:get("l3"))
        local keys = d:get_keys(0)
        table.sort(keys)
        show(table.concat(keys, ","))
        local s = ngx.shared.small2
        local v = string.rep("x", 200)
        local i = 0
        while i < 200 do
          i = i + 1
          local len, err = s:rpush("big", v)
          if not len then show(i, len, err) break end
        end
        show(s:llen("big"), s:free_space())
        show(s:rpush("other", v))
        show(s:set("k", "v"))
        show(s:lpop("big") == v, s:llen("big"))
        show(s:rpush("other", v))
      }
    }
    location /full {
      content_by_lua_block {
        local d = ngx.shared[ngx.var.arg_dict]
        local size = tonumber(ngx.var.arg_len)
        local v = string.rep("v", size)
        local first
        for i = 1, 400 do
          local ok, err, forcible = d:set("key" .. i, v)
          if not ok then ngx.say("set ", i, " ", err) break end
          if forcible and not first then first = i end
        end
        local keys = d:get_keys(0)
        ngx.say("first forcible ", first, " kept ", #keys, " oldest ", keys[1], " newest ", keys[#keys])
        ngx.say(d:safe_set("another", v))
        ngx.say(d:safe_add("another", v))
        ngx.say(d:get("key1") == nil, " ", d:get("key400") == v)
        ngx.say(d:set("huge", string.rep("h", 20000)))
        local ok, err, forcible = d:incr("counter", 1, 0)
        ngx.say(ok, " ", err, " ", forcible)
        d:flush_all()
        ngx.say(d:safe_set("after-flush", v))
        ngx.say(d:free_space() <= d:capacity())
      }
    }
  }
`;

t.test('ngx.shared.DICT, one worker: the answers of nginx', { skip }, async (t) => {
  let ours: Running | undefined;
  let theirs: Running | undefined;
  try {
    theirs = await startNginx(HTTP, LOAD);
    ours = await startRedis2d(HTTP);
    const paths = ['/ops', '/expiry', '/lists', '/full?dict=small&len=100', '/full?dict=tiny&len=20', '/full?dict=small&len=1000', '/full?dict=d&len=3000'];
    for (const p of paths) {
      const req = `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
      const [a, b] = await Promise.all([raw(ours.port, req, 600), raw(theirs.port, req, 600)]);
      t.equal(normalize(a, ours.port), normalize(b, theirs.port), p);
      t.match(b, /^HTTP\/1\.1 200 /, `${p}: nginx answers 200`);
    }
    t.notMatch(ours.errorLog(), /\[(error|alert|crit)\]/, 'no errors logged');
  } finally {
    await ours?.stop();
    await theirs?.stop();
  }
});

const COUNTER = `
  default_type text/plain;
  access_log off;
  lua_shared_dict c 1m;
  server {
    listen 127.0.0.1:{port};
    location /inc {
      content_by_lua_block {
        local d = ngx.shared.c
        local v = d:incr("hits", 1, 0)
        d:set("w" .. ngx.worker.pid(), true)
        ngx.sleep(0.001)
        local keys = d:get_keys(0)
        ngx.say(ngx.worker.pid(), " ", v, " ", d:get("hits") >= v, " ", #keys >= 2)
      }
      log_by_lua_block { ngx.shared.c:incr("logged", 1, 0) }
      rewrite_by_lua_block { ngx.ctx.r = ngx.shared.c:incr("rw", 1, 0) }
      access_by_lua_block { if type(ngx.shared.c:incr("acc", 1, 0)) ~= "number" or ngx.ctx.r < 1 then ngx.exit(500) end }
    }
    location /total {
      content_by_lua_block {
        local d = ngx.shared.c
        local keys = d:get_keys(0)
        ngx.say(d:get("hits"), " ", d:get("logged"), " ", d:get("rw"), " ", d:get("acc"), " ", #keys)
        d:flush_all()
        ngx.say(tostring(d:get("hits")), " ", #d:get_keys(0))
      }
    }
  }
`;

interface Counted {
  pids: number;
  values: number[];
  total: string;
}

async function counted(kind: 'nginx' | 'redis2d', n: number): Promise<Counted> {
  const s = await startWorkers(kind, COUNTER, 2, kind === 'nginx' ? LOAD : '');
  try {
    const pids = new Set<string>();
    const values: number[] = [];
    // the kernel may hand a burst to one worker: more bursts (bounded) until both answered
    for (let round = 0; round < 5 && (round === 0 || pids.size < 2); round++) {
      const rs = await Promise.all(Array.from({ length: n }, () => request(s.port, 'GET /inc HTTP/1.0\r\nHost: x\r\n\r\n')));
      for (const r of rs) {
        const m = /\r\n\r\n(\d+) (\d+) true (true|false)\n$/.exec(r.raw);
        if (!m) continue;
        pids.add(m[1]!);
        values.push(Number(m[2]));
      }
    }
    const tot = await request(s.port, 'GET /total HTTP/1.0\r\nHost: x\r\n\r\n');
    return { pids: pids.size, values: values.sort((a, b) => a - b), total: tot.raw.split('\r\n\r\n')[1] ?? '' };
  } finally {
    await s.stop();
  }
}

t.test('two workers increment one counter: exact, as nginx', { skip }, async (t) => {
  const ng = await counted('nginx', 200);
  const rd = await counted('redis2d', 200);
  t.equal(ng.pids, 2, 'nginx: both workers answered');
  t.equal(rd.pids, 2, 'redis2d: both workers answered');
  const expect = (c: Counted): number[] => Array.from({ length: c.values.length }, (_, i) => i + 1);
  t.same(ng.values, expect(ng), 'nginx: every incr value once, 1..N');
  t.same(rd.values, expect(rd), 'redis2d: every incr value once, 1..N');
  // log_by_lua cannot yield: its incr is sent without waiting, and still counts once per request
  const n = (c: Counted): number => c.values.length;
  t.equal(rd.total, `${n(rd)} ${n(rd)} ${n(rd)} ${n(rd)} 6\nnil 0\n`, 'redis2d: the totals (content, log, rewrite, access) and the keys (those four, one per worker), then flushed');
  t.equal(ng.total, `${n(ng)} ${n(ng)} ${n(ng)} ${n(ng)} 6\nnil 0\n`, 'nginx: the same');
});

/*
 * At -t: a dict too small for its own header (under 12k: the slab pool's
 * pages cannot hold the shdict's rbtree head and its log context) is
 * nginx's crit line after `syntax is ok`; sizes and names as nginx judges.
 */
const CONFS: Array<[string, string]> = [
  ['8k', 'lua_shared_dict a 8k;'],
  ['11k', 'lua_shared_dict a 11k;'],
  ['12k', 'lua_shared_dict a 12k;'],
  ['8191 bytes', 'lua_shared_dict a 8191;'],
  ['bad size', 'lua_shared_dict a 1x;'],
  ['twice', 'lua_shared_dict a 1m; lua_shared_dict a 1m;'],
  ['a limit_req zone of the name', 'limit_req_zone $uri zone=a:1m rate=1r/s; lua_shared_dict a 1m;'],
];

function redis2dT(file: string, prefix: string): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, join(ROOT, 'bin/redis2d'), '-t', '-p', `${prefix}/`, '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
    c.on('close', (status) => resolve({ status, stderr }));
  });
}

t.test('lua_shared_dict at -t, as nginx judges it', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shdict-t-'));
  mkdirSync(join(dir, 'logs'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lines = (s: string, prog: string): string[] =>
    s.split('\n').filter((l) => l.startsWith(`${prog}: `)).map((l) => l.slice(prog.length + 2).replaceAll(dir, 'DIR'));
  for (const [name, body] of CONFS) {
    const file = join(dir, 'n.conf');
    writeFileSync(file, `${LOAD}\nevents {}\nhttp {\n  ${body}\n  server { listen 127.0.0.1:1; }\n}\n`);
    const ours = await redis2dT(file, dir);
    const n = spawnSync('/usr/sbin/nginx', ['-t', '-e', '/dev/null', '-p', `${dir}/`, '-c', file], { encoding: 'latin1' });
    t.equal(ours.status, n.status, `${name}: exit code`);
    t.same(lines(ours.stderr, 'redis2d').filter((l) => !l.includes('load_module')), lines(n.stderr, 'nginx'), `${name}: messages`);
  }
});

/*
 * A reload keeps a dict whose name and size are unchanged (nginx reuses
 * the shared memory: the values live on); a new size is a new, empty zone.
 */
const RELOAD = `
  default_type text/plain;
  access_log off;
  lua_shared_dict r 1m;
  server {
    listen 127.0.0.1:{port};
    location /set { content_by_lua_block { ngx.say(ngx.shared.r:set("k", ngx.var.arg_v)) } }
    location /get { content_by_lua_block { ngx.say(tostring(ngx.shared.r:get("k")), " ", ngx.shared.r:capacity()) } }
  }
`;

async function reloads(kind: 'nginx' | 'redis2d'): Promise<string[]> {
  const s = await startWorkers(kind, RELOAD, 2, kind === 'nginx' ? LOAD : '');
  try {
    const body = async (path: string): Promise<string> => (await request(s.port, `GET ${path} HTTP/1.0\r\nHost: x\r\n\r\n`)).raw.split('\r\n\r\n')[1] ?? '';
    const out = [await body('/set?v=one'), await body('/get')];
    const conf = join(s.dir, 'nginx.conf');
    const text = readFileSync(conf, 'latin1');
    // a reload is over when the two old workers have exited (they stop accepting as they go)
    const exits = (): number => (s.errorLog().match(/worker process \d+ exited/g) ?? []).length;
    const reload = async (next: string): Promise<void> => {
      const before = exits();
      writeFileSync(conf, next);
      process.kill(s.pid, 'SIGHUP');
      for (let i = 0; i < 100 && exits() < before + 2; i++) await sleep(100);
      await sleep(300);
    };
    await reload(text.replace('location /set', 'location /other { return 204; }\n    location /set'));
    out.push(await body('/get'), await body('/get'));
    await reload(text.replace('lua_shared_dict r 1m;', 'lua_shared_dict r 2m;'));
    out.push(await body('/get'), await body('/get'));
    return out;
  } finally {
    await s.stop();
  }
}

t.test('two workers: a reload keeps a dict of the same size, not one resized', { skip }, async (t) => {
  const ng = await reloads('nginx');
  const rd = await reloads('redis2d');
  t.same(ng, ['truenilfalse\n', 'one 1048576\n', 'one 1048576\n', 'one 1048576\n', 'nil 2097152\n', 'nil 2097152\n'], 'nginx');
  t.same(rd, ng, 'redis2d as nginx');
});
