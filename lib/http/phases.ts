import { hooks } from './hooks.js';
import { setCaptures } from './regex_exec.js';
import { coreLoc, type CoreLocConf } from './core/module.js';
import type { HttpRequest } from './http_request.js';
import { findLocation, locationLevel, type FoundLocation } from './locations.js';
import { DECLINED, DONE, OK, type PhaseHandler } from './request.js';
import { staticHandler, tryFiles } from './static.js';
import { escapeUriPath } from './unescape.js';

/*
 * The phase engine (ngx_http_core_run_phases): server rewrite → find
 * location → rewrite → post-rewrite (a changed URI searches again, at most
 * 10 times) → access → try_files → content. Internal redirects restart at
 * server rewrite, named locations at rewrite, as nginx's.
 */

const enum P {
  ServerRewrite,
  FindConfig,
  Rewrite,
  PostRewrite,
  Access,
  Content,
}

/** set r.loc/locConf to a location level */
function setLoc(r: HttpRequest, loc: CoreLocConf): void {
  r.loc = loc;
  r.locConf = loc.locConf;
}

/** run a phase's handlers; returns DECLINED to go on, else what to finalize with */
function runHandlers(r: HttpRequest, list: PhaseHandler[]): number {
  for (const h of list) {
    const rc = h(r);
    if (rc === DECLINED || rc === OK) continue;
    return rc;
  }
  return DECLINED;
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

export function runPhases(r: HttpRequest, start: P = P.ServerRewrite): void {
  let phase = start;
  for (;;) {
    switch (phase) {
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
          phase = P.Access;
          break;
        }
        if (--r.uriChanges === 0) {
          r.log('error', `rewrite or internal redirection cycle while processing "${r.uri}"`);
          return r.finalize(500);
        }
        phase = P.FindConfig;
        break;
      case P.Access: {
        // ngx_http_core_access_phase: subrequests skip access checks
        const rc = r.main === r ? runHandlers(r, hooks.access) : DECLINED;
        // DONE: a handler went asynchronous (srcache's fetch) and resumes with afterAccess()
        if (rc !== DECLINED) return finalizeFromPhase(r, rc);
        return afterAccess(r);
      }
      case P.Content:
        return content(r);
    }
  }
}

/**
 * What follows the access phase (try_files, then content); an access
 * handler that returned DONE calls it when it is done and lets the request
 * go on (nginx's ngx_http_core_run_phases after NGX_AGAIN).
 */
export function afterAccess(r: HttpRequest): void {
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

/** ngx_http_update_location_config: keep-alive limits of the location */
function updateLocationConfig(r: HttpRequest): void {
  const clcf = r.loc;
  if (r.keepalive) {
    if (clcf.keepaliveTimeout === 0) r.keepalive = false;
    else if (r.connectionRequests >= clcf.keepaliveRequests) r.keepalive = false;
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
  r.conn.readBody(r, (status) => {
    if (status !== OK) {
      r.finalize(status);
      return;
    }
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
  });
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
  setLoc(r, loc);
  updateLocationConfig(r);
  runPhases(r, P.Rewrite);
}
