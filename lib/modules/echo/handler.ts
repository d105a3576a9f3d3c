import type { HttpRequest } from '../../http/http_request.js';
import { DONE, ERROR, OK, type Request } from '../../http/request.js';
import { SubRequest } from '../../http/subrequest.js';
import type { EchoCmd, EchoLocConf } from './conf.js';
import { getOrCreateCtx, type EchoCtx } from './ctx.js';
import { echoText } from './filter.js';
import { execExec, execLocation, execSubrequest } from './location.js';
import { AGAIN, EMPTY, sendHeaderIfNeeded, send } from './output.js';
import { atofp3, echoAtosz, evalEchoArgs } from './util.js';

/*
 * The echo content handler (ngx_http_echo_handler.c and friends): runs the
 * location's commands in order. echo_sleep, echo_location,
 * echo_subrequest and a body still to read suspend the run; the timer,
 * the subrequest's end or the body's resume it at the next command.
 * echo_location_async and echo_subrequest_async start a subrequest and go
 * on at once; their bodies still land in order (lib/http/subrequest.ts).
 * The request body is read only by echo_read_request_body or before the
 * first subrequest, as the module does; otherwise it is discarded once the
 * response is done.
 */

/** echo_abort_parent's place in the module's opcode list: its run loop knows no such opcode */
const ABORT_PARENT_OPCODE = 17;

/** a shared word for echo_blocking_sleep's Atomics.wait (nothing ever wakes it) */
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** the request body was read (nginx's r->request_body is set) or is being discarded */
function bodyRead(r: HttpRequest): boolean {
  return r.bodyState === 'read' || r.bodyState === 'discard';
}

/**
 * ngx_http_echo_exec_echo_read_request_body: OK when the body is there,
 * AGAIN when it is still coming (resume() runs the next command then), or
 * the reader's error status
 */
function readBody(r: HttpRequest, ctx: EchoCtx): number {
  ctx.waitReadBody = false;
  let sync = true;
  let result = AGAIN;
  r.conn.readBody(r, (status) => {
    if (sync) {
      result = status;
      return;
    }
    if (!ctx.waitReadBody) return;
    ctx.waitReadBody = false;
    if (status !== OK) {
      conclude(r, ctx, status);
      return;
    }
    resume(r, ctx);
  });
  sync = false;
  if (result === AGAIN) ctx.waitReadBody = true;
  return result;
}

/** ngx_http_echo_exec_echo_request_body: the body's buffers, in one output call */
function echoRequestBody(r: HttpRequest, ctx: EchoCtx): number {
  if (r instanceof SubRequest && r.fileBody) return r.fileBody.length ? send(r, ctx, r.fileBody) : OK;
  const body = r.body;
  if (!bodyRead(r) || body === undefined || body.length === 0) return OK;
  return send(r, ctx, body.length === 1 ? body[0]! : Buffer.concat(body));
}

/** ngx_http_echo_exec_echo_foreach_split */
function foreachSplit(r: HttpRequest, ctx: EchoCtx, args: string[]): number {
  if (ctx.foreach !== undefined) {
    r.log('error', 'Nested echo_foreach not supported yet.');
    return 500;
  }
  if (args.length < 2) {
    r.log('error', 'echo_foreach should take at least two arguments. (if your delimiter starts with "-", preceding it with a "--".)');
    return 500;
  }
  const delim = args[0]!;
  const compound = args[1]!;
  const choices: string[] = [];
  let pos = 0;
  if (delim.length > 0) {
    for (let at = compound.indexOf(delim, pos); at !== -1; at = compound.indexOf(delim, pos)) {
      if (at > pos) choices.push(compound.slice(pos, at));
      pos = at + delim.length;
    }
  }
  if (pos < compound.length) choices.push(compound.slice(pos));
  ctx.foreach = { choices, next: 0, cmdIndex: ctx.next };
  if (choices.length === 0) {
    // skip the body: stop right before its echo_end, which ends the loop
    const cmds = ctx.conf!.handlerCmds!;
    for (; ctx.next + 1 < cmds.length; ctx.next++) if (cmds[ctx.next + 1]!.op === 'echo_end') return OK;
  }
  return OK;
}

/** ngx_http_echo_exec_echo_end */
function foreachEnd(r: HttpRequest, ctx: EchoCtx): number {
  const f = ctx.foreach;
  if (f === undefined) {
    r.log('error', 'Found a echo_end that has no corresponding echo_foreach before it.');
    return ERROR;
  }
  f.next++;
  if (f.next >= f.choices.length) {
    ctx.foreach = undefined;
    return OK;
  }
  // the run loop's ++ moves on to the command after echo_foreach_split
  ctx.next = f.cmdIndex;
  return OK;
}

/** ngx_http_echo_exec_echo_sleep */
function sleep(r: HttpRequest, ctx: EchoCtx, arg: string): number {
  const ms = atofp3(arg);
  if (ms === -1) {
    r.log('error', `invalid sleep duration "${arg}"`);
    return 400;
  }
  const timer = setTimeout(() => {
    if (r.aborted || r.main.aborted) return;
    resume(r, ctx);
  }, ms);
  // ngx_http_echo_sleep_cleanup: the timer goes with the request
  r.onAbort(() => clearTimeout(timer));
  return AGAIN;
}

/** one command; OK goes on to the next, anything else ends (or suspends) the run */
function runCmd(r: HttpRequest, ctx: EchoCtx, cmd: EchoCmd): number {
  const { args, opts } = evalEchoArgs(r, cmd);
  switch (cmd.op) {
    case 'echo_sync':
      // an empty buffer through the filters: the header (and echo_before_body) goes out first
      return send(r, ctx, EMPTY);
    case 'echo': {
      const text = echoText(args, opts);
      return text.length ? send(r, ctx, Buffer.from(text, 'latin1')) : OK;
    }
    case 'echo_request_body':
      return echoRequestBody(r, ctx);
    case 'echo_location_async':
    case 'echo_location':
    case 'echo_subrequest_async':
    case 'echo_subrequest': {
      // the body is read before any subrequest: the command runs again once it is
      if (!bodyRead(r)) {
        ctx.next--;
        return readBody(r, ctx);
      }
      const rc = cmd.op === 'echo_location' || cmd.op === 'echo_location_async' ? execLocation(r, ctx, cmd.op, args) : execSubrequest(r, ctx, cmd.op, args);
      // the waiting forms end the loop whatever they return (OK: a HEAD request, finalized at once)
      if (cmd.op === 'echo_location' || cmd.op === 'echo_subrequest') return rc === OK ? FINAL_OK : rc;
      return rc;
    }
    case 'echo_sleep':
      return sleep(r, ctx, args[0]!);
    case 'echo_flush':
      // every write goes out at once here: nothing is held to flush
      return OK;
    case 'echo_blocking_sleep': {
      const ms = atofp3(args[0]!);
      if (ms === -1) {
        r.log('error', `invalid sleep duration "${args[0]}"`);
        return 400;
      }
      // ngx_msleep: the whole worker stops, as in nginx
      if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
      return OK;
    }
    case 'echo_reset_timer':
      ctx.timerBegin = Date.now();
      return OK;
    case 'echo_duplicate': {
      const count = echoAtosz(args[0]!);
      if (count === -1) {
        r.log('error', `invalid size specified: "${args[0]}"`);
        return 500;
      }
      const str = args[1]!;
      if (count === 0 || str.length === 0) return sendHeaderIfNeeded(r, ctx);
      return send(r, ctx, Buffer.from(str.repeat(count), 'latin1'));
    }
    case 'echo_read_request_body':
      return readBody(r, ctx);
    case 'echo_foreach_split':
      return foreachSplit(r, ctx, args);
    case 'echo_end':
      return foreachEnd(r, ctx);
    case 'echo_exec': {
      const rc = execExec(r, args);
      return rc === OK ? FINAL_OK : rc;
    }
    default:
      r.log('error', `unknown opcode: ${ABORT_PARENT_OPCODE}`);
      return 500;
  }
}

/** a command that ends the run with OK (nginx returns from the loop at once) */
const FINAL_OK = -100;


/** ngx_http_echo_run_cmds: OK when done, AGAIN when suspended, DONE, ERROR or a status */
function runCmds(r: HttpRequest, ctx: EchoCtx): number {
  const cmds = ctx.conf!.handlerCmds!;
  for (; ctx.next < cmds.length; ctx.next++) {
    const rc = runCmd(r, ctx, cmds[ctx.next]!);
    if (rc === FINAL_OK) return OK;
    if (rc !== OK) return rc;
  }
  // ngx_http_echo_send_chain_link(r, ctx, NULL): the header if needed, then the last buffer
  const rc = sendHeaderIfNeeded(r, ctx);
  if (rc !== OK) return rc;
  // then ngx_http_discard_request_body when the body was not read (and its Expect answer)
  if (!bodyRead(r)) r.discardAfter = true;
  r.finish();
  return OK;
}

/**
 * what the handler (or the resumed run) returned, applied as
 * ngx_http_finalize_request would: an error after the header went out can
 * only cut the response short
 */
function conclude(r: HttpRequest, ctx: EchoCtx, rc: number): void {
  if (rc === AGAIN || rc === DONE) return;
  if (rc === OK) {
    r.finalize(OK);
    return;
  }
  if (rc === ERROR || r.headerSent || ctx.headerSent) r.terminate();
  else r.finalize(rc);
}

/** ngx_http_echo_wev_handler: the timer, the subrequest or the body is done; go on */
export function resume(r: HttpRequest, ctx: EchoCtx): void {
  if (r.aborted || r.finished) return;
  ctx.next++;
  conclude(r, ctx, runCmds(r, ctx));
}

/** the echo content handler of a location with echo commands */
export function echoContentHandler(req: Request, elcf: EchoLocConf | undefined): number {
  const r = req as HttpRequest;
  if (!elcf?.handlerCmds) return DONE;
  const ctx = getOrCreateCtx(r);
  ctx.conf = elcf;
  conclude(r, ctx, runCmds(r, ctx));
  return DONE;
}
