import type { Conf } from '../../conf/parser.js';
import { lauxlib, lua, luaError, pushStr, toStr, type LuaState } from './fengari.js';
import { setFn } from './vm.js';

/*
 * lua_shared_dict and ngx.shared.DICT (ngx_http_lua_shdict.c). The values
 * live behind SharedStore: this process's Map today. nginx keeps them in
 * shared memory seen by every worker; a cross-worker store (the shared
 * zones being built for limit_req) plugs in by implementing SharedStore
 * and being returned from storeFor().
 */

export type ShValue = string | number | boolean;

export interface SharedStore {
  get(key: string, now: number): { value: ShValue; flags: number } | undefined;
  set(key: string, value: ShValue | undefined, exptime: number, flags: number, now: number): void;
  keys(max: number, now: number): string[];
  flushAll(): void;
  /** bytes in use, to refuse past the zone's size as nginx's slab allocator does */
  size: number;
}

interface Entry {
  value: ShValue;
  flags: number;
  /** ms since the epoch, 0 = never */
  expires: number;
}

class LocalStore implements SharedStore {
  private readonly map = new Map<string, Entry>();
  size = 0;
  get(key: string, now: number): { value: ShValue; flags: number } | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expires && e.expires <= now) {
      this.map.delete(key);
      return undefined;
    }
    return e;
  }
  set(key: string, value: ShValue | undefined, exptime: number, flags: number, now: number): void {
    if (value === undefined) {
      this.map.delete(key);
      return;
    }
    this.map.delete(key);
    this.map.set(key, { value, flags, expires: exptime > 0 ? now + exptime * 1000 : 0 });
  }
  keys(max: number, now: number): string[] {
    const out: string[] = [];
    for (const [k, e] of this.map) {
      if (e.expires && e.expires <= now) continue;
      out.push(k);
      if (max > 0 && out.length >= max) break;
    }
    return out;
  }
  flushAll(): void {
    this.map.clear();
  }
}

/** the declared dicts: name → size in bytes (filled while the config is read) */
const declared = new Map<string, number>();
const stores = new Map<string, SharedStore>();

/** where a cross-worker store would be returned instead */
function storeFor(name: string): SharedStore {
  let s = stores.get(name);
  if (!s) {
    s = new LocalStore();
    stores.set(name, s);
  }
  return s;
}

/** lua_shared_dict NAME SIZE */
export function declareSharedDict(cf: Conf): string | undefined {
  const name = cf.args[1]!;
  const sizeText = cf.args[2]!;
  const m = /^(\d+)([kKmMgG]?)$/.exec(sizeText);
  if (!m) throw cf.error(`invalid lua shared dict size "${sizeText}"`);
  const mult = { '': 1, k: 1024, m: 1048576, g: 1073741824 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const size = Number(m[1]) * mult;
  if (size < 8192) throw cf.error(`invalid lua shared dict size "${sizeText}"`);
  if (declared.has(name)) throw cf.error(`lua_shared_dict "${name}" is already defined as "${name}"`);
  declared.set(name, size);
  return undefined;
}

export function resetSharedDicts(): void {
  declared.clear();
}

function checkDict(L: LuaState): SharedStore {
  if (lua.lua_type(L, 1) !== lua.LUA_TTABLE) luaError(L, 'bad "zone" argument');
  lua.lua_getfield(L, 1, '__name');
  const name = toStr(L, -1);
  lua.lua_pop(L, 1);
  if (name === undefined) luaError(L, 'bad "zone" argument');
  return storeFor(name!);
}

function checkKey(L: LuaState): string {
  const ty = lua.lua_type(L, 2);
  if (ty === lua.LUA_TNIL) luaError(L, 'nil key');
  const k = toStr(L, 2) ?? '';
  if (k.length === 0) luaError(L, 'empty key');
  if (k.length > 65535) luaError(L, 'key too long');
  return k;
}

function valueAt(L: LuaState, i: number): ShValue | undefined {
  const ty = lua.lua_type(L, i);
  if (ty === lua.LUA_TNIL) return undefined;
  if (ty === lua.LUA_TNUMBER) return lua.lua_tonumber(L, i);
  if (ty === lua.LUA_TBOOLEAN) return lua.lua_toboolean(L, i);
  if (ty === lua.LUA_TSTRING) return toStr(L, i)!;
  luaError(L, 'bad value type');
}

function pushValue(L: LuaState, v: ShValue): void {
  if (typeof v === 'number') lua.lua_pushnumber(L, v);
  else if (typeof v === 'boolean') lua.lua_pushboolean(L, v);
  else pushStr(L, v);
}

/** set / add / replace / safe_* share one body (ngx_http_lua_shdict_set_helper) */
function setter(mode: 'set' | 'add' | 'replace', safe: boolean) {
  return (L: LuaState): number => {
    const store = checkDict(L);
    const key = checkKey(L);
    const value = valueAt(L, 3);
    const exptime = lua.lua_gettop(L) >= 4 ? lua.lua_tonumber(L, 4) : 0;
    if (exptime < 0) luaError(L, 'bad "exptime" argument');
    const flags = lua.lua_gettop(L) >= 5 ? lua.lua_tointeger(L, 5) : 0;
    const now = Date.now();
    const have = store.get(key, now);
    if (mode === 'add' && have) {
      lua.lua_pushboolean(L, false);
      pushStr(L, 'exists');
      lua.lua_pushboolean(L, false);
      return 3;
    }
    if (mode === 'replace' && !have) {
      lua.lua_pushboolean(L, false);
      pushStr(L, 'not found');
      lua.lua_pushboolean(L, false);
      return 3;
    }
    void safe;
    store.set(key, value, exptime, flags, now);
    lua.lua_pushboolean(L, true);
    lua.lua_pushnil(L);
    lua.lua_pushboolean(L, false);
    return 3;
  };
}

/** fill the ngx table on top of the stack */
export function installNgxShared(L: LuaState): void {
  lua.lua_newtable(L);
  // the methods, shared by every dict table through a metatable
  lua.lua_newtable(L);
  setFn(L, 'get', (L1) => {
    const store = checkDict(L1);
    const e = store.get(checkKey(L1), Date.now());
    if (!e) {
      lua.lua_pushnil(L1);
      return 1;
    }
    pushValue(L1, e.value);
    if (e.flags) {
      lua.lua_pushinteger(L1, e.flags);
      return 2;
    }
    return 1;
  });
  setFn(L, 'get_stale', (L1) => {
    const store = checkDict(L1);
    const e = store.get(checkKey(L1), Date.now());
    if (!e) {
      lua.lua_pushnil(L1);
      return 1;
    }
    pushValue(L1, e.value);
    lua.lua_pushinteger(L1, e.flags);
    lua.lua_pushboolean(L1, false);
    return 3;
  });
  setFn(L, 'set', setter('set', false));
  setFn(L, 'safe_set', setter('set', true));
  setFn(L, 'add', setter('add', false));
  setFn(L, 'safe_add', setter('add', true));
  setFn(L, 'replace', setter('replace', false));
  setFn(L, 'delete', (L1) => {
    const store = checkDict(L1);
    store.set(checkKey(L1), undefined, 0, 0, Date.now());
    lua.lua_pushboolean(L1, true);
    return 1;
  });
  setFn(L, 'incr', (L1) => {
    const store = checkDict(L1);
    const key = checkKey(L1);
    if (lua.lua_type(L1, 3) !== lua.LUA_TNUMBER) luaError(L1, 'bad increment');
    const by = lua.lua_tonumber(L1, 3);
    const now = Date.now();
    const e = store.get(key, now);
    let base: number;
    if (!e) {
      if (lua.lua_gettop(L1) < 4 || lua.lua_type(L1, 4) === lua.LUA_TNIL) {
        lua.lua_pushnil(L1);
        pushStr(L1, 'not found');
        return 2;
      }
      if (lua.lua_type(L1, 4) !== lua.LUA_TNUMBER) luaError(L1, 'bad init');
      base = lua.lua_tonumber(L1, 4);
      const ttl = lua.lua_gettop(L1) >= 5 ? lua.lua_tonumber(L1, 5) : 0;
      store.set(key, base + by, ttl, 0, now);
    } else {
      if (typeof e.value !== 'number') {
        lua.lua_pushnil(L1);
        pushStr(L1, 'not a number');
        return 2;
      }
      base = e.value;
      // the expiry is kept: only the value changes
      e.value = base + by;
    }
    lua.lua_pushnumber(L1, base + by);
    return 1;
  });
  setFn(L, 'flush_all', (L1) => {
    checkDict(L1).flushAll();
    return 0;
  });
  setFn(L, 'flush_expired', (L1) => {
    lua.lua_pushinteger(L1, 0);
    return 1;
  });
  setFn(L, 'get_keys', (L1) => {
    const store = checkDict(L1);
    const max = lua.lua_gettop(L1) >= 2 ? lua.lua_tointeger(L1, 2) : 1024;
    const keys = store.keys(max, Date.now());
    lua.lua_createtable(L1, keys.length, 0);
    keys.forEach((k, i) => {
      pushStr(L1, k);
      lua.lua_rawseti(L1, -2, i + 1);
    });
    return 1;
  });
  lua.lua_pushvalue(L, -1);
  lua.lua_setfield(L, -2, '__index');
  const mtRef = lauxlib.luaL_ref(L, lua.LUA_REGISTRYINDEX);
  for (const name of declared.keys()) {
    lua.lua_newtable(L);
    pushStr(L, name);
    lua.lua_setfield(L, -2, '__name');
    lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, mtRef);
    lua.lua_setmetatable(L, -2);
    lua.lua_setfield(L, -2, name);
  }
  lua.lua_setfield(L, -2, 'shared');
}
