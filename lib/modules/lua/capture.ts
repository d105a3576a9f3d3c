import type { HttpRequest } from '../../http/http_request.js';
import { SubRequest, createSubrequest } from '../../http/subrequest.js';
import { setVariableByName } from '../../http/eval.js';
import { lua, luaError, toStr, type LuaState } from './fengari.js';
import { curReq, checkPhase, HTTP_METHODS } from './api_out.js';
import { adoptCtx, encodeArgs, releaseCtx } from './api_req.js';
import { yieldFor } from './thread.js';
import { hashKey, keyMask, newTable, pushNewTable, type LuaTable, setBool, setIndexStr, setInt, setOwnedBytes, setStr, setTable } from './fengari_host.js';
import { setFn } from './vm.js';

/*
 * ngx.location.capture / capture_multi (ngx_http_lua_subrequest.c): each
 * request is an in-memory subrequest of the engine (its body kept, not
 * sent); the calling thread yields until all of them have ended, then
 * gets one { status, body, header, truncated } table per request.
 */

interface CaptureSpec {
  uri: string;
  args: string;
  method: string;
  body: Buffer | undefined;
  vars: Array<[string, string]>;
  share: boolean;
  copy: boolean;
  /** index of the ctx table on the caller's stack, or 0 */
  ctxIdx: number;
}

const METHOD_BY_NUM = new Map(Object.entries(HTTP_METHODS).map(([k, v]) => [v, k]));

function field(L: LuaState, t: number, k: string): number {
  return lua.lua_getfield(L, t, k);
}

const ARGS = 1;
const METHOD = 2;
const BODY = 4;
const VARS = 8;
const SHARE = 16;
const COPY = 32;
const CTX = 64;
/** keyed by the names' Lua string hashes (fengari_host.ts keyMask) */
const OPTION_BITS = new Map([['args', ARGS], ['method', METHOD], ['body', BODY], ['vars', VARS], ['share_all_vars', SHARE], ['copy_all_vars', COPY], ['ctx', CTX]].map(([k, v]) => [hashKey(k as string), v as number]));

/**
 * which options the table at `oi` has: one walk of a plain table instead
 * of seven lookups, most of them for absent keys (a table with a
 * metatable may answer any of them through __index: all are looked up)
 */
function presentOptions(L: LuaState, oi: number): number {
  if (lua.lua_getmetatable(L, oi)) {
    lua.lua_pop(L, 1);
    return 127;
  }
  // one walk of its entries; only string keys name options
  return keyMask(L, oi, OPTION_BITS);
}

/** read `{uri, opts}` at stack positions (uri at `ui`, options table at `oi` or 0) */
function readSpec(L: LuaState, ui: number, oi: number): CaptureSpec {
  let uri = toStr(L, ui);
  if (!uri) luaError(L, 'attempt to use zero-length uri');
  let args = '';
  const q = uri!.indexOf('?');
  if (q !== -1) {
    args = uri!.slice(q + 1);
    uri = uri!.slice(0, q);
  }
  const spec: CaptureSpec = { uri: uri!, args, method: 'GET', body: undefined, vars: [], share: false, copy: false, ctxIdx: 0 };
  if (!oi || lua.lua_type(L, oi) === lua.LUA_TNIL) return spec;
  if (lua.lua_type(L, oi) !== lua.LUA_TTABLE) luaError(L, 'options must be a table');
  // read in ngx_lua's order (the first bad one is the error), present ones only
  const has = presentOptions(L, oi);
  if (has & ARGS) readArgs(L, oi, spec);
  if (has & METHOD) {
    if (field(L, oi, 'method') === lua.LUA_TNUMBER) {
      const m = METHOD_BY_NUM.get(lua.lua_tointeger(L, -1));
      if (!m) luaError(L, `unsupported HTTP method: ${lua.lua_tointeger(L, -1)}`);
      spec.method = m!;
    }
    lua.lua_pop(L, 1);
  }
  if (has & BODY) {
    const bt = field(L, oi, 'body');
    if (bt === lua.LUA_TSTRING || bt === lua.LUA_TNUMBER) spec.body = Buffer.from(lua.lua_tolstring(L, -1)!);
    lua.lua_pop(L, 1);
  }
  if (has & VARS) {
    if (field(L, oi, 'vars') === lua.LUA_TTABLE) {
      lua.lua_pushnil(L);
      while (lua.lua_next(L, -2) !== 0) {
        spec.vars.push([toStr(L, -2) ?? '', toStr(L, -1) ?? '']);
        lua.lua_pop(L, 1);
      }
    }
    lua.lua_pop(L, 1);
  }
  if (has & SHARE) {
    field(L, oi, 'share_all_vars');
    spec.share = lua.lua_toboolean(L, -1);
    lua.lua_pop(L, 1);
  }
  if (has & COPY) {
    field(L, oi, 'copy_all_vars');
    spec.copy = lua.lua_toboolean(L, -1);
    lua.lua_pop(L, 1);
  }
  if (has & CTX) {
    if (field(L, oi, 'ctx') === lua.LUA_TTABLE) spec.ctxIdx = lua.lua_gettop(L);
    else lua.lua_pop(L, 1);
  }
  return spec;
}

/** the args option: string or table (encoded as ngx.encode_args); joined to the URI's own */
function readArgs(L: LuaState, oi: number, spec: CaptureSpec): void {
  const at = field(L, oi, 'args');
  if (at === lua.LUA_TTABLE) {
    const a = encodeArgs(L, -1);
    spec.args = spec.args ? `${spec.args}&${a}` : a;
  } else if (at === lua.LUA_TSTRING || at === lua.LUA_TNUMBER) {
    const a = toStr(L, -1)!;
    spec.args = spec.args ? `${spec.args}&${a}` : a;
  } else if (at !== lua.LUA_TNIL) luaError(L, 'Bad args option value');
  lua.lua_pop(L, 1);
}

/** the header table: a repeated name's values as an array; names in order of first appearance */
function headerTable(L: LuaState, all: Array<[string, string]>): LuaTable {
  const header = newTable(L);
  const put = (k: string, vs: string[]): void => {
    if (vs.length === 1) return setStr(L, header, k, vs[0]!);
    const list = newTable(L);
    for (let n = 0; n < vs.length; n++) setIndexStr(L, list, n + 1, vs[n]!);
    setTable(L, header, k, list);
  };
  if (all.length > 16) {
    const groups = new Map<string, string[]>();
    for (const [k, v] of all) {
      const g = groups.get(k);
      if (g === undefined) groups.set(k, [v]);
      else g.push(v);
    }
    for (const [k, vs] of groups) put(k, vs);
    return header;
  }
  // a few headers: repeats found by a scan, no Map made
  for (let i = 0; i < all.length; i++) {
    const k = all[i]![0];
    let j = 0;
    while (j < i && all[j]![0] !== k) j++;
    if (j < i) continue;
    let more = i + 1;
    while (more < all.length && all[more]![0] !== k) more++;
    if (more === all.length) {
      setStr(L, header, k, all[i]![1]);
      continue;
    }
    const vs: string[] = [];
    for (let m = i; m < all.length; m++) if (all[m]![0] === k) vs.push(all[m]![1]);
    put(k, vs);
  }
  return header;
}

/** push a finished capture's result table: { status, body, header, truncated } (fields stored directly: fengari_host.ts) */
function pushResult(L: LuaState, sr: SubRequest): void {
  const res = pushNewTable(L);
  setInt(L, res, 'status', sr.errStatus || sr.status || 200);
  // the VM keeps the body's bytes: a copy of its own (the chunks may be views of a reused buffer)
  setOwnedBytes(L, res, 'body', sr.inMemory ? new Uint8Array(sr.capturedBody()) : new Uint8Array(0));
  // header: the child's response headers
  const all: Array<[string, string]> = [];
  if (sr.contentType !== undefined) all.push(['Content-Type', sr.contentType]);
  if (sr.contentLength >= 0) all.push(['Content-Length', String(sr.contentLength)]);
  if (sr.location !== undefined) all.push(['Location', sr.location]);
  for (const h of sr.headersOut) all.push(h);
  const header = headerTable(L, all);
  setTable(L, res, 'header', header);
  setBool(L, res, 'truncated', sr.capturedOver);
}

function start(L: LuaState, r: HttpRequest, spec: CaptureSpec, done: (sr: SubRequest) => void): SubRequest {
  const sr = createSubrequest(r, spec.uri, spec.args, {
    method: spec.method,
    body: spec.body,
    ownVariables: !spec.share,
    inMemory: true,
    captureUntilFinalize: true,
    done,
  });
  if (!sr) luaError(L, 'failed to issue subrequest');
  // copy_all_vars: the parent's values so far; vars: named values (after the copy, as ngx_lua)
  if (spec.copy && !spec.share) sr!.vars = r.vars.slice();
  for (const [k, v] of spec.vars) {
    const rc = setVariableByName(sr!, k, v);
    if (rc === 'notfound') luaError(L, `variable "${k}" not found`);
    if (rc === 'readonly') luaError(L, `variable "${k}" not changeable`);
  }
  if (spec.ctxIdx) adoptCtx(sr!, L, spec.ctxIdx);
  return sr!;
}

function capture(L: LuaState, specs: CaptureSpec[]): number {
  const { r } = curReq(L, 'location.capture');
  const srs: SubRequest[] = [];
  let left = specs.length;
  return yieldFor(L, (wake) => {
    const done = (): void => {
      if (--left > 0) return;
      wake((co) => {
        for (const sr of srs) {
          pushResult(co, sr);
          releaseCtx(co, sr);
        }
        return srs.length;
      });
    };
    for (const s of specs) srs.push(start(L, r, s, done));
  });
}

const CAPTURE_PHASES = ['rewrite', 'access', 'content'] as const;

/** fill the ngx table on top of the stack */
export function installNgxLocation(L: LuaState): void {
  lua.lua_newtable(L);
  setFn(L, 'capture', (L1) => {
    const { t } = curReq(L1, 'location.capture');
    checkPhase(L1, t, 'location.capture', CAPTURE_PHASES);
    const spec = readSpec(L1, 1, lua.lua_gettop(L1) >= 2 ? 2 : 0);
    return capture(L1, [spec]);
  });
  setFn(L, 'capture_multi', (L1) => {
    const { t } = curReq(L1, 'location.capture_multi');
    checkPhase(L1, t, 'location.capture_multi', CAPTURE_PHASES);
    if (lua.lua_type(L1, 1) !== lua.LUA_TTABLE) luaError(L1, "bad argument #1 to 'capture_multi' (table expected)");
    const n = lua.lua_rawlen(L1, 1);
    if (n === 0) luaError(L1, 'at least one subrequest should be specified');
    const specs: CaptureSpec[] = [];
    for (let i = 1; i <= n; i++) {
      lua.lua_rawgeti(L1, 1, i);
      const top = lua.lua_gettop(L1);
      lua.lua_rawgeti(L1, top, 1);
      lua.lua_rawgeti(L1, top, 2);
      specs.push(readSpec(L1, top + 1, lua.lua_type(L1, top + 2) === lua.LUA_TNIL ? 0 : top + 2));
    }
    return capture(L1, specs);
  });
  lua.lua_setfield(L, -2, 'location');
}
