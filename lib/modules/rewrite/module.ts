import {
  BLOCK,
  FLAG,
  HTTP_LIF_CONF,
  HTTP_LOC_CONF,
  HTTP_MAIN_CONF,
  HTTP_SIF_CONF,
  HTTP_SRV_CONF,
  MORE1,
  NOARGS,
  TAKE12,
  TAKE2,
  TAKE23, } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { flagSlot, mergeValue } from '../../conf/slots.js';
import { UNSET, atoi } from '../../conf/values.js';
import { httpRegexCompile } from '../../http/regex_exec.js';
import { DECLINED, type Request } from '../../http/request.js';
import { compileComplexValue } from '../../http/script.js';
import { VAR_CHANGEABLE, VAR_WEAK, httpVariables } from '../../http/variables.js';
import { locConf, mainConf, type HttpCtx, defineHttpModule } from '../../http/module.js';
import { addIfLocation, coreLoc, httpCoreModule, type CoreLocConf } from '../../http/core/module.js';
import { compileCondition } from './if.js';
import {
  OP_BREAK,
  OP_HANDLER,
  OP_IF,
  OP_RETURN,
  OP_REWRITE,
  OP_SET_VAR,
  type Op,
  type RewriteLocConf,
  type ScriptHandler,
} from './ops.js';
import { runRewrite } from './run.js';
import { compileValue } from './value.js';

/*
 * ngx_http_rewrite_module, config side: set, if, return, rewrite, break,
 * rewrite_log, uninitialized_variable_warn. Each statement is compiled into
 * its level's op list (rewrite_ops.ts); rewrite_run.ts executes it.
 */

const lcfOf = (cf: Conf): RewriteLocConf => locConf(cf, rewriteModule);

/** The op list the current level writes to (created on first use). */
function codesOf(cf: Conf): Op[] {
  const lcf = lcfOf(cf);
  if (lcf.codes === undefined) lcf.codes = [];
  return lcf.codes;
}

/**
 * For other modules (set_misc's set_* directives): append a statement to
 * the current level's rewrite program, so it runs in directive order.
 */
export function addRewriteHandler(cf: Conf, run: ScriptHandler): void {
  codesOf(cf).push({ kind: OP_HANDLER, run });
}

/** `set`-defined variables read before any `set`: empty, with nginx's warning. */
export function uninitializedGetter(r: Request, name: string): string {
  const lcf = r.locConf[rewriteModule.index] as RewriteLocConf | undefined;
  if (lcf !== undefined && lcf.uninitWarn === 1) r.log('warn', `using uninitialized "${name}" variable`);
  return '';
}

/** `set $name value` (also used by modules that define variables the same way). */
export function defineSetVariable(cf: Conf, word: string): number {
  if (word[0] !== '$') throw cf.error(`invalid variable name "${word}"`);
  const name = word.slice(1);
  // ngx_http_add_variable's wording for an empty name
  if (name.length === 0) throw cf.error('invalid variable name "$"');
  const vars = httpVariables(cf);
  // core variables get their getters from the request side later: only a
  // variable `set` creates reads as "uninitialized" before its first set
  const fresh = !vars.defs.has(name.toLowerCase());
  const def = vars.add(cf, name, VAR_CHANGEABLE | VAR_WEAK);
  const index = vars.getIndex(name);
  if (fresh) def.get = uninitializedGetter;
  return index;
}

function setDirective(cf: Conf): undefined {
  const index = defineSetVariable(cf, cf.args[1]!);
  const codes = codesOf(cf);
  compileValue(cf, codes, cf.args[2]!);
  codes.push({ kind: OP_SET_VAR, index });
  return undefined;
}

function isAbsoluteRedirect(s: string): boolean {
  return s.startsWith('http://') || s.startsWith('https://') || s.startsWith('$scheme');
}

function returnDirective(cf: Conf): undefined {
  const codes = codesOf(cf);
  const value = cf.args;
  let status = atoi(value[1]!);
  let text: string;
  if (status === -1) {
    if (value.length === 2 && isAbsoluteRedirect(value[1]!)) {
      status = 302;
      text = value[1]!;
    } else {
      throw cf.error(`invalid return code "${value[1]}"`);
    }
  } else {
    if (status > 999) throw cf.error(`invalid return code "${value[1]}"`);
    if (value.length === 2) {
      codes.push({ kind: OP_RETURN, status, text: undefined });
      return undefined;
    }
    text = value[2]!;
  }
  codes.push({ kind: OP_RETURN, status, text: compileComplexValue(cf, text) });
  return undefined;
}

function rewriteDirective(cf: Conf): undefined {
  const codes = codesOf(cf);
  const value = cf.args;
  let replacement = value[2]!;
  if (replacement.length === 0) throw cf.error('empty replacement');
  // nginx's `rewrite` has no caseless form (the TODO in its source)
  const regex = httpRegexCompile(cf, value[1]!, false);

  let addArgs = true;
  if (replacement[replacement.length - 1] === '?') {
    // the last "?" drops the original arguments
    replacement = replacement.slice(0, -1);
    addArgs = false;
  }
  let status = 0;
  let redirect = false;
  let breakCycle = false;
  let last = false;
  if (isAbsoluteRedirect(replacement)) {
    status = 302;
    redirect = true;
    last = true;
  }
  if (value.length === 4) {
    const flag = value[3]!;
    if (flag === 'last') {
      last = true;
    } else if (flag === 'break') {
      breakCycle = true;
      last = true;
    } else if (flag === 'redirect') {
      status = 302;
      redirect = true;
      last = true;
    } else if (flag === 'permanent') {
      status = 301;
      redirect = true;
      last = true;
    } else {
      throw cf.error(`invalid parameter "${flag}"`);
    }
  }

  const q = replacement.indexOf('?');
  const split = !redirect && q !== -1;
  const uri = compileComplexValue(cf, split ? replacement.slice(0, q) : replacement);
  const args = split ? compileComplexValue(cf, replacement.slice(q + 1)) : undefined;
  codes.push({
    kind: OP_REWRITE,
    rw: { regex, name: value[1]!, uri, args, hasArgs: q !== -1, addArgs, status, redirect, breakCycle, last },
  });
  return undefined;
}

function ifBlock(cf: Conf): undefined {
  const pctx = cf.ctx as HttpCtx;
  const codes = codesOf(cf);
  const ctx = addIfLocation(cf);
  coreLoc(ctx.loc).name = coreLoc(pctx.loc).name;

  compileCondition(cf, codes);
  const ifOp: Extract<Op, { kind: typeof OP_IF }> = { kind: OP_IF, next: 0, locConf: undefined };
  codes.push(ifOp);

  // the inner statements are compiled into the same list
  const nlcf = ctx.loc[rewriteModule.index] as RewriteLocConf;
  nlcf.codes = codes;
  let type: number;
  if (cf.cmdType === HTTP_SRV_CONF) {
    type = HTTP_SIF_CONF;
  } else {
    ifOp.locConf = ctx.loc;
    type = HTTP_LIF_CONF;
  }
  cf.parseBlock(type, ctx);
  ifOp.next = codes.length;
  // the list belongs to the parent level
  nlcf.codes = undefined;
  return undefined;
}

/*
 * nginx keeps the location's content handler when a matching `if` switches
 * the request to the if level (ngx_http_update_location_config replaces it
 * only when the if level has its own). The engine reads r.loc.handler, so
 * an if level without a handler gets its location's, once, at load.
 */
function inheritIfHandlers(top: CoreLocConf): void {
  // parents before children, without recursion (locations nest deep)
  const stack = [top];
  while (stack.length) {
    const clcf = stack.pop()!;
    for (const child of clcf.locations) {
      if (child.noname && child.handler === undefined) child.handler = clcf.handler;
      stack.push(child);
    }
  }
}

const REWRITE_CTX = HTTP_SRV_CONF | HTTP_SIF_CONF | HTTP_LOC_CONF | HTTP_LIF_CONF;
const FLAG_CTX = HTTP_MAIN_CONF | REWRITE_CTX;

export const rewriteModule = defineHttpModule<unknown, unknown, RewriteLocConf>({
  name: 'http_rewrite',
  createLocConf: () => ({ codes: undefined, log: UNSET, uninitWarn: UNSET }),
  mergeLocConf(_cf, prev, conf) {
    conf.log = mergeValue(conf.log, prev.log, 0);
    conf.uninitWarn = mergeValue(conf.uninitWarn, prev.uninitWarn, 1);
  },
  postConfiguration(cf) {
    for (const srv of mainConf(cf, httpCoreModule).servers) inheritIfHandlers(coreLoc(srv.ctx.loc));
  },
  phases: {
    // the server level's statements run in the server rewrite phase, a location's in the rewrite phase
    serverRewrite: (r): number => runRewrite(r, r.locConf[rewriteModule.index] as RewriteLocConf | undefined),
    rewrite: (r): number => (r.locConf === r.srv.ctx.loc ? DECLINED : runRewrite(r, r.locConf[rewriteModule.index] as RewriteLocConf | undefined)),
  },
  commands: [
    { name: 'rewrite', ctx: REWRITE_CTX, args: TAKE23, set: rewriteDirective },
    { name: 'return', ctx: REWRITE_CTX, args: TAKE12, set: returnDirective },
    {
      name: 'break',
      ctx: REWRITE_CTX,
      args: NOARGS,
      set(cf) {
        codesOf(cf).push({ kind: OP_BREAK });
      },
    },
    { name: 'if', ctx: HTTP_SRV_CONF | HTTP_LOC_CONF, args: BLOCK | MORE1, set: ifBlock },
    { name: 'set', ctx: REWRITE_CTX, args: TAKE2, set: setDirective },
    { name: 'rewrite_log', ctx: FLAG_CTX, args: FLAG, set: flagSlot(lcfOf, 'log') },
    { name: 'uninitialized_variable_warn', ctx: FLAG_CTX, args: FLAG, set: flagSlot(lcfOf, 'uninitWarn') },
  ],
});
