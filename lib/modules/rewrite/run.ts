import { statSync } from 'node:fs';
import { evalComplexValue, getVariable, setVariable } from '../../http/eval.js';
import { regexExec } from '../../http/regex_exec.js';
import { DECLINED, type Request } from '../../http/request.js';
import type { ComplexValue } from '../../http/script.js';
import { PartKind } from '../../http/script.js';
import { coreLoc } from '../../http/core/module.js';
import {
  FILE_DIR,
  FILE_EXEC,
  FILE_EXISTS,
  FILE_PLAIN,
  OP_BREAK,
  OP_COMPLEX,
  OP_EQUAL,
  OP_FILE,
  OP_HANDLER,
  OP_IF,
  OP_NOT_EQUAL,
  OP_REGEX_TEST,
  OP_RETURN,
  OP_REWRITE,
  OP_SET_VAR,
  OP_VALUE,
  OP_VAR,
  type Op,
  type RewriteLocConf,
  type RewriteOp,
  type ScriptEngine,
} from './ops.js';
import { escapeArgs, unescapeRedirect } from './uri.js';

/*
 * ngx_http_rewrite_handler: run the current level's op list on a request.
 * The same hook serves the server-rewrite phase (server block's list) and
 * the rewrite phase (the location's list; nginx skips it when no location
 * matched and the request still sits at the server level).
 */

function isRedirectStatus(s: number): boolean {
  return s === 301 || s === 302 || s === 303 || s === 307 || s === 308;
}

/** ngx_http_clear_location + set: one Location, the latest (the header filter writes it in its place). */
export function setLocation(r: Request, value: string): void {
  r.location = value;
}

/* an engine to reuse (runs are synchronous; a nested one, from a handler, makes its own) */
let spare: ScriptEngine | undefined;

/*
 * The stack keeps one unused entry at its bottom: V8 gives an array's
 * storage back when its length drops to 0 (or far below its capacity),
 * so a `set` (push, pop) on an empty stack would allocate it anew per run.
 * Ops only look at what they pushed, never at the bottom.
 */
const newEngine = (): ScriptEngine => ({ stack: [''], status: DECLINED, stop: false, log: false });

/** run the rewrite program of a level (its set/if/rewrite/return statements in order) */
export function runRewrite(r: Request, lcf: RewriteLocConf | undefined): number {
  const codes = lcf?.codes;
  if (codes === undefined) return DECLINED;
  let e = spare;
  if (e === undefined) e = newEngine();
  else spare = undefined;
  e.status = DECLINED;
  e.stop = false;
  e.log = lcf!.log === 1;
  try {
    return runCodes(r, codes, e);
  } finally {
    e.stack.length = 1;
    spare = e;
  }
}

function runCodes(r: Request, codes: readonly Op[], e: ScriptEngine): number {
  const stack = e.stack;
  let ip = 0;
  while (ip < codes.length) {
    const op = codes[ip++]!;
    switch (op.kind) {
      case OP_VALUE:
        stack.push(op.text);
        break;
      case OP_COMPLEX:
        stack.push(evalComplexValue(r, op.cv));
        break;
      case OP_VAR:
        stack.push(getVariable(r, op.index));
        break;
      case OP_SET_VAR:
        setVariable(r, op.index, stack.pop()!);
        break;
      case OP_EQUAL:
      case OP_NOT_EQUAL: {
        const val = stack.pop()!;
        const same = stack[stack.length - 1] === val;
        stack[stack.length - 1] = same === (op.kind === OP_EQUAL) ? '1' : '';
        break;
      }
      case OP_REGEX_TEST: {
        const line = stack.pop()!;
        const ok = regexExec(r, op.regex, line);
        if (e.log) r.log('notice', `"${op.name}" ${ok ? 'matches' : 'does not match'} "${line}"`);
        if (!ok) r.captures = undefined;
        stack.push(ok !== op.negative ? '1' : '');
        break;
      }
      case OP_FILE:
        stack[stack.length - 1] = fileTest(stack[stack.length - 1]!, op.test) !== op.negative ? '1' : '';
        break;
      case OP_IF: {
        const c = stack.pop()!;
        if (c.length !== 0 && c !== '0') {
          if (op.locConf !== undefined) {
            r.locConf = op.locConf;
            r.loc = coreLoc(op.locConf);
          }
        } else {
          ip = op.next;
        }
        break;
      }
      case OP_RETURN:
        doReturn(r, e, op.status, op.text);
        return e.status;
      case OP_BREAK:
        if (r.uriChanged) r.uriChanged = false;
        return e.status;
      case OP_REWRITE:
        doRewrite(r, e, op.rw);
        if (e.stop) return e.status;
        break;
      case OP_HANDLER:
        op.run(r, e);
        if (e.stop) return e.status;
        break;
    }
  }
  return e.status;
}

/** ngx_http_script_return_code + ngx_http_send_response */
function doReturn(r: Request, e: ScriptEngine, status: number, text: ComplexValue | undefined): void {
  e.stop = true;
  const hasText = text !== undefined && text.constant !== '';
  if (status >= 400 && !hasText) {
    e.status = status;
    return;
  }
  // ngx_http_send_response discards the body before it evaluates the text ($content_length of a chunked body is
  // then 0); a chunked body already seen broken makes it a 400
  const rc = r.discardBody();
  if (rc !== 0) {
    e.status = rc;
    return;
  }
  const value = text === undefined ? '' : evalComplexValue(r, text);
  if (isRedirectStatus(status)) {
    setLocation(r, value);
  } else {
    r.returnText = value;
  }
  e.status = status;
}

/** nginx's quoted_uri / plus_in_uri: the request's path held `%` or `+`. */
function uriNeedsQuoting(r: Request): boolean {
  const u = r.requestUri;
  const q = u.indexOf('?');
  const path = q === -1 ? u : u.slice(0, q);
  return path.indexOf('%') !== -1 || path.indexOf('+') !== -1;
}

/** A replacement, with captures re-escaped where nginx escapes them. */
function evalReplacement(r: Request, cv: ComplexValue, escape: boolean): string {
  if (!escape || cv.constant !== undefined) return evalComplexValue(r, cv);
  let out = '';
  const parts = cv.parts;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (p.kind === PartKind.Literal) out += p.text;
    else if (p.kind === PartKind.Var) out += getVariable(r, p.index);
    else {
      const caps = r.captures;
      out += escapeArgs(caps !== undefined && p.n < caps.length ? caps[p.n]! : '');
    }
  }
  return out;
}

/** ngx_http_script_regex_start_code + regex_end_code for `rewrite` */
function doRewrite(r: Request, e: ScriptEngine, rw: RewriteOp): void {
  const line = r.uri;
  if (!regexExec(r, rw.regex, line)) {
    if (e.log) r.log('notice', `"${rw.name}" does not match "${line}"`);
    r.captures = undefined;
    return;
  }
  if (e.log) r.log('notice', `"${rw.name}" matches "${line}"`);
  if (rw.status) e.status = rw.status;
  r.internal = true;
  r.uriChanged = !rw.breakCycle;
  if (rw.breakCycle && !rw.redirect) r.validLocation = false;

  const quoting = r.captures !== undefined && r.captures.length > 1 && uriNeedsQuoting(r);
  if (rw.redirect) {
    let loc = unescapeRedirect(evalReplacement(r, rw.uri, quoting));
    if (rw.addArgs && r.args.length) loc += (rw.hasArgs ? '&' : '?') + r.args;
    if (e.log) r.log('notice', `rewritten redirect: "${loc}"`);
    setLocation(r, loc);
    e.stop = true;
    return;
  }

  const uri = evalReplacement(r, rw.uri, false);
  if (rw.args !== undefined) {
    let args = evalReplacement(r, rw.args, quoting);
    if (rw.addArgs && r.args.length) args += '&' + r.args;
    r.args = args;
  } else if (!rw.addArgs) {
    r.args = '';
  }
  if (e.log) r.log('notice', `rewritten data: "${uri}", args: "${r.args}"`);
  r.uri = uri;
  if (uri.length === 0) {
    r.log('error', 'the rewritten URI has a zero length');
    e.status = 500;
    e.stop = true;
    return;
  }
  if (rw.last) e.stop = true;
}

/** -f -d -e -x: stat (following links); a missing path is simply false. */
function fileTest(path: string, test: number): boolean {
  let st;
  try {
    st = statSync(path, { throwIfNoEntry: false });
  } catch {
    return false;
  }
  if (st === undefined) return false;
  switch (test) {
    case FILE_PLAIN:
      return st.isFile();
    case FILE_DIR:
      return st.isDirectory();
    case FILE_EXISTS:
      return st.isFile() || st.isDirectory() || st.isSymbolicLink();
    case FILE_EXEC:
      return (st.mode & 0o100) !== 0;
  }
  return false;
}
