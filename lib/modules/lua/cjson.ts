import { fmtNumber, lua, luaError, pushStr, toStr, type LuaState } from './fengari.js';
import { NULL_UD } from './api_out.js';

/*
 * require("cjson") / require("cjson.safe"): lua-cjson's API as OpenResty
 * ships it (encode, decode, null, encode_empty_table_as_object...), written
 * here. Encoding follows cjson's rules: a table whose keys are all
 * positive integers is an array (holes become null; excessively sparse
 * ones are refused), any other table an object, `{}` is `{}`, `/` is
 * escaped, numbers print as %.14g. Object members come in the VM's table
 * order, which is not LuaJIT's: configs must not depend on it (nor can
 * they under OpenResty, where it is unspecified).
 */

const MAX_DEPTH = 1000;
const ESC: Record<number, string> = { 0x22: '\\"', 0x5c: '\\\\', 0x2f: '\\/', 8: '\\b', 12: '\\f', 10: '\\n', 13: '\\r', 9: '\\t' };

class EncodeError extends Error {}

function encodeString(s: string): string {
  let out = '"';
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c && c !== 0x2f && c !== 0x7f) continue;
    out += s.slice(last, i) + (ESC[c] ?? `\\u00${c.toString(16).padStart(2, '0')}`);
    last = i + 1;
  }
  return out + s.slice(last) + '"';
}

function encodeValue(L: LuaState, i: number, depth: number, emptyAsObject: boolean): string {
  const ty = lua.lua_type(L, i);
  if (ty === lua.LUA_TNIL) return 'null';
  if (ty === lua.LUA_TBOOLEAN) return lua.lua_toboolean(L, i) ? 'true' : 'false';
  if (ty === lua.LUA_TNUMBER) {
    const n = lua.lua_tonumber(L, i);
    if (!Number.isFinite(n)) throw new EncodeError('Cannot serialise number: must not be NaN or Infinity');
    return fmtNumber(n);
  }
  if (ty === lua.LUA_TSTRING) return encodeString(toStr(L, i)!);
  if (ty === lua.LUA_TLIGHTUSERDATA && lua.lua_touserdata(L, i) === NULL_UD) return 'null';
  if (ty !== lua.LUA_TTABLE) throw new EncodeError(`Cannot serialise ${lua.lua_typename(L, ty) ? Buffer.from(lua.lua_typename(L, ty)).toString('latin1') : 'value'}: type not supported`);
  if (depth >= MAX_DEPTH) throw new EncodeError(`Cannot serialise, excessive nesting (${depth + 1})`);
  const abs = i < 0 ? lua.lua_gettop(L) + i + 1 : i;
  // an array when every key is a positive integer (lua_cjson's lua_array_length)
  let max = 0;
  let count = 0;
  let isArray = true;
  lua.lua_pushnil(L);
  while (lua.lua_next(L, abs) !== 0) {
    lua.lua_pop(L, 1);
    if (lua.lua_type(L, -1) === lua.LUA_TNUMBER) {
      const k = lua.lua_tonumber(L, -1);
      if (Number.isInteger(k) && k >= 1) {
        if (k > max) max = k;
        count++;
        continue;
      }
    }
    isArray = false;
  }
  if (isArray && max > 10 && max > count * 2) throw new EncodeError('Cannot serialise table: excessively sparse array');
  if (isArray && (count > 0 || !emptyAsObject)) {
    const parts: string[] = [];
    for (let k = 1; k <= max; k++) {
      lua.lua_rawgeti(L, abs, k);
      parts.push(encodeValue(L, -1, depth + 1, emptyAsObject));
      lua.lua_pop(L, 1);
    }
    return `[${parts.join(',')}]`;
  }
  const parts: string[] = [];
  lua.lua_pushnil(L);
  while (lua.lua_next(L, abs) !== 0) {
    const kt = lua.lua_type(L, -2);
    let key: string;
    if (kt === lua.LUA_TSTRING) key = toStr(L, -2)!;
    else if (kt === lua.LUA_TNUMBER) key = fmtNumber(lua.lua_tonumber(L, -2));
    else {
      const tn = Buffer.from(lua.lua_typename(L, kt)).toString('latin1');
      lua.lua_pop(L, 2);
      throw new EncodeError(`Cannot serialise ${tn}: table key must be a number or string`);
    }
    parts.push(`${encodeString(key)}:${encodeValue(L, -1, depth + 1, emptyAsObject)}`);
    lua.lua_pop(L, 1);
  }
  return `{${parts.join(',')}}`;
}

/** push a parsed JSON value; strings go back to their UTF-8 bytes */
function pushJson(L: LuaState, v: unknown): void {
  if (v === null) lua.lua_pushlightuserdata(L, NULL_UD);
  else if (typeof v === 'boolean') lua.lua_pushboolean(L, v);
  else if (typeof v === 'number') lua.lua_pushnumber(L, v);
  else if (typeof v === 'string') lua.lua_pushstring(L, Buffer.from(v, 'utf8'));
  else if (Array.isArray(v)) {
    lua.lua_createtable(L, v.length, 0);
    v.forEach((e, k) => {
      pushJson(L, e);
      lua.lua_rawseti(L, -2, k + 1);
    });
  } else {
    const o = v as Record<string, unknown>;
    lua.lua_createtable(L, 0, Object.keys(o).length);
    for (const [k, e] of Object.entries(o)) {
      lua.lua_pushstring(L, Buffer.from(k, 'utf8'));
      pushJson(L, e);
      lua.lua_rawset(L, -3);
    }
  }
}

/** JSON.parse's complaint in cjson's words, with the 1-based character */
function decodeError(text: string, e: Error): string {
  const m = /position (\d+)/.exec(e.message);
  const at = m ? Number(m[1]) + 1 : text.length + 1;
  if (text.trim() === '' || at > text.length) return `Expected value but found T_END at character ${at}`;
  return `Expected value but found invalid token at character ${at}`;
}

/** push the cjson (safe: cjson.safe) module table */
export function openCjson(safe: boolean) {
  return (L: LuaState): void => {
    let emptyAsObject = true;
    lua.lua_newtable(L);
    const fail = (L1: LuaState, msg: string): number => {
      if (!safe) luaError(L1, msg);
      lua.lua_pushnil(L1);
      pushStr(L1, msg);
      return 2;
    };
    lua.lua_pushjsfunction(L, (L1) => {
      if (lua.lua_gettop(L1) !== 1) luaError(L1, "bad argument #1 to 'encode' (expected 1 argument)");
      try {
        pushStr(L1, encodeValue(L1, 1, 0, emptyAsObject));
        return 1;
      } catch (e) {
        if (e instanceof EncodeError) return fail(L1, e.message);
        throw e;
      }
    });
    lua.lua_setfield(L, -2, 'encode');
    lua.lua_pushjsfunction(L, (L1) => {
      if (lua.lua_gettop(L1) !== 1) luaError(L1, "bad argument #1 to 'decode' (expected 1 argument)");
      const u = lua.lua_tolstring(L1, 1);
      if (u === null) luaError(L1, "bad argument #1 to 'decode' (string expected)");
      const text = Buffer.from(u!).toString('utf8');
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch (e) {
        return fail(L1, decodeError(text, e as Error));
      }
      pushJson(L1, v);
      return 1;
    });
    lua.lua_setfield(L, -2, 'decode');
    lua.lua_pushjsfunction(L, (L1) => {
      if (lua.lua_gettop(L1) >= 1) emptyAsObject = lua.lua_toboolean(L1, 1) || toStr(L1, 1) === 'on';
      lua.lua_pushboolean(L1, emptyAsObject);
      return 1;
    });
    lua.lua_setfield(L, -2, 'encode_empty_table_as_object');
    // accepted settings with cjson's defaults (the values are returned, nothing changes)
    for (const name of ['encode_sparse_array', 'encode_max_depth', 'decode_max_depth', 'encode_number_precision', 'encode_keep_buffer', 'encode_invalid_numbers', 'decode_invalid_numbers', 'decode_array_with_array_mt', 'encode_escape_forward_slash']) {
      lua.lua_pushjsfunction(L, (L1) => lua.lua_gettop(L1));
      lua.lua_setfield(L, -2, name);
    }
    lua.lua_pushlightuserdata(L, NULL_UD);
    lua.lua_setfield(L, -2, 'null');
    lua.lua_newtable(L);
    lua.lua_setfield(L, -2, 'empty_array');
    pushStr(L, safe ? 'cjson.safe' : 'cjson');
    lua.lua_setfield(L, -2, '_NAME');
    pushStr(L, '2.1.0');
    lua.lua_setfield(L, -2, '_VERSION');
  };
}
