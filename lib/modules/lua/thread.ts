import type { HttpRequest } from '../../http/http_request.js';
import { LUA_REGISTRYINDEX, lauxlib, lua, toStr, luaYield, type LuaState } from './fengari.js';
import { getVm } from './vm.js';

/*
 * Entry threads (ngx_lua's per-request coroutines): each handler run is a
 * coroutine of the worker's VM. A host function that must wait
 * (ngx.location.capture, ngx.sleep) records what resumes it and yields;
 * the engine's callback pushes the results and resumes. ngx.exit yields
 * with `exited` set, and the thread is not resumed again. Errors end the
 * thread with nginx's `lua entry thread aborted: runtime error:` line.
 */

const REG = LUA_REGISTRYINDEX;

/** exit codes of our own: ngx.req.set_uri(uri, true), ngx.exec */
export const EXIT_JUMP = -10;
export const EXIT_EXEC = -11;

export type LuaPhase = 'set' | 'rewrite' | 'access' | 'content' | 'header_filter' | 'body_filter' | 'log' | 'timer';

/** how an entry thread ended */
export interface ThreadEnd {
  /** 'ok': returned; 'exit': ngx.exit(code); 'error': runtime error (logged) */
  how: 'ok' | 'exit' | 'error';
  code: number;
  /** what the chunk returned, as strings (set_by_lua) */
  results?: Array<string | undefined>;
  /** the thread that ended */
  thread?: LuaThread;
}

export interface LuaThread {
  r: HttpRequest | undefined;
  phase: LuaPhase;
  co: LuaState;
  exited: boolean;
  exitCode: number;
  /** ngx.exec's target (exitCode EXEC) */
  execUri?: string;
  execArgs?: string;
  /** a host function yielded and waits for the engine (capture, sleep) */
  waiting: boolean;
  /** the thread ended; further resumes are ignored */
  dead: boolean;
  /** the thread ran past its first yield (the caller returned DONE) */
  async: boolean;
  onEnd: (end: ThreadEnd) => void;
  /** an abort watcher is installed (once per thread) */
  abortHooked?: boolean;
  /** values returned by the chunk (set_by_lua), as strings */
  results: Array<string | undefined>;
}

/** the thread running now (host functions find their request here) */
let current: LuaThread | undefined;

export function currentThread(): LuaThread | undefined {
  return current;
}

/**
 * Start the chunk `fnRef` in a new coroutine; `onEnd` runs when it ends
 * (synchronously when it never yields). Returns the thread.
 */
export function spawn(
  r: HttpRequest | undefined,
  phase: LuaPhase,
  fnRef: number,
  onEnd: (end: ThreadEnd) => void,
  pushArgs?: (L: LuaState) => number,
): LuaThread {
  const L = getVm().L;
  /*
   * No registry reference keeps the coroutine (C Lua's collector would
   * need one): fengari's objects are JS objects, alive while the
   * LuaThread holds it, so it is popped at once.
   */
  const co = lua.lua_newthread(L);
  lua.lua_pop(L, 1);
  lua.lua_rawgeti(co, REG, fnRef);
  const t: LuaThread = {
    r, phase, co, exited: false, exitCode: 0, waiting: false, dead: false, async: false, onEnd, results: [],
  };
  const nargs = pushArgs ? pushArgs(co) : 0;
  resume(t, nargs);
  return t;
}

/** resume with `nargs` values already pushed on t.co */
export function resume(t: LuaThread, nargs: number): void {
  if (t.dead) return;
  t.waiting = false;
  const prev = current;
  current = t;
  let rc: number;
  try {
    rc = lua.lua_resume(t.co, getVm().L, nargs);
  } finally {
    current = prev;
  }
  if (rc === lua.LUA_YIELD) {
    if (t.exited) return end(t, { how: 'exit', code: t.exitCode });
    if (!t.waiting) {
      // a bare coroutine.yield() in the entry thread: nginx resumes it at once
      lua.lua_settop(t.co, 0);
      t.async = true;
      setImmediate(() => resume(t, 0));
      return;
    }
    t.async = true;
    return;
  }
  if (rc === lua.LUA_OK) {
    const n = lua.lua_gettop(t.co);
    for (let i = 1; i <= n; i++) t.results.push(toStr(t.co, i));
    return end(t, { how: 'ok', code: 0, results: t.results });
  }
  const msg = toStr(t.co, -1) ?? (lua.lua_type(t.co, -1) === lua.LUA_TNIL ? 'nil' : 'unknown reason');
  const where = t.r;
  const text = `lua entry thread aborted: runtime error: ${msg}\n${traceback(t.co)}`;
  if (where) where.log('error', text);
  end(t, { how: 'error', code: 500 });
}

/** ngx_lua's traceback: `stack traceback:\ncoroutine 0:\n\t...` */
function traceback(co: LuaState): string {
  const L = getVm().L;
  lauxlib.luaL_traceback(L, co, null, 0);
  const tb = toStr(L, -1) ?? '';
  lua.lua_pop(L, 1);
  // fengari names host functions [JS]; nginx's are C functions
  return tb.replace(/^stack traceback:\n/, 'stack traceback:\ncoroutine 0:\n').replace(/\t\[JS\]:/g, '\t[C]:');
}

function end(t: LuaThread, e: ThreadEnd): void {
  e.thread = t;
  t.dead = true;
  t.onEnd(e);
}

/**
 * From a host function: suspend the running thread until `start` calls
 * the resume function it is given with a pusher of the results.
 */
export function yieldFor(L: LuaState, start: (wake: (push: (co: LuaState) => number) => void) => void): number {
  const t = current;
  if (!t || t.co !== L) {
    pushErr(L, 'attempt to yield across C-call boundary');
  }
  t!.waiting = true;
  let yielded = false;
  const wake = (push: (co: LuaState) => number): void => {
    // the thread yields only when the host function returns: a wake before that waits a tick
    if (!yielded) {
      process.nextTick(() => wake(push));
      return;
    }
    if (t!.dead) return;
    const n = push(t!.co);
    resume(t!, n);
  };
  start(wake);
  yielded = true;
  // the client went away while the thread waits: it is never resumed; free it
  if (!t!.abortHooked && t!.r) {
    t!.abortHooked = true;
    t!.r.main.onAbort(() => {
      t!.dead = true;
    });
  }
  return luaYield(L);
}

function pushErr(L: LuaState, m: string): never {
  lua.lua_pushstring(L, Buffer.from(m, 'latin1'));
  lua.lua_error(L);
  throw new Error(m);
}
