import { createRequire } from 'node:module';
import { patchCalls, type LuaSetters } from './fengari_calls.js';
import { initHost } from './fengari_host.js';
import { setExitFunc, yieldHere, type State as YState } from './fengari_yield.js';

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
  // an integer under 1e14 has at most 14 digits: %.14g prints it whole (the common case: lengths, counts)
  if (Number.isInteger(n) && n > -1e14 && n < 1e14) return String(n);
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

/*
 * Speed, with the same results (bench/PROFILE.md "Lua capture shape"; the
 * call path, the yield and host-side table paths are fengari_calls.ts,
 * fengari_yield.ts and fengari_host.ts, installed by loadFengari below):
 * fengari keys every table entry of a string by a JS string made from its
 * bytes, built anew for every string the host pushes or names
 * (lua_getfield(L, i, 'status') makes a TString and hashes it). Its own
 * hash writes each byte in hex without padding, ~400 ns for a short key,
 * and is not one-to-one ("\x05\x00" and "P" both give "|50", so they were
 * the same table key) nor in byte order (l_strcmp compares hashes, so
 * "a" < "\x0f" was true). Here the hash is "|" and the bytes as latin1
 * characters: one native call, one-to-one, and ordered as the bytes are
 * (Lua's and LuaJIT's string comparison). The "|" keeps it apart from
 * the prefixes ltable gives light userdata keys ("*", "#", "?").
 * Also: strings named by the host (field names, mostly literals) are
 * converted to bytes once and kept (bounded), and copying a byte array
 * into a Lua string is one typed-array copy instead of Uint8Array.from's
 * iteration. These patches precede the loading of the modules that take
 * the functions by destructuring (lstring, ltable, lvm, llex, lapi).
 */
interface DefsModule {
  luastring_from: (a: Uint8Array | ArrayLike<number>) => Uint8Array;
  from_userstring: (s: Uint8Array | string) => Uint8Array;
}
interface TStringLike {
  hash: string | null;
  realstring: Uint8Array;
}
interface LStringModule {
  luaS_bless: (L: unknown, s: Uint8Array) => TStringLike;
  luaS_hash: (s: Uint8Array) => string;
  luaS_hashlongstr: (ts: TStringLike) => string;
  luaS_new: (L: unknown, s: Uint8Array) => TStringLike;
}
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice;
const hashBytes = (s: Uint8Array): string => '|' + latin1Slice.call(s, 0, s.length);
const userStrings = new Map<string, Uint8Array>();
/** the Lua string of each array userStrings keeps (see luaS_new below) */
const namedStrings = new Map<Uint8Array, TStringLike>();
/** fengari's lstring.js, once loaded (pushOwned) */
let lstring: LStringModule;

/** the string patches said above; before the modules that destructure these functions load */
function patchStrings(): void {
  const defs = require('fengari/src/defs.js') as DefsModule;
  const fromUserString = defs.from_userstring;
  defs.from_userstring = (s) => {
    if (typeof s !== 'string') return fromUserString(s);
    let u = userStrings.get(s);
    if (u === undefined) {
      u = fromUserString(s);
      // only short names are worth keeping; the bound keeps odd callers from growing it
      if (s.length <= 64 && userStrings.size < 4096) {
        userStrings.set(s, u);
        // luaS_new ignores its state argument (fengari's TString has none)
        namedStrings.set(u, lstring.luaS_new(null, u));
      }
    }
    return u;
  };
  const copyFrom = defs.luastring_from;
  defs.luastring_from = (a) => (a instanceof Uint8Array ? new Uint8Array(a) : copyFrom(a));
  lstring = require('fengari/src/lstring.js') as LStringModule;
  lstring.luaS_hash = hashBytes;
  lstring.luaS_hashlongstr = (ts) => {
    let h = ts.hash;
    if (h === null) h = ts.hash = hashBytes(ts.realstring);
    return h;
  };
  /*
   * A kept name's bytes always make the same Lua string: lapi's
   * lua_getfield/setfield/pushstring of a name give luaS_new the array
   * from_userstring kept, and get one TString, its hash made once (Lua
   * strings are immutable values; the VM's own constants are shared the
   * same way).
   */
  const newString = lstring.luaS_new;
  // a function, not an arrow: ltm.js calls it with `new`
  lstring.luaS_new = function luaS_new(L: unknown, s: Uint8Array): TStringLike {
    return namedStrings.get(s) ?? newString(L, s);
  };
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
  lua_getmetatable(L: LuaState, i: number): boolean;
  lua_next(L: LuaState, i: number): number;
  lua_call(L: LuaState, nargs: number, nres: number): void;
  lua_pcall(L: LuaState, nargs: number, nres: number, msgh: number): number;
  lua_error(L: LuaState): number;
  lua_upvalueindex(i: number): number;
  lua_getupvalue(L: LuaState, funcindex: number, n: number): Uint8Array | null;
  lua_tocfunction(L: LuaState, i: number): LuaCFunction | null;
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
/*
 * Popping the stack: fengari's adjust_top (lua_settop, and the VM after
 * calls) `delete`s each slot, a runtime call in V8 each time; an
 * undefined slot reads the same to every user of the stack (holes are
 * undefined too). lapi and lvm call it through the exports object.
 */
interface LDoModule {
  adjust_top: (L: { top: number; stack: unknown[] }, newtop: number) => void;
}
function patchAdjustTop(): void {
  const ldo = require('fengari/src/ldo.js') as LDoModule;
  const adjustTop = ldo.adjust_top;
  ldo.adjust_top = (L, newtop) => {
    if (L.top < newtop) return adjustTop(L, newtop);
    const stack = L.stack;
    let top = L.top;
    while (top > newtop) stack[--top] = undefined;
    L.top = top;
  };
}

/** fengari's lobject.js, once loaded (str2num's patch, pushOwned) */
let lobject: LObjectModule;

function patchStr2num(): void {
  // after fengari has loaded: its modules call lobject.luaO_str2num through the exports object
  lobject = require('fengari/src/lobject.js') as LObjectModule;
  const str2num = lobject.luaO_str2num;
  const HEX = /^\s*(-?)0[xX]([0-9a-fA-F]+)\s*$/;
  lobject.luaO_str2num = (s, o) => {
    const n = str2num(s, o);
    if (n !== 0 && o.ttisinteger()) {
      // a hex numeral past 32 bits wrapped: read it again as a double
      const m = HEX.exec(u8str(s).replace(/\0+$/, ''));
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
  patchStrings();
  const fengari = require('fengari') as Fengari;
  patchAdjustTop();
  patchStr2num();
  patchCalls(fengari.lua as unknown as LuaSetters);
  initHost();
  if (fengari.lua.LUA_REGISTRYINDEX !== LUA_REGISTRYINDEX) throw new Error(`fengari's LUA_REGISTRYINDEX is ${fengari.lua.LUA_REGISTRYINDEX}`);
  lua = fengari.lua;
  lauxlib = fengari.lauxlib;
  lualib = fengari.lualib;
}

/*
 * fengari's strings are Uint8Arrays, those of 64 bytes or less kept in
 * V8's heap; reading `.buffer` of one (a Buffer view, subarray) makes V8
 * give it a malloc'ed backing store. The helpers here read and make them
 * without that: latin1Slice reads a small array in place, and a string
 * made by the host is a fresh array the VM takes as it is.
 */

/** a Lua string's bytes as a latin1 JS string (one char per byte, as the engine's strings) */
export function u8str(u: Uint8Array): string {
  return latin1Slice.call(u, 0, u.length);
}

/** the bytes of a Lua string as a Buffer of their own (a copy) */
export function u8buf(u: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(u.length);
  b.set(u, 0);
  return b;
}

/** the bytes of several Lua strings in one Buffer of their own */
export function joinBytes(parts: Uint8Array[]): Buffer {
  let len = 0;
  for (let i = 0; i < parts.length; i++) len += parts[i]!.length;
  const b = Buffer.allocUnsafe(len);
  for (let i = 0, off = 0; i < parts.length; i++) {
    b.set(parts[i]!, off);
    off += parts[i]!.length;
  }
  return b;
}

interface LObjectPush {
  pushsvalue2s(L: LuaState, ts: TStringLike): void;
}
/**
 * push `u` as a Lua string without copying it: the caller made it for
 * this (a plain Uint8Array, never written again)
 */
export function pushOwned(L: LuaState, u: Uint8Array): void {
  (lobject as unknown as LObjectPush).pushsvalue2s(L, lstring.luaS_bless(L, u));
}

/** the bytes of a latin1 JS string, for lua_pushstring */
export function strU8(s: string): Uint8Array {
  return Buffer.from(s, 'latin1');
}

/** push a latin1 string */
export function pushStr(L: LuaState, s: string): void {
  const n = s.length;
  if (n > 64) return void lua.lua_pushstring(L, Buffer.from(s, 'latin1'));
  const u = new Uint8Array(n);
  for (let i = 0; i < n; i++) u[i] = s.charCodeAt(i);
  pushOwned(L, u);
}

/** the string at i (numbers converted), or undefined */
export function toStr(L: LuaState, i: number): string | undefined {
  const u = lua.lua_tolstring(L, i);
  return u === null ? undefined : u8str(u);
}

/**
 * From a host function: yield the running coroutine with no values, as
 * lua_yield(L, 0); return what it returns (without a throw where
 * fengari_yield.ts allows it).
 */
export function luaYield(L: LuaState): number {
  return yieldHere(L as unknown as YState);
}

/** made once per VM: the function a yield without a throw leaves luaV_execute through */
export function initFastYield(L: LuaState): void {
  const code = Buffer.from('return', 'latin1');
  if (lauxlib.luaL_loadbufferx(L, code, code.length, '=yield', 't') !== lua.LUA_OK) throw new Error('fengari: cannot compile `return`');
  const stack = (L as unknown as { stack: unknown[]; top: number }).stack;
  const tv = stack[(L as unknown as { top: number }).top - 1] as { type: number; value: unknown };
  const TValue = (require('fengari/src/lobject.js') as { TValue: new (t: number, v: unknown) => unknown }).TValue;
  setExitFunc(new TValue(tv.type, tv.value) as Parameters<typeof setExitFunc>[0]);
  lua.lua_pop(L, 1);
}

/** raise a Lua error with a message (never returns normally: fengari throws) */
export function luaError(L: LuaState, msg: string): never {
  pushStr(L, msg);
  lua.lua_error(L);
  throw new Error('unreachable');
}
