import cluster from 'node:cluster';
import * as codec from './codec.js';
import { lauxlib, lua, luaError, pushStr, toStr, type LuaState } from './fengari.js';
import { curReq, luaLog } from './api_out.js';
import { currentThread, spawn, yieldFor } from './thread.js';
import { getVm, setFn } from './vm.js';

/*
 * The stateless part of the ngx API: hashes and codecs, time, ngx.sleep,
 * ngx.timer.at and ngx.worker (ngx_http_lua_string.c, _time.c, _sleep.c,
 * _timer.c, _worker.c).
 */

const str1 = (L: LuaState): string => {
  const ty = lua.lua_type(L, 1);
  if (ty === lua.LUA_TNIL) return '';
  const s = toStr(L, 1);
  if (s === undefined) luaError(L, `bad argument #1 (string expected, got ${ty === lua.LUA_TTABLE ? 'table' : 'other'})`);
  return s!;
};

function strFn(L: LuaState, name: string, f: (s: string) => string): void {
  setFn(L, name, (L1) => {
    pushStr(L1, f(str1(L1)));
    return 1;
  });
}

/** ngx.timer.at callbacks waiting (pending timers count toward nothing here) */
let timersRunning = 0;

/** fill the ngx table on top of the stack */
export function installNgxUtil(L: LuaState): void {
  strFn(L, 'md5', codec.md5Hex);
  strFn(L, 'md5_bin', codec.md5Bin);
  strFn(L, 'sha1_bin', codec.sha1Bin);
  strFn(L, 'escape_uri', codec.escapeUri);
  strFn(L, 'unescape_uri', codec.unescapeUriComponent);
  strFn(L, 'quote_sql_str', codec.quoteSqlStr);
  setFn(L, 'encode_base64', (L1) => {
    pushStr(L1, codec.encodeBase64(str1(L1), lua.lua_toboolean(L1, 2)));
    return 1;
  });
  setFn(L, 'decode_base64', (L1) => {
    const v = codec.decodeBase64(str1(L1));
    if (v === undefined) lua.lua_pushnil(L1);
    else pushStr(L1, v);
    return 1;
  });
  setFn(L, 'crc32_short', (L1) => {
    lua.lua_pushnumber(L1, codec.crc32Of(str1(L1)));
    return 1;
  });
  setFn(L, 'crc32_long', (L1) => {
    lua.lua_pushnumber(L1, codec.crc32Of(str1(L1)));
    return 1;
  });
  setFn(L, 'hmac_sha1', (L1) => {
    const key = toStr(L1, 1) ?? '';
    pushStr(L1, codec.hmacSha1(key, toStr(L1, 2) ?? ''));
    return 1;
  });
  // time: nginx's cached time is the current time here
  setFn(L, 'time', (L1) => {
    lua.lua_pushinteger(L1, Math.floor(Date.now() / 1000));
    return 1;
  });
  setFn(L, 'now', (L1) => {
    lua.lua_pushnumber(L1, Math.floor(Date.now()) / 1000);
    return 1;
  });
  setFn(L, 'update_time', () => 0);
  setFn(L, 'today', (L1) => {
    pushStr(L1, codec.localTime(Date.now(), false).slice(0, 10));
    return 1;
  });
  setFn(L, 'localtime', (L1) => {
    pushStr(L1, codec.localTime(Date.now(), false));
    return 1;
  });
  setFn(L, 'utctime', (L1) => {
    pushStr(L1, codec.localTime(Date.now(), true));
    return 1;
  });
  setFn(L, 'http_time', (L1) => {
    pushStr(L1, codec.httpTime(lauxlib.luaL_checknumber(L1, 1)));
    return 1;
  });
  setFn(L, 'cookie_time', (L1) => {
    pushStr(L1, codec.cookieTime(lauxlib.luaL_checknumber(L1, 1)));
    return 1;
  });
  setFn(L, 'sleep', (L1) => {
    const sec = lauxlib.luaL_checknumber(L1, 1);
    if (sec < 0) luaError(L1, `invalid sleep duration "${sec}"`);
    const t = currentThread();
    if (!t || t.phase === 'set' || t.phase === 'header_filter' || t.phase === 'body_filter' || t.phase === 'log') {
      luaError(L1, `API disabled in the context of ${t ? t.phase + '_by_lua*' : 'this context'}`);
    }
    return yieldFor(L1, (wake) => {
      const timer = setTimeout(() => wake(() => 0), Math.round(sec * 1000));
      t!.r?.onAbort(() => clearTimeout(timer));
    });
  });

  // ngx.worker
  lua.lua_newtable(L);
  setFn(L, 'pid', (L1) => {
    lua.lua_pushinteger(L1, process.pid);
    return 1;
  });
  setFn(L, 'id', (L1) => {
    const id = cluster.isWorker && cluster.worker ? (cluster.worker.id - 1) : 0;
    lua.lua_pushinteger(L1, Math.max(0, id));
    return 1;
  });
  setFn(L, 'count', (L1) => {
    lua.lua_pushinteger(L1, Number(process.env.REDIS2D_WORKERS ?? '1') || 1);
    return 1;
  });
  setFn(L, 'exiting', (L1) => {
    lua.lua_pushboolean(L1, false);
    return 1;
  });
  lua.lua_setfield(L, -2, 'worker');

  // ngx.timer.at(delay, f, ...): f(premature, ...) later, in its own thread
  lua.lua_newtable(L);
  const timer = (every: boolean) => (L1: LuaState): number => {
    const delay = lauxlib.luaL_checknumber(L1, 1);
    if (lua.lua_type(L1, 2) !== lua.LUA_TFUNCTION) luaError(L1, `bad argument #2 to '${every ? 'every' : 'at'}' (function expected)`);
    if (every && delay <= 0) luaError(L1, 'bad argument #1 to \'every\' (delay must be positive)');
    const n = lua.lua_gettop(L1);
    // the function and its arguments wait in a table until the timer fires
    lua.lua_createtable(L1, n - 1, 0);
    for (let i = 2; i <= n; i++) {
      lua.lua_pushvalue(L1, i);
      lua.lua_rawseti(L1, -2, i - 1);
    }
    const ref = lauxlib.luaL_ref(L1, lua.LUA_REGISTRYINDEX);
    const fire = (): void => {
      const VL = getVm().L;
      lua.lua_rawgeti(VL, lua.LUA_REGISTRYINDEX, ref);
      lua.lua_rawgeti(VL, -1, 1);
      const fref = lauxlib.luaL_ref(VL, lua.LUA_REGISTRYINDEX);
      lua.lua_pop(VL, 1);
      timersRunning++;
      spawn(undefined, 'timer', fref, (e) => {
        timersRunning--;
        lauxlib.luaL_unref(VL, lua.LUA_REGISTRYINDEX, fref);
        if (!every) lauxlib.luaL_unref(VL, lua.LUA_REGISTRYINDEX, ref);
        if (e.how === 'error') luaLog('error', 'lua entry thread aborted: runtime error in a timer');
        if (every) setTimeout(fire, Math.round(delay * 1000)).unref();
      }, (co) => {
        lua.lua_pushboolean(co, false);
        lua.lua_rawgeti(co, lua.LUA_REGISTRYINDEX, ref);
        const tIdx = lua.lua_gettop(co);
        const m = lua.lua_rawlen(co, tIdx);
        for (let i = 2; i <= m; i++) lua.lua_rawgeti(co, tIdx, i);
        lua.lua_remove(co, tIdx);
        return m;
      });
    };
    setTimeout(fire, Math.round(delay * 1000)).unref();
    lua.lua_pushinteger(L1, 1);
    return 1;
  };
  setFn(L, 'at', timer(false));
  setFn(L, 'every', timer(true));
  setFn(L, 'running_count', (L1) => {
    lua.lua_pushinteger(L1, timersRunning);
    return 1;
  });
  setFn(L, 'pending_count', (L1) => {
    lua.lua_pushinteger(L1, 0);
    return 1;
  });
  lua.lua_setfield(L, -2, 'timer');

  setFn(L, 'get_phase', (L1) => {
    const t = currentThread();
    pushStr(L1, t ? t.phase : 'init');
    return 1;
  });
  void curReq;
}

/** LuaJIT's bit module: 32-bit operations, which JavaScript's are */
export function installBit(L: LuaState): void {
  const n = (L1: LuaState, i: number): number => {
    const v = lauxlib.luaL_checknumber(L1, i);
    // tobit: the double's low 32 bits, as LuaJIT normalises (2^32 + 5 is 5)
    return Number(BigInt.asIntN(32, BigInt(Math.trunc(v) % 4294967296)));
  };
  const fold = (f: (a: number, b: number) => number) => (L1: LuaState): number => {
    let r = n(L1, 1);
    const top = lua.lua_gettop(L1);
    for (let i = 2; i <= top; i++) r = f(r, n(L1, i));
    lua.lua_pushnumber(L1, r | 0);
    return 1;
  };
  const un = (f: (a: number) => number) => (L1: LuaState): number => {
    lua.lua_pushnumber(L1, f(n(L1, 1)) | 0);
    return 1;
  };
  const sh = (f: (a: number, s: number) => number) => (L1: LuaState): number => {
    lua.lua_pushnumber(L1, f(n(L1, 1), n(L1, 2) & 31) | 0);
    return 1;
  };
  lua.lua_newtable(L);
  setFn(L, 'tobit', un((a) => a));
  setFn(L, 'bnot', un((a) => ~a));
  setFn(L, 'bswap', un((a) => ((a & 0xff) << 24) | ((a & 0xff00) << 8) | ((a >>> 8) & 0xff00) | (a >>> 24)));
  setFn(L, 'band', fold((a, b) => a & b));
  setFn(L, 'bor', fold((a, b) => a | b));
  setFn(L, 'bxor', fold((a, b) => a ^ b));
  setFn(L, 'lshift', sh((a, s) => a << s));
  setFn(L, 'rshift', sh((a, s) => a >>> s));
  setFn(L, 'arshift', sh((a, s) => a >> s));
  setFn(L, 'rol', sh((a, s) => (a << s) | (a >>> (32 - s))));
  setFn(L, 'ror', sh((a, s) => (a >>> s) | (a << (32 - s))));
  setFn(L, 'tohex', (L1) => {
    const a = n(L1, 1);
    let k = lua.lua_gettop(L1) >= 2 ? n(L1, 2) : 8;
    const upper = k < 0;
    if (upper) k = -k;
    if (k > 8) k = 8;
    let h = (a >>> 0).toString(16).padStart(8, '0').slice(8 - k);
    if (upper) h = h.toUpperCase();
    pushStr(L1, h);
    return 1;
  });
  lua.lua_pushvalue(L, -1);
  lua.lua_setglobal(L, 'bit');
  // require("bit") finds it loaded
  lua.lua_getglobal(L, 'package');
  lua.lua_getfield(L, -1, 'loaded');
  lua.lua_pushvalue(L, -3);
  lua.lua_setfield(L, -2, 'bit');
  lua.lua_pop(L, 3);
}
