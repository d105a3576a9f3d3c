import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errnoSuffix } from '../../core/errno.js';
import type { HttpRequest } from '../../http/http_request.js';
import { internalRedirect, namedLocation } from '../../http/phases.js';
import { DONE, ERROR, OK } from '../../http/request.js';
import { createSubrequest } from '../../http/subrequest.js';
import { echoPaths } from './conf.js';
import type { EchoCtx } from './ctx.js';
import { resume } from './handler.js';
import { AGAIN, sendHeaderIfNeeded } from './output.js';
import { echoDebug } from './util.js';
import { parseUnsafeUri } from '../../http/unsafe_uri.js';

/*
 * echo_location, echo_subrequest (and their _async forms) and echo_exec
 * (ngx_http_echo_location.c, ngx_http_echo_subrequest.c): the target is
 * checked as nginx's ngx_http_parse_unsafe_uri does (an unsafe one fails
 * the request, with a debug line), the header goes out first, then the
 * subrequest starts with variables of its own. The waiting forms return
 * AGAIN and the parent's run resumes when the child is done.
 */

/** a subrequest target: path and query, the parsed options of echo_subrequest */
interface Spec {
  method: string | undefined;
  uri: string;
  query: string | undefined;
  body: Buffer | undefined;
  bodyInFile: boolean;
}

function start(r: HttpRequest, ctx: EchoCtx, op: string, spec: Spec, wait: boolean): number {
  const parsed = parseUnsafeUri(spec.uri);
  if (parsed.unsafe) {
    echoDebug(r, `${op} sees unsafe uri: "${parsed.uri}"`);
    return ERROR;
  }
  let query = spec.query;
  if (parsed.args !== undefined && parsed.args.length > 0 && query === undefined) query = parsed.args;
  const rc = sendHeaderIfNeeded(r, ctx);
  if (rc !== OK || r.headerOnly) return rc;
  const sr = createSubrequest(r, parsed.uri, query ?? '', {
    method: spec.method,
    body: spec.body,
    bodyInFile: spec.bodyInFile,
    ownVariables: true,
    done: wait ? () => resume(r, ctx) : undefined,
  });
  if (!sr) return ERROR;
  // a HEAD subrequest sends no body (echo's adjust_subrequest sets header_only)
  return wait ? AGAIN : OK;
}

/** echo_location / echo_location_async URI [QUERY] */
export function execLocation(r: HttpRequest, ctx: EchoCtx, op: string, args: string[]): number {
  const uri = args[0]!;
  if (uri.length === 0) return ERROR;
  const spec: Spec = { method: undefined, uri, query: args.length > 1 ? args[1]! : undefined, body: undefined, bodyInFile: false };
  return start(r, ctx, op, spec, op === 'echo_location');
}

/** echo_subrequest / echo_subrequest_async METHOD URI [-q QUERY] [-b BODY] [-f FILE] */
export function execSubrequest(r: HttpRequest, ctx: EchoCtx, op: string, args: string[]): number {
  const uri = args[1]!;
  if (uri.length === 0) return ERROR;
  let query: string | undefined;
  let bodyStr: string | undefined;
  let bodyFile: string | undefined;
  // ngx_http_echo_parse_subrequest_spec: options, each with a value (a last one without is ignored)
  for (let i = 2; i < args.length; i += 2) {
    const opt = args[i]!;
    if (opt !== '-q' && opt !== '-b' && opt !== '-f') {
      r.log('error', `unknown option for echo_subrequest*: ${opt}`);
      return ERROR;
    }
    if (i + 1 >= args.length) break;
    if (opt === '-q') query = args[i + 1]!;
    else if (opt === '-b') bodyStr = args[i + 1]!;
    else bodyFile = args[i + 1]!;
  }
  let body: Buffer | undefined;
  let bodyInFile = false;
  if (bodyStr !== undefined && bodyStr.length) body = Buffer.from(bodyStr, 'latin1');
  else if (bodyFile !== undefined && bodyFile.length) {
    // ngx_http_echo_rebase_path: relative to the prefix
    const path = bodyFile[0] === '/' ? bodyFile : join(echoPaths.prefix, bodyFile);
    try {
      body = readFileSync(path);
      bodyInFile = true;
    } catch (e) {
      r.log('error', `open() "${path}" failed ${errnoSuffix(e)}`);
      return ERROR;
    }
  }
  // the method as named: nginx maps the names it knows to its own constants, keeps others as given
  const method = args[0]!;
  return start(r, ctx, op, { method, uri, query, body, bodyInFile }, op === 'echo_subrequest');
}

/** echo_exec URI [QUERY]: an internal redirect, or a jump to a named location */
export function execExec(r: HttpRequest, args: string[]): number {
  const uri = args[0]!;
  if (uri.length === 0) return 400;
  let query = args.length > 1 ? args[1] : undefined;
  const parsed = parseUnsafeUri(uri);
  if (parsed.unsafe) {
    echoDebug(r, `echo_exec sees unsafe uri: "${parsed.uri}"`);
    return ERROR;
  }
  if (parsed.args !== undefined && parsed.args.length > 0 && query === undefined) query = parsed.args;
  if (parsed.uri[0] === '@') {
    if (query !== undefined && query.length > 0) {
      r.log('warn', `querystring ${query} ignored when exec'ing named location ${parsed.uri}`);
    }
    namedLocation(r, parsed.uri);
    return DONE;
  }
  internalRedirect(r, parsed.uri, query ?? '');
  return DONE;
}
