import { errorLogFor, getMainLog, type ErrorLog } from '../../core/error_log.js';
import { evalComplexValue } from '../../http/eval.js';
import type { HttpRequest } from '../../http/http_request.js';
import type { Request } from '../../http/request.js';
import type { EchoCmd } from './conf.js';

/*
 * Helpers shared by the echo handler and the echo filters
 * (ngx_http_echo_util.c): argument evaluation with leading options,
 * echo's size and sleep-duration parsers, and nginx's unsafe-URI check
 * for subrequest targets.
 */

/** the error log a request writes to (its location's error_log, else the main one) */
function logOf(r: HttpRequest): ErrorLog {
  const specs = r.loc?.errorLog;
  return specs ? errorLogFor(specs) : getMainLog();
}

/** a debug request's error log takes it: callers skip building messages otherwise */
export function debugOn(r: HttpRequest): boolean {
  return logOf(r).enabled('debug');
}

/**
 * ngx_log_debug: a `[debug]` line; nginx writes these without the
 * request's context (client, server, request...)
 */
export function echoDebug(r: HttpRequest, msg: string): void {
  const log = logOf(r);
  if (log.enabled('debug')) log.write('debug', r.connectionId, msg);
}

export interface EchoArgs {
  args: string[];
  /** leading `-x` options of arguments without variables, `x` only */
  opts: string[];
}

/**
 * ngx_http_echo_eval_cmd_args: leading arguments written literally as
 * `-x` are options; `--` ends them (and is dropped); a lone `-`, an empty
 * argument or one with variables ends them too.
 */
export function evalEchoArgs(r: Request, cmd: EchoCmd): EchoArgs {
  const args: string[] = [];
  const opts: string[] = [];
  let expecting = true;
  for (const cv of cmd.args) {
    const raw = cv.constant;
    if (raw !== undefined && raw.length > 0) {
      if (expecting) {
        if (raw.length === 1 || raw[0] !== '-') expecting = false;
        else if (raw[1] === '-') {
          expecting = false;
          continue;
        } else {
          opts.push(raw.slice(1));
          continue;
        }
      }
      args.push(raw);
    } else {
      expecting = false;
      args.push(raw ?? evalComplexValue(r, cv));
    }
  }
  return { args, opts };
}

/** ngx_http_echo_atosz: digits with `_` ignored; -1 when invalid or empty */
export function echoAtosz(s: string): number {
  if (s.length === 0) return -1;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5f) continue;
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
    if (v > Number.MAX_SAFE_INTEGER) return -1;
  }
  return v;
}

/** ngx_atofp(s, n, 3): seconds with up to three decimals, as milliseconds; -1 when invalid */
export function atofp3(s: string): number {
  if (s.length === 0) return -1;
  let point = 3;
  let dot = false;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    if (point === 0) return -1;
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (dot) return -1;
      dot = true;
      continue;
    }
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
    if (v > Number.MAX_SAFE_INTEGER) return -1;
    if (dot) point--;
  }
  while (point--) v *= 10;
  return v;
}
