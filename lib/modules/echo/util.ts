import { errorLogFor, getMainLog, type ErrorLog } from '../../core/error_log.js';
import { evalComplexValue } from '../../http/eval.js';
import type { HttpRequest } from '../../http/http_request.js';
import type { Request } from '../../http/request.js';
import { unescapeUri } from '../../http/unescape.js';
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

/** ngx_http_parse.c's `usual` table: bytes that need no attention in a path */
const USUAL = [0x00000000, 0x7fff37d6, 0xffffffff, 0x7fffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff];
const isUsual = (c: number): boolean => ((USUAL[c >> 5]! >>> (c & 31)) & 1) === 1;

function hasDotDot(p: string): boolean {
  if (p.length > 1 && p[0] === '.' && p[1] === '.' && (p.length === 2 || p[2] === '/')) return true;
  for (let i = 0; i < p.length; i++) {
    const len = p.length - i;
    if (p[i] === '\0') return true;
    if (p[i] === '/' && len > 2 && p[i + 1] === '.' && p[i + 2] === '.' && (len === 3 || p[i + 3] === '/')) return true;
  }
  return false;
}

export interface ParsedUri {
  /** the path; when unsafe, the URI as nginx's debug line shows it */
  uri: string;
  args: string | undefined;
  unsafe: boolean;
}

/**
 * ngx_http_parse_unsafe_uri: split `uri?args`, refuse `..` segments and
 * NUL bytes (before and after percent-decoding).
 */
export function parseUnsafeUri(uri: string): ParsedUri {
  const bad = (shown: string): ParsedUri => ({ uri: shown, args: undefined, unsafe: true });
  if (uri.length === 0 || uri[0] === '?') return bad(uri);
  let args: string | undefined;
  let quoted = false;
  let path = uri;
  if (uri.length > 1 && uri[0] === '.' && uri[1] === '.' && (uri.length === 2 || uri[2] === '/')) return bad(uri);
  for (let i = 0; i < uri.length; i++) {
    const ch = uri.charCodeAt(i);
    if (ch === 0x25) {
      quoted = true;
      continue;
    }
    if (isUsual(ch)) continue;
    if (ch === 0x3f) {
      args = uri.slice(i + 1);
      path = uri.slice(0, i);
      break;
    }
    if (ch === 0) return bad(uri);
    const len = uri.length - i;
    if (ch === 0x2f && len > 2 && uri[i + 1] === '.' && uri[i + 2] === '.' && (len === 3 || uri[i + 3] === '/')) return bad(uri);
  }
  if (quoted) {
    path = unescapeUri(path, false); // ngx_unescape_uri type 0: no `+` rule
    if (hasDotDot(path)) return bad(path);
  }
  return { uri: path, args, unsafe: false };
}
