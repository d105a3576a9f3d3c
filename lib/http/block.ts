import { BLOCK, HTTP_MAIN_CONF, MAIN_CONF, NOARGS, defineModule } from '../conf/command.js';
import type { Conf } from '../conf/parser.js';
import { coreLoc, httpCoreModule, type CoreMainConf } from './core/module.js';
import { checkLocations, checkServerNames } from './core/check.js';
import { httpModulesOf, type HttpCtx, type HttpState } from './module.js';
import { Variables } from './variables.js';

/*
 * ngx_http_module: the `http { }` block. It creates every http module's main,
 * server and location confs, parses the block, then merges server and
 * location confs downwards (servers and their location trees are
 * http_core's: core/), and runs each module's post-configuration.
 */

/* the conf levels of http_core's servers, and of a location level's nested locations and ifs */
const serversOf = (ctx: HttpCtx): HttpCtx[] => (ctx.main[httpCoreModule.index] as CoreMainConf).servers.map((s) => s.ctx);
const childrenOf = (loc: unknown[]): unknown[][] => coreLoc(loc).locations.map((l) => l.locConf);

/** every nested level merged with its parent, depth first in config order, without recursion (nesting can be deep) */
function mergeLocations(cf: Conf, parent: unknown[], children: unknown[][]): void {
  const modules = httpModulesOf(cf.cycle);
  const stack: Array<[unknown[], unknown[]]> = [];
  for (let i = children.length - 1; i >= 0; i--) stack.push([parent, children[i]!]);
  while (stack.length) {
    const [p, child] = stack.pop()!;
    for (const m of modules) {
      if (m.mergeLocConf && child[m.index] !== undefined) m.mergeLocConf(cf, p[m.index], child[m.index]);
    }
    const kids = childrenOf(child);
    for (let i = kids.length - 1; i >= 0; i--) stack.push([child, kids[i]!]);
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
        const modules = httpModulesOf(cf.cycle);
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
          for (const srv of serversOf(ctx)) {
            for (const m of modules) {
              if (m.mergeSrvConf) m.mergeSrvConf(cf, ctx.srv[m.index], srv.srv[m.index]);
              if (m.mergeLocConf) m.mergeLocConf(cf, ctx.loc[m.index], srv.loc[m.index]);
            }
            mergeLocations(cf, srv.loc, childrenOf(srv.loc));
          }
          const main = ctx.main[httpCoreModule.index] as CoreMainConf;
          for (const cscf of main.servers) checkLocations(coreLoc(cscf.ctx.loc));
          for (const m of modules) m.postConfiguration?.(cf);
          variables.initVars();
          checkServerNames(cf, main);
        } finally {
          cf.ctx = saved;
        }
      },
    },
  ],
});
