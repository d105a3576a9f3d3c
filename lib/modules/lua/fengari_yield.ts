import { createRequire } from 'node:module';

/*
 * A host function's yield without a JS throw (bench/PROFILE.md "Lua
 * capture shape"). fengari yields as C Lua longjmps: lua_yield throws
 * from the host function up to lua_resume's try, through luaV_execute.
 * A V8 throw costs ~0.25 µs plus ~60 ns per frame unwound, and more when
 * it is not inside a microtask (V8 makes a message object for it): ~1 µs,
 * 4-6 % of the busy time of the capture bench, for the one yield every
 * ngx.location.capture makes.
 *
 * Here, when a host function called by the VM's OP_CALL at the
 * coroutine's base level (no JS call such as pcall or a metamethod
 * between it and lua_resume; no debug hook) yields, it returns normally
 * (yieldHere), and luaD_precall (fengari_calls.ts) makes the coroutine
 * suspended exactly as lua_yieldk does, then leaves luaV_execute the way
 * it leaves a fresh frame: it enters a frame of a compiled `return` chunk
 * marked CIST_FRESH, whose OP_RETURN (luaD_poscall, also ours) only drops
 * that frame. luaV_execute returns to the resume/unroll below, which see
 * the yielded status and stop, and lua_resume returns LUA_YIELD. The
 * state left is the one a thrown yield leaves, so the resume that follows
 * (fengari's own logic, reimplemented here with that one check) is the
 * same. Anywhere else (a tail call, inside pcall, a hook), yieldHere
 * throws as before. Measured: the capture bench in process 18.4 → 15.5 µs
 * CPU per request with the delete-free pops (fengari_calls.ts).
 */

const require = createRequire(import.meta.url);

interface TValue {
  type: number;
  value: unknown;
  setfrom(o: TValue): void;
  setsvalue(ts: unknown): void;
}
export interface CallInfo {
  func: TValue;
  funcOff: number;
  top: number;
  previous: CallInfo | null;
  next: CallInfo | null;
  nresults: number;
  callstatus: number;
  l_base: number;
  l_code: Array<{ opcode: number }>;
  l_savedpc: number;
  c_k: ((L: State, status: number, ctx: unknown) => number) | null;
  c_ctx: unknown;
  c_old_errfunc: number;
  extra: number;
}
export interface State {
  stack: Array<TValue | undefined>;
  top: number;
  ci: CallInfo;
  base_ci: CallInfo;
  status: number;
  nny: number;
  nCcalls: number;
  hookmask: number;
  allowhook: number;
  errfunc: number;
}
interface LDo {
  luaD_precall(L: State, off: number, nresults: number): boolean;
  luaD_poscall(L: State, ci: CallInfo, firstResult: number, nres: number): boolean;
  luaD_rawrunprotected(L: State, f: (L: State, ud: number | null) => void, ud: number | null): number;
  luaD_reallocstack(L: State, n: number): void;
  lua_resume(L: State, from: State | null, nargs: number): number;
  lua_yield(L: State, n: number): number;
}

/* fengari's modules and constants, set by initYield once fengari has loaded (fengari.ts) */
let ldo: LDo;
let lstate: {
  luaE_extendCI(L: State): CallInfo;
  luaE_freeCI(L: State): void;
  EXTRA_STACK: number;
};
let lvm: { luaV_execute(L: State): void; luaV_finishOp(L: State): void };
let lfunc: { luaF_close(L: State, level: number): void };
let lapi: { api_checknelems(L: State, n: number): void };
let lstring: { luaS_newliteral(L: State, s: string): unknown };
let TValueOf: new (t: number, v: unknown) => TValue;
let LUAI_MAXSTACK = 0;
let LUAI_MAXCCALLS = 0;
let OP_CALL = 0;
let LUA_OK = 0;
let LUA_YIELD = 0;
let LUA_ERRRUN = 0;
let LUA_ERRMEM = 0;
let LUA_ERRERR = 0;
let LUA_TNIL = 0;
let CIST_LUA = 0;
let CIST_FRESH = 0;
let CIST_YPCALL = 0;
let CIST_OAH = 0;
let LUA_MULTRET = 0;
let origResume: LDo['lua_resume'];

/** read fengari's modules (after it has loaded: requiring them earlier would load it unpatched) */
export function initYield(): void {
  ldo = require('fengari/src/ldo.js') as LDo;
  const ls = require('fengari/src/lstate.js') as typeof lstate & Record<string, number>;
  lstate = ls;
  lvm = require('fengari/src/lvm.js') as typeof lvm;
  lfunc = require('fengari/src/lfunc.js') as typeof lfunc;
  lapi = require('fengari/src/lapi.js') as typeof lapi;
  lstring = require('fengari/src/lstring.js') as typeof lstring;
  TValueOf = (require('fengari/src/lobject.js') as { TValue: typeof TValueOf }).TValue;
  const defs = require('fengari/src/defs.js') as { thread_status: Record<string, number>; LUA_MULTRET: number; constant_types: Record<string, number> };
  LUAI_MAXSTACK = (require('fengari/src/luaconf.js') as { LUAI_MAXSTACK: number }).LUAI_MAXSTACK;
  LUAI_MAXCCALLS = (require('fengari/src/llimits.js') as { LUAI_MAXCCALLS: number }).LUAI_MAXCCALLS;
  OP_CALL = (require('fengari/src/lopcodes.js') as { OpCodesI: Record<string, number> }).OpCodesI.OP_CALL!;
  const st = defs.thread_status;
  LUA_OK = st.LUA_OK!;
  LUA_YIELD = st.LUA_YIELD!;
  LUA_ERRRUN = st.LUA_ERRRUN!;
  LUA_ERRMEM = st.LUA_ERRMEM!;
  LUA_ERRERR = st.LUA_ERRERR!;
  LUA_TNIL = defs.constant_types.LUA_TNIL!;
  CIST_LUA = ls.CIST_LUA!;
  CIST_FRESH = ls.CIST_FRESH!;
  CIST_YPCALL = ls.CIST_YPCALL!;
  CIST_OAH = ls.CIST_OAH!;
  LUA_MULTRET = defs.LUA_MULTRET;
  origResume = ldo.lua_resume;
}

/** the coroutine lua_resume (below) runs, and its nCcalls there: the base level */
let fastL: State | null = null;
let fastBase = 0;
/** the CallInfo of the host function precall is running at the base level, called by OP_CALL */
let fastCi: CallInfo | null = null;
/** set by yieldHere: that host function yields */
let yieldCi: CallInfo | null = null;
/** the compiled `return` chunk whose frame takes luaV_execute out */
let exitFunc: TValue | null = null;

/** made once the VM exists (vm.ts): the `return` chunk's function value */
export function setExitFunc(tv: TValue): void {
  exitFunc = tv;
}

/**
 * precall (fengari_calls.ts), before calling host function `ci`: may it
 * yield without a throw? `caller` is the frame that called it.
 */
export function mayYieldFast(L: State, caller: CallInfo, ci: CallInfo): void {
  fastCi =
    L === fastL && L.nCcalls === fastBase && L.hookmask === 0 && L.nny === 0 && exitFunc !== null
    && (caller.callstatus & CIST_LUA) !== 0 && caller.l_code[caller.l_savedpc - 1]!.opcode === OP_CALL
      ? ci
      : null;
}

/** precall, after the host function `ci` returned: did it yield (yieldHere)? Then suspend and leave */
export function yieldedFast(L: State, ci: CallInfo): boolean {
  if (yieldCi !== ci) return false;
  yieldCi = null;
  fastCi = null;
  // lua_yieldk(L, 0, 0, null) of a JS function, without its throw
  L.status = LUA_YIELD;
  ci.extra = ci.funcOff;
  ci.c_k = null;
  ci.funcOff = L.top - 1;
  ci.func = L.stack[ci.funcOff]!;
  // a frame whose one instruction, OP_RETURN, makes luaV_execute return (CIST_FRESH)
  const exit = lstate.luaE_extendCI(L);
  exit.func = exitFunc!;
  exit.funcOff = L.top;
  exit.l_base = L.top;
  exit.top = L.top;
  exit.nresults = 0;
  exit.l_code = (exitFunc!.value as { p: { code: Array<{ opcode: number }> } }).p.code;
  exit.l_savedpc = 0;
  exit.callstatus = CIST_LUA | CIST_FRESH;
  return true;
}

/** poscall: is `ci` that exit frame? Then it is dropped (the yielded host function's frame is current again) */
export function isExitFrame(L: State, ci: CallInfo): boolean {
  if (ci.func !== exitFunc || exitFunc === null) return false;
  L.ci = ci.previous!;
  L.ci.next = null;
  return true;
}

/**
 * For a host function: yield the running coroutine with no values
 * (lua_yield(L, 0)); return what it returns. Without a throw when allowed.
 */
export function yieldHere(L: State): number {
  if (fastCi !== null && fastCi === L.ci && L.status === LUA_OK) {
    yieldCi = fastCi;
    return 0;
  }
  return ldo.lua_yield(L, 0);
}

/* fengari's finishCcall: the continuation of an interrupted host function */
function finishCcall(L: State, status: number): void {
  const ci = L.ci;
  if (ci.c_k === null || L.nny !== 0) throw Error('assertion failed');
  if (ci.callstatus & CIST_YPCALL) {
    ci.callstatus &= ~CIST_YPCALL;
    L.errfunc = ci.c_old_errfunc;
  }
  if (ci.nresults === LUA_MULTRET && L.ci.top < L.top) L.ci.top = L.top;
  const n = ci.c_k(L, status, ci.c_ctx);
  lapi.api_checknelems(L, n);
  ldo.luaD_poscall(L, ci, L.top - n, n);
}

/* fengari's unroll, stopping when a host function yielded without a throw */
function unroll(L: State, ud: number | null): void {
  if (ud !== null) finishCcall(L, ud);
  while (L.ci !== L.base_ci) {
    if (!(L.ci.callstatus & CIST_LUA)) finishCcall(L, LUA_YIELD);
    else {
      lvm.luaV_finishOp(L);
      lvm.luaV_execute(L);
    }
    if (L.status === LUA_YIELD) return;
  }
}

/* fengari's resume (the body lua_resume runs protected) */
function resumeBody(L: State, ud: number | null): void {
  let n = ud!;
  let firstArg = L.top - n;
  const ci = L.ci;
  if (L.status === LUA_OK) {
    if (!ldo.luaD_precall(L, firstArg - 1, LUA_MULTRET)) lvm.luaV_execute(L);
    return;
  }
  L.status = LUA_OK;
  ci.funcOff = ci.extra;
  ci.func = L.stack[ci.funcOff]!;
  if (ci.callstatus & CIST_LUA) lvm.luaV_execute(L);
  else {
    if (ci.c_k !== null) {
      n = ci.c_k(L, LUA_YIELD, ci.c_ctx);
      lapi.api_checknelems(L, n);
      firstArg = L.top - n;
    }
    ldo.luaD_poscall(L, ci, firstArg, n);
  }
  if (L.status !== LUA_YIELD) unroll(L, null);
}

/* fengari's seterrorobj: the error object at oldtop, the stack cut after it */
function seterrorobj(L: State, errcode: number, oldtop: number): void {
  const current = L.top;
  while (L.top < oldtop + 1) L.stack[L.top++] = new TValueOf(LUA_TNIL, null);
  if (errcode === LUA_ERRMEM) L.stack[oldtop]!.setsvalue(lstring.luaS_newliteral(L, 'not enough memory'));
  else if (errcode === LUA_ERRERR) L.stack[oldtop]!.setsvalue(lstring.luaS_newliteral(L, 'error in error handling'));
  else L.stack[oldtop]!.setfrom(L.stack[current - 1]!);
  while (L.top > oldtop + 1) L.stack[--L.top] = undefined;
}

/* fengari's luaD_shrinkstack (after an error was caught in a coroutine) */
function shrinkstack(L: State): void {
  let inuse = L.top;
  for (let ci: CallInfo | null = L.ci; ci !== null; ci = ci.previous) if (inuse < ci.top) inuse = ci.top;
  inuse += 1;
  let good = inuse + Math.floor(inuse / 8) + 2 * lstate.EXTRA_STACK;
  if (good > LUAI_MAXSTACK) good = LUAI_MAXSTACK;
  if (L.stack.length > LUAI_MAXSTACK) lstate.luaE_freeCI(L);
  if (inuse <= LUAI_MAXSTACK - lstate.EXTRA_STACK && good < L.stack.length) ldo.luaD_reallocstack(L, good);
}

/* fengari's recover: an error caught by a yieldable pcall inside the coroutine */
function recover(L: State, status: number): boolean {
  let ci: CallInfo | null = L.ci;
  while (ci !== null && !(ci.callstatus & CIST_YPCALL)) ci = ci.previous;
  if (ci === null) return false;
  const oldtop = ci.extra;
  lfunc.luaF_close(L, oldtop);
  seterrorobj(L, status, oldtop);
  L.ci = ci;
  L.allowhook = ci.callstatus & CIST_OAH;
  L.nny = 0;
  shrinkstack(L);
  L.errfunc = ci.c_old_errfunc;
  return true;
}

/**
 * lua_resume, as fengari's, with the yield above: returns LUA_YIELD also
 * when the coroutine yielded without a throw. Its error cases (resuming a
 * running or dead coroutine, too deep) are fengari's own.
 */
export function luaResume(L: State, from: State | null, nargs: number): number {
  if (L.status === LUA_OK ? L.ci !== L.base_ci : L.status !== LUA_YIELD) return origResume(L, from, nargs);
  const nCcalls = from ? from.nCcalls + 1 : 1;
  if (nCcalls >= LUAI_MAXCCALLS) return origResume(L, from, nargs);
  const oldnny = L.nny;
  L.nCcalls = nCcalls;
  L.nny = 0;
  lapi.api_checknelems(L, L.status === LUA_OK ? nargs + 1 : nargs);
  const prevL = fastL;
  const prevBase = fastBase;
  fastL = L;
  fastBase = nCcalls;
  let status: number;
  try {
    status = ldo.luaD_rawrunprotected(L, resumeBody, nargs);
    if (status === -1) status = LUA_ERRRUN;
    else {
      while (status > LUA_YIELD && recover(L, status)) status = ldo.luaD_rawrunprotected(L, unroll, status);
      if (status > LUA_YIELD) {
        L.status = status;
        seterrorobj(L, status, L.top);
        L.ci.top = L.top;
      } else if (status === LUA_OK && L.status === LUA_YIELD) status = LUA_YIELD;
    }
  } finally {
    fastL = prevL;
    fastBase = prevBase;
    fastCi = null;
  }
  L.nny = oldnny;
  L.nCcalls--;
  return status;
}
