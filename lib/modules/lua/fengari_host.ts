import { createRequire } from 'node:module';

/*
 * Host-side paths over fengari's own objects, for what every request of
 * the capture shape does (bench/PROFILE.md "Lua capture shape"):
 *
 * - Building a table the host returns (a capture's result, its header
 *   table): fields are stored into the new table directly (ltable's
 *   luaH_setfrom) instead of each value and key being pushed on the stack,
 *   looked up through lua_setfield's luaV_settable (metamethods: a new
 *   table has none) and popped. Same keys, values and insertion order.
 * - `require` of a module already loaded: package.loaded[name] read with
 *   the argument's own Lua string as the key, instead of fengari's
 *   ll_require making a new Lua string of the name (and hashing it) for
 *   lua_getfield each call. A name not loaded (or not a string) goes to
 *   fengari's require, which does everything as before.
 *
 * initHost() runs once fengari has loaded (fengari.ts loadFengari).
 */

const require = createRequire(import.meta.url);

interface TValue {
  type: number;
  value: unknown;
  ttistable(): boolean;
  l_isfalse(): boolean;
}
interface State {
  stack: Array<TValue | undefined>;
  top: number;
  ci: { funcOff: number };
  l_G: { l_registry: TValue };
}
/** a Lua table the host is building (fengari's Table) */
export type LuaTable = { readonly __luaTable: unique symbol };

let TValueOf: new (type: number, value: unknown) => TValue;
let ltable: {
  luaH_new(L: State): LuaTable;
  luaH_setfrom(L: State, t: LuaTable, k: TValue, v: TValue): void;
  luaH_getstr(t: unknown, ts: unknown): TValue;
};
let lstring: { luaS_new(L: State | null, s: Uint8Array): unknown; luaS_bless(L: State | null, s: Uint8Array): unknown };
let fromUserString: (s: string) => Uint8Array;
let T_NUMINT = 0;
let T_BOOLEAN = 0;
let T_STRING = 0;
let T_LNGSTR = 0;
let T_TABLE = 0;
/** reused key and value cells: luaH_setfrom copies both into the table's own */
let keyCell: TValue;
let valCell: TValue;
let loadedKey: unknown;

export function initHost(): void {
  TValueOf = (require('fengari/src/lobject.js') as { TValue: typeof TValueOf }).TValue;
  ltable = require('fengari/src/ltable.js') as typeof ltable;
  lstring = require('fengari/src/lstring.js') as typeof lstring;
  const defs = require('fengari/src/defs.js') as {
    constant_types: Record<string, number>;
    from_userstring(s: string): Uint8Array;
  };
  fromUserString = defs.from_userstring;
  const ct = defs.constant_types;
  T_NUMINT = ct.LUA_TNUMINT!;
  T_BOOLEAN = ct.LUA_TBOOLEAN!;
  T_STRING = ct.LUA_TSTRING!;
  T_LNGSTR = ct.LUA_TLNGSTR!;
  T_TABLE = ct.LUA_TTABLE!;
  keyCell = new TValueOf(T_LNGSTR, null);
  valCell = new TValueOf(T_LNGSTR, null);
  // lauxlib's LUA_LOADED_TABLE
  loadedKey = lstring.luaS_new(null, fromUserString('_LOADED'));
}

/** push a new table; returned for the set* functions below */
export function pushNewTable(L0: unknown): LuaTable {
  const L = L0 as State;
  const t = ltable.luaH_new(L);
  L.stack[L.top++] = new TValueOf(T_TABLE, t);
  return t;
}

/** a new table not on the stack (fengari's objects are the JS engine's: nothing to anchor) */
export function newTable(L0: unknown): LuaTable {
  return ltable.luaH_new(L0 as State);
}

/** t[name] = the value in valCell (name: a field name, its Lua string shared as lua_setfield's) */
function store(L: State, t: LuaTable, name: string): void {
  keyCell.value = lstring.luaS_new(L, fromUserString(name));
  ltable.luaH_setfrom(L, t, keyCell, valCell);
}

/** a latin1 JS string as a new Lua string's bytes */
function bytesOf(s: string): Uint8Array {
  const n = s.length;
  if (n > 64) return Buffer.from(s, 'latin1');
  const u = new Uint8Array(n);
  for (let i = 0; i < n; i++) u[i] = s.charCodeAt(i);
  return u;
}

export function setInt(L: unknown, t: LuaTable, name: string, n: number): void {
  valCell.type = T_NUMINT;
  valCell.value = n;
  store(L as State, t, name);
}

export function setBool(L: unknown, t: LuaTable, name: string, b: boolean): void {
  valCell.type = T_BOOLEAN;
  valCell.value = b;
  store(L as State, t, name);
}

/** t[name] = the bytes `u`, which the table keeps (a fresh array the caller does not write again) */
export function setOwnedBytes(L: unknown, t: LuaTable, name: string, u: Uint8Array): void {
  valCell.type = T_LNGSTR;
  valCell.value = lstring.luaS_bless(L as State, u);
  store(L as State, t, name);
}

/** t[name] = a latin1 JS string */
export function setStr(L: unknown, t: LuaTable, name: string, s: string): void {
  setOwnedBytes(L, t, name, bytesOf(s));
}

export function setTable(L: unknown, t: LuaTable, name: string, sub: LuaTable): void {
  valCell.type = T_TABLE;
  valCell.value = sub;
  store(L as State, t, name);
}

/** t[i] = a latin1 JS string (i an integer key) */
export function setIndexStr(L0: unknown, t: LuaTable, i: number, s: string): void {
  const L = L0 as State;
  valCell.type = T_LNGSTR;
  valCell.value = lstring.luaS_bless(L, bytesOf(s));
  const k = new TValueOf(T_NUMINT, i);
  ltable.luaH_setfrom(L, t, k, valCell);
}

/**
 * `require` with the fast path said above: `original` is fengari's
 * require (it runs with this closure's upvalue, the package table, as its
 * own: the caller makes this a closure over the same one).
 */
export function fastRequire(original: (L: unknown) => number): (L: unknown) => number {
  return (L0) => {
    const L = L0 as State;
    const at = L.ci.funcOff + 1;
    const arg = at < L.top ? L.stack[at]! : undefined;
    if (arg !== undefined && (arg.type & 0x0f) === T_STRING) {
      const loaded = ltable.luaH_getstr(L.l_G.l_registry.value, loadedKey);
      if (loaded.ttistable()) {
        // a value present is what lua_getfield gives, whatever the metatable (__index is for absent keys)
        const v = ltable.luaH_getstr(loaded.value, arg.value);
        if (!v.l_isfalse()) {
          L.stack[L.top++] = new TValueOf(v.type, v.value);
          return 1;
        }
      }
    }
    return original(L0);
  };
}
