import { getVariableByName, setVariableByName } from '../../http/eval.js';
import type { HttpRequest } from '../../http/http_request.js';
import { parseHttpTime } from '../../http/http_time.js';
import { decodeArgs, escapeUri } from './codec.js';
import { LUA_REGISTRYINDEX, lauxlib, lua, luaError, pushStr, toStr, luaYield, type LuaState } from './fengari.js';
import { stringPairs } from './fengari_host.js';
import { NULL_UD, checkPhase, curReq, peekReqState, reqState, setEncodeArgs } from './api_out.js';
import { EXIT_JUMP, currentThread, yieldFor } from './thread.js';
import { setFn } from './vm.js';

/*
 * The request side of the ngx API: ngx.var, ngx.header, ngx.status,
 * ngx.ctx and ngx.req.* (ngx_http_lua_variable.c, _headers.c, _args.c,
 * _uri.c, _req_body.c, _ctx.c).
 */

const REG = LUA_REGISTRYINDEX;

/** push a decoded args list as ngx_lua's table: repeated keys become arrays */
export function pushArgsTable(L: LuaState, pairs: Array<[string, string | true]>): void {
  lua.lua_createtable(L, 0, pairs.length);
  for (const [k, v] of pairs) {
    pushStr(L, k);
    lua.lua_rawget(L, -2);
    const ty = lua.lua_type(L, -1);
    lua.lua_pop(L, 1);
    if (ty === lua.LUA_TNIL) {
      pushStr(L, k);
      if (v === true) lua.lua_pushboolean(L, true);
      else pushStr(L, v);
      lua.lua_rawset(L, -3);
      continue;
    }
    pushStr(L, k);
    lua.lua_rawget(L, -2);
    if (ty !== lua.LUA_TTABLE) {
      // turn the single value into { old, new }
      lua.lua_createtable(L, 2, 0);
      lua.lua_insert(L, -2);
      lua.lua_rawseti(L, -2, 1);
      pushStr(L, k);
      lua.lua_pushvalue(L, -2);
      lua.lua_rawset(L, -4);
    }
    if (v === true) lua.lua_pushboolean(L, true);
    else pushStr(L, v);
    lua.lua_rawseti(L, -2, lua.lua_rawlen(L, -2) + 1);
    lua.lua_pop(L, 1);
  }
}

/** ngx.encode_args: k=v pairs joined with & (arrays repeat the key, true = bare key, false skipped) */
export function encodeArgs(L: LuaState, idx: number): string {
  const abs = idx < 0 ? lua.lua_gettop(L) + idx + 1 : idx;
  // the usual table, strings only: read in place (fengari_host.ts), in lua_next's order
  const pairs = stringPairs(L, abs);
  if (pairs !== undefined) {
    let out = '';
    for (let i = 0; i < pairs.length; i++) out += `${i ? '&' : ''}${escapeUri(pairs[i]![0])}=${escapeUri(pairs[i]![1])}`;
    return out;
  }
  const parts: string[] = [];
  lua.lua_pushnil(L);
  while (lua.lua_next(L, abs) !== 0) {
    const kt = lua.lua_type(L, -2);
    let key: string;
    if (kt === lua.LUA_TSTRING) key = escapeUri(toStr(L, -2)!);
    else if (kt === lua.LUA_TNUMBER) {
      lua.lua_pushvalue(L, -2);
      key = escapeUri(toStr(L, -1)!);
      lua.lua_pop(L, 1);
    } else luaError(L, 'attempt to use a non-string key');
    const vt = lua.lua_type(L, -1);
    if (vt === lua.LUA_TSTRING || vt === lua.LUA_TNUMBER) parts.push(`${key!}=${escapeUri(toStr(L, -1)!)}`);
    else if (vt === lua.LUA_TBOOLEAN) {
      if (lua.lua_toboolean(L, -1)) parts.push(key!);
    } else if (vt === lua.LUA_TTABLE) {
      const n = lua.lua_rawlen(L, -1);
      for (let i = 1; i <= n; i++) {
        lua.lua_rawgeti(L, -1, i);
        const et = lua.lua_type(L, -1);
        if (et === lua.LUA_TBOOLEAN) {
          if (lua.lua_toboolean(L, -1)) parts.push(key!);
        } else parts.push(`${key!}=${escapeUri(toStr(L, -1) ?? '')}`);
        lua.lua_pop(L, 1);
      }
    } else luaError(L, `attempt to use ${vt === lua.LUA_TNIL ? 'nil' : 'a non-string'} value`);
    lua.lua_pop(L, 1);
  }
  return parts.join('&');
}

/** `_` as `-`, as ngx.header and get_headers' lookups read a field name */
function headerKey(L: LuaState, i: number): string {
  return (toStr(L, i) ?? '').replace(/_/g, '-');
}

function getHeaderOut(r: HttpRequest, name: string): string | string[] | undefined {
  const lc = name.toLowerCase();
  if (lc === 'content-type') return r.contentType;
  if (lc === 'content-length') return r.contentLength >= 0 ? String(r.contentLength) : undefined;
  const vals = r.headersOut.filter(([k]) => k.toLowerCase() === lc).map(([, v]) => v);
  if (vals.length === 0) return undefined;
  return vals.length === 1 ? vals[0] : vals;
}

function setHeaderOut(r: HttpRequest, name: string, values: string[] | undefined): void {
  const lc = name.toLowerCase();
  if (lc === 'content-type') {
    r.contentType = values?.[values.length - 1];
    return;
  }
  if (lc === 'content-length') {
    // ngx_lua's builtin Content-Length: content_length_n and a line of the header list (sent in its
    // place, stored by srcache), or neither when cleared
    r.headersOut = r.headersOut.filter(([k]) => k.toLowerCase() !== lc);
    if (values === undefined) {
      r.contentLength = -1;
      r.ownContentLength = true;
      return;
    }
    const v = values[values.length - 1]!;
    r.contentLength = Number(v);
    r.headersOut.push([name, v]);
    r.ownContentLength = false;
    return;
  }
  r.headersOut = r.headersOut.filter(([k]) => k.toLowerCase() !== lc);
  // ngx_lua's builtin ETag and Last-Modified set headers_out.etag / last_modified(_time) too:
  // the not-modified and range filters, and srcache's store, read them
  if (lc === 'etag') r.etag = undefined;
  else if (lc === 'last-modified') {
    r.lastModified = undefined;
    r.lastModifiedTime = -1;
  }
  if (!values) return;
  for (const v of values) {
    const e: [string, string] = [name, v];
    r.headersOut.push(e);
    if (lc === 'etag') r.etag = e;
    else if (lc === 'last-modified' && v !== '') {
      r.lastModified = e;
      r.lastModifiedTime = parseHttpTime(v);
    }
  }
}

/** the value(s) at i as header strings (a table: each element) */
function headerValues(L: LuaState, i: number): string[] | undefined {
  const ty = lua.lua_type(L, i);
  if (ty === lua.LUA_TNIL) return undefined;
  if (ty === lua.LUA_TTABLE) {
    const out: string[] = [];
    const n = lua.lua_rawlen(L, i);
    for (let k = 1; k <= n; k++) {
      lua.lua_rawgeti(L, i, k);
      out.push(toStr(L, -1) ?? '');
      lua.lua_pop(L, 1);
    }
    return out.length ? out : undefined;
  }
  if (ty === lua.LUA_TBOOLEAN) return [lua.lua_toboolean(L, i) ? 'true' : 'false'];
  return [toStr(L, i) ?? ''];
}

function pushHeaderValue(L: LuaState, v: string | string[] | undefined): void {
  if (v === undefined) lua.lua_pushnil(L);
  else if (typeof v === 'string') pushStr(L, v);
  else {
    lua.lua_createtable(L, v.length, 0);
    v.forEach((s, i) => {
      pushStr(L, s);
      lua.lua_rawseti(L, -2, i + 1);
    });
  }
}

/** the request's ngx.ctx table (made on first use, shared by its phases) */
function pushCtx(L: LuaState, r: HttpRequest): void {
  const st = reqState(r);
  if (st.ctxRef === -1) {
    lua.lua_newtable(L);
    st.ctxRef = lauxlib.luaL_ref(L, REG);
  }
  lua.lua_rawgeti(L, REG, st.ctxRef);
}

/** free a request's ngx.ctx (its log phase, or a capture's end) */
export function releaseCtx(L: LuaState, r: HttpRequest): void {
  // peek: a request that never used Lua (most captured ones) gets no state made here
  const st = peekReqState(r);
  if (st !== undefined && st.ctxRef !== -1) {
    lauxlib.luaL_unref(L, REG, st.ctxRef);
    st.ctxRef = -1;
  }
}

/** make `ref` the request's ngx.ctx (capture's ctx option) */
export function adoptCtx(r: HttpRequest, L: LuaState, tableIdx: number): void {
  const st = reqState(r);
  lua.lua_pushvalue(L, tableIdx);
  st.ctxRef = lauxlib.luaL_ref(L, REG);
}

function metatable(L: LuaState, index: (L: LuaState) => number, newindex: (L: LuaState) => number): void {
  lua.lua_newtable(L);
  lua.lua_pushjsfunction(L, index);
  lua.lua_setfield(L, -2, '__index');
  lua.lua_pushjsfunction(L, newindex);
  lua.lua_setfield(L, -2, '__newindex');
  lua.lua_setmetatable(L, -2);
}

const BODY_PHASES = ['rewrite', 'access', 'content'] as const;

/** fill the ngx table on top of the stack */
export function installNgxRequest(L: LuaState): void {
  setEncodeArgs(encodeArgs);
  // ngx.var
  lua.lua_newtable(L);
  metatable(L, (L1) => {
    const { r } = curReq(L1, 'var');
    const ty = lua.lua_type(L1, 2);
    if (ty === lua.LUA_TNUMBER) {
      // ngx.var[N]: the regex capture $N
      const n = lua.lua_tointeger(L1, 2);
      const caps = r.captures;
      const v = caps && n < caps.length ? caps[n] : undefined;
      if (v === undefined) lua.lua_pushnil(L1);
      else pushStr(L1, v);
      return 1;
    }
    const v = getVariableByName(r, toStr(L1, 2) ?? '');
    if (v === undefined) lua.lua_pushnil(L1);
    else pushStr(L1, v);
    return 1;
  }, (L1) => {
    const { r } = curReq(L1, 'var');
    const name = toStr(L1, 2) ?? '';
    const ty = lua.lua_type(L1, 3);
    const value = ty === lua.LUA_TNIL ? '' : toStr(L1, 3);
    if (value === undefined) luaError(L1, `bad variable value`);
    const rc = setVariableByName(r, name, value!);
    if (rc === 'notfound') {
      luaError(L1, `variable "${name}" not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use "set $${name} '';" in the config file to define it first`);
    }
    if (rc === 'readonly') luaError(L1, `variable "${name}" not changeable`);
    return 0;
  });
  lua.lua_setfield(L, -2, 'var');

  // ngx.header
  lua.lua_newtable(L);
  metatable(L, (L1) => {
    const { r } = curReq(L1, 'header');
    pushHeaderValue(L1, getHeaderOut(r, headerKey(L1, 2)));
    return 1;
  }, (L1) => {
    const { t, r } = curReq(L1, 'header');
    const name = headerKey(L1, 2);
    if (r.headerSent && t.phase !== 'header_filter') {
      r.log('error', `attempt to set ngx.header.HEADER after sending out response headers`);
      return 0;
    }
    setHeaderOut(r, name, headerValues(L1, 3));
    return 0;
  });
  lua.lua_setfield(L, -2, 'header');

  // ngx.status and ngx.ctx: through the ngx table's own metatable
  metatable(L, (L1) => {
    const k = toStr(L1, 2);
    if (k === 'status') {
      const t = currentThread();
      lua.lua_pushinteger(L1, t?.r ? t.r.status : 0);
      return 1;
    }
    if (k === 'ctx') {
      const { r } = curReq(L1, 'ctx');
      pushCtx(L1, r);
      return 1;
    }
    lua.lua_pushnil(L1);
    return 1;
  }, (L1) => {
    const k = toStr(L1, 2);
    if (k === 'status') {
      const { t, r } = curReq(L1, 'status');
      if (r.headerSent && t.phase !== 'header_filter') {
        r.log('error', 'attempt to set ngx.status after sending out response headers');
        return 0;
      }
      r.status = lauxlib.luaL_checkinteger(L1, 3);
      r.statusLine = undefined;
      return 0;
    }
    if (k === 'ctx') {
      const { r } = curReq(L1, 'ctx');
      lauxlib.luaL_checktype(L1, 3, lua.LUA_TTABLE);
      releaseCtx(L1, r);
      adoptCtx(r, L1, 3);
      return 0;
    }
    lua.lua_rawset(L1, 1);
    return 0;
  });

  // ngx.req
  lua.lua_newtable(L);
  setFn(L, 'get_method', (L1) => {
    pushStr(L1, curReq(L1, 'get_method').r.method);
    return 1;
  });
  setFn(L, 'set_method', (L1) => {
    const { r } = curReq(L1, 'set_method');
    const m = lauxlib.luaL_checkinteger(L1, 1);
    const name = Object.entries(METHOD_NAMES).find(([, v]) => v === m)?.[0];
    if (!name) luaError(L1, `unsupported HTTP method: ${m}`);
    r.method = name!;
    return 0;
  });
  setFn(L, 'get_uri_args', (L1) => {
    const { r } = curReq(L1, 'get_uri_args');
    const max = lua.lua_gettop(L1) >= 1 ? lua.lua_tointeger(L1, 1) : 100;
    pushArgsTable(L1, decodeArgs(r.args, max));
    return 1;
  });
  setFn(L, 'get_post_args', (L1) => {
    const { r } = curReq(L1, 'get_post_args');
    const max = lua.lua_gettop(L1) >= 1 ? lua.lua_tointeger(L1, 1) : 100;
    if (!r.body) {
      lua.lua_pushnil(L1);
      pushStr(L1, 'no request body found');
      return 2;
    }
    pushArgsTable(L1, decodeArgs(Buffer.concat(r.body).toString('latin1'), max));
    return 1;
  });
  setFn(L, 'get_headers', (L1) => {
    const { r } = curReq(L1, 'get_headers');
    const max = lua.lua_gettop(L1) >= 1 && lua.lua_type(L1, 1) !== lua.LUA_TNIL ? lua.lua_tointeger(L1, 1) : 100;
    const raw = lua.lua_toboolean(L1, 2);
    const hs = max > 0 ? r.req.headers.slice(0, max) : r.req.headers;
    pushArgsTable(L1, hs.map(([k, v]) => [raw ? k : k.toLowerCase(), v]));
    if (!raw) {
      // lookups with any case and `_` for `-` (ngx_lua's req_headers_mt)
      lua.lua_newtable(L1);
      lua.lua_pushjsfunction(L1, (L2) => {
        pushStr(L2, headerKey(L2, 2).toLowerCase());
        lua.lua_rawget(L2, 1);
        return 1;
      });
      lua.lua_setfield(L1, -2, '__index');
      lua.lua_setmetatable(L1, -2);
    }
    return 1;
  });
  const setHeader = (L1: LuaState, clear: boolean): number => {
    const { r } = curReq(L1, clear ? 'clear_header' : 'set_header');
    const name = headerKey(L1, 1);
    const vals = clear ? undefined : headerValues(L1, 2);
    const lc = name.toLowerCase();
    const head = r.req;
    const kept = head.headers.filter(([k]) => k.toLowerCase() !== lc);
    if (vals) for (const v of vals) kept.push([name, v]);
    head.headers.length = 0;
    head.headers.push(...kept);
    if (vals) head.byName.set(lc, vals[0]!);
    else head.byName.delete(lc);
    // cached $http_* values are stale now
    r.vars.length = 0;
    return 0;
  };
  setFn(L, 'set_header', (L1) => setHeader(L1, false));
  setFn(L, 'clear_header', (L1) => setHeader(L1, true));
  setFn(L, 'read_body', (L1) => {
    const { t, r } = curReq(L1, 'read_body');
    checkPhase(L1, t, 'read_body', BODY_PHASES);
    if (r.bodyState !== 'none') return 0;
    // the body is read now (rewrite/access run before the engine reads it for content)
    return yieldFor(L1, (wake) => {
      r.conn.readBody(r, (status) => {
        wake((co) => {
          if (status === 0) return 0;
          lua.lua_pushnil(co);
          pushStr(co, `failed to read request body: ${status}`);
          return 2;
        });
      });
    });
  });
  setFn(L, 'discard_body', () => 0);
  setFn(L, 'get_body_data', (L1) => {
    const { r } = curReq(L1, 'get_body_data');
    if (!r.body || r.body.length === 0) lua.lua_pushnil(L1);
    else lua.lua_pushstring(L1, Buffer.concat(r.body));
    return 1;
  });
  setFn(L, 'get_body_file', (L1) => {
    lua.lua_pushnil(L1);
    return 1;
  });
  setFn(L, 'set_body_data', (L1) => {
    const { r } = curReq(L1, 'set_body_data');
    const u = lua.lua_tolstring(L1, 1);
    r.body = [Buffer.from(u ?? new Uint8Array(0))];
    r.contentLengthIn = r.body[0]!.length;
    return 0;
  });
  setFn(L, 'set_uri', (L1) => {
    const { t, r } = curReq(L1, 'set_uri');
    const uri = toStr(L1, 1);
    if (!uri) luaError(L1, 'attempt to use zero-length uri');
    const jump = lua.lua_toboolean(L1, 2);
    r.uri = uri!;
    if (jump) {
      if (t.phase !== 'rewrite') luaError(L1, 'API disabled in the context of ' + t.phase + '_by_lua*');
      r.uriChanged = true;
      t.exited = true;
      t.exitCode = EXIT_JUMP; // the rewrite handler returns to the location search
      return luaYield(L1);
    }
    return 0;
  });
  setFn(L, 'set_uri_args', (L1) => {
    const { r } = curReq(L1, 'set_uri_args');
    if (lua.lua_type(L1, 1) === lua.LUA_TTABLE) r.args = encodeArgs(L1, 1);
    else r.args = toStr(L1, 1) ?? '';
    return 0;
  });
  setFn(L, 'http_version', (L1) => {
    const { r } = curReq(L1, 'http_version');
    lua.lua_pushnumber(L1, r.version / 1000);
    return 1;
  });
  setFn(L, 'raw_header', (L1) => {
    const { r } = curReq(L1, 'raw_header');
    const noLine = lua.lua_toboolean(L1, 1);
    let s = noLine ? '' : `${r.requestLine}\r\n`;
    for (const [k, v] of r.req.headers) s += `${k}: ${v}\r\n`;
    pushStr(L1, s + '\r\n');
    return 1;
  });
  setFn(L, 'start_time', (L1) => {
    lua.lua_pushnumber(L1, curReq(L1, 'start_time').r.startTime / 1000);
    return 1;
  });
  setFn(L, 'is_internal', (L1) => {
    lua.lua_pushboolean(L1, curReq(L1, 'is_internal').r.internal);
    return 1;
  });
  lua.lua_setfield(L, -2, 'req');

  setFn(L, 'parse_http_time', (L1) => {
    const v = parseHttpTime(toStr(L1, 1) ?? '');
    if (v < 0) lua.lua_pushnil(L1);
    else lua.lua_pushinteger(L1, v);
    return 1;
  });
  setFn(L, 'encode_args', (L1) => {
    lauxlib.luaL_checktype(L1, 1, lua.LUA_TTABLE);
    pushStr(L1, encodeArgs(L1, 1));
    return 1;
  });
  setFn(L, 'decode_args', (L1) => {
    const max = lua.lua_gettop(L1) >= 2 ? lua.lua_tointeger(L1, 2) : 100;
    pushArgsTable(L1, decodeArgs(toStr(L1, 1) ?? '', max));
    return 1;
  });
  void NULL_UD;
}

const METHOD_NAMES: Record<string, number> = {
  GET: 2, HEAD: 4, POST: 8, PUT: 16, DELETE: 32, MKCOL: 64, COPY: 128, MOVE: 256, OPTIONS: 512,
  PROPFIND: 1024, PROPPATCH: 2048, LOCK: 4096, UNLOCK: 8192, PATCH: 16384, TRACE: 32768,
};
export { METHOD_NAMES };
