import { createRequire } from 'node:module';

/*
 * The Lua VM: fengari (Lua 5.3 in JavaScript; README "Lua: which VM").
 * Loaded once per process, with its number-to-string conversion replaced
 * before its core modules read it, so that every conversion (tostring,
 * `..`, lua_tolstring, hence ngx.say) prints numbers as LuaJIT does: one
 * number type, C's "%.14g" (5 not 5.0, 1e+15, inf, -nan). fengari's
 * modules are CommonJS and take these functions by destructuring when
 * they load, so the patch must precede the first require('fengari').
 *
 * fengari is loaded by loadFengari(), which the VM's maker calls (vm.ts
 * getVm): a process whose configuration has no Lua never compiles it
 * (about a tenth of redis2d's start-up; docs/behaviour.md §8). `lua`,
 * `lauxlib` and `lualib` are live bindings, set then: every use runs on a
 * state the VM made, hence after the load.
 */

const require = createRequire(import.meta.url);

/** a Lua state (thread); opaque to the host */
export type LuaState = { readonly __luaState: unique symbol };
/** a host function callable from Lua: returns how many results it pushed */
export type LuaCFunction = (L: LuaState) => number;

/** C's printf("%.14g", n), as LuaJIT's lj_strfmt_num prints a number */
export function fmtNumber(n: number): string {
  if (n !== n) return '-nan';
  if (n === Infinity) return 'inf';
  if (n === -Infinity) return '-inf';
  if (n === 0) return Object.is(n, -0) ? '-0' : '0';
  const a = Math.abs(n);
  const exp = Math.floor(Math.log10(a));
  // %g: exponent form when exp < -4 or exp >= precision (checked on the rounded value)
  let s = n.toExponential(13);
  const e = s.indexOf('e');
  const x = Number(s.slice(e + 1));
  if (x < -4 || x >= 14) {
    let mant = s.slice(0, e);
    if (mant.includes('.')) mant = mant.replace(/0+$/, '').replace(/\.$/, '');
    const ex = Math.abs(x);
    return `${mant}e${x < 0 ? '-' : '+'}${ex < 10 ? '0' : ''}${ex}`;
  }
  void exp;
  s = n.toFixed(Math.max(0, 13 - x));
  if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return s;
}

type Str = Uint8Array | string;

/** the part of fengari's C API redis2d uses (lua.h, lauxlib.h, lualib.h) */
export interface LuaApi {
  LUA_OK: number;
  LUA_YIELD: number;
  LUA_ERRRUN: number;
  LUA_ERRSYNTAX: number;
  LUA_REGISTRYINDEX: number;
  LUA_MULTRET: number;
  LUA_TNONE: number;
  LUA_TNIL: number;
  LUA_TBOOLEAN: number;
  LUA_TLIGHTUSERDATA: number;
  LUA_TNUMBER: number;
  LUA_TSTRING: number;
  LUA_TTABLE: number;
  LUA_TFUNCTION: number;
  LUA_TUSERDATA: number;
  LUA_TTHREAD: number;
  lua_newthread(L: LuaState): LuaState;
  lua_resume(L: LuaState, from: LuaState | null, nargs: number): number;
  lua_yield(L: LuaState, n: number): number;
  lua_status(L: LuaState): number;
  lua_gettop(L: LuaState): number;
  lua_settop(L: LuaState, n: number): void;
  lua_pop(L: LuaState, n: number): void;
  lua_pushvalue(L: LuaState, i: number): void;
  lua_remove(L: LuaState, i: number): void;
  lua_insert(L: LuaState, i: number): void;
  lua_xmove(from: LuaState, to: LuaState, n: number): void;
  lua_type(L: LuaState, i: number): number;
  lua_typename(L: LuaState, t: number): Uint8Array;
  lua_toboolean(L: LuaState, i: number): boolean;
  lua_tonumber(L: LuaState, i: number): number;
  lua_tointeger(L: LuaState, i: number): number;
  lua_isinteger(L: LuaState, i: number): boolean;
  lua_tolstring(L: LuaState, i: number): Uint8Array | null;
  lua_touserdata(L: LuaState, i: number): unknown;
  lua_tothread(L: LuaState, i: number): LuaState;
  lua_rawlen(L: LuaState, i: number): number;
  lua_pushnil(L: LuaState): void;
  lua_pushnumber(L: LuaState, n: number): void;
  lua_pushinteger(L: LuaState, n: number): void;
  lua_pushboolean(L: LuaState, b: boolean | number): void;
  lua_pushstring(L: LuaState, s: Str): void;
  lua_pushlstring(L: LuaState, s: Str, len: number): void;
  lua_pushliteral(L: LuaState, s: string): void;
  lua_pushjsfunction(L: LuaState, f: LuaCFunction): void;
  lua_pushcclosure(L: LuaState, f: LuaCFunction, n: number): void;
  lua_pushlightuserdata(L: LuaState, p: unknown): void;
  lua_createtable(L: LuaState, narr: number, nrec: number): void;
  lua_newtable(L: LuaState): void;
  lua_getfield(L: LuaState, i: number, k: Str): number;
  lua_setfield(L: LuaState, i: number, k: Str): void;
  lua_getglobal(L: LuaState, k: Str): number;
  lua_setglobal(L: LuaState, k: Str): void;
  lua_rawget(L: LuaState, i: number): number;
  lua_rawset(L: LuaState, i: number): void;
  lua_rawgeti(L: LuaState, i: number, n: number): number;
  lua_rawseti(L: LuaState, i: number, n: number): void;
  lua_gettable(L: LuaState, i: number): number;
  lua_settable(L: LuaState, i: number): void;
  lua_setmetatable(L: LuaState, i: number): void;
  lua_next(L: LuaState, i: number): number;
  lua_call(L: LuaState, nargs: number, nres: number): void;
  lua_pcall(L: LuaState, nargs: number, nres: number, msgh: number): number;
  lua_error(L: LuaState): number;
  lua_upvalueindex(i: number): number;
  lua_rawequal(L: LuaState, a: number, b: number): boolean;
  lua_load(L: LuaState, reader: unknown, data: unknown, chunkname: Str, mode: Str | null): number;
}
export interface LauxApi {
  luaL_newstate(): LuaState;
  luaL_loadbufferx(L: LuaState, buf: Str, size: number, name: Str, mode: Str | null): number;
  luaL_ref(L: LuaState, t: number): number;
  luaL_unref(L: LuaState, t: number, ref: number): void;
  luaL_error(L: LuaState, fmt: Str, ...args: unknown[]): number;
  luaL_traceback(L: LuaState, L1: LuaState, msg: Str | null, level: number): void;
  luaL_checkinteger(L: LuaState, i: number): number;
  luaL_checknumber(L: LuaState, i: number): number;
  luaL_checklstring(L: LuaState, i: number): Uint8Array;
  luaL_checktype(L: LuaState, i: number, t: number): void;
  luaL_argerror(L: LuaState, i: number, msg: Str): number;
  luaL_tolstring(L: LuaState, i: number): Uint8Array;
  luaL_getsubtable(L: LuaState, i: number, k: Str): boolean;
}
interface Fengari {
  lua: LuaApi;
  lauxlib: LauxApi;
  lualib: { luaL_openlibs(L: LuaState): void };
}

interface LuaConfModule {
  lua_integer2str: (n: number) => string;
  lua_number2str: (n: number) => string;
  LUA_COMPAT_FLOATSTRING: boolean;
}
/*
 * LuaJIT has one number type, a double. fengari's integers are 32-bit
 * (100000 * 100000 would wrap), so every numeral and every string turned
 * into a number becomes a float here: arithmetic on them is a double's,
 * as LuaJIT's. Integers still come from `#`, string.byte and the like,
 * and mix into floats at the first operation with a numeral.
 */
interface TValueLike {
  ttisinteger(): boolean;
  value: number;
  setfltvalue(n: number): void;
}
interface LObjectModule {
  luaO_str2num: (s: Uint8Array, o: TValueLike) => number;
}
function patchStr2num(): void {
  // after fengari has loaded: its modules call lobject.luaO_str2num through the exports object
  const lobject = require('fengari/src/lobject.js') as LObjectModule;
  const str2num = lobject.luaO_str2num;
  const HEX = /^\s*(-?)0[xX]([0-9a-fA-F]+)\s*$/;
  lobject.luaO_str2num = (s, o) => {
    const n = str2num(s, o);
    if (n !== 0 && o.ttisinteger()) {
      // a hex numeral past 32 bits wrapped: read it again as a double
      const m = HEX.exec(Buffer.from(s.buffer, s.byteOffset, s.byteLength).toString('latin1').replace(/\0+$/, ''));
      o.setfltvalue(m ? (m[1] ? -1 : 1) * parseInt(m[2]!, 16) : o.value);
    }
    return n;
  };
}

/** LUA_REGISTRYINDEX (lua.h: -LUAI_MAXSTACK - 1000), a constant known before the load; checked by it */
export const LUA_REGISTRYINDEX = -1001000;

export let lua: LuaApi;
export let lauxlib: LauxApi;
export let lualib: Fengari['lualib'];

/** load fengari once in this process, patched as said above */
export function loadFengari(): void {
  if (lua !== undefined) return;
  // defs.js first: it and luaconf.js require each other, and only this order completes both
  require('fengari/src/defs.js');
  const luaconf = require('fengari/src/luaconf.js') as LuaConfModule;
  luaconf.lua_integer2str = fmtNumber;
  luaconf.lua_number2str = fmtNumber;
  luaconf.LUA_COMPAT_FLOATSTRING = true;
  const fengari = require('fengari') as Fengari;
  patchStr2num();
  if (fengari.lua.LUA_REGISTRYINDEX !== LUA_REGISTRYINDEX) throw new Error(`fengari's LUA_REGISTRYINDEX is ${fengari.lua.LUA_REGISTRYINDEX}`);
  lua = fengari.lua;
  lauxlib = fengari.lauxlib;
  lualib = fengari.lualib;
}

/** a Lua string's bytes as a latin1 JS string (one char per byte, as the engine's strings) */
export function u8str(u: Uint8Array): string {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('latin1');
}

/** the bytes of a latin1 JS string, for lua_pushstring */
export function strU8(s: string): Uint8Array {
  return Buffer.from(s, 'latin1');
}

/** push a latin1 string */
export function pushStr(L: LuaState, s: string): void {
  lua.lua_pushstring(L, Buffer.from(s, 'latin1'));
}

/** the string at i (numbers converted), or undefined */
export function toStr(L: LuaState, i: number): string | undefined {
  const u = lua.lua_tolstring(L, i);
  return u === null ? undefined : u8str(u);
}

/** raise a Lua error with a message (never returns normally: fengari throws) */
export function luaError(L: LuaState, msg: string): never {
  pushStr(L, msg);
  lua.lua_error(L);
  throw new Error('unreachable');
}
