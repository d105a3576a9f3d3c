import { basename, isAbsolute, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import type { HttpRequest } from '../../http/http_request.js';
import { evalComplexValue } from '../../http/eval.js';
import { DECLINED, DONE, ERROR } from '../../http/request.js';
import { afterAccess, afterRewrite } from '../../http/phases.js';
import { errnoSuffix } from '../../core/errno.js';
import { reqState, sendHeaderIfNeeded } from './api_out.js';
import type { LuaChunk } from './conf.js';
import { EXIT_EXEC, EXIT_JUMP, spawn, type LuaPhase, type LuaThread, type ThreadEnd } from './thread.js';
import { compile } from './vm.js';
import type { LuaState } from './fengari.js';

/*
 * Running a location's Lua handlers (ngx_http_lua_content_by_chunk,
 * _rewrite_handler, _access_handler): compile (once, with lua_code_cache
 * on), spawn the entry thread, and turn how it ended into the phase's
 * verdict, now or when it resumes later.
 */

export const luaPaths = { prefix: '/' };

/** the chunk's compiled function, or undefined after logging why (500) */
/** the chunk's function ref; undefined after logging why (500), -404 for a missing file */
export function load(r: HttpRequest | undefined, chunk: LuaChunk, cache: boolean): number | undefined {
  let key = '';
  let path = '';
  if (chunk.file) {
    path = evalComplexValue(r!, chunk.file);
    if (!isAbsolute(path)) path = resolve(luaPaths.prefix, path);
    key = path;
  }
  const have = chunk.refs.get(key);
  if (have !== undefined && cache) return have;
  let res: number | string;
  if (chunk.file) {
    let code: Buffer;
    try {
      code = readFileSync(path);
    } catch (e) {
      const why = /\(\d+: (.*)\)/.exec(errnoSuffix(e))?.[1] ?? String(e);
      r?.log('error', `failed to load external Lua file "${path}": cannot open ${path}: ${why}`);
      // ngx_lua answers a missing file with 404, other failures with 500
      return (e as NodeJS.ErrnoException).code === 'ENOENT' ? -404 : undefined;
    }
    res = compile(code, `@${path}`);
    if (typeof res === 'string') {
      r?.log('error', `failed to load external Lua file "${path}": ${res}`);
      return undefined;
    }
  } else {
    res = compile(chunk.code!, chunk.name);
    if (typeof res === 'string') {
      r?.log('error', `failed to load inlined Lua code: ${res}`);
      return undefined;
    }
  }
  if (cache) chunk.refs.set(key, res);
  return res;
}

/** the chunk name ngx_lua gives inline code: `=content_by_lua(nginx.conf:12)` */
export function inlineName(directive: string, file: string, line: number): string {
  const tag = directive.replace(/_block$/, '');
  return `=${tag}(${basename(file)}:${line})`;
}

/** ngx.exec: an internal redirect once the thread is gone (ngx_http_lua_handle_exec) */
function exec(r: HttpRequest, t: LuaThread): void {
  r.internalRedirect(t.execUri!, t.execArgs ?? '');
}

/** the content handler's end: finish the response as ngx_lua does */
function contentEnd(r: HttpRequest, t: LuaThread, e: ThreadEnd): void {
  if (e.how === 'exit' && e.code === EXIT_EXEC) return exec(r, t);
  reqState(r).eof = true;
  if (r.finished) return;
  if (e.how === 'error') {
    if (r.headerSent) r.terminate();
    else r.finalize(500);
    return;
  }
  if (e.how === 'exit') {
    const code = e.code;
    // HTTP/1.0 output held back (ngx_http_lua_handle_exit with ctx->buffering): it goes out with its
    // status whatever the exit code, but for NGX_ERROR and the closing ones
    if (reqState(r).held !== undefined && r.status !== 0 && code !== -1 && code !== 408 && code !== 499 && code !== 444) {
      sendHeaderIfNeeded(r);
      r.finish();
      return;
    }
    if (code === -1) {
      // ngx.exit(ngx.ERROR): finalized with NGX_ERROR (a 500 page here; a subrequest's parent sees the -1)
      if (r.headerSent) r.terminate();
      else r.finalize(ERROR);
      return;
    }
    if (code >= 300 || code === 204 || (code > 0 && code < 200)) {
      if (r.headerSent) r.finish();
      else r.finalize(code);
      return;
    }
    if (code >= 200 && !r.headerSent) r.status = code;
  }
  sendHeaderIfNeeded(r);
  r.finish();
}

export function runContent(r: HttpRequest, chunk: LuaChunk, cache: boolean): number {
  const ref = load(r, chunk, cache);
  if (ref === undefined) return 500;
  if (ref === -404) return 404;
  spawn(r, 'content', ref, (e) => contentEnd(r, e.thread!, e));
  return DONE;
}

/** a rewrite/access thread's verdict: DECLINED to go on, DONE when it answered, else a status */
function phaseVerdict(r: HttpRequest, e: ThreadEnd): number {
  if (e.how === 'exit' && e.code === EXIT_EXEC) {
    exec(r, e.thread!);
    return DONE;
  }
  if (e.how === 'error') return r.headerSent ? (r.terminate(), DONE) : 500;
  if (e.how === 'exit') {
    const code = e.code;
    if (code === EXIT_JUMP || code === 0) return DECLINED;
    if (code === -1) return r.headerSent ? (r.terminate(), DONE) : 500;
    if (r.headerSent || (code >= 200 && code < 300 && code !== 204)) {
      if (!r.headerSent) r.status = code;
      reqState(r).eof = true;
      sendHeaderIfNeeded(r);
      r.finish();
      return DONE;
    }
    return code;
  }
  if (r.headerSent) {
    // output without ngx.exit: the response ends with the handler
    reqState(r).eof = true;
    r.finish();
    return DONE;
  }
  return DECLINED;
}

export function runPhase(r: HttpRequest, phase: 'rewrite' | 'access', chunk: LuaChunk, cache: boolean, needBody = false): number {
  if (needBody && r.bodyState === 'none') {
    // lua_need_request_body on: the whole body first, then the handler
    r.conn.readBody(r, (status) => {
      if (r.finished) return;
      if (status !== 0) return r.finalize(status);
      const rc = runPhase(r, phase, chunk, cache, false);
      if (rc === DONE || r.finished) return;
      if (rc === DECLINED) {
        if (phase === 'rewrite') afterRewrite(r);
        else afterAccess(r);
      } else r.finalize(rc);
    });
    return DONE;
  }
  const ref = load(r, chunk, cache);
  if (ref === undefined) return 500;
  if (ref === -404) return 404;
  let sync = true;
  let verdict: number | undefined;
  spawn(r, phase, ref, (e) => {
    const rc = phaseVerdict(r, e);
    if (sync) {
      verdict = rc;
      return;
    }
    if (rc === DONE || r.finished) return;
    if (rc === DECLINED) {
      if (phase === 'rewrite') afterRewrite(r);
      else afterAccess(r);
    } else r.finalize(rc);
  });
  sync = false;
  return verdict ?? DONE;
}

/**
 * A handler that may not yield (set_by_lua, header/body filters, log):
 * run to its end now. A yield is refused by the API itself; ngx.exit
 * stops the chunk. Returns the chunk's results, or undefined on error.
 */
export function runSync(
  r: HttpRequest | undefined,
  phase: LuaPhase,
  chunk: LuaChunk,
  cache: boolean,
  pushArgs?: (L: LuaState) => number,
): Array<string | undefined> | undefined {
  const ref = load(r, chunk, cache);
  if (ref === undefined || ref === -404) return undefined;
  let out: Array<string | undefined> | undefined;
  const t = spawn(r, phase, ref, (e) => {
    out = e.how === 'error' ? undefined : e.results ?? [];
  }, pushArgs);
  if (!t.dead) {
    // it yielded (a capture or sleep where none is allowed): abandon it
    r?.log('error', `lua entry thread aborted: runtime error: attempt to yield across C-call boundary`);
    t.dead = true;
    return undefined;
  }
  return out;
}
