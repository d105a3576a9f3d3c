import { lauxlib, lua, luaError, pushOwned, pushStr, type LuaState } from './fengari.js';
import { NULL_UD } from './api_out.js';

/*
 * require("redis.parser"): openresty's lua-redis-parser API (parse_reply,
 * parse_replies, build_query, typename, the *_REPLY constants, null),
 * written here over the reply's bytes. Its grammar is the library's, which
 * is looser than Redis's own in places (a bulk length is digits only; a
 * single-line reply ends at the first CRLF; an integer is converted as
 * Lua's tonumber would, 0 when it is not a number). Values are pushed as
 * copies of their bytes (slice) that the VM takes as they are.
 */

const BAD_REPLY = 0;
const STATUS_REPLY = 1;
const ERROR_REPLY = 2;
const INTEGER_REPLY = 3;
const BULK_REPLY = 4;
const MULTI_BULK_REPLY = 5;
const TYPENAMES = ['bad reply', 'status reply', 'error reply', 'integer reply', 'bulk reply', 'multi-bulk reply'];

const CR = 13;
const LF = 10;

/** a single line after its type byte at p: [start, end) of the text, or undefined without CRLF */
function singleLine(b: Uint8Array, p: number): [number, number] | undefined {
  let seenCr = false;
  for (let i = p; i < b.length; i++) {
    const c = b[i]!;
    if (c === CR) seenCr = true;
    else if (seenCr) {
      if (c === LF) return [p, i - 1];
      seenCr = false;
    }
  }
  return undefined;
}

/** a bulk after its `$` at p: [start, len] (len -1 = nil), next offset; undefined when invalid */
function bulk(b: Uint8Array, p: number): { start: number; len: number; next: number } | undefined {
  const last = b.length;
  if (p >= last) return undefined;
  if (b[p] === 0x2d) {
    p++;
    if (p >= last) return undefined;
    while (b[p] !== CR) {
      if (b[p]! < 0x30 || b[p]! > 0x39) return undefined;
      p++;
      if (p >= last) return undefined;
    }
    if (last - p < 2) return undefined;
    p++;
    if (b[p++] !== LF) return undefined;
    return { start: p, len: -1, next: p };
  }
  let size = 0;
  while (b[p] !== CR) {
    if (b[p]! < 0x30 || b[p]! > 0x39) return undefined;
    size = size * 10 + (b[p]! - 0x30);
    p++;
    if (p >= last) return undefined;
  }
  p++;
  if (p >= last) return undefined;
  if (b[p++] !== LF) return undefined;
  if (last - p < size + 2) return undefined;
  const start = p;
  p += size;
  if (b[p++] !== CR) return undefined;
  if (b[p++] !== LF) return undefined;
  return { start, len: size, next: p };
}

/** a multi-bulk after its `*` at p: pushes the table (or nil); the next offset, or -1 when invalid */
function multiBulk(L: LuaState, b: Uint8Array, p: number): number {
  const last = b.length;
  let count = 0;
  if (p >= last) return -1;
  while (b[p] !== CR) {
    if (b[p] === 0x2d) {
      p++;
      if (p >= last) return -1;
      if (b[p]! < 0x30 || b[p]! > 0x39) return -1;
      while (b[p] !== CR) {
        p++;
        if (p >= last) return -1;
      }
      count = -1;
      break;
    }
    if (b[p]! < 0x30 || b[p]! > 0x39) return -1;
    count = count * 10 + (b[p]! - 0x30);
    p++;
    if (p >= last) return -1;
  }
  p++;
  if (p >= last) return -1;
  if (b[p++] !== LF) return -1;
  if (count === -1) {
    lua.lua_pushnil(L);
    return p;
  }
  lua.lua_createtable(L, count, 0);
  for (let i = 1; i <= count; i++) {
    if (p >= last) {
      lua.lua_pop(L, 1);
      return -1;
    }
    const c = b[p]!;
    if (c === 0x2b || c === 0x2d || c === 0x3a) {
      const s = singleLine(b, p + 1);
      if (!s) {
        lua.lua_pop(L, 1);
        return -1;
      }
      pushOwned(L, b.slice(s[0], s[1]));
      p = s[1] + 2;
    } else if (c === 0x24) {
      const r = bulk(b, p + 1);
      if (!r) {
        lua.lua_pop(L, 1);
        return -1;
      }
      if (r.len === -1) lua.lua_pushnil(L);
      else pushOwned(L, b.slice(r.start, r.start + r.len));
      p = r.next;
    } else {
      lua.lua_pop(L, 1);
      return -1;
    }
    lua.lua_rawseti(L, -2, i);
  }
  return p;
}

/** push (res, typ) for the reply at offset p; returns the next offset */
function parseOne(L: LuaState, b: Uint8Array, p: number): number {
  const bad = (msg: string): number => {
    pushStr(L, msg);
    lua.lua_pushnumber(L, BAD_REPLY);
    return b.length;
  };
  if (p >= b.length) return bad('empty reply');
  const c = b[p]!;
  if (c === 0x2b || c === 0x2d || c === 0x3a) {
    const s = singleLine(b, p + 1);
    const kind = c === 0x2b ? 'status' : c === 0x2d ? 'error' : 'integer';
    if (!s) return bad(`bad ${kind} reply`);
    const text = b.slice(s[0], s[1]);
    if (c === 0x3a) {
      pushOwned(L, text);
      const n = lua.lua_tonumber(L, -1);
      lua.lua_pop(L, 1);
      lua.lua_pushnumber(L, n);
      lua.lua_pushnumber(L, INTEGER_REPLY);
    } else {
      pushOwned(L, text);
      lua.lua_pushnumber(L, c === 0x2b ? STATUS_REPLY : ERROR_REPLY);
    }
    return s[1] + 2;
  }
  if (c === 0x24) {
    const r = bulk(b, p + 1);
    if (!r) return bad('bad bulk reply');
    if (r.len === -1) lua.lua_pushnil(L);
    else pushOwned(L, b.slice(r.start, r.start + r.len));
    lua.lua_pushnumber(L, BULK_REPLY);
    return r.next;
  }
  if (c === 0x2a) {
    const next = multiBulk(L, b, p + 1);
    if (next < 0) return bad('bad multi bulk reply');
    lua.lua_pushnumber(L, MULTI_BULK_REPLY);
    return next;
  }
  pushStr(L, 'invalid reply');
  lua.lua_pushnumber(L, BAD_REPLY);
  return b.length;
}

/** build_query's bytes for one parameter */
function param(L: LuaState, i: number, out: Buffer[]): void {
  const ty = lua.lua_type(L, -1);
  if (ty === lua.LUA_TSTRING || ty === lua.LUA_TNUMBER) {
    const u = lua.lua_tolstring(L, -1)!;
    out.push(Buffer.from(`$${u.length}\r\n`, 'latin1'), Buffer.from(u), Buffer.from('\r\n'));
  } else if (ty === lua.LUA_TBOOLEAN) out.push(Buffer.from(`$1\r\n${lua.lua_toboolean(L, -1) ? '1' : '0'}\r\n`));
  else if (ty === lua.LUA_TLIGHTUSERDATA && lua.lua_touserdata(L, -1) === NULL_UD) out.push(Buffer.from('$-1\r\n'));
  else luaError(L, `parameter ${i} is not a string, number, redis.parser.null, or boolean value`);
}

/** require('redis.parser'): push the module table */
export function openRedisParser(L: LuaState): void {
  lua.lua_newtable(L);
  const fns: Array<[string, (L: LuaState) => number]> = [
    ['parse_reply', (L1) => {
      if (lua.lua_gettop(L1) !== 1) luaError(L1, `expected one argument but got ${lua.lua_gettop(L1)}`);
      const b = lauxlib.luaL_checklstring(L1, 1);
      parseOne(L1, b, 0);
      return 2;
    }],
    ['parse_replies', (L1) => {
      if (lua.lua_gettop(L1) !== 2) luaError(L1, `expected two arguments but got ${lua.lua_gettop(L1)}`);
      const b = lauxlib.luaL_checklstring(L1, 1);
      const n = Math.trunc(lauxlib.luaL_checknumber(L1, 2));
      lua.lua_pop(L1, 1);
      lua.lua_createtable(L1, Math.max(0, n), 0);
      let p = 0;
      for (let i = 1; i <= n; i++) {
        lua.lua_createtable(L1, 2, 0);
        p = parseOne(L1, b, p);
        lua.lua_rawseti(L1, -3, 2);
        lua.lua_rawseti(L1, -2, 1);
        lua.lua_rawseti(L1, -2, i);
      }
      return 1;
    }],
    ['build_query', (L1) => {
      if (lua.lua_gettop(L1) !== 1) luaError(L1, `expected one argument but got ${lua.lua_gettop(L1)}`);
      lauxlib.luaL_checktype(L1, 1, lua.LUA_TTABLE);
      const n = lua.lua_rawlen(L1, 1);
      if (n === 0) luaError(L1, 'empty input param table');
      const out: Buffer[] = [Buffer.from(`*${n}\r\n`)];
      for (let i = 1; i <= n; i++) {
        lua.lua_rawgeti(L1, 1, i);
        param(L1, i, out);
        lua.lua_pop(L1, 1);
      }
      lua.lua_pushstring(L1, Buffer.concat(out));
      return 1;
    }],
    ['typename', (L1) => {
      if (lua.lua_gettop(L1) !== 1) luaError(L1, `expecting one argument but got ${lua.lua_gettop(L1)}`);
      const typ = lauxlib.luaL_checkinteger(L1, 1);
      if (typ < 0 || typ >= TYPENAMES.length) lua.lua_pushnil(L1);
      else pushStr(L1, TYPENAMES[typ]!);
      return 1;
    }],
  ];
  for (const [k, f] of fns) {
    lua.lua_pushjsfunction(L, f);
    lua.lua_setfield(L, -2, k);
  }
  pushStr(L, '0.13');
  lua.lua_setfield(L, -2, '_VERSION');
  lua.lua_pushlightuserdata(L, NULL_UD);
  lua.lua_setfield(L, -2, 'null');
  const consts: Array<[string, number]> = [
    ['BAD_REPLY', BAD_REPLY], ['STATUS_REPLY', STATUS_REPLY], ['ERROR_REPLY', ERROR_REPLY],
    ['INTEGER_REPLY', INTEGER_REPLY], ['BULK_REPLY', BULK_REPLY], ['MULTI_BULK_REPLY', MULTI_BULK_REPLY],
  ];
  for (const [k, v] of consts) {
    lua.lua_pushnumber(L, v);
    lua.lua_setfield(L, -2, k);
  }
}
