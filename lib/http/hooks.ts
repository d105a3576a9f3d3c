import type { HttpRequest } from './http_request.js';
import type { HttpModule } from './module.js';
import type { PhaseHandler } from './request.js';

/*
 * The engine's hook tables (nginx's cmcf->phases, the filter chain and the
 * log phase), built from the module list each time a cycle starts serving
 * (engine.ts prepareHttp). Phase and log handlers run in module-list
 * order (the rewrite tails after the rest of the rewrite phase); header
 * filters in reverse, as nginx's chain is built: each module's filter
 * goes on top of those registered before it, so a module later in the
 * list (srcache, headers-more, echo) sees the response before an earlier
 * one (add_header's headers filter). Plain arrays read by the hot path:
 * phases.ts, http_request.ts (header filters) and connection.ts (log).
 */

export interface HookTables {
  postRead: PhaseHandler[];
  serverRewrite: PhaseHandler[];
  rewrite: PhaseHandler[];
  preAccess: PhaseHandler[];
  access: PhaseHandler[];
  /** content handlers of locations without their own (autoindex, gzip_static): reverse list order, as nginx runs them */
  content: PhaseHandler[];
  headerFilter: Array<(r: HttpRequest) => void>;
  log: Array<(r: HttpRequest) => void>;
}

const empty = (): HookTables => ({ postRead: [], serverRewrite: [], rewrite: [], preAccess: [], access: [], content: [], headerFilter: [], log: [] });

export const hooks: HookTables = empty();

export function buildHooks(modules: readonly HttpModule[]): void {
  const t = empty();
  const tails: PhaseHandler[] = [];
  for (const m of modules) {
    if (m.phases?.postRead) t.postRead.push(m.phases.postRead);
    if (m.phases?.serverRewrite) t.serverRewrite.push(m.phases.serverRewrite);
    if (m.phases?.rewrite) t.rewrite.push(m.phases.rewrite);
    if (m.phases?.rewriteTail) tails.push(m.phases.rewriteTail);
    if (m.phases?.preAccess) t.preAccess.push(m.phases.preAccess);
    if (m.phases?.access) t.access.push(m.phases.access);
    if (m.phases?.content) t.content.push(m.phases.content);
    if (m.headerFilter) t.headerFilter.push(m.headerFilter.bind(m));
    if (m.log) t.log.push(m.log.bind(m));
  }
  t.headerFilter.reverse();
  t.content.reverse();
  // the rewrite tails after every module's rewrite handler
  t.rewrite.push(...tails);
  // in place: modules that captured `hooks` keep seeing the current tables
  Object.assign(hooks, t);
}
