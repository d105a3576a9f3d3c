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
 * - Reading a table the host is given (capture's options, its args):
 *   its entries walked in place, in lua_next's order, instead of a
 *   lua_next per entry (a hash and a Map lookup each, key and value
 *   pushed and popped). Raw reads, as lua_next's.
 *
 * Measured with the capture bench in process: ~1.5 µs CPU per request
 * for the tables and require (noisy; bench/PROFILE.md), within noise for
 * the entry walks.
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
let lstring: {
  luaS_new(L: State | null, s: Uint8Array): unknown;
  luaS_bless(L: State | null, s: Uint8Array): unknown;
  luaS_hashlongstr(ts: unknown): string;
};
/** a table entry (fengari keeps them in a list, in the order lua_next walks) */
interface Entry {
  key: TValue;
  value: TValue;
  n: Entry | undefined;
}
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

/** the table at stack index idx (the caller checked it is one) */
function tableAt(L: State, idx: number): { f: Entry | undefined } {
  const tv = idx > 0 ? L.stack[L.ci.funcOff + idx]! : L.stack[L.top + idx]!;
  return tv.value as { f: Entry | undefined };
}

/**
 * the OR of `bits`' values for the string keys the table at idx has;
 * `bits` is keyed by the names' Lua string hashes (hashKey)
 */
export function keyMask(L: unknown, idx: number, bits: ReadonlyMap<string, number>): number {
  let m = 0;
  for (let e = tableAt(L as State, idx).f; e !== undefined; e = e.n) {
    if ((e.key.type & 0x0f) === T_STRING) m |= bits.get(lstring.luaS_hashlongstr(e.key.value)) ?? 0;
  }
  return m;
}

/** the key keyMask's map is keyed by for a name */
export function hashKey(name: string): string {
  return '|' + name;
}

const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice;
const tsStr = (ts: unknown): string => {
  const u = (ts as { realstring: Uint8Array }).realstring;
  return latin1Slice.call(u, 0, u.length);
};

/**
 * the entries of the table at idx as latin1 strings, in lua_next's
 * order, when every key and value is a string; otherwise undefined (the
 * caller reads it the general way)
 */
export function stringPairs(L: unknown, idx: number): Array<[string, string]> | undefined {
  const out: Array<[string, string]> = [];
  for (let e = tableAt(L as State, idx).f; e !== undefined; e = e.n) {
    if ((e.key.type & 0x0f) !== T_STRING || (e.value.type & 0x0f) !== T_STRING) return undefined;
    out.push([tsStr(e.key.value), tsStr(e.value.value)]);
  }
  return out;
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
