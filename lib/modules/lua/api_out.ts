import type { LogLevel } from '../../core/error_log.js';
import { getMainLog } from '../../core/error_log.js';
import type { HttpRequest } from '../../http/http_request.js';
import { joinBytes, lauxlib, lua, luaError, pushStr, toStr, u8str, luaYield, type LuaState } from './fengari.js';
import { EXIT_EXEC, currentThread, yieldFor, type LuaThread } from './thread.js';
import { luaConfOf } from './filters.js';
import { setFn } from './vm.js';

/*
 * ngx.say/print/flush/eof/exit/redirect, ngx.status, ngx.log and print,
 * the constants and ngx.null (ngx_http_lua_output.c, _control.c, _log.c,
 * _consts.c). Output goes through the engine's filters as it is made:
 * one ngx.say, one chunk, as ngx_lua's one output_filter call.
 */

/** ngx.encode_args, given by api_req.ts (it imports this file) */
let encodeArgsOf: (L: LuaState, i: number) => string = () => '';
export function setEncodeArgs(f: (L: LuaState, i: number) => string): void {
  encodeArgsOf = f;
}

/** ngx.null: a light userdata every API compares by identity */
export const NULL_UD = { ngxNull: true };

/** per-request Lua state shared by the phases (ngx.ctx, output state) */
export interface LuaReqState {
  ctxRef: number;
  /** ngx.eof() was called or the content thread ended */
  eof: boolean;
  /** the last output met a full socket buffer (ngx.flush(true) waits for it to drain) */
  congested?: boolean;
  /**
   * lua_http10_buffering: an HTTP/1.0 response without a length is held
   * until its end, to be sent with its Content-Length (ngx_lua's
   * ctx->buffering and ctx->out)
   */
  held?: Buffer[];
}
export function reqState(r: HttpRequest): LuaReqState {
  let s = r.luaCtx as LuaReqState | undefined;
  if (s === undefined) s = r.luaCtx = { ctxRef: -1, eof: false };
  return s;
}
export function peekReqState(r: HttpRequest): LuaReqState | undefined {
  return r.luaCtx as LuaReqState | undefined;
}

/** the running thread's request, or a Lua error naming the API */
export function curReq(L: LuaState, api: string): { t: LuaThread; r: HttpRequest } {
  const t = currentThread();
  if (!t || !t.r) luaError(L, `no request found`);
  void api;
  return { t: t!, r: t!.r! };
}

/** refuse an API in phases that cannot use it (ngx_http_lua_check_context) */
export function checkPhase(L: LuaState, t: LuaThread, api: string, allowed: readonly string[]): void {
  if (!allowed.includes(t.phase)) luaError(L, `API disabled in the context of ${t.phase}_by_lua*`);
  void api;
}

const OUT_PHASES = ['rewrite', 'access', 'content'] as const;
const NEWLINE = Buffer.from('\n');
const NIL = Buffer.from('nil');
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

/** the bytes of ngx.say/ngx.print's arguments (tables flattened, as ngx_lua's calc/copy_str) */
function collect(L: LuaState, i: number, out: Uint8Array[], api: string, argn: number): void {
  const ty = lua.lua_type(L, i);
  // the VM's own arrays: read (copied into the output below), never kept
  if (ty === lua.LUA_TSTRING || ty === lua.LUA_TNUMBER) out.push(lua.lua_tolstring(L, i)!);
  else if (ty === lua.LUA_TNIL) out.push(NIL);
  else if (ty === lua.LUA_TBOOLEAN) out.push(lua.lua_toboolean(L, i) ? TRUE : FALSE);
  else if (ty === lua.LUA_TLIGHTUSERDATA && lua.lua_touserdata(L, i) === NULL_UD) out.push(NULL);
  else if (ty === lua.LUA_TTABLE) {
    const abs = i < 0 ? lua.lua_gettop(L) + i + 1 : i;
    const n = lua.lua_rawlen(L, abs);
    for (let k = 1; k <= n; k++) {
      lua.lua_rawgeti(L, abs, k);
      const et = lua.lua_type(L, -1);
      if (et === lua.LUA_TTABLE || et === lua.LUA_TSTRING || et === lua.LUA_TNUMBER || et === lua.LUA_TBOOLEAN
        || (et === lua.LUA_TLIGHTUSERDATA && lua.lua_touserdata(L, -1) === NULL_UD)) collect(L, -1, out, api, argn);
      else {
        const tn = u8str(lua.lua_typename(L, et));
        lua.lua_pop(L, 1);
        luaError(L, `bad argument #${argn} to '${api}' (non-array table found)`);
        void tn;
      }
      lua.lua_pop(L, 1);
    }
  } else {
    const tn = u8str(lua.lua_typename(L, ty));
    luaError(L, `bad argument #${argn} to '${api}' (string, number, boolean, nil, ngx.null, or array table expected, got ${tn})`);
  }
}

/**
 * send the response header if not yet (ngx_http_lua_send_header_if_needed);
 * with HTTP/1.0 output held back, this is its end: the header with the
 * held length (ngx_http_lua_send_http10_headers), then the output
 */
export function sendHeaderIfNeeded(r: HttpRequest): void {
  if (r.headerSent) return;
  if (r.status === 0) r.status = 200;
  const st = peekReqState(r);
  const held = st?.held;
  if (held === undefined) {
    r.sendHeader();
    return;
  }
  st!.held = undefined;
  if (r.ownContentLength) {
    let n = 0;
    for (const b of held) n += b.length;
    r.contentLength = n;
  }
  r.sendHeader();
  if (!r.headerOnly) for (const b of held) r.send(b);
}

/* ngx_http_lua_send_chain_link: HTTP/1.0 output of the content phase without a length starts being held */
function startsHolding(r: HttpRequest, t: LuaThread): boolean {
  return !r.headerSent && r.version < 1001 && r.contentLength < 0 && t.phase === 'content' && r.method !== 'HEAD' && luaConfOf(r)?.http10Buffering !== 0;
}

function output(L: LuaState, newline: boolean): number {
  const api = newline ? 'say' : 'print';
  const { t, r } = curReq(L, api);
  checkPhase(L, t, api, OUT_PHASES);
  const st = reqState(r);
  if (st.eof || r.finished) {
    r.log('error', `attempt to call ngx.${api} after sending the response`);
    lua.lua_pushnil(L);
    pushStr(L, 'seen eof');
    return 2;
  }
  const n = lua.lua_gettop(L);
  const parts: Uint8Array[] = [];
  for (let i = 1; i <= n; i++) collect(L, i, parts, api, i);
  if (newline) parts.push(NEWLINE);
  // one copy into a Buffer of its own (TypedArray set: no Buffer view of the VM's arrays)
  const buf = joinBytes(parts);
  if (st.held === undefined && startsHolding(r, t)) st.held = [];
  if (st.held !== undefined) {
    // ngx_http_lua_send_header_if_needed gives the status before it holds the output
    if (r.status === 0) r.status = 200;
    if (buf.length) st.held.push(buf);
    lua.lua_pushinteger(L, 1);
    return 1;
  }
  sendHeaderIfNeeded(r);
  if (buf.length && !r.headerOnly) st.congested = !r.send(buf);
  lua.lua_pushinteger(L, 1);
  return 1;
}

/** ngx.exit / the thread ending in `exited` state */
function exit(L: LuaState): number {
  const t = currentThread();
  if (!t) luaError(L, 'no request found');
  const code = lauxlib.luaL_checkinteger(L, 1);
  t!.exited = true;
  t!.exitCode = code;
  if (t!.phase === 'set' || t!.phase === 'header_filter' || t!.phase === 'body_filter' || t!.phase === 'log' || t!.phase === 'timer') {
    // no yielding there: the chunk stops by an error the runner recognizes
    luaError(L, '\0ngx.exit');
  }
  return luaYield(L);
}

const LEVELS: LogLevel[] = ['emerg', 'emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info', 'debug'];

/** `[lua] SRC:LINE: FN(): ` of the Lua function calling level `lvl` */
function logPrefix(L: LuaState, lvl: number): string {
  const dbg = lua as unknown as {
    lua_getstack(L: LuaState, level: number, ar: object): number;
    lua_getinfo(L: LuaState, what: string, ar: object): number;
    lua_Debug: new () => { short_src: Uint8Array | null; currentline: number; name: Uint8Array | null };
  };
  const ar = new dbg.lua_Debug();
  if (!dbg.lua_getstack(L, lvl, ar)) return '[lua] ';
  dbg.lua_getinfo(L, 'Sln', ar);
  const src = ar.short_src ? u8str(ar.short_src) : '?';
  const name = ar.name ? `${u8str(ar.name)}(): ` : '';
  return `[lua] ${src}:${ar.currentline}: ${name}`;
}

/** ngx.log's message: tostring of each argument, nil/booleans/ngx.null spelled out */
function logMessage(L: LuaState, from: number, api: string): string {
  const n = lua.lua_gettop(L);
  let s = '';
  for (let i = from; i <= n; i++) {
    const ty = lua.lua_type(L, i);
    if (ty === lua.LUA_TSTRING || ty === lua.LUA_TNUMBER) s += toStr(L, i);
    else if (ty === lua.LUA_TNIL) s += 'nil';
    else if (ty === lua.LUA_TBOOLEAN) s += lua.lua_toboolean(L, i) ? 'true' : 'false';
    else if (ty === lua.LUA_TLIGHTUSERDATA && lua.lua_touserdata(L, i) === NULL_UD) s += 'null';
    else if (ty === lua.LUA_TTABLE) {
      s += u8str(lauxlib.luaL_tolstring(L, i));
      lua.lua_pop(L, 1);
    } else {
      luaError(L, `bad argument #${i} to '${api}' (string, number, boolean, or nil expected, got ${u8str(lua.lua_typename(L, ty))})`);
    }
  }
  return s;
}

/** write a Lua log line: to the request's log, else the main log */
export function luaLog(level: LogLevel, msg: string): void {
  const t = currentThread();
  if (t?.r) t.r.log(level, msg);
  else {
    const log = getMainLog();
    if (log.enabled(level)) log.write(level, 0, msg);
  }
}

export const HTTP_METHODS: Record<string, number> = {
  GET: 2, HEAD: 4, POST: 8, PUT: 16, DELETE: 32, MKCOL: 64, COPY: 128, MOVE: 256, OPTIONS: 512,
  PROPFIND: 1024, PROPPATCH: 2048, LOCK: 4096, UNLOCK: 8192, PATCH: 16384, TRACE: 32768,
};

const CONSTS: Record<string, number> = {
  OK: 0, ERROR: -1, AGAIN: -2, DONE: -4, DECLINED: -5,
  HTTP_CONTINUE: 100, HTTP_SWITCHING_PROTOCOLS: 101, HTTP_OK: 200, HTTP_CREATED: 201, HTTP_ACCEPTED: 202,
  HTTP_NO_CONTENT: 204, HTTP_PARTIAL_CONTENT: 206, HTTP_SPECIAL_RESPONSE: 300, HTTP_MOVED_PERMANENTLY: 301,
  HTTP_MOVED_TEMPORARILY: 302, HTTP_SEE_OTHER: 303, HTTP_NOT_MODIFIED: 304, HTTP_TEMPORARY_REDIRECT: 307,
  HTTP_PERMANENT_REDIRECT: 308, HTTP_BAD_REQUEST: 400, HTTP_UNAUTHORIZED: 401, HTTP_PAYMENT_REQUIRED: 402,
  HTTP_FORBIDDEN: 403, HTTP_NOT_FOUND: 404, HTTP_NOT_ALLOWED: 405, HTTP_NOT_ACCEPTABLE: 406,
  HTTP_REQUEST_TIMEOUT: 408, HTTP_CONFLICT: 409, HTTP_GONE: 410, HTTP_UPGRADE_REQUIRED: 426,
  HTTP_TOO_MANY_REQUESTS: 429, HTTP_CLOSE: 444, HTTP_ILLEGAL: 451, HTTP_INTERNAL_SERVER_ERROR: 500,
  HTTP_METHOD_NOT_IMPLEMENTED: 501, HTTP_NOT_IMPLEMENTED: 501, HTTP_BAD_GATEWAY: 502, HTTP_SERVICE_UNAVAILABLE: 503,
  HTTP_GATEWAY_TIMEOUT: 504, HTTP_VERSION_NOT_SUPPORTED: 505, HTTP_INSUFFICIENT_STORAGE: 507,
  STDERR: 0, EMERG: 1, ALERT: 2, CRIT: 3, ERR: 4, WARN: 5, NOTICE: 6, INFO: 7, DEBUG: 8,
};

/** fill the ngx table on top of the stack */
export function installNgxOutput(L: LuaState): void {
  for (const [k, v] of Object.entries(CONSTS)) {
    lua.lua_pushinteger(L, v);
    lua.lua_setfield(L, -2, k);
  }
  for (const [k, v] of Object.entries(HTTP_METHODS)) {
    lua.lua_pushinteger(L, v);
    lua.lua_setfield(L, -2, `HTTP_${k}`);
  }
  lua.lua_pushlightuserdata(L, NULL_UD);
  lua.lua_setfield(L, -2, 'null');
  setFn(L, 'say', (L1) => output(L1, true));
  setFn(L, 'print', (L1) => output(L1, false));
  setFn(L, 'flush', (L1) => {
    const { t, r } = curReq(L1, 'flush');
    checkPhase(L1, t, 'flush', OUT_PHASES);
    const st = reqState(r);
    if (st.held !== undefined) {
      // lua http 1.0 buffering makes ngx.flush() a no-op
      lua.lua_pushnil(L1);
      pushStr(L1, 'buffering');
      return 2;
    }
    // ngx.flush(true): wait until what was sent has left the buffers (backpressure for loops of ngx.say)
    if (lua.lua_toboolean(L1, 1) && st.congested && !r.finished) {
      return yieldFor(L1, (wake) => {
        r.onDrain(() => {
          st.congested = false;
          wake((co) => {
            lua.lua_pushinteger(co, 1);
            return 1;
          });
        });
      });
    }
    lua.lua_pushinteger(L1, 1);
    return 1;
  });
  setFn(L, 'eof', (L1) => {
    const { t, r } = curReq(L1, 'eof');
    checkPhase(L1, t, 'eof', OUT_PHASES);
    const st = reqState(r);
    if (!st.eof) {
      st.eof = true;
      sendHeaderIfNeeded(r);
      r.finish();
    }
    lua.lua_pushinteger(L1, 1);
    return 1;
  });
  setFn(L, 'exit', exit);
  setFn(L, 'redirect', (L1) => {
    const { t, r } = curReq(L1, 'redirect');
    checkPhase(L1, t, 'redirect', OUT_PHASES);
    const uri = toStr(L1, 1);
    if (uri === undefined) luaError(L1, 'bad argument #1 to \'redirect\' (string expected)');
    const status = lua.lua_gettop(L1) >= 2 ? lauxlib.luaL_checkinteger(L1, 2) : 302;
    if (![301, 302, 303, 307, 308].includes(status)) {
      luaError(L1, `only ngx.HTTP_MOVED_TEMPORARILY, ngx.HTTP_MOVED_PERMANENTLY, ngx.HTTP_PERMANENT_REDIRECT, ngx.HTTP_SEE_OTHER, and ngx.HTTP_TEMPORARY_REDIRECT are allowed`);
    }
    if (r.headerSent) luaError(L1, 'attempt to call ngx.redirect after sending out the headers');
    // a plain header: nginx sends it as given, in the headers' order
    r.headersOut = r.headersOut.filter(([k]) => k.toLowerCase() !== 'location');
    r.headersOut.push(['Location', uri!]);
    lua.lua_settop(L1, 0);
    lua.lua_pushinteger(L1, status);
    return exit(L1);
  });
  setFn(L, 'exec', (L1) => {
    const { t, r } = curReq(L1, 'exec');
    checkPhase(L1, t, 'exec', OUT_PHASES);
    let uri = toStr(L1, 1);
    if (!uri) luaError(L1, 'attempt to use zero-length uri');
    let args = '';
    const q = uri!.indexOf('?');
    if (q !== -1) {
      args = uri!.slice(q + 1);
      uri = uri!.slice(0, q);
    }
    const at = lua.lua_type(L1, 2);
    if (at === lua.LUA_TTABLE) {
      const a = encodeArgsOf(L1, 2);
      args = args ? `${args}&${a}` : a;
    } else if (at === lua.LUA_TSTRING || at === lua.LUA_TNUMBER) {
      const a = toStr(L1, 2)!;
      args = args ? `${args}&${a}` : a;
    }
    if (r.headerSent) luaError(L1, 'attempt to call ngx.exec after sending out response headers');
    t.execUri = uri!;
    t.execArgs = args;
    t.exited = true;
    t.exitCode = EXIT_EXEC;
    return luaYield(L1);
  });
  setFn(L, 'log', (L1) => {
    const level = lauxlib.luaL_checkinteger(L1, 1);
    if (level < 0 || level > 8) luaError(L1, `bad log level: ${level}`);
    const msg = logPrefix(L1, 1) + logMessage(L1, 2, 'log');
    luaLog(LEVELS[level]!, msg);
    return 0;
  });
  // ngx.status: a field read and written through the ngx table's metatable (api_req.ts)
}

/** the global print(): ngx.log(ngx.NOTICE, ...) */
export function installPrint(L: LuaState): void {
  lua.lua_pushjsfunction(L, (L1) => {
    const msg = logPrefix(L1, 1) + logMessage(L1, 1, 'print');
    luaLog('notice', msg);
    return 0;
  });
  lua.lua_setglobal(L, 'print');
}

