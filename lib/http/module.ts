import type { Module } from '../conf/command.js';
import type { Conf, Cycle } from '../conf/parser.js';
import type { HttpRequest } from './http_request.js';
import type { PhaseHandler } from './request.js';
import type { Variables } from './variables.js';

/*
 * The module contract of the http layer (nginx's ngx_http_module_t plus the
 * request-time hooks a module plugs into the engine). A module is one
 * object: its directive table, how its confs are created and merged, and
 * what it does to a request. The engine builds its hook tables (phases,
 * header filters, log) from the module list when a cycle starts serving
 * (engine.ts prepareHttp), in list order; nothing registers itself.
 *
 * Content handlers are per location (CoreLocConf.handler), installed by
 * the directive that makes a location answer (redis2_pass, echo, ...);
 * body filters are per request (HttpRequest.filter), pushed by a header
 * filter that wants to see the body.
 */

export interface HttpModule<M = unknown, S = unknown, L = unknown> extends Module {
  /** before the http block is parsed: define variables (ngx_http_module_t.preconfiguration) */
  preConfiguration?(cf: Conf): void;
  createMainConf?(cf: Conf): M;
  initMainConf?(cf: Conf, conf: M): void;
  createSrvConf?(cf: Conf): S;
  mergeSrvConf?(cf: Conf, prev: S, conf: S): void;
  createLocConf?(cf: Conf): L;
  mergeLocConf?(cf: Conf, prev: L, conf: L): void;
  /** after the whole http block is parsed and merged (phase handlers, variable checks) */
  postConfiguration?(cf: Conf): void;
  /**
   * Request-phase hooks, run in module order within each phase (nginx's
   * cmcf->phases).
   */
  phases?: {
    /** NGX_HTTP_POST_READ_PHASE: once per client request, before server rewrite (realip) */
    postRead?: PhaseHandler;
    serverRewrite?: PhaseHandler;
    rewrite?: PhaseHandler;
    /**
     * A rewrite handler that runs after every module's `rewrite` one, as
     * nginx modules that move their handler to the end of the phase at
     * run time (headers-more's more_set_input_headers) do.
     */
    rewriteTail?: PhaseHandler;
    /**
     * NGX_HTTP_PREACCESS_PHASE: after the location is final, before access
     * (limit_req, limit_conn, realip's location-level pass); subrequests run it too
     */
    preAccess?: PhaseHandler;
    /**
     * NGX_HTTP_ACCESS_PHASE (main requests only): OK admits, 403/401
     * refuse; `satisfy` combines the answers (phases.ts runAccess)
     */
    access?: PhaseHandler;
    /**
     * A content handler for locations without one of their own (nginx's
     * NGX_HTTP_CONTENT_PHASE handlers: autoindex, gzip_static): tried
     * after index and before static, later modules first; DECLINED
     * passes the request on.
     */
    content?: PhaseHandler;
  };
  /**
   * A header filter: runs as a response's header is sent (main requests
   * and subrequests), after the status is final and before the engine's
   * chunked / keep-alive decisions; it may add headersOut, drop the
   * Content-Length, or push a body filter on the request.
   */
  headerFilter?(r: HttpRequest): void;
  /** the log phase: once per finished main request (nginx's NGX_HTTP_LOG_PHASE) */
  log?(r: HttpRequest): void;
}

/** Declare an http module; the registry fills in its index. */
export function defineHttpModule<M = unknown, S = unknown, L = unknown>(
  m: Omit<HttpModule<M, S, L>, 'index'>,
): HttpModule<M, S, L> {
  return { ...m, index: -1 };
}

/** every module of a cycle, seen through the http contract (its hooks are all optional) */
export function httpModulesOf(cycle: Cycle): HttpModule[] {
  return cycle.modules as HttpModule[];
}

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

/** The conf of module `m` at the current level (main / srv / loc). */
export function mainConf<M>(cf: Conf, m: HttpModule<M, unknown, unknown>): M {
  return (cf.ctx as HttpCtx).main[m.index] as M;
}
export function srvConf<S>(cf: Conf, m: HttpModule<unknown, S, unknown>): S {
  return (cf.ctx as HttpCtx).srv[m.index] as S;
}
export function locConf<L>(cf: Conf, m: HttpModule<unknown, unknown, L>): L {
  return (cf.ctx as HttpCtx).loc[m.index] as L;
}

/** Create a level's srv and/or loc confs for every http module. */
export function createConfs(cf: Conf, level: 'srv' | 'loc'): unknown[] {
  const confs: unknown[] = [];
  for (const m of httpModulesOf(cf.cycle)) {
    if (level === 'srv') {
      if (m.createSrvConf) confs[m.index] = m.createSrvConf(cf);
    } else if (m.createLocConf) confs[m.index] = m.createLocConf(cf);
  }
  return confs;
}

