import type { Cycle } from '../conf/parser.js';
import { errnoSuffix } from '../core/errno.js';
import { httpModulesOf, type HttpState } from './module.js';
import { coreLoc, httpCoreModule, type CoreMainConf } from './core/module.js';
import { attachCoreVariables } from './core_variables.js';
import { buildLocationTree } from './locations.js';
import { buildHooks } from './hooks.js';
import { buildListens, type ListenSocket } from './servers.js';

/*
 * ngx_http_block's run-time half: from a loaded cycle, build the location
 * trees, the phase table and the listening sockets, then accept.
 */

export interface BindError {
  text: string;
  err: NodeJS.ErrnoException;
}

export function bindErrorText(e: BindError): string {
  return `bind() to ${e.text} failed ${errnoSuffix(e.err)}`;
}

/** prepare the http side of a cycle; returns the sockets to open (none without `http {}`) */
export function prepareHttp(cycle: Cycle): ListenSocket[] {
  const state = cycle.state.get('http') as HttpState | undefined;
  if (!state) return [];
  attachCoreVariables(state.variables);
  buildHooks(httpModulesOf(cycle));
  const main = state.ctx.main[httpCoreModule.index] as CoreMainConf;
  for (const srv of main.servers) buildLocationTree(coreLoc(srv.ctx.loc));
  return buildListens(main.servers, state.variables);
}
