import { RegexSyntaxError, regexErrorText, translatePcre } from '../../conf/regex.js';
import { lua, luaError, pushStr, toStr, type LuaState } from './fengari.js';
import { setFn } from './vm.js';

/*
 * ngx.re.match/find/gmatch/sub/gsub (ngx_http_lua_regex.c) on V8's engine
 * through the project's PCRE translation (lib/conf/regex_pcre.ts): subjects
 * are byte strings, as PCRE's non-UTF mode sees them. Compiled patterns are
 * cached by pattern and options (every pattern, as with the `o` option),
 * at most REGEX_CACHE of them.
 */

const REGEX_CACHE = 1024;

interface Compiled {
  re: RegExp;
  names: string[];
  nameIndex: number[];
  captures: number;
  anchored: boolean;
}
const cache = new Map<string, Compiled | string>();

function compile(pattern: string, opts: string): Compiled | string {
  const key = `${opts}/${pattern}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  let prefix = '';
  if (opts.includes('m')) prefix += '(?m)';
  if (opts.includes('s')) prefix += '(?s)';
  const tr = translatePcre(prefix + pattern, opts.includes('i'));
  let out: Compiled | string;
  if (tr instanceof RegexSyntaxError) out = regexErrorText(pattern, tr);
  else {
    try {
      out = {
        re: new RegExp(tr.source, tr.flags.replace(/[gy]/g, '') + 'g'),
        names: tr.names,
        nameIndex: tr.nameIndex,
        captures: tr.captures,
        anchored: opts.includes('a'),
      };
    } catch (e) {
      out = `pcre2_compile() failed: ${(e as Error).message} in "${pattern}"`;
    }
  }
  if (cache.size >= REGEX_CACHE) cache.delete(cache.keys().next().value!);
  cache.set(key, out);
  return out;
}

/** run at byte offset `from`; an anchored regex must match there */
function exec(c: Compiled, s: string, from: number): RegExpExecArray | null {
  c.re.lastIndex = from;
  const m = c.re.exec(s);
  if (m && c.anchored && m.index !== from) return null;
  return m;
}

function pushCaptures(L: LuaState, c: Compiled, m: RegExpExecArray): void {
  lua.lua_createtable(L, c.captures, c.names.length);
  for (let i = 0; i <= c.captures; i++) {
    const v = m[i];
    if (v === undefined) lua.lua_pushboolean(L, false);
    else pushStr(L, v);
    lua.lua_rawseti(L, -2, i);
  }
  c.names.forEach((name, k) => {
    const v = m[c.nameIndex[k]!];
    if (v === undefined) lua.lua_pushboolean(L, false);
    else pushStr(L, v);
    lua.lua_setfield(L, -2, name);
  });
}

/** the start offset from ctx.pos (1-based), 0 without one */
function ctxPos(L: LuaState, i: number): number {
  if (lua.lua_type(L, i) !== lua.LUA_TTABLE) return 0;
  lua.lua_getfield(L, i, 'pos');
  const p = lua.lua_type(L, -1) === lua.LUA_TNUMBER ? lua.lua_tointeger(L, -1) - 1 : 0;
  lua.lua_pop(L, 1);
  return Math.max(0, p);
}
function setCtxPos(L: LuaState, i: number, pos: number): void {
  if (lua.lua_type(L, i) !== lua.LUA_TTABLE) return;
  lua.lua_pushinteger(L, pos + 1);
  lua.lua_setfield(L, i, 'pos');
}

function args(L: LuaState, api: string): { s: string; c: Compiled | string } {
  const s = toStr(L, 1);
  if (s === undefined) luaError(L, `bad argument #1 to '${api}' (string expected, got ${lua.lua_type(L, 1) === lua.LUA_TNIL ? 'nil' : 'other'})`);
  const p = toStr(L, 2);
  if (p === undefined) luaError(L, `bad argument #2 to '${api}' (string expected)`);
  const opts = toStr(L, 3) ?? '';
  return { s: s!, c: compile(p!, opts) };
}

function fail(L: LuaState, msg: string): number {
  lua.lua_pushnil(L);
  pushStr(L, msg);
  return 2;
}

/** $0, $1, ${1}, $$ in a sub/gsub template */
function expand(tpl: string, m: RegExpExecArray): string {
  return tpl.replace(/\$(\$|\d+|\{(\d+)\})/g, (_all, a: string, b: string | undefined) => {
    if (a === '$') return '$';
    const v = m[Number(b ?? a)];
    return v ?? '';
  });
}

function subst(L: LuaState, global: boolean): number {
  const api = global ? 'gsub' : 'sub';
  const s = toStr(L, 1);
  if (s === undefined) luaError(L, `bad argument #1 to '${api}' (string expected)`);
  const c = compile(toStr(L, 2) ?? '', toStr(L, 4) ?? '');
  if (typeof c === 'string') return fail(L, c);
  const isFn = lua.lua_type(L, 3) === lua.LUA_TFUNCTION;
  const tpl = isFn ? '' : (toStr(L, 3) ?? '');
  let out = '';
  let pos = 0;
  let n = 0;
  while (pos <= s!.length) {
    const m = exec(c, s!, pos);
    if (!m) break;
    n++;
    out += s!.slice(pos, m.index);
    if (isFn) {
      lua.lua_pushvalue(L, 3);
      pushCaptures(L, c, m);
      lua.lua_call(L, 1, 1);
      out += toStr(L, -1) ?? '';
      lua.lua_pop(L, 1);
    } else out += expand(tpl, m);
    const end = m.index + m[0].length;
    if (m[0].length === 0) {
      // an empty match: copy one byte and go on (PCRE's retry semantics, simplified)
      if (end < s!.length) out += s![end];
      pos = end + 1;
    } else pos = end;
    if (!global) break;
  }
  if (pos <= s!.length) out += s!.slice(pos);
  pushStr(L, out);
  lua.lua_pushinteger(L, n);
  return 2;
}

/** fill ngx.re (the ngx table on top of the stack) */
export function installNgxRe(L: LuaState): void {
  lua.lua_newtable(L);
  setFn(L, 'match', (L1) => {
    const { s, c } = args(L1, 'match');
    if (typeof c === 'string') return fail(L1, c);
    const m = exec(c, s, ctxPos(L1, 4));
    if (!m) {
      lua.lua_pushnil(L1);
      return 1;
    }
    setCtxPos(L1, 4, m.index + m[0].length);
    pushCaptures(L1, c, m);
    return 1;
  });
  setFn(L, 'find', (L1) => {
    const { s, c } = args(L1, 'find');
    if (typeof c === 'string') return fail(L1, c);
    const m = exec(c, s, ctxPos(L1, 4));
    if (!m) {
      lua.lua_pushnil(L1);
      return 1;
    }
    setCtxPos(L1, 4, m.index + m[0].length);
    const nth = lua.lua_type(L1, 5) === lua.LUA_TNUMBER ? lua.lua_tointeger(L1, 5) : 0;
    let from = m.index;
    let len = m[0].length;
    if (nth > 0) {
      const v = m[nth];
      if (v === undefined) {
        lua.lua_pushnil(L1);
        return 1;
      }
      // the group's offset: searched inside the whole match (V8 gives no group offsets without /d)
      const off = m[0].indexOf(v);
      from = m.index + Math.max(0, off);
      len = v.length;
    }
    lua.lua_pushinteger(L1, from + 1);
    lua.lua_pushinteger(L1, from + len);
    return 2;
  });
  setFn(L, 'gmatch', (L1) => {
    const { s, c } = args(L1, 'gmatch');
    if (typeof c === 'string') return fail(L1, c);
    let pos = 0;
    let done = false;
    lua.lua_pushjsfunction(L1, (L2) => {
      if (done || pos > s.length) {
        lua.lua_pushnil(L2);
        return 1;
      }
      const m = exec(c, s, pos);
      if (!m) {
        done = true;
        lua.lua_pushnil(L2);
        return 1;
      }
      pos = m[0].length === 0 ? m.index + 1 : m.index + m[0].length;
      pushCaptures(L2, c, m);
      return 1;
    });
    return 1;
  });
  setFn(L, 'sub', (L1) => subst(L1, false));
  setFn(L, 'gsub', (L1) => subst(L1, true));
  lua.lua_setfield(L, -2, 're');
}
