import { nextBody, nextLast, type BodyFilter, type HttpRequest } from '../../http/http_request.js';
import { SubRequest } from '../../http/subrequest.js';
import type { LuaLocConf } from './conf.js';
import { lua, type LuaState } from './fengari.js';
import { runSync } from './run.js';
import { getVm } from './vm.js';

/*
 * header_filter_by_lua and body_filter_by_lua (ngx_http_lua_headerfilterby.c,
 * _bodyfilterby.c). The header filter runs its chunk to the end as the
 * response header is sent (ngx.header and ngx.status may still change);
 * the body filter sees each chunk as ngx.arg[1] and the end as ngx.arg[2],
 * and passes on what ngx.arg[1] holds after the chunk ran.
 */

let luaModuleIndex = -1;
export function setLuaModuleIndex(i: number): void {
  luaModuleIndex = i;
}

function conf(r: HttpRequest): LuaLocConf | undefined {
  return r.locConf[luaModuleIndex] as LuaLocConf | undefined;
}

/** the request's lua location conf (api_out.ts reads lua_http10_buffering) */
export const luaConfOf = conf;

export function headerFilter(r: HttpRequest): void {
  const llcf = conf(r);
  if (!llcf) return;
  if (llcf.headerFilter) {
    const res = runSync(r, 'header_filter', llcf.headerFilter, llcf.codeCache !== 0);
    if (res === undefined) {
      // ngx_lua: a failed header filter is NGX_ERROR: the connection is closed
      r.status = 500;
    }
  }
  if (llcf.bodyFilter) {
    // the body's length may change: the response streams
    if (r.ownContentLength) r.contentLength = -1;
    r.filter = new LuaBodyFilter(r.filter, llcf);
  }
}

/** set ngx.arg = { data, eof } */
function setArgs(L: LuaState, data: Buffer, eof: boolean): void {
  lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, getVm().ngxRef);
  lua.lua_createtable(L, 2, 0);
  lua.lua_pushstring(L, data);
  lua.lua_rawseti(L, -2, 1);
  lua.lua_pushboolean(L, eof);
  lua.lua_rawseti(L, -2, 2);
  lua.lua_setfield(L, -2, 'arg');
  lua.lua_pop(L, 1);
}

/** what the chunk left in ngx.arg: the data and the eof flag */
function getArgs(L: LuaState): { data: Buffer; eof: boolean } {
  lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, getVm().ngxRef);
  lua.lua_getfield(L, -1, 'arg');
  lua.lua_rawgeti(L, -1, 1);
  const u = lua.lua_tolstring(L, -1);
  const data = u ? Buffer.from(u) : Buffer.alloc(0);
  lua.lua_rawgeti(L, -2, 2);
  const eof = lua.lua_toboolean(L, -1);
  lua.lua_pop(L, 4);
  return { data, eof };
}

export class LuaBodyFilter implements BodyFilter {
  private ended = false;
  constructor(public next: BodyFilter | undefined, private readonly llcf: LuaLocConf) {}

  private run(r: HttpRequest, chunk: Buffer, eof: boolean): { data: Buffer; eof: boolean } | undefined {
    const L = getVm().L;
    const res = runSync(r, 'body_filter', this.llcf.bodyFilter!, this.llcf.codeCache !== 0, (L1) => {
      setArgs(L1, chunk, eof);
      return 0;
    });
    if (res === undefined) return undefined;
    return getArgs(L);
  }

  body(r: HttpRequest, chunk: Buffer): boolean {
    if (this.ended) return true;
    const out = this.run(r, chunk, false);
    if (!out) {
      r.terminate();
      return false;
    }
    const ok = out.data.length ? nextBody(r, this.next, out.data) : true;
    if (out.eof) {
      this.ended = true;
      nextLast(r, this.next);
    }
    return ok;
  }

  last(r: HttpRequest): void {
    if (this.ended) return;
    this.ended = true;
    const out = this.run(r, Buffer.alloc(0), true);
    if (!out) {
      r.terminate();
      return;
    }
    if (out.data.length) nextBody(r, this.next, out.data);
    // ngx.arg[2] = false: nginx's filters below never see the last buffer; an in-memory subrequest
    // (srcache's fetch) then ends without its eof, which its parent checks
    if (!out.eof && r instanceof SubRequest) r.noEof = true;
    nextLast(r, this.next);
  }
}

export const bodyFilterHook = LuaBodyFilter;
