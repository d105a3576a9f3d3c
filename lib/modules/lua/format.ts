import { fmtNumber, lauxlib, lua, luaError, type LuaState } from './fengari.js';

/*
 * string.format as LuaJIT's (lj_strfmt.c): numbers are doubles, so %d and
 * %x take any number (truncated toward zero, past 32 bits too), %g is C's,
 * %s uses tostring (numbers with %.14g). fengari's own refuses
 * non-integers for %d and goes wrong on %g and on values past 2^31.
 */

const SPEC = /%([-+ #0]*)(\d*)(?:\.(\d*))?([diouxXeEfFgGqsc%aA])/g;

function pad(s: string, flags: string, width: number, numeric: boolean): string {
  if (s.length >= width) return s;
  if (flags.includes('-')) return s + ' '.repeat(width - s.length);
  if (numeric && flags.includes('0')) {
    const sign = /^[-+ ]/.test(s) ? s[0]! : '';
    const body = sign ? s.slice(1) : s;
    const pre = /^0[xX]/.test(body) ? body.slice(0, 2) : '';
    return sign + pre + '0'.repeat(width - s.length) + body.slice(pre.length);
  }
  return ' '.repeat(width - s.length) + s;
}

function signed(s: string, neg: boolean, flags: string): string {
  if (neg) return '-' + s;
  if (flags.includes('+')) return '+' + s;
  if (flags.includes(' ')) return ' ' + s;
  return s;
}

/** C's %e / %f / %g for a finite or infinite double */
function floatFmt(n: number, conv: string, prec: number | undefined, flags: string): string {
  const neg = n < 0 || Object.is(n, -0);
  const a = Math.abs(n);
  let s: string;
  if (!Number.isFinite(n)) s = Number.isNaN(n) ? 'nan' : 'inf';
  else {
    const lc = conv.toLowerCase();
    const p = prec ?? 6;
    if (lc === 'f') s = a.toFixed(p);
    else if (lc === 'e') s = a.toExponential(p).replace(/e([+-])(\d)$/, 'e$10$2');
    else {
      const P = p === 0 ? 1 : p;
      const x = a === 0 ? 0 : Number(a.toExponential(P - 1).split('e')[1]);
      if (x < -4 || x >= P) {
        s = a.toExponential(P - 1);
        if (!flags.includes('#')) s = s.replace(/\.?0+e/, 'e');
        s = s.replace(/e([+-])(\d)$/, 'e$10$2');
      } else {
        s = a.toFixed(Math.max(0, P - 1 - x));
        if (!flags.includes('#') && s.includes('.')) s = s.replace(/\.?0+$/, '');
      }
    }
    if (conv === conv.toUpperCase()) s = s.toUpperCase();
  }
  if (Number.isNaN(n)) return signed(s, false, flags);
  return signed(s, neg, flags);
}

function quoteQ(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"' || c === '\\') out += '\\' + c;
    else if (c === '\n') out += '\\\n';
    else if (c === '\r') out += '\\r';
    else if (c === '\0') out += '\\0';
    else if (c.charCodeAt(0) < 32 || c.charCodeAt(0) === 127) out += '\\' + c.charCodeAt(0);
    else out += c;
  }
  return out + '"';
}

export function luaFormat(L: LuaState): number {
  const fmtU = lauxlib.luaL_checklstring(L, 1);
  const fmt = Buffer.from(fmtU).toString('latin1');
  let arg = 1;
  const top = lua.lua_gettop(L);
  const next = (): number => {
    arg++;
    if (arg > top) luaError(L, `bad argument #${arg} to 'format' (no value)`);
    return arg;
  };
  const num = (i: number): number => {
    if (lua.lua_type(L, i) !== lua.LUA_TNUMBER && lua.lua_type(L, i) !== lua.LUA_TSTRING) {
      luaError(L, `bad argument #${i} to 'format' (number expected, got ${Buffer.from(lua.lua_typename(L, lua.lua_type(L, i))).toString('latin1')})`);
    }
    const n = lua.lua_tonumber(L, i);
    if (Number.isNaN(n) && lua.lua_type(L, i) === lua.LUA_TSTRING) luaError(L, `bad argument #${i} to 'format' (number expected, got string)`);
    return n;
  };
  let out = '';
  let last = 0;
  SPEC.lastIndex = 0;
  for (let m = SPEC.exec(fmt); m; m = SPEC.exec(fmt)) {
    out += fmt.slice(last, m.index);
    last = SPEC.lastIndex;
    const [, flags = '', w = '', p, conv] = m;
    const width = w ? Number(w) : 0;
    const prec = p === undefined ? undefined : Number(p || '0');
    switch (conv) {
      case '%':
        out += '%';
        break;
      case 'd': case 'i': {
        const n = Math.trunc(num(next()));
        let s = Math.abs(n).toString();
        if (prec !== undefined) s = s.padStart(prec, '0');
        out += pad(signed(s, n < 0, flags), prec !== undefined ? flags.replace('0', '') : flags, width, true);
        break;
      }
      case 'u': case 'o': case 'x': case 'X': {
        let n = Math.trunc(num(next()));
        if (n < 0) n = Number(BigInt.asUintN(64, BigInt(n)));
        let s = n.toString(conv === 'o' ? 8 : conv === 'u' ? 10 : 16);
        if (conv === 'X') s = s.toUpperCase();
        if (prec !== undefined) s = s.padStart(prec, '0');
        if (flags.includes('#') && n !== 0 && conv !== 'u') s = (conv === 'o' ? '0' : conv === 'x' ? '0x' : '0X') + s;
        out += pad(s, flags, width, true);
        break;
      }
      case 'c':
        out += pad(String.fromCharCode(num(next()) & 255), flags, width, false);
        break;
      case 'e': case 'E': case 'f': case 'F': case 'g': case 'G':
        out += pad(floatFmt(num(next()), conv, prec, flags), flags, width, true);
        break;
      case 'a': case 'A':
        out += pad(num(next()).toString(16), flags, width, true);
        break;
      case 'q': {
        const i = next();
        if (lua.lua_type(L, i) === lua.LUA_TNUMBER) out += fmtNumber(lua.lua_tonumber(L, i));
        else out += quoteQ(Buffer.from(lauxlib.luaL_checklstring(L, i)).toString('latin1'));
        break;
      }
      case 's': {
        const i = next();
        let s = Buffer.from(lauxlib.luaL_tolstring(L, i)).toString('latin1');
        lua.lua_pop(L, 1);
        if (prec !== undefined) s = s.slice(0, prec);
        out += pad(s, flags, width, false);
        break;
      }
    }
  }
  out += fmt.slice(last);
  // a lone `%` not followed by a known conversion: Lua's error
  const rest = fmt.replace(SPEC, '');
  if (rest.includes('%')) {
    const bad = /%[-+ #0]*\d*(?:\.\d*)?(.?)/.exec(rest)?.[1] ?? '';
    luaError(L, `invalid option '%${bad}' to 'format'`);
  }
  lua.lua_pushstring(L, Buffer.from(out, 'latin1'));
  return 1;
}

/** replace string.format (the string table's field; `("x"):format` reads the same table) */
export function installFormat(L: LuaState): void {
  lua.lua_getglobal(L, 'string');
  lua.lua_pushjsfunction(L, luaFormat);
  lua.lua_setfield(L, -2, 'format');
  lua.lua_pop(L, 1);
}
