import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errnoSuffix } from '../../core/errno.js';
import type { HttpRequest } from '../../http/http_request.js';
import { DONE, ERROR, OK, type Request } from '../../http/request.js';
import { SubRequest, createSubrequest } from '../../http/subrequest.js';
import { echoPaths, type EchoLocConf } from './conf.js';
import { echoText } from './filter.js';
import { atofp3, echoAtosz, evalEchoArgs, parseUnsafeUri } from './util.js';

/*
 * The echo content handler (ngx_http_echo_handler.c and friends): runs the
 * location's commands in order. echo_sleep, echo_location and
 * echo_subrequest suspend the run; the timer or the subrequest's end
 * resumes it at the next command. echo_location_async and
 * echo_subrequest_async start a subrequest and go on at once; their bodies
 * still land in order (lib/http/subrequest.ts). The client body is read
 * before any content handler runs, so echo_read_request_body has nothing
 * left to do.
 */

/** the run is suspended; something will resume it */
const AGAIN = -2;
const EMPTY = Buffer.alloc(0);

interface EchoCtx {
  /** ctx->next_handler_cmd */
  next: number;
  /** ctx->header_sent */
  headerSent: boolean;
  /** the location's echo conf */
  conf: EchoLocConf;
}


/** ngx_http_echo_send_header_if_needed: echo_status, types/default_type, no Content-Length */
function sendHeaderIfNeeded(r: HttpRequest, ctx: EchoCtx): void {
  if (r.headerSent || ctx.headerSent) return;
  r.status = ctx.conf.status;
  r.contentLength = -1;
  r.sendHeader();
  ctx.headerSent = true;
}

/** ngx_http_echo_send_chain_link with data */
function send(r: HttpRequest, ctx: EchoCtx, data: Buffer): void {
  sendHeaderIfNeeded(r, ctx);
  if (r.headerOnly) return;
  r.send(data);
}

/** echo_location / echo_location_async / echo_subrequest*: start the child */
function subrequest(r: HttpRequest, ctx: EchoCtx, op: string, args: string[], wait: boolean): number {
  let method: string | undefined;
  let target: string;
  let query: string | undefined;
  let body: Buffer | undefined;
  let bodyInFile = false;
  if (op === 'echo_subrequest' || op === 'echo_subrequest_async') {
    method = args[0]!;
    target = args[1]!;
    if (target.length === 0) return ERROR;
    let bodyStr: string | undefined;
    let bodyFile: string | undefined;
    for (let i = 2; i < args.length; i += 2) {
      const opt = args[i]!;
      if (opt !== '-q' && opt !== '-b' && opt !== '-f') {
        r.log('error', `unknown option for echo_subrequest*: ${opt}`);
        return ERROR;
      }
      // an option with no value: the module's own check
      if (i + 1 >= args.length) break;
      if (opt === '-q') query = args[i + 1]!;
      else if (opt === '-b') bodyStr = args[i + 1]!;
      else bodyFile = args[i + 1]!;
    }
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
  } else {
    target = args[0]!;
    if (target.length === 0) return ERROR;
    if (args.length > 1) query = args[1]!;
  }
  const parsed = parseUnsafeUri(target);
  if (!parsed) return ERROR;
  if (parsed.args !== undefined && parsed.args.length > 0 && query === undefined) query = parsed.args;
  sendHeaderIfNeeded(r, ctx);
  if (r.headerOnly) return OK;
  const sr = createSubrequest(r, parsed.uri, query ?? '', {
    method,
    body,
    bodyInFile,
    ownVariables: true,
    done: wait ? () => resume(r, ctx) : undefined,
  });
  if (!sr) return ERROR;
  return wait ? AGAIN : OK;
}

/** ngx_http_echo_run_cmds: OK when the response ended, AGAIN when suspended, else an error */
function runCmds(r: HttpRequest, ctx: EchoCtx): number {
  const cmds = ctx.conf.handlerCmds!;
  for (; ctx.next < cmds.length; ctx.next++) {
    const cmd = cmds[ctx.next]!;
    const { args, opts } = evalEchoArgs(r, cmd);
    let rc = OK;
    switch (cmd.op) {
      case 'echo_sync':
        // an empty buffer through the filters: echo_before_body goes out first
        send(r, ctx, EMPTY);
        break;
      case 'echo': {
        const text = echoText(args, opts);
        if (text.length) send(r, ctx, Buffer.from(text, 'latin1'));
        break;
      }
      case 'echo_request_body':
        // the body's buffers go out in one output_filter call: one chunk
        if (r instanceof SubRequest && r.fileBody) {
          if (r.fileBody.length) send(r, ctx, r.fileBody);
        } else if (r.body && r.body.length) send(r, ctx, r.body.length === 1 ? r.body[0]! : Buffer.concat(r.body));
        break;
      case 'echo_duplicate': {
        const count = echoAtosz(args[0]!);
        if (count === -1) {
          r.log('error', `invalid size specified: "${args[0]}"`);
          return 500;
        }
        const str = args[1]!;
        if (count === 0 || str.length === 0) sendHeaderIfNeeded(r, ctx);
        else send(r, ctx, Buffer.from(str.repeat(count), 'latin1'));
        break;
      }
      case 'echo_sleep': {
        const ms = atofp3(args[0]!);
        if (ms === -1) {
          r.log('error', `invalid sleep duration "${args[0]}"`);
          return 400;
        }
        const timer = setTimeout(() => resume(r, ctx), ms);
        r.onAbort(() => clearTimeout(timer));
        return AGAIN;
      }
      case 'echo_location':
      case 'echo_subrequest':
        return subrequest(r, ctx, cmd.op, args, true);
      case 'echo_location_async':
      case 'echo_subrequest_async':
        rc = subrequest(r, ctx, cmd.op, args, false);
        break;
      case 'echo_read_request_body':
        break;
      default:
        break;
    }
    if (rc !== OK) return rc;
  }
  sendHeaderIfNeeded(r, ctx);
  r.finish();
  return OK;
}

/** the run's verdict: errors after the header was sent can only cut the response */
function conclude(r: HttpRequest, rc: number): void {
  if (rc === OK || rc === AGAIN) return;
  if (rc === ERROR || r.headerSent) r.terminate();
  else r.finalize(rc);
}

/** ngx_http_echo_wev_handler: the timer or the subrequest is done; go on */
function resume(r: HttpRequest, ctx: EchoCtx): void {
  if (r.aborted || r.finished) return;
  ctx.next++;
  conclude(r, runCmds(r, ctx));
}

/** the echo content handler of a location with echo commands */
export function echoContentHandler(req: Request, elcf: EchoLocConf | undefined): number {
  const r = req as HttpRequest;
  if (!elcf?.handlerCmds) return DONE;
  const ctx: EchoCtx = { next: 0, headerSent: false, conf: elcf };
  conclude(r, runCmds(r, ctx));
  return DONE;
}

