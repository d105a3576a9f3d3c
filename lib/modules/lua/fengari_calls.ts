import { createRequire } from 'node:module';
import { initYield, isExitFrame, luaResume, mayYieldFast, yieldedFast, type CallInfo as YCallInfo, type State as YState } from './fengari_yield.js';

/*
 * Targeted replacements of fengari's call path and of the C API functions
 * the host calls most (bench/PROFILE.md "Lua capture shape"), made by
 * loadFengari (fengari.ts) after fengari has loaded. Each keeps what the
 * replaced function does, only cheaper:
 *
 * - Popping the stack: fengari `delete`s each slot it pops (moveresults
 *   after every call, lua_setfield, lua_rawseti, lua_next, ...), a V8
 *   runtime call each time; here the slot is set to undefined, which
 *   reads the same to every user of the stack (patchAdjustTop did this for
 *   lua_settop). moveresults was ~3 % of the busy time of the capture
 *   bench, lua_setfield's auxsetstr 2 %.
 *
 * Only functions the other modules reach through an exports object are
 * replaced: lvm calls ldo.luaD_precall / ldo.luaD_poscall, the host calls
 * the lua.* object (fengari's lua.js). Calls inside one fengari module go
 * to its own local functions and are not affected (the originals stay
 * right, only slower).
 */

const require = createRequire(import.meta.url);

/* the parts of fengari's objects these functions touch */
interface TValue {
  type: number;
  value: unknown;
  setfrom(o: TValue): void;
  setnilvalue(): void;
  ttisnil(): boolean;
  ttistable(): boolean;
}
interface CallInfo {
  func: TValue;
  funcOff: number;
  top: number;
  previous: CallInfo;
  next: CallInfo | null;
  nresults: number;
  callstatus: number;
  l_base: number;
  l_code: unknown[];
  l_savedpc: number;
  c_k: unknown;
  extra: number;
}
interface State {
  stack: Array<TValue | undefined>;
  top: number;
  stack_last: number;
  ci: CallInfo;
  hookmask: number;
  oldpc: number;
  l_G: { l_registry: TValue };
}
type Fn = (L: State) => number;
interface TableLike {
  flags: number;
}

interface LDo {
  luaD_precall(L: State, off: number, nresults: number): boolean;
  luaD_poscall(L: State, ci: CallInfo, firstResult: number, nres: number): boolean;
  luaD_checkstack(L: State, n: number): void;
  luaD_hook(L: State, event: number, line: number): void;
}
interface LState {
  luaE_extendCI(L: State): CallInfo;
}
interface LApi {
  api_checknelems(L: State, n: number): void;
}
interface LTable {
  luaH_setfrom(L: State, t: unknown, k: TValue, v: TValue): void;
  luaH_setint(t: unknown, k: number, v: TValue): void;
  luaH_next(L: State, t: unknown, keyIdx: number): boolean;
  invalidateTMcache(t: TableLike): void;
}
interface LVm {
  settable(L: State, t: TValue, k: TValue, v: TValue): void;
}
interface LObject {
  TValue: new (type: number, value: unknown) => TValue;
  luaO_nilobject: TValue;
}
interface LString {
  luaS_new(L: State, s: Uint8Array): unknown;
}
interface Defs {
  from_userstring(s: Uint8Array | string): Uint8Array;
  constant_types: Record<string, number>;
  LUA_MULTRET: number;
  LUA_MINSTACK: number;
  LUA_MASKCALL: number;
  LUA_MASKRET: number;
  LUA_MASKLINE: number;
  LUA_HOOKCALL: number;
  LUA_HOOKRET: number;
  LUA_REGISTRYINDEX: number;
}
/** the lua.* functions replaced here (fengari's lua.js exports object) */
export interface LuaSetters {
  lua_setfield(L: unknown, idx: number, k: Uint8Array | string): void;
  lua_settable(L: unknown, idx: number): void;
  lua_rawset(L: unknown, idx: number): void;
  lua_rawseti(L: unknown, idx: number, n: number): void;
  lua_next(L: unknown, idx: number): number;
  lua_resume(L: unknown, from: unknown, nargs: number): number;
}

/** replace the functions said above; fengari is loaded */
export function patchCalls(lua: LuaSetters): void {
  initYield();
  const ldo = require('fengari/src/ldo.js') as LDo;
  const lstate = require('fengari/src/lstate.js') as LState;
  const lapi = require('fengari/src/lapi.js') as LApi;
  const ltable = require('fengari/src/ltable.js') as LTable;
  const lvm = require('fengari/src/lvm.js') as LVm;
  const lobject = require('fengari/src/lobject.js') as LObject;
  const lstring = require('fengari/src/lstring.js') as LString;
  const defs = require('fengari/src/defs.js') as Defs;
  const { LUA_TLCF, LUA_TCCL, LUA_TLNGSTR, LUA_TNIL } = defs.constant_types as Record<string, number>;
  const { LUA_MULTRET, LUA_MINSTACK, LUA_MASKCALL, LUA_MASKRET, LUA_MASKLINE, LUA_HOOKCALL, LUA_HOOKRET } = defs;
  const REGISTRY = defs.LUA_REGISTRYINDEX;
  const TValue = lobject.TValue;
  const nilobject = lobject.luaO_nilobject;
  const origPrecall = ldo.luaD_precall;

  /** clear the slots from `from` (inclusive) up to `to` (exclusive), as fengari's deletes do */
  const clear = (stack: Array<TValue | undefined>, from: number, to: number): void => {
    for (let i = from; i < to; i++) stack[i] = undefined;
  };

  /* ldo's moveresults: the results to the function's slot, the stack cut after them */
  const moveresults = (L: State, firstResult: number, res: number, nres: number, wanted: number): boolean => {
    const stack = L.stack;
    if (wanted === LUA_MULTRET) {
      for (let i = 0; i < nres; i++) stack[res + i]!.setfrom(stack[firstResult + i]!);
      const newtop = res + nres;
      // fengari deletes from L.top down to newtop, both inclusive
      clear(stack, newtop, L.top + 1);
      L.top = newtop;
      return false;
    }
    if (wanted === 1) {
      if (nres === 0) stack[res]!.setnilvalue();
      else stack[res]!.setfrom(stack[firstResult]!);
    } else if (wanted !== 0) {
      let i = 0;
      const m = wanted <= nres ? wanted : nres;
      for (; i < m; i++) stack[res + i]!.setfrom(stack[firstResult + i]!);
      for (; i < wanted; i++) {
        if (res + i >= L.top) stack[res + i] = new TValue(LUA_TNIL, null);
        else stack[res + i]!.setnilvalue();
      }
    }
    const newtop = res + wanted;
    clear(stack, newtop, L.top + 1);
    L.top = newtop;
    return true;
  };

  const poscall = (L: State, ci: CallInfo, firstResult: number, nres: number): boolean => {
    // the frame that takes luaV_execute out after a yield without a throw (fengari_yield.ts)
    if (isExitFrame(L as unknown as YState, ci as unknown as YCallInfo)) return false;
    const wanted = ci.nresults;
    if (L.hookmask & (LUA_MASKRET | LUA_MASKLINE)) {
      if (L.hookmask & LUA_MASKRET) ldo.luaD_hook(L, LUA_HOOKRET, -1);
      L.oldpc = (ci.previous as CallInfo).l_savedpc;
    }
    const res = ci.funcOff;
    L.ci = ci.previous;
    L.ci.next = null;
    return moveresults(L, firstResult, res, nres, wanted);
  };

  /* ldo's luaD_precall; a JS function is called here, a Lua one prepared by fengari's own */
  const precall = (L: State, off: number, nresults: number): boolean => {
    const func = L.stack[off]!;
    const type = func.type;
    if (type !== LUA_TLCF && type !== LUA_TCCL) return origPrecall(L, off, nresults);
    const f = (type === LUA_TCCL ? (func.value as { f: Fn }).f : func.value) as Fn;
    if (L.stack_last - L.top <= LUA_MINSTACK) ldo.luaD_checkstack(L, LUA_MINSTACK);
    const ci = lstate.luaE_extendCI(L);
    ci.funcOff = off;
    ci.nresults = nresults;
    ci.func = func;
    ci.top = L.top + LUA_MINSTACK;
    ci.callstatus = 0;
    if (L.hookmask & LUA_MASKCALL) ldo.luaD_hook(L, LUA_HOOKCALL, -1);
    mayYieldFast(L as unknown as YState, ci.previous as unknown as YCallInfo, ci as unknown as YCallInfo);
    const n = f(L);
    // it yielded without a throw: the coroutine is suspended, luaV_execute leaves through the exit frame
    if (yieldedFast(L as unknown as YState, ci as unknown as YCallInfo)) return false;
    if (typeof n !== 'number' || n < 0 || (n | 0) !== n) throw Error('invalid return value from JS function (expected integer)');
    lapi.api_checknelems(L, n);
    poscall(L, ci, L.top - n, n);
    return true;
  };
  ldo.luaD_poscall = poscall;
  lua.lua_resume = luaResume as unknown as LuaSetters['lua_resume'];
  ldo.luaD_precall = precall;

  /* lapi's index2addr for the indices the host uses; upvalues go to fengari's own */
  const addr = (L: State, idx: number): TValue => {
    if (idx > 0) {
      const o = L.ci.funcOff + idx;
      return o >= L.top ? nilobject : L.stack[o]!;
    }
    if (idx > REGISTRY) return L.stack[L.top + idx]!;
    if (idx === REGISTRY) return L.l_G.l_registry;
    throw new Error('patched lua API: upvalue index');
  };
  const pop2 = (L: State): void => {
    L.stack[--L.top] = undefined;
    L.stack[--L.top] = undefined;
  };
  const { lua_setfield, lua_settable, lua_rawset, lua_rawseti } = lua;
  const upvalue = (idx: number): boolean => idx < REGISTRY;

  lua.lua_setfield = (L0, idx, k) => {
    const L = L0 as State;
    if (upvalue(idx)) return lua_setfield(L0, idx, k);
    const t = addr(L, idx);
    L.stack[L.top++] = new TValue(LUA_TLNGSTR, lstring.luaS_new(L, defs.from_userstring(k)));
    lvm.settable(L, t, L.stack[L.top - 1]!, L.stack[L.top - 2]!);
    pop2(L);
  };
  lua.lua_settable = (L0, idx) => {
    const L = L0 as State;
    if (upvalue(idx)) return lua_settable(L0, idx);
    lvm.settable(L, addr(L, idx), L.stack[L.top - 2]!, L.stack[L.top - 1]!);
    pop2(L);
  };
  lua.lua_rawset = (L0, idx) => {
    const L = L0 as State;
    if (upvalue(idx)) return lua_rawset(L0, idx);
    const o = addr(L, idx);
    if (!o.ttistable()) throw Error('table expected');
    ltable.luaH_setfrom(L, o.value, L.stack[L.top - 2]!, L.stack[L.top - 1]!);
    ltable.invalidateTMcache(o.value as TableLike);
    pop2(L);
  };
  lua.lua_rawseti = (L0, idx, n) => {
    const L = L0 as State;
    if (upvalue(idx) || typeof n !== 'number' || (n | 0) !== n) return lua_rawseti(L0, idx, n);
    const o = addr(L, idx);
    if (!o.ttistable()) throw Error('table expected');
    ltable.luaH_setint(o.value, n, L.stack[L.top - 1]!);
    L.stack[--L.top] = undefined;
  };
  const { lua_next } = lua;
  lua.lua_next = (L0, idx) => {
    const L = L0 as State;
    if (upvalue(idx)) return lua_next(L0, idx);
    const t = addr(L, idx);
    if (!t.ttistable()) throw Error('table expected');
    L.stack[L.top] = new TValue(LUA_TNIL, null);
    if (ltable.luaH_next(L, t.value, L.top - 1)) {
      L.top++;
      return 1;
    }
    L.stack[L.top] = undefined;
    L.stack[--L.top] = undefined;
    return 0;
  };
}
