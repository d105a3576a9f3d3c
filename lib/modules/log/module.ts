import {
  HTTP_LIF_CONF,
  HTTP_LOC_CONF,
  HTTP_MAIN_CONF,
  HTTP_SRV_CONF,
  MORE1,
  MORE2, } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { parseMsec, parseSize, atoi } from '../../conf/values.js';
import { PartKind, compileComplexValue, countVariables, type Part } from '../../http/script.js';
import { httpVariables } from '../../http/variables.js';
import { locConf, mainConf, defineHttpModule } from '../../http/module.js';
import { LOG_BUILTIN_VARS, type AccessLog, type LogFormat, type LogLocConf, type LogMainConf } from './conf.js';
import { flushAccessLogs, installFlushHooks, logRequest } from './access_log.js';

/*
 * ngx_http_log_module, config side: `log_format` (compiled once into parts)
 * and `access_log` per level; the log phase hands each finished request to
 * the writer (access_log.ts).
 */

export { LOG_BUILTIN_VARS, type AccessLog, type LogFormat, type LogLocConf, type LogMainConf };

const COMBINED =
  '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"';

/** ngx_http_log_compile_format: args from index s; returns the escape and parts. */
function compileFormat(cf: Conf, args: string[], s: number): Pick<LogFormat, 'escape' | 'parts'> {
  let escape: LogFormat['escape'] = 'default';
  if (s < args.length && args[s]!.startsWith('escape=')) {
    const e = args[s]!.slice(7);
    if (e === 'json' || e === 'none') escape = e;
    else if (e !== 'default') throw cf.error(`unknown log format escaping "${e}"`);
    s++;
  }
  const vars = httpVariables(cf);
  const parts: Part[] = [];
  for (; s < args.length; s++) {
    const v = args[s]!;
    let i = 0;
    while (i < v.length) {
      const start = i;
      if (v[i] === '$') {
        if (++i === v.length) throw cf.error(`invalid parameter "${v.slice(start)}"`);
        let bracket = false;
        if (v[i] === '{') {
          bracket = true;
          if (++i === v.length) throw cf.error(`invalid parameter "${v.slice(start)}"`);
        }
        const nameStart = i;
        let nameEnd = i;
        for (; i < v.length; i++) {
          const ch = v[i]!;
          if (ch === '}' && bracket) {
            nameEnd = i++;
            bracket = false;
            break;
          }
          if (!/[A-Za-z0-9_]/.test(ch)) break;
          nameEnd = i + 1;
        }
        const name = v.slice(nameStart, nameEnd);
        if (bracket) throw cf.error(`the closing bracket in "${v.slice(nameStart)}" variable is missing`);
        if (name.length === 0) throw cf.error(`invalid parameter "${v.slice(start)}"`);
        if (LOG_BUILTIN_VARS.includes(name)) parts.push({ kind: PartKind.Var, index: -1, name });
        else parts.push({ kind: PartKind.Var, index: vars.getIndex(name), name: name.toLowerCase() });
        continue;
      }
      i++;
      while (i < v.length && v[i] !== '$') i++;
      parts.push({ kind: PartKind.Literal, text: v.slice(start, i) });
    }
  }
  return { escape, parts };
}

function setAccessLog(cf: Conf): string | undefined {
  const llcf = locConf(cf, logModule);
  const args = cf.args;
  if (args[1] === 'off') {
    llcf.off = true;
    if (args.length === 2) return undefined;
    throw cf.error(`invalid parameter "${args[2]}"`);
  }
  if (args[1]!.startsWith('syslog:')) throw cf.error('syslog is not supported by redis2d');
  const lmcf = mainConf(cf, logModule);
  const hasVars = countVariables(args[1]!) > 0;
  const path = cf.cycle.fullName(args[1]!);
  const pathValue = hasVars ? compileComplexValue(cf, path) : undefined;
  const name = args.length >= 3 ? args[2]! : 'combined';
  const format = lmcf.formats.find((f) => f.name.toLowerCase() === name.toLowerCase());
  if (!format) throw cf.error(`unknown log format "${name}"`);

  const log: AccessLog = { path, pathValue, format, buffer: 0, flush: 0, gzip: 0, filter: undefined };
  for (let i = 3; i < args.length; i++) {
    const v = args[i]!;
    if (v.startsWith('buffer=')) {
      const size = parseSize(v.slice(7));
      if (size === -1 || size === 0) throw cf.error(`invalid buffer size "${v.slice(7)}"`);
      log.buffer = size;
    } else if (v.startsWith('flush=')) {
      const t = parseMsec(v.slice(6));
      if (t === -1 || t === 0) throw cf.error(`invalid flush time "${v.slice(6)}"`);
      log.flush = t;
    } else if (v.startsWith('gzip') && (v.length === 4 || v[4] === '=')) {
      if (log.buffer === 0) log.buffer = 64 * 1024;
      if (v.length === 4) log.gzip = 1;
      else {
        const level = atoi(v.slice(5));
        if (level < 1 || level > 9) throw cf.error(`invalid compression level "${v.slice(5)}"`);
        log.gzip = level;
      }
    } else if (v.startsWith('if=')) {
      log.filter = compileComplexValue(cf, v.slice(3));
    } else {
      throw cf.error(`invalid parameter "${v}"`);
    }
  }
  if (log.flush && log.buffer === 0) throw cf.error(`no buffer is defined for access_log "${args[1]}"`);
  if (log.buffer && hasVars) throw cf.error('buffered logs cannot have variables in name');
  if (log.buffer) {
    const same = sharedBuffers(cf).get(path);
    if (same && (same.buffer !== log.buffer || same.flush !== log.flush || same.gzip !== log.gzip)) {
      throw cf.error(`access_log "${args[1]}" already defined with conflicting parameters`);
    }
    if (!same) sharedBuffers(cf).set(path, log);
  }
  (llcf.logs ??= []).push(log);
  if (!hasVars) accessLogPaths(cf.cycle).add(path);
  return undefined;
}

/** every constant access_log path of a cycle: the process layer opens them at startup, as nginx */
export function accessLogPaths(cycle: Conf['cycle']): Set<string> {
  let s = cycle.state.get('log.paths') as Set<string> | undefined;
  if (!s) cycle.state.set('log.paths', (s = new Set()));
  return s;
}

/** buffered logs share one buffer per file: their parameters must agree */
function sharedBuffers(cf: Conf): Map<string, AccessLog> {
  let m = cf.cycle.state.get('log.buffers') as Map<string, AccessLog> | undefined;
  if (!m) cf.cycle.state.set('log.buffers', (m = new Map()));
  return m;
}

export const logModule = defineHttpModule<LogMainConf, unknown, LogLocConf>({
  name: 'log',
  createMainConf: () => ({ formats: [] }),
  log(r) {
    logRequest(r, r.locConf[logModule.index] as LogLocConf | undefined);
  },
  initProcess() {
    installFlushHooks();
  },
  exitProcess() {
    flushAccessLogs();
  },
  preConfiguration(cf) {
    // the predefined `combined` is compiled in nginx's init; its variables are core ones
    const lmcf = mainConf(cf, logModule);
    lmcf.formats.push({ name: 'combined', ...compileFormat(cf, [COMBINED], 0) });
  },
  createLocConf: () => ({ off: false, logs: undefined }),
  mergeLocConf(cf, prev, conf) {
    if (conf.logs || conf.off) return;
    conf.logs = prev.logs;
    conf.off = prev.off;
    if (conf.logs || conf.off) return;
    // nothing anywhere: logs/access.log in combined (NGX_HTTP_LOG_PATH)
    const combined = mainConf(cf, logModule).formats[0]!;
    const dflt: AccessLog = {
      path: cf.cycle.fullName('logs/access.log'),
      pathValue: undefined,
      format: combined,
      buffer: 0,
      flush: 0,
      gzip: 0,
      filter: undefined,
    };
    conf.logs = [dflt];
    accessLogPaths(cf.cycle).add(dflt.path);
    // the http level keeps it too, so every server shares one list
    prev.logs = conf.logs;
  },
  commands: [
    {
      name: 'log_format',
      ctx: HTTP_MAIN_CONF,
      args: MORE2,
      set(cf) {
        const lmcf = mainConf(cf, logModule);
        const name = cf.args[1]!;
        if (lmcf.formats.some((f) => f.name === name)) throw cf.error(`duplicate "log_format" name "${name}"`);
        // pushed before compiling, as nginx, so a failing format still names itself
        const fmt: LogFormat = { name, escape: 'default', parts: [] };
        lmcf.formats.push(fmt);
        Object.assign(fmt, compileFormat(cf, cf.args, 2));
        return undefined;
      },
    },
    {
      name: 'access_log',
      ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF | HTTP_LIF_CONF,
      args: MORE1,
      set: setAccessLog,
    },
  ],
});
