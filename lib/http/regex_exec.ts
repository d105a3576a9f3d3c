import type { Conf } from '../conf/parser.js';
import { compileRegex, type CompiledRegex } from '../conf/regex.js';
import type { Request } from './request.js';
import { VAR_CHANGEABLE, httpVariables } from './variables.js';

/*
 * ngx_http_regex_compile / ngx_http_regex_exec: a regex used by an http
 * module (location, if, rewrite, map, server_name). Named captures become
 * variables: defined at config time (so `$name` passes the unknown-variable
 * check), filled in by every successful match.
 */

export interface HttpRegex {
  rx: CompiledRegex;
  /** variable index of each named capture (parallel to rx.names) */
  varIndex: number[];
}

export function httpRegexCompile(cf: Conf, pattern: string, caseless: boolean): HttpRegex {
  const rx = compileRegex(cf, pattern, caseless);
  const varIndex: number[] = [];
  if (rx.names.length) {
    const vars = httpVariables(cf);
    for (const name of rx.names) {
      const def = vars.add(cf, name, VAR_CHANGEABLE);
      // never read before a match sets it: empty, as ngx_http_variable_not_found
      if (def.get === undefined) def.get = () => undefined;
      varIndex.push(vars.getIndex(name));
    }
  }
  return { rx, varIndex };
}

/**
 * Match `s`; on success r.captures holds [whole, $1, ...] and the named
 * captures are set as variables. A failed match leaves them as they were
 * (the rewrite module clears them itself, as nginx's script code does).
 */
export function regexExec(r: Request, re: HttpRegex, s: string): boolean {
  const m = re.rx.re.exec(s);
  if (m === null) return false;
  const caps: string[] = new Array(m.length);
  for (let i = 0; i < m.length; i++) {
    const v = m[i];
    caps[i] = v === undefined ? '' : v;
  }
  r.captures = caps;
  const idx = re.varIndex;
  if (idx.length) {
    const named: Record<string, string> = {};
    const names = re.rx.names;
    const nums = re.rx.nameIndex;
    for (let i = 0; i < idx.length; i++) {
      const v = caps[nums[i]!]!;
      named[names[i]!] = v;
      r.vars[idx[i]!] = v;
    }
    r.namedCaptures = named;
  }
  return true;
}
