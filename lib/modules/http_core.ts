import {
  BLOCK,
  HTTP_LOC_CONF,
  HTTP_MAIN_CONF,
  HTTP_SRV_CONF,
  MORE1,
  NOARGS,
  TAKE12,
  defineModule,
} from '../conf/command.js';
import type { Conf } from '../conf/parser.js';
import { compileRegex, type CompiledRegex } from '../conf/regex.js';
import type { ContentHandler } from '../http/request.js';
import { defineCoreVariables } from '../http/core_variables.js';
import { httpVariables } from '../http/variables.js';
import { createConfs, locConf, setHttpCoreHooks, srvConf, type HttpCtx } from './http.js';

/*
 * ngx_http_core_module: server and location blocks and the core directives.
 * The conf shapes here are what the request side reads.
 */

export interface ListenOpt {
  /** 'inet' | 'inet6' | 'unix' */
  family: 'inet' | 'inet6' | 'unix';
  /** address as nginx prints it: `127.0.0.1:8080`, `[::1]:80`, `unix:/path` */
  text: string;
  host: string;
  port: number;
  path: string | undefined;
  defaultServer: boolean;
  backlog: number;
  reuseport: boolean;
  ipv6only: boolean;
  /** where the listen directive stands, for conflicts reported later */
  file: string;
  line: number;
}

export interface ServerName {
  /** lowercased name, or the regex source for `~` names */
  name: string;
  regex: CompiledRegex | undefined;
}

export interface CoreMainConf {
  servers: CoreSrvConf[];
}

export interface CoreSrvConf {
  /** this server's conf level (srv and loc arrays of every module) */
  ctx: HttpCtx;
  listen: ListenOpt[];
  serverNames: ServerName[];
  /** the file and line of the `server {` directive */
  file: string;
  line: number;
}

export interface CoreLocConf {
  /** location name as written after the modifier ('' for the server level) */
  name: string;
  exactMatch: boolean;
  noRegex: boolean;
  named: boolean;
  /** `if` blocks are unnamed pseudo-locations (nginx's noname) */
  noname: boolean;
  regex: CompiledRegex | undefined;
  /** the loc conf array of this level (this object is at coreModule's index) */
  locConf: unknown[];
  /** nested locations and `if` blocks in config order */
  locations: CoreLocConf[];
  internal: number;
  /** the content handler a module installed here (redis2_pass, echo, return's default, ...) */
  handler: ContentHandler | undefined;
  file: string;
  line: number;
}

const mainOf = (cf: Conf): CoreMainConf => (cf.ctx as HttpCtx).main[httpCoreModule.index] as CoreMainConf;

export function coreLoc(loc: unknown[]): CoreLocConf {
  return loc[httpCoreModule.index] as CoreLocConf;
}

/** A new unnamed location level (rewrite's `if`), added under the current location. */
export function addIfLocation(cf: Conf): HttpCtx {
  const parent = cf.ctx as HttpCtx;
  const loc = createConfs(cf, 'loc');
  const clcf = coreLoc(loc);
  clcf.noname = true;
  clcf.locConf = loc;
  coreLoc(parent.loc).locations.push(clcf);
  return { main: parent.main, srv: parent.srv, loc };
}

function locationBlock(cf: Conf): string | undefined {
  const pctx = cf.ctx as HttpCtx;
  const loc = createConfs(cf, 'loc');
  const ctx: HttpCtx = { main: pctx.main, srv: pctx.srv, loc };
  const clcf = coreLoc(loc);
  clcf.locConf = loc;
  const where = cf.where();
  clcf.file = where.file;
  clcf.line = where.line;

  const args = cf.args;
  if (args.length === 3) {
    const mod = args[1]!;
    const name = args[2]!;
    if (mod === '=') {
      clcf.name = name;
      clcf.exactMatch = true;
    } else if (mod === '^~') {
      clcf.name = name;
      clcf.noRegex = true;
    } else if (mod === '~' || mod === '~*') {
      clcf.name = name;
      clcf.regex = compileRegex(cf, name, mod === '~*');
    } else {
      throw cf.error(`invalid location modifier "${mod}"`);
    }
  } else {
    const name = args[1]!;
    if (name.startsWith('=')) {
      clcf.name = name.slice(1);
      clcf.exactMatch = true;
    } else if (name.startsWith('^~')) {
      clcf.name = name.slice(2);
      clcf.noRegex = true;
    } else if (name.startsWith('~*')) {
      clcf.name = name.slice(2);
      clcf.regex = compileRegex(cf, clcf.name, true);
    } else if (name.startsWith('~')) {
      clcf.name = name.slice(1);
      clcf.regex = compileRegex(cf, clcf.name, false);
    } else {
      clcf.name = name;
      if (name.startsWith('@')) clcf.named = true;
    }
  }

  const pclcf = coreLoc(pctx.loc);
  if (cf.cmdType === HTTP_LOC_CONF) {
    if (pclcf.exactMatch) {
      throw cf.error(`location "${clcf.name}" cannot be inside the exact location "${pclcf.name}"`);
    }
    if (pclcf.named) {
      throw cf.error(`location "${clcf.name}" cannot be inside the named location "${pclcf.name}"`);
    }
    if (clcf.named) throw cf.error(`named location "${clcf.name}" can be on the server level only`);
    if (!clcf.regex && !clcf.name.startsWith(pclcf.name)) {
      throw cf.error(`location "${clcf.name}" is outside location "${pclcf.name}"`);
    }
  }
  pclcf.locations.push(clcf);
  cf.parseBlock(HTTP_LOC_CONF, ctx);
  return undefined;
}

function serverBlock(cf: Conf): string | undefined {
  const pctx = cf.ctx as HttpCtx;
  const srv = createConfs(cf, 'srv');
  const loc = createConfs(cf, 'loc');
  const ctx: HttpCtx = { main: pctx.main, srv, loc };
  const cscf = srv[httpCoreModule.index] as CoreSrvConf;
  cscf.ctx = ctx;
  const where = cf.where();
  cscf.file = where.file;
  cscf.line = where.line;
  coreLoc(loc).locConf = loc;
  mainOf(cf).servers.push(cscf);
  cf.parseBlock(HTTP_SRV_CONF, ctx);
  return undefined;
}

export const httpCoreModule = defineModule<CoreMainConf, CoreSrvConf, CoreLocConf>({
  name: 'http_core',
  createMainConf: () => ({ servers: [] }),
  preConfiguration(cf) {
    defineCoreVariables(httpVariables(cf));
  },
  createSrvConf: () => ({
    ctx: { main: [], srv: [], loc: [] },
    listen: [],
    serverNames: [],
    file: '',
    line: 0,
  }),
  createLocConf: () => ({
    name: '',
    exactMatch: false,
    noRegex: false,
    named: false,
    noname: false,
    regex: undefined,
    locConf: [],
    locations: [],
    internal: -1,
    handler: undefined,
    file: '',
    line: 0,
  }),
  mergeLocConf(_cf, _prev, _conf) {
    /* filled in with the core directives */
  },
  commands: [
    { name: 'server', ctx: HTTP_MAIN_CONF, args: BLOCK | NOARGS, set: serverBlock },
    { name: 'location', ctx: HTTP_SRV_CONF | HTTP_LOC_CONF, args: BLOCK | TAKE12, set: locationBlock },
    {
      name: 'internal',
      ctx: HTTP_LOC_CONF,
      args: NOARGS,
      set(cf) {
        const clcf = locConf(cf, httpCoreModule);
        if (clcf.internal !== -1) return 'is duplicate';
        clcf.internal = 1;
      },
    },
    {
      name: 'server_name',
      ctx: HTTP_SRV_CONF,
      args: MORE1,
      set(cf) {
        const cscf = srvConf(cf, httpCoreModule);
        for (let i = 1; i < cf.args.length; i++) {
          const v = cf.args[i]!;
          if (v.startsWith('~')) {
            cscf.serverNames.push({ name: v, regex: compileRegex(cf, v.slice(1), true) });
          } else {
            cscf.serverNames.push({ name: v.toLowerCase(), regex: undefined });
          }
        }
      },
    },
  ],
});

setHttpCoreHooks({
  servers: (ctx) => (ctx.main[httpCoreModule.index] as CoreMainConf).servers.map((s) => s.ctx),
  children: (loc) => coreLoc(loc).locations.map((l) => l.locConf),
  finish() {
    /* location trees and listen tables: built by the request side */
  },
});
