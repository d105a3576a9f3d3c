import type { Conf } from '../../conf/parser.js';
import { ASYNC, type Zone, type ZoneValue } from '../../core/zones.js';
import { runtimeZone, sharedZoneAdd, type ShmZone } from '../../http/zones.js';
import { lauxlib, lua, luaError, pushStr, toStr, u8str, type LuaState } from './fengari.js';
import type { IncrArg, ShValue, StoreArg } from './shdict_ops.js';
import { currentThread, yieldFor } from './thread.js';
import { setFn } from './vm.js';

/*
 * lua_shared_dict and ngx.shared.DICT (ngx_http_lua_shdict.c and
 * lua-resty-core's shdict.lua, which Debian's ngx_lua 0.10.23 runs):
 * every dict is a shared zone (lib/core/zones.ts, docs/behaviour.md §14),
 * its operations are zone ops (shdict_ops.ts). With one worker the zone
 * is this process's and a call answers at once; with several the master
 * owns it, and a call from a request or a timer yields the Lua thread
 * until the master's answer resumes it, so Lua code stays synchronous
 * looking (docs/behaviour.md §15).
 *
 * Where a thread may not yield (set_by_lua, header and body filters,
 * log_by_lua, init_by_lua) and the zone is remote, a write is sent
 * without waiting for its answer (set/add/replace/delete answer true,
 * incr answers nil, "pending"), and a read is an error.
 */

/** the dicts of the configuration being read, name → its zone declaration */
const declared = new Map<string, ShmZone>();

const TAG = 'lua_shared_dict';

/** lua_shared_dict NAME SIZE */
export function declareSharedDict(cf: Conf): string | undefined {
  const name = cf.args[1]!;
  const sizeText = cf.args[2]!;
  if (name.length === 0) throw cf.error(`invalid lua shared dict name "${name}"`);
  const m = /^(\d+)([kKmMgG]?)$/.exec(sizeText);
  if (!m) throw cf.error(`invalid lua shared dict size "${sizeText}"`);
  const mult = { '': 1, k: 1024, m: 1048576, g: 1073741824 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const size = Number(m[1]) * mult;
  if (size < 8192) throw cf.error(`invalid lua shared dict size "${sizeText}"`);
  if (declared.has(name)) throw cf.error(`lua_shared_dict "${name}" is already defined as "${name}"`);
  const z = sharedZoneAdd(cf, name, size, TAG);
  // the shdict header (rbtree, its sentinel, the LRU queue) and the log context string
  z.reserved = [80, 27 + name.length];
  declared.set(name, z);
  return undefined;
}

export function resetSharedDicts(): void {
  declared.clear();
}

/**
 * The dict's zone: the dict table holds its declaration at [1] (a light
 * userdata, as resty.core keeps the zone pointer there), so no name is
 * looked up per call.
 */
function checkDict(L: LuaState): Zone {
  if (lua.lua_type(L, 1) !== lua.LUA_TTABLE) luaError(L, 'bad "zone" argument');
  lua.lua_rawgeti(L, 1, 1);
  const decl = lua.lua_touserdata(L, -1) as ShmZone | null;
  lua.lua_pop(L, 1);
  if (decl === null || typeof decl !== 'object' || !('reserved' in decl)) luaError(L, 'bad "zone" argument');
  return decl.zone ?? runtimeZone(decl);
}

/** the key at 2, or pushes nil and the error (resty.core answers, it does not raise) */
function checkKey(L: LuaState): string | number {
  if (lua.lua_type(L, 2) === lua.LUA_TNIL || lua.lua_type(L, 2) === lua.LUA_TNONE) return pushErr(L, 'nil key');
  const k = toStr(L, 2) ?? '';
  if (k.length === 0) return pushErr(L, 'empty key');
  if (k.length > 65535) return pushErr(L, 'key too long');
  return k;
}

function pushErr(L: LuaState, msg: string): number {
  lua.lua_pushnil(L);
  pushStr(L, msg);
  return 2;
}

function pushValue(L: LuaState, v: ZoneValue): void {
  if (typeof v === 'number') lua.lua_pushnumber(L, v);
  else if (typeof v === 'boolean') lua.lua_pushboolean(L, v);
  else if (typeof v === 'string') pushStr(L, v);
  else lua.lua_pushnil(L);
}

/** an optional number argument: undefined when nil or absent */
function optNumber(L: LuaState, i: number): number | undefined {
  const ty = lua.lua_type(L, i);
  if (ty === lua.LUA_TNIL || ty === lua.LUA_TNONE) return undefined;
  return lua.lua_tonumber(L, i);
}

function typeName(L: LuaState, i: number): string {
  return u8str(lua.lua_typename(L, lua.lua_type(L, i)));
}

const YIELDABLE = new Set(['rewrite', 'access', 'content', 'timer']);

/**
 * Run op on the dict's zone and push its answer with `push`: at once when
 * the zone is here, else after the thread yields and is resumed with the
 * master's answer. `early`: the answer of a write where no yield is
 * possible (undefined: a read, which needs its answer).
 */
function call(
  L: LuaState, zone: Zone, op: string, key: string, arg: ZoneValue,
  push: (co: LuaState, res: ZoneValue) => number, early?: ZoneValue,
): number {
  let wake: ((p: (co: LuaState) => number) => void) | undefined;
  const r = zone.run(op, key, arg, (res) => wake?.((co) => push(co, res)));
  if (r !== ASYNC) return push(L, r);
  const t = currentThread();
  if (t === undefined || t.co !== L || !YIELDABLE.has(t.phase)) {
    if (early !== undefined) return push(L, early);
    luaError(L, `API disabled in the context of ${t ? `${t.phase}_by_lua*` : 'init_by_lua*'} with several workers`);
  }
  return yieldFor(L, (w) => {
    wake = w;
  });
}

const pushStore = (co: LuaState, res: ZoneValue): number => {
  const [ok, err, forcible] = res as [boolean, string | null, boolean];
  lua.lua_pushboolean(co, ok);
  pushValue(co, err);
  lua.lua_pushboolean(co, forcible);
  return 3;
};

/** set / safe_set / add / safe_add / replace / delete: ngx_lua's op bits */
function storer(op: number, del = false) {
  return (L: LuaState): number => {
    const zone = checkDict(L);
    let exptime = 0;
    let flags = 0;
    if (!del) {
      exptime = optNumber(L, 4) ?? 0;
      if (exptime < 0) luaError(L, 'bad "exptime" argument');
      flags = optNumber(L, 5) ?? 0;
    }
    const key = checkKey(L);
    if (typeof key === 'number') return key;
    let v: ShValue | null = null;
    if (!del) {
      const ty = lua.lua_type(L, 3);
      if (ty === lua.LUA_TSTRING) v = toStr(L, 3)!;
      else if (ty === lua.LUA_TNUMBER) v = lua.lua_tonumber(L, 3);
      else if (ty === lua.LUA_TBOOLEAN) v = lua.lua_toboolean(L, 3);
      else if (ty !== lua.LUA_TNIL && ty !== lua.LUA_TNONE) {
        lua.lua_pushnil(L);
        pushStr(L, 'bad value type');
        return 2;
      }
    }
    const arg: StoreArg = { op, v, ttl: Math.trunc(exptime * 1000), flags: Math.trunc(flags) >>> 0 };
    return call(L, zone, 'shdict.store', key, arg as unknown as ZoneValue, pushStore, [true, null, false]);
  };
}

function getter(stale: boolean) {
  return (L: LuaState): number => {
    const zone = checkDict(L);
    const key = checkKey(L);
    if (typeof key === 'number') return key;
    return call(L, zone, 'shdict.get', key, stale, (co, res) => {
      if (res === null) {
        lua.lua_pushnil(co);
        return 1;
      }
      const [v, flags, isStale, err] = res as [ShValue, number, boolean, string | undefined];
      if (err !== undefined) return pushErr(co, err);
      pushValue(co, v);
      if (stale) {
        if (flags !== 0) lua.lua_pushinteger(co, flags);
        else lua.lua_pushnil(co);
        lua.lua_pushboolean(co, isStale);
        return 3;
      }
      if (flags === 0) return 1;
      lua.lua_pushinteger(co, flags);
      return 2;
    });
  };
}

function incr(L: LuaState): number {
  const zone = checkDict(L);
  const key = checkKey(L);
  if (typeof key === 'number') return key;
  const delta = lua.lua_type(L, 3) === lua.LUA_TNUMBER ? lua.lua_tonumber(L, 3) : Number(toStr(L, 3) ?? NaN);
  let init: number | null = null;
  const it = lua.lua_type(L, 4);
  if (it !== lua.LUA_TNIL && it !== lua.LUA_TNONE && !(it === lua.LUA_TBOOLEAN && !lua.lua_toboolean(L, 4))) {
    init = it === lua.LUA_TNUMBER ? lua.lua_tonumber(L, 4) : Number(toStr(L, 4) ?? NaN);
    if (Number.isNaN(init) && it !== lua.LUA_TNUMBER) luaError(L, `bad init arg: number expected, got ${typeName(L, 4)}`);
  }
  let ttl = 0;
  const tt = lua.lua_type(L, 5);
  if (tt !== lua.LUA_TNIL && tt !== lua.LUA_TNONE) {
    ttl = tt === lua.LUA_TNUMBER ? lua.lua_tonumber(L, 5) : Number(toStr(L, 5) ?? NaN);
    if (Number.isNaN(ttl) && tt !== lua.LUA_TNUMBER) luaError(L, `bad init_ttl arg: number expected, got ${typeName(L, 5)}`);
    if (ttl < 0) luaError(L, 'bad "init_ttl" argument');
    if (init === null) luaError(L, 'must provide "init" when providing "init_ttl"');
  }
  const arg: IncrArg = { delta, init, ttl: Math.trunc(ttl * 1000) };
  const withInit = init !== null;
  return call(L, zone, 'shdict.incr', key, arg as unknown as ZoneValue, (co, res) => {
    const [v, err, forcible] = res as [number | null, string | null, boolean];
    if (err !== null) return pushErr(co, err);
    lua.lua_pushnumber(co, v!);
    if (!withInit) return 1;
    lua.lua_pushnil(co);
    lua.lua_pushboolean(co, forcible);
    return 3;
  }, [null, 'pending', false]);
}

/** the list methods (ngx_http_lua_shdict.c's own C functions): exact argument counts */
function argc(L: LuaState, n: number): void {
  const seen = lua.lua_gettop(L);
  if (seen !== n) luaError(L, `expecting ${n} arguments, but only seen ${seen}`);
}

/** push [value] / [null|false, err] results */
const pushList = (co: LuaState, res: ZoneValue): number => {
  const r = res as Array<ShValue | null>;
  if (r.length === 2) {
    pushValue(co, r[0]!);
    pushStr(co, r[1] as string);
    return 2;
  }
  pushValue(co, r[0]!);
  return 1;
};

function pusher(left: boolean) {
  return (L: LuaState): number => {
    argc(L, 3);
    const zone = checkDict(L);
    const key = checkKey(L);
    if (typeof key === 'number') return key;
    const ty = lua.lua_type(L, 3);
    let v: ShValue;
    if (ty === lua.LUA_TSTRING) v = toStr(L, 3)!;
    else if (ty === lua.LUA_TNUMBER) v = lua.lua_tonumber(L, 3);
    else return pushErr(L, 'bad value type');
    return call(L, zone, 'shdict.push', key, { left, v }, pushList, [null, 'pending']);
  };
}

function popper(left: boolean) {
  return (L: LuaState): number => {
    argc(L, 2);
    const zone = checkDict(L);
    const key = checkKey(L);
    if (typeof key === 'number') return key;
    return call(L, zone, 'shdict.pop', key, left, pushList);
  };
}

/** fill the ngx table on top of the stack */
export function installNgxShared(L: LuaState): void {
  lua.lua_newtable(L);
  // the methods, shared by every dict table through a metatable
  lua.lua_newtable(L);
  setFn(L, 'get', getter(false));
  setFn(L, 'get_stale', getter(true));
  setFn(L, 'set', storer(0));
  setFn(L, 'safe_set', storer(4));
  setFn(L, 'add', storer(1));
  setFn(L, 'safe_add', storer(5));
  setFn(L, 'replace', storer(2));
  setFn(L, 'delete', storer(0, true));
  setFn(L, 'incr', incr);
  setFn(L, 'flush_all', (L1) => call(L1, checkDict(L1), 'shdict.flush_all', '', null, () => 0, null));
  setFn(L, 'flush_expired', (L1) => {
    const zone = checkDict(L1);
    const max = optNumber(L1, 2) ?? 0;
    return call(L1, zone, 'shdict.flush_expired', '', Math.trunc(max), (co, res) => {
      lua.lua_pushnumber(co, res as number);
      return 1;
    }, 0);
  });
  setFn(L, 'get_keys', (L1) => {
    const zone = checkDict(L1);
    const max = optNumber(L1, 2) ?? 1024;
    return call(L1, zone, 'shdict.get_keys', '', Math.trunc(max), (co, res) => {
      const keys = res as string[];
      lua.lua_createtable(co, keys.length, 0);
      keys.forEach((k, i) => {
        pushStr(co, k);
        lua.lua_rawseti(co, -2, i + 1);
      });
      return 1;
    });
  });
  setFn(L, 'ttl', (L1) => {
    const zone = checkDict(L1);
    const key = checkKey(L1);
    if (typeof key === 'number') return key;
    return call(L1, zone, 'shdict.ttl', key, null, (co, res) => {
      if (res === null) return pushErr(co, 'not found');
      lua.lua_pushnumber(co, (res as number) / 1000);
      return 1;
    });
  });
  setFn(L, 'expire', (L1) => {
    const zone = checkDict(L1);
    const exptime = optNumber(L1, 3);
    if (exptime === undefined || exptime < 0) luaError(L1, 'bad "exptime" argument');
    const key = checkKey(L1);
    if (typeof key === 'number') return key;
    return call(L1, zone, 'shdict.expire', key, Math.trunc(exptime * 1000), (co, res) => {
      if (res !== true) return pushErr(co, 'not found');
      lua.lua_pushboolean(co, true);
      return 1;
    }, true);
  });
  setFn(L, 'lpush', pusher(true));
  setFn(L, 'rpush', pusher(false));
  setFn(L, 'lpop', popper(true));
  setFn(L, 'rpop', popper(false));
  setFn(L, 'llen', (L1) => {
    argc(L1, 2);
    const zone = checkDict(L1);
    const key = checkKey(L1);
    if (typeof key === 'number') return key;
    return call(L1, zone, 'shdict.llen', key, null, pushList);
  });
  setFn(L, 'capacity', (L1) => {
    lua.lua_pushnumber(L1, checkDict(L1).size);
    return 1;
  });
  setFn(L, 'free_space', (L1) =>
    call(L1, checkDict(L1), 'shdict.free_space', '', null, (co, res) => {
      lua.lua_pushnumber(co, res as number);
      return 1;
    }),
  );
  lua.lua_pushvalue(L, -1);
  lua.lua_setfield(L, -2, '__index');
  const mtRef = lauxlib.luaL_ref(L, lua.LUA_REGISTRYINDEX);
  for (const [name, decl] of declared) {
    lua.lua_newtable(L);
    lua.lua_pushlightuserdata(L, decl);
    lua.lua_rawseti(L, -2, 1);
    lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, mtRef);
    lua.lua_setmetatable(L, -2);
    lua.lua_setfield(L, -2, name);
  }
  lua.lua_setfield(L, -2, 'shared');
}
