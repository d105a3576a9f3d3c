import t from 'tap';
import { startRedis } from './helpers/redis.js';
import { raw, startRedis2d } from './helpers/server.js';
import { connect } from 'node:net';

/*
 * Lua next to redis2 against a real redis-server (Debian's nginx has no
 * redis2 and its Lua module no redis.parser, so these are checked against
 * the libraries' documented behaviour, not an oracle): captures of redis2
 * locations parsed with redis.parser, build_query feeding
 * redis2_raw_query, lua_shared_dict, require through lua_package_path,
 * and runtime errors that leave the worker serving.
 */

const FIXTURES = new URL('../fixtures/lua/', import.meta.url).pathname;
const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;

/** the body of a chunked response, de-chunked */
function body(res: string): string {
  const i = res.indexOf('\r\n\r\n');
  let rest = res.slice(i + 4);
  let out = '';
  for (;;) {
    const nl = rest.indexOf('\r\n');
    if (nl < 0) break;
    const n = parseInt(rest.slice(0, nl), 16);
    if (!n) break;
    out += rest.slice(nl + 2, nl + 2 + n);
    rest = rest.slice(nl + 2 + n + 2);
  }
  return out;
}

/** read the first bytes of a response, stop reading for 500 ms (asking `probe` then), then read the rest */
function pausedRead(port: number, req: string, probe: () => Promise<number>): Promise<{ bytes: number; printedWhilePaused: number }> {
  return new Promise((res) => {
    const c = connect(port, '127.0.0.1');
    let bytes = 0;
    let paused = false;
    let printed = -1;
    c.on('data', (d: Buffer) => {
      bytes += d.length;
      if (paused) return;
      paused = true;
      c.pause();
      setTimeout(() => {
        void probe().then((n) => {
          printed = n;
          c.resume();
        });
      }, 500);
    });
    c.on('close', () => res({ bytes, printedWhilePaused: printed }));
    c.on('error', () => {});
    c.write(req);
  });
}

t.test('captures of redis2 locations parsed with redis.parser', async (t) => {
  const redis = await startRedis(t);
  const up = `127.0.0.1:${redis.port}`;
  await redis.command(['SET', 'k1', 'v\r\n1']);
  await redis.command(['RPUSH', 'l1', 'a', '', 'c']);
  const srv = await startRedis2d(`
    lua_package_path "${FIXTURES}?.lua;;";
    lua_shared_dict counters 1m;
    server { listen 127.0.0.1:{port};
    location = /redis { internal; redis2_raw_query $echo_request_body; redis2_pass ${up}; }
    location = /get { internal; redis2_query get $arg_key; redis2_pass ${up}; }
    location = /pipe { internal; redis2_query ping; redis2_query incr n; redis2_query lrange l1 0 -1; redis2_query get nokey; redis2_pass ${up}; }
    location = /down { internal; redis2_query ping; redis2_pass 127.0.0.1:1; }
    location /parse {
      content_by_lua_block {
        local parser = require "redis.parser"
        local function q(...)
          local res = ngx.location.capture("/redis", { method = ngx.HTTP_PUT, body = parser.build_query({ ... }) })
          return parser.parse_reply(res.body)
        end
        local v, typ = q("get", "k1")
        ngx.say(typ == parser.BULK_REPLY, " [", v, "] ", parser.typename(typ))
        v, typ = q("get", "missing")
        ngx.say(typ, " ", tostring(v))
        v, typ = q("set", "k2", 12)
        ngx.say(typ, " ", v)
        v, typ = q("incr", "k2")
        ngx.say(typ, " ", v, " ", type(v))
        v, typ = q("lpush")
        ngx.say(typ, " ", v)
        v, typ = q("lrange", "l1", 0, -1)
        ngx.say(typ, " ", #v, " ", table.concat(v, ","))
        v, typ = q("blpop", "nolist", "0.01")
        ngx.say(typ, " ", tostring(v))
        local r = ngx.location.capture("/get", { args = { key = "k1" } })
        ngx.say(r.status, " ", #r.body)
        ngx.say(parser.null == ngx.null, " ", parser.BAD_REPLY, parser.STATUS_REPLY, parser.ERROR_REPLY, parser.INTEGER_REPLY, parser.BULK_REPLY, parser.MULTI_BULK_REPLY)
      }
    }
    location /replies {
      content_by_lua_block {
        local parser = require "redis.parser"
        local res = ngx.location.capture("/pipe")
        local replies = parser.parse_replies(res.body, 4)
        for i, r in ipairs(replies) do
          local v = r[1]
          if type(v) == "table" then v = table.concat(v, "|") end
          ngx.say(i, ": ", r[2], " ", tostring(v))
        end
      }
    }
    location /bad {
      content_by_lua_block {
        local parser = require "redis.parser"
        for _, s in ipairs({ "", "+OK", "-ERR", ":12", "$3\\r\\nab\\r\\n", "*2\\r\\n$1\\r\\na\\r\\n", "?", "$-1\\r\\n", "*-1\\r\\n", "*1\\r\\n$-1\\r\\n", ":abc\\r\\n" }) do
          local v, typ = parser.parse_reply(s)
          if type(v) == "table" then v = "table#" .. #v end
          ngx.say(typ, " ", tostring(v))
        end
        ngx.say(parser.build_query({ "set", "a", true, false, parser.null, 1.5 }))
        ngx.say(pcall(parser.build_query, {}))
        ngx.say(pcall(parser.build_query, { {} }))
      }
    }
    location /godown {
      content_by_lua_block {
        local res = ngx.location.capture("/down")
        ngx.say(res.status, " [", res.body, "]")
      }
    }
    location /dict {
      content_by_lua_block {
        local d = ngx.shared.counters
        d:flush_all()
        ngx.say(tostring(d:get("a")), " ", d:set("a", 1), " ", d:get("a"))
        ngx.say(d:incr("a", 2), " ", tostring(d:incr("none", 1)), " ", d:incr("new", 5, 10))
        ngx.say(d:add("a", 9), " ", d:replace("b", 1), " ", d:replace("a", "x"), " ", d:get("a"))
        d:set("t", "tmp", 0.05)
        d:set("f", 1.5, 0, 7)
        local v, flags = d:get("f")
        ngx.say(v, " ", flags)
        local keys = d:get_keys()
        table.sort(keys)
        ngx.say(table.concat(keys, ","))
        ngx.sleep(0.1)
        ngx.say(tostring(d:get("t")), " ", d:delete("a"), " ", tostring(d:get("a")))
      }
    }
    location /require {
      content_by_lua_block {
        local m = require "mymod"
        ngx.say(m.greet("lua"), " ", require("mymod") == m)
        local ok, err = pcall(require, "no.such.mod")
        ngx.say(ok, " ", err:match("^module 'no.such.mod' not found:") ~= nil)
      }
    }
    location /boom {
      content_by_lua_block {
        local t = nil
        ngx.say(t.x)
      }
    }
    location /slow {
      content_by_lua_block {
        ngx.sleep(0.3)
        local res = ngx.location.capture("/get", { args = { key = "k1" } })
        ngx.say("late ", res.status)
      }
    }
    location /slowcap {
      content_by_lua_block {
        local res = ngx.location.capture("/slow")
        ngx.say("never ", res.status)
      }
    }
    location /resty {
      content_by_lua_block {
        local redis = require "resty.redis"
        local red = redis:new()
        red:set_timeout(1000)
        local ok, err = red:connect("127.0.0.1", ${redis.port})
        ngx.say("connect: ", ok, " ", tostring(err))
        ngx.say(red:set("dog", "an animal"), " ", red:get("dog"), " ", tostring(red:get("cat") == ngx.null))
        local ok2, e2 = red:lpush("dog", "x")
        ngx.say(ok2, " ", e2)
        ngx.say(red:del("cnt"), " ", red:incr("cnt"), " ", red:incrby("cnt", 41))
        red:init_pipeline()
        red:set("a", "1")
        red:get("a")
        red:lrange("l1", 0, -1)
        red:get("nokey")
        local res = red:commit_pipeline()
        ngx.say(#res, " ", res[1], " ", res[2], " ", table.concat(res[3], ","), " ", tostring(res[4] == ngx.null))
        ngx.say(red:hmset("h", { f = "v" }), " ", red:hget("h", "f"))
        ngx.say(red:get_reused_times(), " ", red:set_keepalive(10000, 10))
        local red2 = redis:new()
        red2:connect("127.0.0.1", ${redis.port})
        ngx.say("reused ", red2:get_reused_times(), " ", red2:get("dog"))
        red2:close()
        local red3 = redis:new()
        red3:set_timeout(200)
        ngx.say(red3:connect("127.0.0.1", 1))
      }
    }
    location /readtimeout {
      lua_socket_read_timeout 100ms;
      content_by_lua_block {
        local sock = ngx.socket.tcp()
        local ok, err = sock:connect("127.0.0.1", ${redis.port})
        sock:send("BLPOP nolist 5\\r\\n")
        local line, err2 = sock:receive()
        ngx.say(ok, " ", tostring(line), " ", err2)
      }
    }
    location /big {
      content_by_lua_block {
        local chunk = string.rep("x", 65536)
        ngx.shared.counters:set("printed", 0)
        for i = 1, 512 do
          ngx.print(chunk)
          ngx.flush(true)
          ngx.shared.counters:incr("printed", 1)
        end
      }
    }
    location /printed { content_by_lua 'ngx.say(ngx.shared.counters:get("printed"))'; }
    location /hostfail {
      content_by_lua_block {
        ngx.say(pcall(ngx.say, function() end))
        ngx.say(pcall(ngx.location.capture, ""))
      }
    }
  }`);
  t.teardown(() => srv.stop());

  t.equal(body(await raw(srv.port, get('/parse'))), [
    'true [v\r\n1] bulk reply',
    '4 nil',
    '1 OK',
    '3 13 number',
    "2 ERR wrong number of arguments for 'lpush' command",
    '5 3 a,,c',
    '5 nil',
    '200 10',
    'true 012345',
  ].join('\n') + '\n', 'parse_reply of each reply type');

  t.equal(body(await raw(srv.port, get('/replies'))), [
    '1: 1 PONG',
    '2: 3 1',
    '3: 5 a||c',
    '4: 4 nil',
  ].join('\n') + '\n', 'parse_replies over a pipelined capture');

  t.equal(body(await raw(srv.port, get('/bad'))), [
    '0 empty reply',
    '0 bad status reply',
    '0 bad error reply',
    '0 bad integer reply',
    '0 bad bulk reply',
    '0 bad multi bulk reply',
    '0 invalid reply',
    '4 nil',
    '5 nil',
    '5 table#0',
    '3 0',
    '*6\r\n$3\r\nset\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\n0\r\n$-1\r\n$3\r\n1.5\r\n',
    'falseempty input param table',
    'falseparameter 1 is not a string, number, redis.parser.null, or boolean value',
  ].join('\n') + '\n', 'bad replies and build_query');

  const down = await raw(srv.port, get('/godown'));
  t.equal(body(down), '502 []\n', 'a failing redis2 capture: 502, no error page captured');

  t.equal(body(await raw(srv.port, get('/dict'))), [
    'nil true 1',
    '3 nil 15nilfalse', // incr with init answers value, nil, forcible (resty.core; checked in t/lua-shdict.test.ts)
    'false false true x',
    '1.5 7',
    'a,f,new,t',
    'nil true nil',
  ].join('\n') + '\n', 'lua_shared_dict operations and expiry');

  t.equal(body(await raw(srv.port, get('/require'))), 'hello, lua true\nfalse true\n', 'require through lua_package_path');

  const boom = await raw(srv.port, get('/boom'));
  t.match(boom, /^HTTP\/1\.1 500 Internal Server Error\r\n/, 'runtime error: 500');
  t.match(srv.errorLog(), /\[error\] \d+#\d+: \*\d+ lua entry thread aborted: runtime error: content_by_lua\(nginx\.conf:\d+\):3: attempt to index a nil value \(local 't'\)\nstack traceback:\ncoroutine 0:\n\tcontent_by_lua\(nginx\.conf:\d+\):3: in main chunk, client: 127\.0\.0\.1/);
  t.equal(body(await raw(srv.port, get('/resty'))), [
    'connect: 1 nil',
    'OK an animal true',
    'false WRONGTYPE Operation against a key holding the wrong kind of value',
    '0 1 42',
    '4 OK 1 a,,c true',
    'OK v',
    '0 1',
    'reused 1 an animal',
    'nilconnection refused',
  ].join('\n') + '\n', 'resty.redis over cosockets: commands, errors, pipeline, keepalive pool');

  const t0 = Date.now();
  t.equal(body(await raw(srv.port, get('/readtimeout'), 2000)), '1 nil timeout\n', 'lua_socket_read_timeout applies to a cosocket');
  t.ok(Date.now() - t0 < 1500, 'the read timed out after 100 ms, not 60 s');

  // 32 MiB through ngx.print + ngx.flush(true): while the client does not read, the loop waits
  const big = await pausedRead(srv.port, get('/big'), async () => Number(body(await raw(srv.port, get('/printed')))));
  t.ok(big.printedWhilePaused >= 0 && big.printedWhilePaused < 256, `the Lua loop waited for the client (${big.printedWhilePaused} of 512 chunks printed while it did not read)`);
  t.equal(big.bytes > 32 * 1024 * 1024, true, 'then all 32 MiB arrived');

  // clients leaving while their threads wait (a sleep, a capture of a sleeping location): nothing breaks
  await Promise.all([raw(srv.port, get('/slow'), 50), raw(srv.port, get('/slowcap'), 50), raw(srv.port, get('/slow'), 50)]);
  await new Promise((r) => setTimeout(r, 500));
  t.equal(body(await raw(srv.port, get('/require'))), 'hello, lua true\nfalse true\n', 'served after abandoned threads');
  t.notMatch(srv.errorLog(), /\[(alert|crit|emerg)\]/, 'no alert, crit or emerg in the log');
  const after = await raw(srv.port, get('/hostfail'));
  t.equal(body(after), "falsebad argument #1 to 'say' (string, number, boolean, nil, ngx.null, or array table expected, got function)\nfalseattempt to use zero-length uri\n", 'bad arguments are Lua errors; the worker still serves');
});
