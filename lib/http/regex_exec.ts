import type { Conf } from '../conf/parser.js';
import { compileRegex, type CompiledRegex } from '../conf/regex.js';
import type { Request } from './request.js';
import { VAR_CHANGEABLE, type Variables } from './variables.js';

/*
 * ngx_http_regex_compile / ngx_http_regex_exec: a regex used by an http
 * module (location, if, rewrite, map, server_name). Named captures are
 * variables: defined here inside the http block (so `$name` passes the
 * unknown-variable check); every successful match sets them.
 */

export type HttpRegex = CompiledRegex;

export function httpRegexCompile(cf: Conf, pattern: string, caseless: boolean): HttpRegex {
  const re = compileRegex(cf, pattern, caseless);
  const vars = cf.cycle.state.get('http.variables') as Variables | undefined;
  if (vars !== undefined && re.names.length) {
    for (const name of re.names) {
      const def = vars.add(cf, name, VAR_CHANGEABLE);
      // read before any match: empty, as ngx_http_variable_not_found
      if (def.get === undefined) def.get = () => undefined;
      re.varIndex.push(vars.getIndex(name));
    }
  }
  return re;
}

/**
 * Match `s`; on success r.captures holds [whole, $1, ...] and the named
 * captures are set as variables. A failed match leaves them as they were
 * (the rewrite module clears them itself, as nginx's script code does).
 */
export function regexExec(r: Request, re: HttpRegex, s: string): boolean {
  const m = re.re.exec(s);
  if (m === null) return false;
  setCaptures(r, re, m);
  return true;
}

/** Store a match of `re` as the request's captures and named-capture variables. */
export function setCaptures(r: Request, re: HttpRegex, m: RegExpExecArray): void {
  const caps: string[] = new Array(m.length);
  for (let i = 0; i < m.length; i++) {
    const v = m[i];
    caps[i] = v === undefined ? '' : v;
  }
  r.captures = caps;
  const idx = re.varIndex;
  if (idx.length) {
    const named: Record<string, string> = {};
    const names = re.names;
    const nums = re.nameIndex;
    for (let i = 0; i < idx.length; i++) {
      const v = caps[nums[i]!]!;
      named[names[i]!] = v;
      r.vars[idx[i]!] = v;
    }
    r.namedCaptures = named;
  }
}
