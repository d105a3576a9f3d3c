import { hooks } from './hooks.js';
import { setCaptures } from './regex_exec.js';
import { coreLoc, type CoreLocConf } from './core/module.js';
import { KEEPALIVE_DISABLE_MSIE6, KEEPALIVE_DISABLE_SAFARI, uaMsie6, uaSafari } from './user_agent.js';
import type { HttpRequest } from './http_request.js';
import { Head } from './head.js';
import { findLocation, locationLevel, type FoundLocation } from './locations.js';
import { DECLINED, DONE, OK, type ContentHandler, type PhaseHandler } from './request.js';
import { staticHandler, tryFiles } from './static.js';
import { escapeUriPath } from './unescape.js';

/*
 * The phase engine (ngx_http_core_run_phases): post-read (a new request
 * only) → server rewrite → find location → rewrite → post-rewrite (a
 * changed URI searches again, at most 10 times) → pre-access → access
 * (satisfy all/any) → post-access → try_files → content. Internal
 * redirects restart at server rewrite, named locations at rewrite, as
 * nginx's.
 *
 * A post-read, pre-access or access handler may go asynchronous: it
 * returns DONE after calling suspendPhase(r), and later resumePhases(r)
 * runs the same handler again (nginx's NGX_AGAIN then
 * ngx_http_core_run_phases at r->phase_handler): limit_req's delay, a
 * zone lookup over IPC. The handler sees its own state on the request and
 * declines the second time.
 */

export const enum P {
  PostRead,
  ServerRewrite,
  FindConfig,
  Rewrite,
  PostRewrite,
  PreAccess,
  Access,
  PostAccess,
  Content,
}

/** set r.loc/locConf to a location level */
function setLoc(r: HttpRequest, loc: CoreLocConf): void {
  r.loc = loc;
  r.locConf = loc.locConf;
}

/** run a phase's handlers; returns DECLINED to go on, else what to finalize with */
function runHandlers(r: HttpRequest, list: PhaseHandler[], from = 0): number {
  for (let i = from; i < list.length; i++) {
    r.phaseIndex = i;
    const rc = list[i]!(r);
    if (rc === DECLINED || rc === OK) continue;
    return rc;
  }
  return DECLINED;
}

/**
 * ngx_http_core_access_phase over the access handlers: under `satisfy all`
 * the first refusal ends the request; under `satisfy any` the first OK
 * lets it through (dropping a WWW-Authenticate an earlier handler added)
 * and refusals (403, 401: 401 wins) wait for post-access.
 */
function runAccess(r: HttpRequest, from: number): number {
  const list = hooks.access;
  const any = r.loc.satisfy === 1;
  for (let i = from; i < list.length; i++) {
    r.phaseIndex = i;
    const rc = list[i]!(r);
    if (rc === DECLINED) continue;
    if (rc === DONE) return rc;
    if (!any) {
      if (rc === OK) continue;
      return rc;
    }
    if (rc === OK) {
      r.accessCode = 0;
      r.headersOut = r.headersOut.filter((h) => h[0] !== 'WWW-Authenticate');
      return DECLINED;
    }
    if (rc === 403 || rc === 401) {
      if (r.accessCode !== 401) r.accessCode = rc;
      continue;
    }
    return rc;
  }
  return DECLINED;
}

/** mark the request as suspended in `phase` at its current handler (the handler then returns DONE) */
export function suspendPhase(r: HttpRequest, phase: P): void {
  r.phaseAt = phase;
}

/** run the suspended handler again and go on from there (ngx_http_core_run_phases) */
export function resumePhases(r: HttpRequest): void {
  if (r.finished || r.aborted) return;
  runPhases(r, r.phaseAt, r.phaseIndex);
}

/** a phase hook's verdict: a `return CODE TEXT` body, an error page, or nothing */
function finalizeFromPhase(r: HttpRequest, rc: number): void {
  if (rc === DONE) return;
  const text = r.returnText;
  if (rc >= 100 && text !== undefined) {
    r.returnText = undefined;
    r.sendResponse(rc, text);
    return;
  }
  r.finalize(rc);
}

const found: FoundLocation = { loc: undefined as unknown as CoreLocConf, captures: undefined, redirect: false };

export function runPhases(r: HttpRequest, start: P = P.PostRead, from = 0): void {
  let phase = start;
  for (;;) {
    switch (phase) {
      case P.PostRead: {
        // a client request only: subrequests and internal redirects start at server rewrite;
        // the server's configuration applies (nginx's r->loc_conf before the location is found)
        if (from === 0) setLoc(r, coreLoc(r.srv.ctx.loc));
        const rc = r.main === r ? runHandlers(r, hooks.postRead, from) : DECLINED;
        from = 0;
        if (rc !== DECLINED) return finalizeFromPhase(r, rc);
        phase = P.ServerRewrite;
        break;
      }
      case P.ServerRewrite: {
        setLoc(r, coreLoc(r.srv.ctx.loc));
        const rc = runHandlers(r, hooks.serverRewrite);
        if (rc !== DECLINED) return finalizeFromPhase(r, rc);
        phase = P.FindConfig;
        break;
      }
      case P.FindConfig: {
        r.uriChanged = false;
        const srvLoc = coreLoc(r.srv.ctx.loc);
        if (findLocation(srvLoc, r.uri, found)) {
          setLoc(r, found.loc);
          if (found.captures) setCaptures(r, found.loc.regex!, found.captures);
        } else setLoc(r, srvLoc);
        const clcf = r.loc;
        if (!r.internal && clcf.internal === 1) return r.finalize(404);
        updateLocationConfig(r);
        const max = clcf.clientMaxBodySize;
        if (r.contentLengthIn !== -1 && r.bodyState !== 'discard' && max && max < r.contentLengthIn) {
          r.log('error', `client intended to send too large body: ${r.contentLengthText ?? r.contentLengthIn} bytes`);
          r.expectTested = true;
          return r.finalize(413);
        }
        if (found.redirect) {
          // nginx's auto_redirect: the location's escaped name, the args kept
          const name = escapeUriPath(clcf.name);
          r.location = r.args ? `${name}?${r.args}` : name;
          return r.finalize(301);
        }
        phase = P.Rewrite;
        break;
      }
      case P.Rewrite: {
        const rc = runHandlers(r, hooks.rewrite);
        if (rc !== DECLINED) return finalizeFromPhase(r, rc);
        phase = P.PostRewrite;
        break;
      }
      case P.PostRewrite:
        if (!r.uriChanged) {
          phase = P.PreAccess;
          break;
        }
        if (--r.uriChanges === 0) {
          r.log('error', `rewrite or internal redirection cycle while processing "${r.uri}"`);
          return r.finalize(500);
        }
        phase = P.FindConfig;
        break;
      case P.PreAccess: {
        const rc = runHandlers(r, hooks.preAccess, from);
        from = 0;
        if (rc !== DECLINED) return finalizeFromPhase(r, rc);
        phase = P.Access;
        break;
      }
      case P.Access: {
        // ngx_http_core_access_phase: subrequests skip access checks
        const rc = r.main === r ? runAccess(r, from) : DECLINED;
        from = 0;
        // DONE: a handler went asynchronous (srcache's fetch) and resumes with afterAccess()
        if (rc === 401) return authDelay(r);
        if (rc !== DECLINED) return finalizeFromPhase(r, rc);
        phase = P.PostAccess;
        break;
      }
      case P.PostAccess:
        return afterAccess(r);
      case P.Content:
        return content(r);
    }
  }
}

/**
 * What follows the access phase (post-access, try_files, then content); an access
 * handler that returned DONE calls it when it is done and lets the request
 * go on (nginx's ngx_http_core_run_phases after NGX_AGAIN).
 */
export function afterAccess(r: HttpRequest): void {
  // ngx_http_core_post_access_phase: the refusal `satisfy any` kept
  const code = r.accessCode;
  if (code) {
    r.accessCode = 0;
    if (code === 403) r.log('error', 'access forbidden by rule');
    return code === 401 ? authDelay(r) : r.finalize(code);
  }
  if (r.loc.tryFiles && !r.loc.handler) {
    if (!tryFiles(r)) return;
  }
  content(r);
}

/**
 * What follows the rewrite phase, for a rewrite handler that returned DONE
 * and is done (rewrite_by_lua after a capture): the post-rewrite check
 * (a changed URI searches the locations again), then access and content.
 */
export function afterRewrite(r: HttpRequest): void {
  runPhases(r, P.PostRewrite);
}

/**
 * ngx_http_core_auth_delay: a 401 of the access phase (auth_basic, an
 * access handler's own) is answered after `auth_delay`, so a wrong password
 * takes as long as any other. Meanwhile the client closing ends the request
 * (ngx_http_test_reading: 499, `client prematurely closed connection`).
 */
function authDelay(r: HttpRequest): void {
  const ms = r.loc.authDelay;
  if (ms === 0) return r.finalize(401);
  r.log('info', 'delaying unauthorized request');
  let waiting = true;
  const timer = setTimeout(() => {
    waiting = false;
    if (!r.finished && !r.aborted) r.finalize(401);
  }, ms);
  r.checkBroken(() => {
    if (!waiting) return false;
    waiting = false;
    clearTimeout(timer);
    r.log('info', 'client prematurely closed connection');
    return true;
  });
}

/** ngx_http_update_location_config: keep-alive limits of the location */
function updateLocationConfig(r: HttpRequest): void {
  // limit_except: a method it does not let through is served under its level
  const lmt = r.loc.limitExcept;
  if (lmt !== undefined && !lmt.allowed.has(r.method)) setLoc(r, lmt.loc);
  const clcf = r.loc;
  if (r.keepalive) {
    if (clcf.keepaliveTimeout === 0) r.keepalive = false;
    else if (r.connectionRequests >= clcf.keepaliveRequests) r.keepalive = false;
    else if (clcf.keepaliveDisable & (KEEPALIVE_DISABLE_MSIE6 | KEEPALIVE_DISABLE_SAFARI)) {
      // keepalive_disable: MSIE 6 only for POST, Safari always
      const h = r.req;
      const ua = h instanceof Head ? h.userAgent : h.byName.get('user-agent');
      if (ua !== undefined) {
        if (r.method === 'POST' && clcf.keepaliveDisable & KEEPALIVE_DISABLE_MSIE6 && uaMsie6(ua)) r.keepalive = false;
        else if (clcf.keepaliveDisable & KEEPALIVE_DISABLE_SAFARI && uaSafari(ua)) r.keepalive = false;
      }
    }
  }
}

function content(r: HttpRequest): void {
  const handler = r.loc.handler;
  if (!handler) {
    // the body is discarded after the handler (an error page discards it, a finished response too,
    // as nginx's static handler does once the file opened: its log lines come first)
    const rc = staticHandler(r);
    if (rc !== DONE) r.finalize(rc);
    return;
  }
  // a handler that decides itself whether to read the body (echo) runs at once
  if (handler.ownBody) {
    runContent(r, handler);
    return;
  }
  r.conn.readBody(r, (status) => {
    if (status !== OK) {
      r.finalize(status);
      return;
    }
    runContent(r, handler);
  });
}

function runContent(r: HttpRequest, handler: ContentHandler): void {
  let rc: number | Promise<number>;
  try {
    rc = handler(r);
  } catch (e) {
    r.log('alert', `content handler failed: ${(e as Error).stack ?? e}`);
    r.finalize(500);
    return;
  }
  if (typeof rc === 'number') contentDone(r, rc);
  else
    rc.then(
      (v) => contentDone(r, v),
      (e: unknown) => {
        r.log('alert', `content handler failed: ${(e as Error).stack ?? e}`);
        r.finalize(r.headerSent ? 502 : 500);
      },
    );
}

function contentDone(r: HttpRequest, rc: number): void {
  if (rc === DONE || r.finished) return;
  if (rc === OK || rc === DECLINED) r.finish();
  else r.finalize(rc);
}

/** ngx_http_internal_redirect */
export function internalRedirect(r: HttpRequest, uri: string, args: string): void {
  if (--r.uriChanges === 0) {
    r.log('error', `rewrite or internal redirection cycle while internally redirecting to "${uri}"`);
    r.errorPage = true;
    r.finalize(500);
    return;
  }
  r.uri = uri;
  r.args = args;
  r.internal = true;
  r.ctxEpoch++;
  // ngx_http_handler: no log action yet (the static handler's "sending response to client" goes),
  // and the redirected request's gzip tests start afresh
  r.action = undefined;
  r.gzipTested = false;
  r.gzipOk = false;
  r.gzipVary = false;
  runPhases(r, P.ServerRewrite);
}

/** ngx_http_named_location */
export function namedLocation(r: HttpRequest, name: string): void {
  const srvLoc = coreLoc(r.srv.ctx.loc);
  const loc = locationLevel(srvLoc)?.named.get(name);
  if (!loc) {
    r.log('error', `could not find named location "${name}"`);
    r.errorPage = true;
    r.finalize(500);
    return;
  }
  if (--r.uriChanges === 0) {
    r.log('error', `rewrite or internal redirection cycle while redirect to named location "${name}"`);
    r.errorPage = true;
    r.finalize(500);
    return;
  }
  r.internal = true;
  r.ctxEpoch++;
  setLoc(r, loc);
  updateLocationConfig(r);
  runPhases(r, P.Rewrite);
}

/**
 * The life of a phase handler that may reach its verdict inside the call or
 * later (a zone owned by another process answers over IPC, a delay's timer):
 * end(rc) either becomes the handler's return value, or, once the handler
 * has returned DONE with the phase suspended, resumes the phases (DECLINED:
 * the handler runs again and goes on) or finalizes the request with rc.
 * limit_req and limit_conn run on it.
 */
export class PhaseRun {
  readonly r: HttpRequest;
  private readonly phase: P;
  /** the verdict reached before the handler returned (undefined: still waiting) */
  private result: number | undefined = undefined;
  /** true while the handler has not returned yet */
  protected sync = true;

  constructor(r: HttpRequest, phase: P) {
    this.r = r;
    this.phase = phase;
  }

  /** the verdict: DECLINED goes on, a status ends the request, DONE waits on */
  end(rc: number): void {
    if (this.sync) {
      this.result = rc;
      return;
    }
    const r = this.r;
    if (r.finished || r.aborted) return;
    if (rc === DECLINED) resumePhases(r);
    else if (rc !== DONE) r.finalize(rc);
  }

  /** what the handler returns: its verdict, or DONE with the phase suspended until end() */
  returned(): number {
    this.sync = false;
    if (this.result !== undefined && this.result !== DONE) return this.result;
    suspendPhase(this.r, this.phase);
    return DONE;
  }
}
