import t from 'tap';
import { existsSync } from 'node:fs';
import { hasNginx, normalize, raw, startNginx, startRedis2d, type Running } from './helpers/server.js';

/*
 * ngx_lua under Debian's nginx (libnginx-mod-http-lua, LuaJIT, with ndk
 * and echo loaded) and under redis2d: the same config, the same raw
 * requests, the same bytes (Date and the server's name normalised). The
 * captured locations are echo's here (Debian's nginx has no redis2);
 * captures of redis2 locations and redis.parser, which Debian's Lua
 * module does not bundle, are checked in t/lua-redis.test.ts.
 */

const MODS = '/usr/lib/nginx/modules';
const LOAD = `load_module ${MODS}/ndk_http_module.so;\nload_module ${MODS}/ngx_http_lua_module.so;\nload_module ${MODS}/ngx_http_echo_module.so;`;
const skip = !hasNginx || !existsSync(`${MODS}/ngx_http_lua_module.so`) || !existsSync(`${MODS}/ngx_http_echo_module.so`)
  || !existsSync('/usr/lib/x86_64-linux-gnu/lua/5.1/cjson.so')
  ? 'Debian nginx with the lua and echo modules, or lua-cjson, not installed' : false;

const FIX = new URL('../fixtures/lua/', import.meta.url).pathname;

const HTTP = `
  default_type text/plain;
  access_log off;
  lua_shared_dict d 1m;
  init_by_lua_block {
    greeting = "hi from init"
  }
  init_worker_by_lua_block {
    ngx.timer.every(0.02, function() ngx.shared.d:incr("ticks", 1, 0) end)
  }
  server {
    listen 127.0.0.1:{port};
    location /sub1 { echo -n "one:$arg_a:$request_method:$echo_request_body"; }
    location /sub2 { echo_status 404; echo two; }
    location /subvar { echo "v=[$v] m=$request_method"; }
    location /nums {
      content_by_lua_block {
        ngx.say(10/2, " ", 1e15, " ", 2^53, " ", 1/0, " ", 7/7, " ", 0.1, " ", 1e100, " ", 123456789012345678, " ", -1.5)
        ngx.say(tostring(10/2) .. "|" .. (7/7) .. "|" .. string.format("%d %s %5.2f", 3, 1.5, 2))
        ngx.say(#{1, 2, nil, 4}, " ", type(unpack), " ", type(loadstring), " ", tostring(nil), " ", ngx.null, " ", true)
        ngx.print("a", 1, nil, true, {"x", {"y", 2}}, ngx.null, "\\n")
      }
    }
    location /strkeys {
      content_by_lua_block {
        local t = {}
        t["\\5\\0"] = "a"; t["P"] = "b"; t["\\1\\35"] = "c"; t["\\18\\3"] = "d"
        ngx.say(t["\\5\\0"], t["P"], t["\\1\\35"], t["\\18\\3"])
        ngx.say(tostring("a" < "\\15"), " ", tostring("\\15" < "a"), " ", tostring("ab" < "b"), " ", tostring("\\255" > "z"), " ", tostring("a\\0" > "a"))
        local l = { "b", "\\15", "a", "\\200", "ab", "A" }
        table.sort(l)
        for i = 1, #l do l[i] = string.byte(l[i]) .. ":" .. #l[i] end
        ngx.say(table.concat(l, " "))
      }
    }
    location /cap {
      content_by_lua '
        local res = ngx.location.capture("/sub1?a=1")
        ngx.say(res.status, " [", res.body, "]")
        res = ngx.location.capture("/sub1", { args = { a = "x y" }, method = ngx.HTTP_POST, body = "hello" })
        ngx.say(res.status, " [", res.body, "]")
        res = ngx.location.capture("/sub2")
        ngx.say(res.status, " [", res.body, "]")
        res = ngx.location.capture("/nowhere")
        ngx.say(res.status, " ", #res.body)
      ';
    }
    location /multi {
      content_by_lua_block {
        local a, b, c = ngx.location.capture_multi{
          { "/sub1", { args = "a=m1" } },
          { "/sub2" },
          { "/sub1", { args = { a = 3 } } },
        }
        ngx.say(a.status, a.body, "|", b.status, b.body, "|", c.status, c.body)
      }
    }
    location /vars {
      set $v parent;
      content_by_lua_block {
        local r1 = ngx.location.capture("/subvar")
        local r2 = ngx.location.capture("/subvar", { copy_all_vars = true })
        local r3 = ngx.location.capture("/subvar", { vars = { v = "given" }, share_all_vars = true })
        ngx.print(r1.body, r2.body, r3.body)
        ngx.say(ngx.var.v, " ", ngx.var.arg_q, " ", ngx.var.uri, " ", tostring(ngx.var.arg_none))
        ngx.var.v = "changed"
        ngx.say(ngx.var.v)
      }
    }
    location /deny {
      access_by_lua_block {
        if ngx.var.arg_ok ~= "1" then
          return ngx.exit(ngx.HTTP_FORBIDDEN)
        end
      }
      echo allowed;
    }
    location /rw {
      rewrite_by_lua_block {
        ngx.req.set_uri("/target", true)
      }
      echo not here;
    }
    location /target { echo "target $uri $args"; }
    location /rwargs {
      rewrite_by_lua 'ngx.req.set_uri_args({ b = "2" }) ngx.req.set_uri("/target", true)';
    }
    location /set {
      set_by_lua $sum 'return tonumber(ngx.arg[1]) + tonumber(ngx.arg[2])' $arg_a $arg_b;
      set_by_lua_block $up { return string.upper(ngx.var.arg_s or "none") }
      echo "sum=$sum up=$up";
    }
    location /hf {
      header_filter_by_lua_block {
        ngx.header["X-Lua"] = "yes"
        ngx.header.content_type = "text/x-lua"
      }
      echo filtered;
    }
    location /err {
      content_by_lua_block {
        local x = 1
        error("boom")
      }
    }
    location /syntax {
      content_by_lua 'local x = = 2';
    }
    location /status {
      content_by_lua_block {
        ngx.status = 201
        ngx.header["X-A"] = "1"
        ngx.say("created")
      }
    }
    location /exit404 { content_by_lua 'ngx.exit(404)'; }
    location /redir { content_by_lua 'return ngx.redirect("/target?x=1")'; }
    location /args {
      content_by_lua_block {
        local args = ngx.req.get_uri_args()
        ngx.say(args.a, " ", type(args.b), " ", args.c, " ", ngx.req.get_method())
        local h = ngx.req.get_headers()
        ngx.say(h.host, " ", h["X-Foo"], " ", h.x_foo)
        ngx.req.read_body()
        ngx.say(tostring(ngx.req.get_body_data()))
        local p = ngx.req.get_post_args()
        ngx.say(tostring(p and p.k))
      }
    }
    location /codec {
      content_by_lua_block {
        ngx.say(ngx.md5("abc"), " ", ngx.encode_base64("hello\\0"), " ", ngx.decode_base64("aGVsbG8="), " ", tostring(ngx.decode_base64("@@")))
        ngx.say(ngx.escape_uri("a b&c/d?e=f~g!*'()"), " ", ngx.unescape_uri("a%20b+c%2F"), " ", ngx.quote_sql_str("it's \\"q\\"\\n"))
        ngx.say(ngx.crc32_short("hello"), " ", ngx.encode_base64(ngx.sha1_bin("x")), " ", ngx.encode_base64(ngx.hmac_sha1("k", "v")), " ", #ngx.md5_bin("a"))
        ngx.say(ngx.http_time(1290079655), " ", ngx.cookie_time(1290079655), " ", ngx.encode_args({ k = "a b" }))
        ngx.say(ngx.encode_args({ n = 5 }), "|", ngx.encode_args({ b = true }), "|", ngx.encode_args({ f = false }), "|", ngx.encode_args({ ["a&b"] = "c=d/\\xff" }), "|", ngx.encode_args({}), "|", ngx.encode_args({ l = { "x", "y" } }))
        local d = ngx.decode_args("a=1&b&c=x%20y&a=2")
        ngx.say(d.a[1], d.a[2], " ", tostring(d.b), " ", d.c)
      }
    }
    location /ctx {
      rewrite_by_lua 'ngx.ctx.n = 1';
      access_by_lua 'ngx.ctx.n = ngx.ctx.n + 1';
      content_by_lua 'ngx.say("ctx ", ngx.ctx.n)';
    }
    location /log {
      content_by_lua_block {
        ngx.log(ngx.ERR, "an error ", 42, " ", nil)
        ngx.log(ngx.WARN, "a warning")
        print("printed ", true)
        ngx.say("logged")
      }
    }
    location /yields {
      content_by_lua_block {
        local function tail(q) return ngx.location.capture("/sub1?a=" .. q) end
        local function nested(q) local r = ngx.location.capture("/sub1?a=" .. q) return r end
        ngx.say(tail("t").body, " ", nested("n").body)
        local ok, res = pcall(ngx.location.capture, "/sub1?a=p")
        ngx.say(ok, " ", res.body)
        ok, res = pcall(function() local r = ngx.location.capture("/sub1?a=q") error("after " .. r.body) end)
        ngx.say(ok, " ", res)
        local t = setmetatable({}, { __index = function(_, k) return ngx.location.capture("/sub1?a=" .. k).body end })
        ngx.say(t.m)
        for i = 1, 3 do ngx.say(i, " ", ngx.location.capture("/sub1?a=" .. i).body) end
        local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
        ngx.say(co(1), " ", co(5))
        ngx.sleep(0.001)
        local r = ngx.location.capture("/sub2")
        ngx.say(r.status, " ", r.body)
        ngx.exit(ngx.HTTP_OK)
        ngx.say("not reached")
      }
    }
    location /hdrsub {
      content_by_lua_block {
        ngx.header["X-Two"] = { "a", "b" }
        ngx.header["X-One"] = "c"
        ngx.say("ok")
      }
    }
    location /caphdr {
      content_by_lua_block {
        local r = ngx.location.capture("/hdrsub")
        local h = r.header
        ngx.say(type(h["X-Two"]), " ", table.concat(h["X-Two"], ","), " ", h["X-One"], " ", h["Content-Type"], " ", tostring(r.truncated), " ", r.status, " ", r.body)
        local ks = {}
        for k in pairs(h) do ks[#ks + 1] = k end
        table.sort(ks)
        ngx.say(table.concat(ks, " "))
      }
    }
    location /pcall {
      content_by_lua_block {
        local ok, err = pcall(error, "plain")
        ngx.say(ok, " ", err)
        ok, err = pcall(function() error("where") end)
        ngx.say(ok, " ", err)
        ok, err = pcall(function() error({ code = 1 }) end)
        ngx.say(ok, " ", type(err), " ", err.code)
      }
    }
    location /json {
      content_by_lua_block {
        local cjson = require "cjson"
        ngx.say(cjson.encode({ 1, "two", { a = "x/y\\"\\n\\1" }, cjson.null, true, 1.5, 1e15, {} }))
        ngx.say(cjson.encode({ k = { 1, 2, nil, 4 } }), " ", cjson.encode("str"), " ", cjson.encode(10/2))
        local t = cjson.decode('{"a":[1,2.5,"x",null,true],"b":{"c":"\\\\u00e9\\\\n"}}')
        ngx.say(t.a[1], " ", t.a[2], " ", t.a[3], " ", tostring(t.a[4] == cjson.null), " ", t.a[5], " ", t.b.c)
        local safe = require "cjson.safe"
        ngx.say(tostring(safe.decode("[1,")), " ", select(2, safe.encode({ [true] = 1 })))
        ngx.say(pcall(cjson.encode, { 1, 2, [100] = 3 }))
      }
    }
    location /re {
      content_by_lua_block {
        local m = ngx.re.match("hello 1234 world", "([0-9]+) +(?<w>[a-z]+)")
        ngx.say(m[0], "|", m[1], "|", m[2], "|", m.w)
        ngx.say(tostring(ngx.re.match("abc", "x")), " ", ngx.re.find("abcabc", "ca"))
        local n = 0
        for mm in ngx.re.gmatch("a1b22c333", "[0-9]+") do n = n + 1 ngx.print(mm[0], ",") end
        ngx.say(n)
        ngx.say(ngx.re.sub("hello world", "o", "0"), " ", ngx.re.gsub("hello world", "(o)", "[$1]"))
        ngx.say(ngx.re.gsub("a.b.c", [[\.]], function(c) return "<" .. c[0] .. ">" end))
        ngx.say(ngx.re.match("HeLLo", "hello", "i")[0], " ", ngx.re.match("ab\\ncd", "^cd", "m")[0])
        local ctx = { pos = 3 }
        ngx.say(ngx.re.match("aXbXc", "X", "", ctx)[0], " ", ctx.pos)
      }
    }
    location /exec { content_by_lua 'ngx.exec("/target", { a = 1 })'; }
    location /exec-rw { rewrite_by_lua 'return ngx.exec("/target?x=2")'; echo no; }
    location /bit {
      content_by_lua_block {
        ngx.say(bit.band(0xff, 0x0f), " ", bit.bor(1, 2, 4), " ", bit.bxor(5, 1), " ", bit.lshift(1, 31), " ", bit.rshift(-1, 28), " ", bit.bnot(0), " ", bit.tohex(255), " ", bit.tobit(2^32 + 5))
      }
    }
    location /bf {
      body_filter_by_lua_block {
        ngx.arg[1] = string.upper(ngx.arg[1])
      }
      echo abc;
      echo def;
    }
    location /logphase {
      log_by_lua_block { ngx.log(ngx.ERR, "in log phase ", ngx.status) }
      echo logged;
    }
    location /init { content_by_lua 'ngx.say(greeting)'; }
    location /file { content_by_lua_file ${FIX}hello.lua; }
    location /filevar { content_by_lua_file ${FIX}$arg_f.lua; }
    location /dict {
      content_by_lua_block {
        local d = ngx.shared.d
        ngx.say(d:incr("n", 1, 0), " ", d:get("n"))
      }
    }
    location /ticks {
      content_by_lua_block {
        local t = ngx.shared.d:get("ticks") or 0
        ngx.say(t > 3)
      }
    }
    location /timer {
      content_by_lua_block {
        local ok = ngx.timer.at(0.01, function(premature, k) ngx.shared.d:set(k, "fired") end, "t1")
        ngx.sleep(0.1)
        ngx.say(ok, " ", ngx.shared.d:get("t1"))
      }
    }
    location /authpost {
      access_by_lua_block {
        ngx.req.read_body()
        local args = ngx.req.get_post_args()
        if args.token ~= "s3cret" then
          return ngx.exit(ngx.HTTP_FORBIDDEN)
        end
      }
      content_by_lua 'ngx.say("welcome ", ngx.req.get_body_data())';
    }
    location /needbody {
      lua_need_request_body on;
      rewrite_by_lua 'ngx.ctx.b = ngx.req.get_body_data()';
      content_by_lua 'ngx.say("rewrite saw ", tostring(ngx.ctx.b))';
    }
    location /fmt {
      content_by_lua_block {
        ngx.say(string.format("%d|%5d|%-5d|%05d|%+d|%.3d|%x|%X|%#x|%o|%u", 3.7, 42, 42, -42, 7, 5, 255, 255, 255, 8, 3e9))
        ngx.say(string.format("%g|%g|%g|%g|%.3g|%e|%.2e|%10.4f|%-8.2f|%G", 1e20, 0.0001, 123456789, 0.5, 3.14159, 12345.678, 0.000123, 3.14159, 2.5, 1e-10))
        ngx.say(string.format("%s|%10s|%-4s|%.2s|%q|%c%c|%%|%s|%s", "x", "right", "l", "abcdef", "a\\"b\\nc\\0", 72, 105, 1e15, 2^53))
        ngx.say(("%d items"):format(3000000000), " ", string.format("%5.1f%%", 99.44))
      }
    }
    location /global {
      content_by_lua_block {
        counter = (counter or 0) + 1
        ngx.say("counter ", counter)
      }
    }
    location /sleep {
      content_by_lua_block {
        ngx.say("a")
        ngx.sleep(0.02)
        ngx.say("b")
      }
    }
  }
`;

const post = (path: string, body: string): string =>
  `POST ${path} HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: h\r\n${extra}Connection: close\r\n\r\n`;

const CASES: Array<[string, string]> = [
  ['init_worker_by_lua with ngx.timer.every, before any request', get('/ticks')],
  ['number formatting as LuaJIT', get('/nums')],
  ['string keys and comparison by bytes', get('/strkeys')],
  ['capture: args, method, body, 404 page', get('/cap')],
  ['capture_multi', get('/multi')],
  ['capture variables, ngx.var read/write', get('/vars?q=1')],
  ['access_by_lua denies', get('/deny')],
  ['access_by_lua allows', get('/deny?ok=1')],
  ['rewrite_by_lua changes the URI', get('/rw?z=1')],
  ['rewrite_by_lua set_uri_args', get('/rwargs?z=1')],
  ['set_by_lua', get('/set?a=3&b=4&s=abc')],
  ['header_filter_by_lua', get('/hf')],
  ['runtime error: 500', get('/err')],
  ['syntax error: 500', get('/syntax')],
  ['ngx.status and ngx.header', get('/status')],
  ['ngx.exit(404)', get('/exit404')],
  ['ngx.redirect', get('/redir')],
  ['request API', `POST /args?a=1&b&c=%41 HTTP/1.1\r\nHost: h\r\nX-Foo: bar\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\nConnection: close\r\n\r\nk=v&x=1`],
  ['codecs', get('/codec')],
  ['ngx.ctx across phases', get('/ctx')],
  ['ngx.log and print', get('/log')],
  ['pcall and error values', get('/pcall')],
  ['the header table of a capture: a repeated header as an array', get('/caphdr')],
  ['captures: tail call, nested, in pcall, an error after one in pcall, in __index, in a loop; coroutine.wrap; exit', get('/yields')],
  ['ngx.sleep', get('/sleep')],
  ['cjson', get('/json')],
  ['ngx.exec in content', get('/exec')],
  ['ngx.exec in rewrite', get('/exec-rw')],
  ['bit', get('/bit')],
  ['body_filter_by_lua', get('/bf')],
  ['log_by_lua', get('/logphase')],
  ['init_by_lua global', get('/init')],
  ['content_by_lua_file', get('/file?n=3')],
  ['content_by_lua_file with a variable', get('/filevar?f=hello')],
  ['content_by_lua_file missing', get('/filevar?f=nope')],
  ['shared dict counter 1', get('/dict')],
  ['shared dict counter 2', get('/dict')],
  ['ngx.timer.at', get('/timer')],
  ['access_by_lua reading the POST body: allowed', post('/authpost', 'token=s3cret&x=1')],
  ['access_by_lua reading the POST body: denied', post('/authpost', 'token=nope')],
  ['lua_need_request_body', post('/needbody', 'abc=1')],
  ['string.format as LuaJIT', get('/fmt')],
  ['a global written by a request', get('/global')],
  ['the global kept for the next request', get('/global')],
  ['ngx.re', get('/re')],
];

t.test('ngx_lua: redis2d and nginx answer alike', { skip }, async (t) => {
  let ours: Running | undefined;
  let theirs: Running | undefined;
  try {
    ours = await startRedis2d(HTTP, LOAD);
    theirs = await startNginx(HTTP, LOAD);
    // the workers' init_worker timers tick before any request comes
    await new Promise((r) => setTimeout(r, 300));
    // the cases whose answer is not a 200 (a typo in a config here would make both sides 500 alike)
    const STATUS: Record<string, string> = {
      'access_by_lua denies': '403', 'runtime error: 500': '500', 'syntax error: 500': '500', 'ngx.status and ngx.header': '201',
      'ngx.exit(404)': '404', 'ngx.redirect': '302', 'content_by_lua_file missing': '404',
      'access_by_lua reading the POST body: denied': '403',
    };
    for (const [name, req] of CASES) {
      const [a, b] = await Promise.all([raw(ours.port, req), raw(theirs.port, req)]);
      t.equal(normalize(a, ours.port), normalize(b, theirs.port), name);
      t.equal(b.slice(9, 12), STATUS[name] ?? '200', `${name}: nginx's status`);
    }
    // the log lines: the same text after the pid and connection number
    const lines = (log: string): string[] => log.split('\n')
      .filter((l) => /\[lua\]|lua entry thread|failed to load|stack traceback|^\t/.test(l))
      .map((l) => l.replaceAll(FIX, 'FIX/'))
      .map((l) => l.replace(/^\S+ \S+ \[(\w+)\] \d+#\d+: \*\d+ /, '[$1] ').replace(/, client: .*$/, ''));
    const ol = lines(ours.errorLog()).join('\n');
    const nl = lines(theirs.errorLog()).join('\n');
    t.equal(ol, nl, 'the same [lua] and entry-thread log lines');
    t.match(nl, /\[error\] lua entry thread aborted: runtime error: content_by_lua\(nginx\.conf:\d+\):3: boom/);
    t.match(nl, /\[error\] failed to load inlined Lua code: content_by_lua\(nginx\.conf:\d+\):1: unexpected symbol near '='/);
    t.match(nl, /\[error\] \[lua\] content_by_lua\(nginx\.conf:\d+\):2: an error 42 nil/);
    t.match(nl, /\[warn\] \[lua\] content_by_lua\(nginx\.conf:\d+\):3: a warning/);
    t.match(nl, /\[notice\] \[lua\] content_by_lua\(nginx\.conf:\d+\):4: printed true/);
    // the traceback's frames
    const tb = /boom\nstack traceback:\ncoroutine 0:\n\t\[C\]: in function 'error'\n\tcontent_by_lua\(nginx\.conf:\d+\):3: in main chunk, client: 127\.0\.0\.1/;
    t.match(ours.errorLog(), tb);
    t.match(theirs.errorLog(), tb);
  } finally {
    await ours?.stop();
    await theirs?.stop();
  }
});
