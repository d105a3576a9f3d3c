import { BLOCK, HTTP_MAIN_CONF, MAIN_CONF, NOARGS, defineModule, type Module } from '../conf/command.js';
import type { Conf } from '../conf/parser.js';
import { Variables } from '../http/variables.js';

/*
 * ngx_http_module: the `http { }` block. It creates every http module's main,
 * server and location confs, parses the block, then merges server and
 * location confs downwards and runs each module's post-configuration.
 */

/** ngx_http_conf_ctx_t: one level's confs, indexed by module index. */
export interface HttpCtx {
  main: unknown[];
  srv: unknown[];
  loc: unknown[];
}

export interface HttpState {
  ctx: HttpCtx;
  variables: Variables;
}

/** The http modules, in the order their hooks run (set by the registry). */
export function httpModules(cf: Conf): Module[] {
  return cf.cycle.modules.filter(
    (m) => m.createMainConf || m.createSrvConf || m.createLocConf || m.preConfiguration || m.postConfiguration,
  );
}

export function httpState(cf: Conf): HttpState | undefined {
  return cf.cycle.state.get('http') as HttpState | undefined;
}

/** The conf of module `m` at the current level (main / srv / loc). */
export function mainConf<M>(cf: Conf, m: Module<M, unknown, unknown>): M {
  return (cf.ctx as HttpCtx).main[m.index] as M;
}
export function srvConf<S>(cf: Conf, m: Module<unknown, S, unknown>): S {
  return (cf.ctx as HttpCtx).srv[m.index] as S;
}
export function locConf<L>(cf: Conf, m: Module<unknown, unknown, L>): L {
  return (cf.ctx as HttpCtx).loc[m.index] as L;
}

/** Create a level's srv and/or loc confs for every http module. */
export function createConfs(cf: Conf, level: 'srv' | 'loc'): unknown[] {
  const confs: unknown[] = [];
  for (const m of cf.cycle.modules) {
    if (level === 'srv') {
      if (m.createSrvConf) confs[m.index] = m.createSrvConf(cf);
    } else if (m.createLocConf) confs[m.index] = m.createLocConf(cf);
  }
  return confs;
}

/**
 * Hooks the core module gives ngx_http_module for merging: where the servers
 * and the location children live. http_core.ts registers them so this file
 * needs no knowledge of its conf shapes.
 */
export interface HttpCoreHooks {
  servers(ctx: HttpCtx): HttpCtx[];
  /** child location ctxs of a location ctx (nested locations and ifs) */
  children(loc: unknown[]): unknown[][];
  /** after merging: build location trees, server name tables, listens */
  finish(cf: Conf, ctx: HttpCtx): void;
  /** after variables are resolved: server names per address (ngx_http_optimize_servers) */
  afterVariables?(cf: Conf, ctx: HttpCtx): void;
}

let coreHooks: HttpCoreHooks | undefined;
export function setHttpCoreHooks(h: HttpCoreHooks): void {
  coreHooks = h;
}

function mergeLocations(cf: Conf, parent: unknown[], children: unknown[][]): void {
  for (const child of children) {
    for (const m of cf.cycle.modules) {
      if (m.mergeLocConf && child[m.index] !== undefined) m.mergeLocConf(cf, parent[m.index], child[m.index]);
    }
    mergeLocations(cf, child, coreHooks!.children(child));
  }
}

export const httpModule = defineModule({
  name: 'http',
  commands: [
    {
      name: 'http',
      ctx: MAIN_CONF,
      args: BLOCK | NOARGS,
      set(cf) {
        if (cf.cycle.state.has('http')) return 'is duplicate';
        const variables = new Variables();
        cf.cycle.state.set('http.variables', variables);
        const ctx: HttpCtx = { main: [], srv: [], loc: [] };
        const state: HttpState = { ctx, variables };
        cf.cycle.state.set('http', state);
        const modules = cf.cycle.modules;
        for (const m of modules) {
          if (m.createMainConf) ctx.main[m.index] = m.createMainConf(cf);
          if (m.createSrvConf) ctx.srv[m.index] = m.createSrvConf(cf);
          if (m.createLocConf) ctx.loc[m.index] = m.createLocConf(cf);
        }
        const saved = cf.ctx;
        cf.ctx = ctx;
        for (const m of modules) m.preConfiguration?.(cf);
        cf.ctx = saved;

        cf.parseBlock(HTTP_MAIN_CONF, ctx);

        cf.ctx = ctx;
        try {
          for (const m of modules) m.initMainConf?.(cf, ctx.main[m.index]);
          for (const srv of coreHooks!.servers(ctx)) {
            for (const m of modules) {
              if (m.mergeSrvConf) m.mergeSrvConf(cf, ctx.srv[m.index], srv.srv[m.index]);
              if (m.mergeLocConf) m.mergeLocConf(cf, ctx.loc[m.index], srv.loc[m.index]);
            }
            mergeLocations(cf, srv.loc, coreHooks!.children(srv.loc));
          }
          coreHooks!.finish(cf, ctx);
          for (const m of modules) m.postConfiguration?.(cf);
          variables.initVars();
          coreHooks!.afterVariables?.(cf, ctx);
        } finally {
          cf.ctx = saved;
        }
      },
    },
  ],
});
