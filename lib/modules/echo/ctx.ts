import type { HttpRequest } from '../../http/http_request.js';
import type { Request } from '../../http/request.js';
import type { EchoLocConf } from './conf.js';

/*
 * The echo module's per-request context (ngx_http_echo_ctx_t). nginx keeps
 * it in r->ctx, which an internal redirect or a named location clears: a
 * context made before one (by $echo_timer_elapsed in the rewrite phase,
 * say) is not seen after it. Subrequests have contexts of their own.
 */

export interface EchoForeach {
  /** the items echo_foreach_split found */
  choices: string[];
  /** the item $echo_it shows */
  next: number;
  /** the index of the echo_foreach_split command (the loop goes back to it + 1) */
  cmdIndex: number;
}

export interface EchoCtx {
  /** the location conf whose commands run (set by the content handler) */
  conf: EchoLocConf | undefined;
  /** ctx->next_handler_cmd */
  next: number;
  /** ctx->header_sent: this module sent the header */
  headerSent: boolean;
  /** ms since the epoch the timer counts from; 0: the request's start (set on first use) */
  timerBegin: number;
  /** $echo_incr's counter (on the main request's context) */
  counter: number;
  foreach: EchoForeach | undefined;
  /** the request body is being read for echo_read_request_body (or before a subrequest) */
  waitReadBody: boolean;
}

interface Held {
  epoch: number;
  ctx: EchoCtx;
}

const ctxs = new WeakMap<Request, Held>();

/** the request's echo context, if it has one that survived the last redirect */
export function getCtx(r: Request): EchoCtx | undefined {
  const held = ctxs.get(r);
  if (held === undefined || held.epoch !== (r as HttpRequest).ctxEpoch) return undefined;
  return held.ctx;
}

/** ngx_http_echo_create_ctx + ngx_http_set_ctx */
export function createCtx(r: Request): EchoCtx {
  const ctx: EchoCtx = {
    conf: undefined,
    next: 0,
    headerSent: false,
    timerBegin: 0,
    counter: 0,
    foreach: undefined,
    waitReadBody: false,
  };
  ctxs.set(r, { epoch: (r as HttpRequest).ctxEpoch, ctx });
  return ctx;
}

export function getOrCreateCtx(r: Request): EchoCtx {
  return getCtx(r) ?? createCtx(r);
}
