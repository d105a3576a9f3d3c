import {
  BLOCK, FLAG, HTTP_LIF_CONF, HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SIF_CONF, HTTP_SRV_CONF, MORE2, NOARGS, TAKE1, TAKE2,
  type Command,
} from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { ConfError } from '../../conf/errors.js';
import { flagSlot, mergeValue, msecSlot } from '../../conf/slots.js';
import { UNSET } from '../../conf/values.js';
import { httpCoreModule } from '../../http/core/module.js';
import type { HttpRequest } from '../../http/http_request.js';
import { locConf, defineHttpModule } from '../../http/module.js';
import { DECLINED, type ContentHandler, type PhaseHandler } from '../../http/request.js';
import { compileComplexValue, type ComplexValue } from '../../http/script.js';
import { evalComplexValue, setVariable } from '../../http/eval.js';
import { addRewriteHandler, defineSetVariable } from '../rewrite/module.js';
import type { LuaChunk, LuaLocConf, LuaMainConf } from './conf.js';
import { lua, pushStr } from './fengari.js';
import { getVm, initChunks, luaPaths as pkgPaths } from './vm.js';
import { inlineName, luaPaths, runContent, runPhase, runSync } from './run.js';
import { releaseCtx } from './api_req.js';
import { headerFilter, setLuaModuleIndex } from './filters.js';
import { declareSharedDict, resetSharedDicts } from './shdict.js';
import { registerShdictOps } from './shdict_ops.js';
import { installNgxLocation } from './capture.js';
import { installBit, installNgxUtil } from './api_util.js';
import { openRedisParser } from './redis_parser.js';
import { openCjson } from './cjson.js';
import { installNgxRe } from './re.js';
import { installNgxSocket, setSocketConfIndex } from './socket.js';
import { installFormat } from './format.js';
import { installNgxOutput, installPrint, peekReqState } from './api_out.js';
import { installNgxRequest } from './api_req.js';
import { installNgxShared } from './shdict.js';
import { registerGlobals, registerHostModule, registerNgx } from './vm.js';

// the VM's contents, installed when a worker makes it
registerNgx(installNgxOutput);
registerNgx(installNgxRequest);
registerNgx(installNgxUtil);
registerNgx(installNgxLocation);
registerNgx(installNgxShared);
registerNgx(installNgxRe);
registerNgx(installNgxSocket);
registerGlobals(installPrint);
registerGlobals(installBit);
registerGlobals(installFormat);
registerHostModule('redis.parser', openRedisParser);
registerHostModule('cjson', openCjson(false));
registerHostModule('cjson.safe', openCjson(true));

/*
 * ngx_lua's directives (lua-nginx-module, the subset redis2 configs use):
 * *_by_lua (inline string), *_by_lua_block (raw Lua between braces),
 * *_by_lua_file (a path, maybe with variables), in nginx's contexts.
 * Lua syntax errors are found when a handler first runs, as ngx_lua
 * compiles lazily (nginx -t accepts them; the request gets 500 and the
 * `failed to load inlined Lua code:` line).
 */

export type { LuaLocConf, LuaMainConf };

const ANYWHERE = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF | HTTP_LIF_CONF;
const LOC = HTTP_LOC_CONF | HTTP_LIF_CONF;
type Slot = 'rewrite' | 'access' | 'content' | 'headerFilter' | 'bodyFilter' | 'log';

const conf = (cf: Conf): LuaLocConf => locConf(cf, luaModule);

/** the chunk of a *_by_lua / _block / _file directive at argument `i` */
function chunkOf(cf: Conf, cmd: Command, i: number): LuaChunk {
  const name = cmd.name;
  const where = cf.where();
  if (name.endsWith('_block')) {
    const code = cf.readLuaBlock();
    return { directive: name, code: Buffer.from(code, 'latin1'), name: inlineName(name, where.file, where.line), file: undefined, refs: new Map() };
  }
  const arg = cf.args[i]!;
  if (arg.length === 0) {
    // ngx_lua logs it at [error] level before failing the directive
    const w = cf.where();
    throw new ConfError('invalid location config: no runnable Lua code', w.file, w.line, 'error');
  }
  if (name.endsWith('_file')) {
    return { directive: name, code: undefined, name: '', file: compileComplexValue(cf, arg), refs: new Map() };
  }
  return { directive: name, code: Buffer.from(arg, 'latin1'), name: inlineName(name, where.file, where.line), file: undefined, refs: new Map() };
}

const luaContentHandler: ContentHandler = (req) => {
  const r = req as HttpRequest;
  const llcf = r.locConf[luaModule.index] as LuaLocConf;
  return runContent(r, llcf.content!, llcf.codeCache !== 0);
};

function byLua(slot: Slot) {
  return (cf: Conf, cmd: Command): string | undefined => {
    const llcf = conf(cf);
    if (llcf[slot]) {
      // the _block forms fail from ngx_lua's own block parser: the bare words, no directive name
      if (cmd.name.endsWith('_block')) throw cf.error('is duplicate');
      return 'is duplicate';
    }
    llcf[slot] = chunkOf(cf, cmd, 1);
    if (slot === 'content') locConf(cf, httpCoreModule).handler = luaContentHandler;
    return undefined;
  };
}

/** set_by_lua $res <code|file> [$arg ...] / set_by_lua_block $res { ... } */
function setByLua(cf: Conf, cmd: Command): undefined {
  const a = cf.args;
  const index = defineSetVariable(cf, a[1]!);
  const chunk = chunkOf(cf, cmd, 2);
  const args: ComplexValue[] = a.slice(3).map((v) => compileComplexValue(cf, v));
  addRewriteHandler(cf, (req, e) => {
    const r = req as HttpRequest;
    const values = args.map((cv) => evalComplexValue(r, cv));
    const res = runSync(r, 'set', chunk, true, (L) => {
      // ngx.arg: the directive's extra arguments
      lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, getVm().ngxRef);
      lua.lua_createtable(L, values.length, 0);
      values.forEach((v, i) => {
        pushStr(L, v);
        lua.lua_rawseti(L, -2, i + 1);
      });
      lua.lua_setfield(L, -2, 'arg');
      lua.lua_pop(L, 1);
      return 0;
    });
    if (res === undefined) {
      e.status = 500;
      e.stop = true;
      return;
    }
    setVariable(r, index, res[0] ?? '');
  });
  return undefined;
}

function initByLua(which: 'init' | 'init_worker') {
  return (cf: Conf, cmd: Command): undefined => {
    const c = chunkOf(cf, cmd, 1);
    if (c.file) {
      const path = cf.args[1]!;
      initChunks.push({ code: undefined, name: `@${cf.cycle.fullName(path)}`, file: cf.cycle.fullName(path), phase: which });
    } else initChunks.push({ code: c.code!.toString('latin1'), name: c.name, file: undefined, phase: which });
    return undefined;
  };
}

const rewriteHandler: PhaseHandler = (req) => {
  const r = req as HttpRequest;
  const llcf = r.locConf[luaModule.index] as LuaLocConf | undefined;
  if (!llcf?.rewrite) return DECLINED;
  return runPhase(r, 'rewrite', llcf.rewrite, llcf.codeCache !== 0, llcf.needRequestBody === 1);
};
const accessHandler: PhaseHandler = (req) => {
  const r = req as HttpRequest;
  const llcf = r.locConf[luaModule.index] as LuaLocConf | undefined;
  if (!llcf?.access) return DECLINED;
  return runPhase(r, 'access', llcf.access, llcf.codeCache !== 0, llcf.needRequestBody === 1);
};

registerShdictOps();

function accepted(name: string, args: number, ctx = ANYWHERE): Command {
  return { name, ctx, args, set: () => undefined };
}

export const luaModule = defineHttpModule<LuaMainConf, unknown, LuaLocConf>({
  name: 'lua',
  createMainConf: () => ({ sharedDicts: new Map(), codeCache: true }),
  preConfiguration(cf) {
    setLuaModuleIndex(luaModule.index);
    setSocketConfIndex(luaModule.index);
    resetSharedDicts();
    luaPaths.prefix = cf.cycle.prefix;
    initChunks.length = 0;
    pkgPaths.path = '';
    pkgPaths.cpath = '';
  },
  createLocConf: () => ({
    rewrite: undefined, access: undefined, content: undefined, headerFilter: undefined, bodyFilter: undefined, log: undefined,
    codeCache: UNSET, needRequestBody: UNSET, http10Buffering: UNSET,
    socketConnectTimeout: UNSET, socketSendTimeout: UNSET, socketReadTimeout: UNSET,
  }),
  mergeLocConf(_cf, prev, c) {
    c.rewrite ??= prev.rewrite;
    c.access ??= prev.access;
    c.content ??= prev.content;
    c.headerFilter ??= prev.headerFilter;
    c.bodyFilter ??= prev.bodyFilter;
    c.log ??= prev.log;
    c.codeCache = mergeValue(c.codeCache, prev.codeCache, 1);
    c.needRequestBody = mergeValue(c.needRequestBody, prev.needRequestBody, 0);
    c.http10Buffering = mergeValue(c.http10Buffering, prev.http10Buffering, 1);
    c.socketConnectTimeout = mergeValue(c.socketConnectTimeout, prev.socketConnectTimeout, 60000);
    c.socketSendTimeout = mergeValue(c.socketSendTimeout, prev.socketSendTimeout, 60000);
    c.socketReadTimeout = mergeValue(c.socketReadTimeout, prev.socketReadTimeout, 60000);
  },
  phases: { rewriteTail: rewriteHandler, access: accessHandler },
  // init_worker_by_lua runs as the worker starts (its timers run without requests), as nginx's
  initProcess() {
    if (initChunks.length) getVm();
  },
  headerFilter,
  log(r) {
    const llcf = r.locConf[luaModule.index] as LuaLocConf | undefined;
    const hr = r as HttpRequest;
    if (llcf?.log) {
      // its log lines say `while logging`, as nginx's log phase sets the action
      const saved = hr.action;
      hr.action = 'logging request';
      runSync(hr, 'log', llcf.log, llcf.codeCache !== 0);
      hr.action = saved;
    }
    // only a request that made an ngx.ctx has one to release: no state (nor VM, nor fengari) for the others
    const st = peekReqState(hr);
    if (st !== undefined && st.ctxRef !== -1) releaseCtx(getVm().L, hr);
  },
  commands: [
    { name: 'content_by_lua', ctx: LOC, args: TAKE1, set: byLua('content') },
    { name: 'content_by_lua_block', ctx: LOC, args: BLOCK | NOARGS, set: byLua('content') },
    { name: 'content_by_lua_file', ctx: LOC, args: TAKE1, set: byLua('content') },
    { name: 'rewrite_by_lua', ctx: ANYWHERE, args: TAKE1, set: byLua('rewrite') },
    { name: 'rewrite_by_lua_block', ctx: ANYWHERE, args: BLOCK | NOARGS, set: byLua('rewrite') },
    { name: 'rewrite_by_lua_file', ctx: ANYWHERE, args: TAKE1, set: byLua('rewrite') },
    { name: 'access_by_lua', ctx: ANYWHERE, args: TAKE1, set: byLua('access') },
    { name: 'access_by_lua_block', ctx: ANYWHERE, args: BLOCK | NOARGS, set: byLua('access') },
    { name: 'access_by_lua_file', ctx: ANYWHERE, args: TAKE1, set: byLua('access') },
    { name: 'header_filter_by_lua', ctx: ANYWHERE, args: TAKE1, set: byLua('headerFilter') },
    { name: 'header_filter_by_lua_block', ctx: ANYWHERE, args: BLOCK | NOARGS, set: byLua('headerFilter') },
    { name: 'header_filter_by_lua_file', ctx: ANYWHERE, args: TAKE1, set: byLua('headerFilter') },
    { name: 'body_filter_by_lua', ctx: ANYWHERE, args: TAKE1, set: byLua('bodyFilter') },
    { name: 'body_filter_by_lua_block', ctx: ANYWHERE, args: BLOCK | NOARGS, set: byLua('bodyFilter') },
    { name: 'body_filter_by_lua_file', ctx: ANYWHERE, args: TAKE1, set: byLua('bodyFilter') },
    { name: 'log_by_lua', ctx: ANYWHERE, args: TAKE1, set: byLua('log') },
    { name: 'log_by_lua_block', ctx: ANYWHERE, args: BLOCK | NOARGS, set: byLua('log') },
    { name: 'log_by_lua_file', ctx: ANYWHERE, args: TAKE1, set: byLua('log') },
    { name: 'set_by_lua', ctx: HTTP_SRV_CONF | HTTP_SIF_CONF | LOC, args: MORE2, set: setByLua },
    { name: 'set_by_lua_block', ctx: HTTP_SRV_CONF | HTTP_SIF_CONF | LOC, args: BLOCK | TAKE1, set: setByLua },
    { name: 'set_by_lua_file', ctx: HTTP_SRV_CONF | HTTP_SIF_CONF | LOC, args: MORE2, set: setByLua },
    { name: 'init_by_lua', ctx: HTTP_MAIN_CONF, args: TAKE1, set: initByLua('init') },
    { name: 'init_by_lua_block', ctx: HTTP_MAIN_CONF, args: BLOCK | NOARGS, set: initByLua('init') },
    { name: 'init_by_lua_file', ctx: HTTP_MAIN_CONF, args: TAKE1, set: initByLua('init') },
    { name: 'init_worker_by_lua', ctx: HTTP_MAIN_CONF, args: TAKE1, set: initByLua('init_worker') },
    { name: 'init_worker_by_lua_block', ctx: HTTP_MAIN_CONF, args: BLOCK | NOARGS, set: initByLua('init_worker') },
    { name: 'init_worker_by_lua_file', ctx: HTTP_MAIN_CONF, args: TAKE1, set: initByLua('init_worker') },
    {
      name: 'lua_package_path', ctx: HTTP_MAIN_CONF, args: TAKE1, set: (cf) => {
        if (pkgPaths.path) return 'is duplicate';
        pkgPaths.path = cf.args[1]!;
        return undefined;
      },
    },
    {
      name: 'lua_package_cpath', ctx: HTTP_MAIN_CONF, args: TAKE1, set: (cf) => {
        if (pkgPaths.cpath) return 'is duplicate';
        pkgPaths.cpath = cf.args[1]!;
        return undefined;
      },
    },
    { name: 'lua_shared_dict', ctx: HTTP_MAIN_CONF, args: TAKE2, set: declareSharedDict },
    { name: 'lua_code_cache', ctx: ANYWHERE, args: FLAG, set: flagSlot(conf, 'codeCache') },
    { name: 'lua_need_request_body', ctx: ANYWHERE, args: FLAG, set: flagSlot(conf, 'needRequestBody') },
    { name: 'lua_http10_buffering', ctx: ANYWHERE, args: FLAG, set: flagSlot(conf, 'http10Buffering') },
    { name: 'lua_socket_connect_timeout', ctx: ANYWHERE, args: TAKE1, set: msecSlot(conf, 'socketConnectTimeout') },
    { name: 'lua_socket_send_timeout', ctx: ANYWHERE, args: TAKE1, set: msecSlot(conf, 'socketSendTimeout') },
    { name: 'lua_socket_read_timeout', ctx: ANYWHERE, args: TAKE1, set: msecSlot(conf, 'socketReadTimeout') },
    accepted('lua_socket_buffer_size', TAKE1),
    accepted('lua_socket_pool_size', TAKE1),
    accepted('lua_socket_keepalive_timeout', TAKE1),
    accepted('lua_socket_log_errors', FLAG),
    accepted('lua_max_pending_timers', TAKE1, HTTP_MAIN_CONF),
    accepted('lua_max_running_timers', TAKE1, HTTP_MAIN_CONF),
    accepted('lua_regex_cache_max_entries', TAKE1, HTTP_MAIN_CONF),
    accepted('lua_regex_match_limit', TAKE1, HTTP_MAIN_CONF),
    accepted('lua_transform_underscores_in_response_headers', FLAG),
    accepted('lua_check_client_abort', FLAG),
    accepted('lua_use_default_type', FLAG),
  ],
});
void TAKE2;
