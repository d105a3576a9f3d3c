import type { Conf } from './parser.js';
import { RegexSyntaxError, translatePcre } from './regex_pcre.js';

export { RegexSyntaxError, translatePcre, type Translation } from './regex_pcre.js';

/*
 * nginx compiles regexes with PCRE2; redis2d runs them on V8's engine. This
 * file walks a PCRE pattern once, at config time, and writes the V8 pattern
 * that matches the same bytes: `.` `$` `\s` `\v` `\h` get PCRE's (non-UTF)
 * meanings, `(?P<n>` / `(?'n'` become `(?<n>`, `\Q..\E`, `[[:alpha:]]`,
 * `\A \z \Z`, a leading `(?i)` / `(?s)` / `(?m)` are rewritten. The common
 * syntax errors are reported in PCRE2's words at PCRE2's offset, as nginx
 * prints them; what V8 cannot honour (atomic groups, possessive quantifiers,
 * recursion, inline options after the start, ...) is refused at -t time,
 * never run with a different meaning.
 */

export interface CompiledRegex {
  source: string;
  re: RegExp;
  /** number of capture groups */
  captures: number;
  /** named groups, in order */
  names: string[];
  /** capture number of each named group (parallel to names) */
  nameIndex: number[];
  /**
   * variable index of each named group (parallel to names): inside the http
   * block a named capture defines a variable, as ngx_http_regex_compile
   * does (lib/http/regex_exec.ts fills this and sets them on a match)
   */
  varIndex: number[];
}

/** nginx's wording for a failed compile (ngx_regex_compile). */
export function regexErrorText(pattern: string, e: RegexSyntaxError): string {
  if (e.unsupported) return `regex "${pattern}" uses ${e.msg}, which redis2d does not support`;
  const at = e.offset < pattern.length ? ` at "${pattern.slice(e.offset)}"` : '';
  return `pcre2_compile() failed: ${e.msg} in "${pattern}"${at}`;
}

/**
 * Compile a PCRE pattern. `caseless` adds PCRE2_CASELESS (`~*`). Errors are
 * thrown through cf.error() in nginx's shape.
 */
export function compileRegex(cf: Conf, pattern: string, caseless: boolean): CompiledRegex {
  const t = translatePcre(pattern, caseless);
  if (t instanceof RegexSyntaxError) throw cf.error(regexErrorText(pattern, t));
  let re: RegExp;
  try {
    re = new RegExp(t.source, t.flags);
  } catch (e) {
    const why = (e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
    throw cf.error(`pcre2_compile() failed: ${why.toLowerCase()} in "${pattern}"`);
  }
  return { source: pattern, re, captures: t.captures, names: t.names, nameIndex: t.nameIndex, varIndex: [] };
}

