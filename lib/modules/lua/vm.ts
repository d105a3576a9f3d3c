import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getMainLog } from '../../core/error_log.js';
import { fastRequire } from './fengari_host.js';
import { PACKAGE_ROOT } from '../../core/version.js';
import { LUA_REGISTRYINDEX, initFastYield, lauxlib, loadFengari, lua, lualib, luaError, pushStr, toStr, u8buf, u8str, type LuaCFunction, type LuaState } from './fengari.js';

/*
 * The worker's Lua VM (ngx_lua's one lua_State per worker): made at the
 * first use in a process, with the 5.1 names LuaJIT code uses, `require`
 * searching lua_package_path then the libraries shipped in lualib/ and
 * the host-written ones (redis.parser), and a cache of compiled chunks
 * (lua_code_cache on). The ngx table is filled by api*.ts through
 * registerNgx hooks, so this file knows nothing of requests.
 */

const REG = LUA_REGISTRYINDEX;
/** the Lua libraries shipped with redis2d (cjson, resty.*, written for it) */
// the package's lib/ holds it whether redis2d runs from the sources (tsx), dist/lib or the one-file dist/redis2d.js
export const LUALIB_DIR = join(PACKAGE_ROOT, 'lib/modules/lua/lualib');

export interface LuaVm {
  L: LuaState;
  /** registry ref of the ngx table */
  ngxRef: number;
}

/** installers of ngx.* fields, run when the VM is made (ngx table on top of the stack) */
const ngxInstallers: Array<(L: LuaState) => void> = [];
/** modules written in JS, for require (redis.parser): push the module table */
const hostModules = new Map<string, (L: LuaState) => void>();
/** lua_package_path / cpath of the http block (';;' = the default) */
export const luaPaths = { path: '', cpath: '' };
/** init_by_lua code, run when the VM is made */
export const initChunks: Array<{ code: string | undefined; name: string; file: string | undefined; phase: 'init' | 'init_worker' }> = [];

/** installers of other globals (print) */
const globalInstallers: Array<(L: LuaState) => void> = [];
export function registerGlobals(f: (L: LuaState) => void): void {
  globalInstallers.push(f);
}
export function registerNgx(f: (L: LuaState) => void): void {
  ngxInstallers.push(f);
}
export function registerHostModule(name: string, f: (L: LuaState) => void): void {
  hostModules.set(name, f);
}

let vm: LuaVm | undefined;

/** set a JS function as field `name` of the table on top of the stack */
export function setFn(L: LuaState, name: string, f: LuaCFunction): void {
  lua.lua_pushjsfunction(L, f);
  lua.lua_setfield(L, -2, name);
}

const COMPAT = `
unpack = table.unpack
loadstring = load
table.getn = function(t) return #t end
table.maxn = table.maxn or function(t) local n = 0 for k in pairs(t) do if type(k) == "number" and k > n then n = k end end return n end
math.pow = math.pow or function(a, b) return a ^ b end
math.mod = math.fmod
string.gfind = string.gmatch
-- setfenv/getfenv over the _ENV upvalue (5.1 code that sets a function's environment)
local function envslot(f)
  local i = 1
  while true do
    local n = debug.getupvalue(f, i)
    if n == "_ENV" then return i end
    if n == nil then return nil end
    i = i + 1
  end
end
function getfenv(f)
  if type(f) ~= "function" then return _G end
  local i = envslot(f)
  if not i then return _G end
  local _, v = debug.getupvalue(f, i)
  return v
end
function setfenv(f, t)
  if type(f) ~= "function" then error("setfenv on a stack level is not supported") end
  local i = envslot(f)
  if i then
    debug.upvaluejoin(f, i, function() return t end, 1)
  end
  return f
end
`;

/*
 * ngx_lua's guard on _G (its line and function name appear in the log
 * line, as nginx prints them): writing a new global from a request warns.
 * The ngx.log call must stay on line 12.
 */
const WRITE_GUARD = `local ngx, rawset, traceback, tostring = ngx, rawset, debug.traceback, tostring
local getphase = ngx.get_phase
setmetatable(_G, { __newindex = function(t, k, v)
  local phase = getphase()
  if phase == "init" or phase == "init_worker" or phase == "timer" then
    rawset(t, k, v)
    return
  end
  local tb = traceback("", 2)
  tb = tb:gsub("^\\n", "")
  local msg = "writing a global Lua variable ('" .. tostring(k) .. "') which may lead to race conditions between concurrent requests, so prefer the use of 'local' variables\\n" .. tb
  ngx.log(ngx.WARN, msg)
  rawset(t, k, v)
end })
`;

export function getVm(): LuaVm {
  if (vm) return vm;
  loadFengari();
  const L = lauxlib.luaL_newstate();
  lualib.luaL_openlibs(L);
  initFastYield(L);
  // an exception thrown by a host function becomes a Lua error, never a crashed worker
  (lua as unknown as { lua_atnativeerror(L: LuaState, f: LuaCFunction): void }).lua_atnativeerror(L, (L1) => {
    const e = (lua as unknown as { lua_touserdata(L: LuaState, i: number): unknown }).lua_touserdata(L1, -1);
    pushStr(L1, e instanceof Error ? e.message : String(e));
    return 1;
  });
  runString(L, COMPAT, '=compat');
  for (const f of globalInstallers) f(L);
  lua.lua_newtable(L);
  for (const f of ngxInstallers) f(L);
  lua.lua_pushvalue(L, -1);
  lua.lua_setglobal(L, 'ngx');
  const ngxRef = lauxlib.luaL_ref(L, REG);
  installRequire(L);
  vm = { L, ngxRef };
  // require with a fast path for loaded modules (fengari_host.ts), a closure over package as fengari's
  lua.lua_getglobal(L, 'require');
  // fengari's lua_tocfunction gives a C closure's object, not its function
  const fn = lua.lua_tocfunction(L, -1) as unknown as LuaCFunction | { f: LuaCFunction };
  const original = typeof fn === 'function' ? fn : fn.f;
  lua.lua_getupvalue(L, -1, 1);
  lua.lua_pushcclosure(L, fastRequire(original as (L: unknown) => number) as LuaCFunction, 1);
  lua.lua_setglobal(L, 'require');
  lua.lua_pop(L, 1);
  runString(L, WRITE_GUARD, '=_G write guard');
  // init_by_lua runs before init_worker_by_lua (nginx: in the master, then in each worker)
  for (const phase of ['init', 'init_worker'] as const) {
    for (const c of initChunks) {
      if (c.phase !== phase) continue;
      try {
        runString(L, c.code ?? readFileSync(c.file!, 'latin1'), c.name);
      } catch (e) {
        getMainLog().write('error', 0, `${phase}_by_lua error: ${(e as Error).message}`);
      }
    }
  }
  return vm;
}

/** load and run code at the top level; throws the Lua error message */
function runString(L: LuaState, code: string, name: string): void {
  const b = Buffer.from(code, 'latin1');
  let rc = lauxlib.luaL_loadbufferx(L, b, b.length, name, 't');
  if (rc === lua.LUA_OK) rc = lua.lua_pcall(L, 0, 0, 0);
  if (rc !== lua.LUA_OK) {
    const m = toStr(L, -1) ?? '?';
    lua.lua_pop(L, 1);
    throw new Error(m);
  }
}

/**
 * Compile a chunk once (lua_code_cache on): the registry ref of its
 * function, or the compiler's message. The name is the chunk name
 * (`=content_by_lua(nginx.conf:12)`, `@/path/file.lua`).
 */
export function compile(code: Buffer, name: string): number | string {
  const L = getVm().L;
  const rc = lauxlib.luaL_loadbufferx(L, code, code.length, name, 'bt');
  if (rc !== lua.LUA_OK) {
    const m = toStr(L, -1) ?? 'unknown error';
    lua.lua_pop(L, 1);
    return m;
  }
  return lauxlib.luaL_ref(L, REG);
}

/** the file a module name resolves to in a `;`-separated template list, or the tried names */
function searchPath(name: string, path: string): { file?: string; tried: string } {
  const base = name.replace(/\./g, '/');
  let tried = '';
  for (const t of path.split(';')) {
    if (t === '') continue;
    const f = t.replace(/\?/g, base);
    try {
      readFileSync(f, { flag: 'r' }).length;
      return { file: f, tried };
    } catch {
      tried += `\n\tno file '${f}'`;
    }
  }
  return { tried };
}

/** the package.path in force: lua_package_path with ';;' standing for the default */
function effectivePath(): string {
  const dflt = `${LUALIB_DIR}/?.lua;${LUALIB_DIR}/?/init.lua;./?.lua;/usr/local/share/lua/5.1/?.lua;/usr/local/share/lua/5.1/?/init.lua`;
  const p = luaPaths.path;
  if (!p) return dflt;
  return p.replace(/;;/g, `;${dflt};`);
}

/**
 * require: package.loaded, then host modules (redis.parser), then a Lua
 * file on lua_package_path or in lualib/; a missing module gives Lua's
 * `module 'x' not found:` list.
 */
function installRequire(L: LuaState): void {
  lua.lua_getglobal(L, 'package');
  pushStr(L, effectivePath());
  lua.lua_setfield(L, -2, 'path');
  pushStr(L, luaPaths.cpath || './?.so');
  lua.lua_setfield(L, -2, 'cpath');
  lua.lua_getfield(L, -1, 'searchers');
  // replace the searchers: preload, host modules, lua files (C modules are not loadable)
  lua.lua_newtable(L);
  lua.lua_rawgeti(L, -2, 1);
  lua.lua_rawseti(L, -2, 1);
  lua.lua_pushjsfunction(L, (L1) => {
    const name = toStr(L1, 1) ?? '';
    const open = hostModules.get(name);
    if (!open) {
      pushStr(L1, `\n\tno host module '${name}'`);
      return 1;
    }
    lua.lua_pushjsfunction(L1, (L2) => {
      open(L2);
      return 1;
    });
    return 1;
  });
  lua.lua_rawseti(L, -2, 2);
  lua.lua_pushjsfunction(L, (L1) => {
    const name = toStr(L1, 1) ?? '';
    lua.lua_getglobal(L1, 'package');
    lua.lua_getfield(L1, -1, 'path');
    const path = toStr(L1, -1) ?? '';
    lua.lua_pop(L1, 2);
    const { file, tried } = searchPath(name, path);
    if (!file) {
      pushStr(L1, tried);
      return 1;
    }
    const code = readFileSync(file);
    if (lauxlib.luaL_loadbufferx(L1, code, code.length, `@${file}`, 'bt') !== lua.LUA_OK) {
      luaError(L1, `error loading module '${name}' from file '${file}':\n\t${toStr(L1, -1)}`);
    }
    pushStr(L1, file);
    return 2;
  });
  lua.lua_rawseti(L, -2, 3);
  lua.lua_setfield(L, -3, 'searchers');
  lua.lua_pop(L, 2);
}

/** the bytes of the string at i (numbers converted) as a Buffer of their own, or undefined */
export function toBuf(L: LuaState, i: number): Buffer | undefined {
  const u = lua.lua_tolstring(L, i);
  return u === null ? undefined : u8buf(u);
}

export { u8str };
