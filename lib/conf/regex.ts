import type { Conf } from './parser.js';

/*
 * nginx compiles regexes with PCRE; redis2d runs them on V8's engine. This
 * translates the PCRE forms real configs use and refuses, at -t time, what
 * V8 would read differently, so a regex never silently changes meaning.
 */

export interface CompiledRegex {
  source: string;
  re: RegExp;
  /** number of capture groups */
  captures: number;
  /** named groups, in order */
  names: string[];
}

/**
 * Compile a PCRE pattern. `caseless` adds PCRE_CASELESS (`~*`). Errors are
 * thrown through cf.error() in nginx's shape.
 */
export function compileRegex(cf: Conf, pattern: string, caseless: boolean): CompiledRegex {
  let src = pattern;
  let flags = caseless ? 'i' : '';
  // a leading inline option group applies to the whole pattern
  const inline = /^\(\?([imsx]+)\)/.exec(src);
  if (inline) {
    for (const f of inline[1]!) {
      if (f === 'x') throw cf.error(`pcre2_compile() failed: the (?x) option is not supported by redis2d in "${pattern}"`);
      if (!flags.includes(f)) flags += f;
    }
    src = src.slice(inline[0].length);
  }
  src = src.replace(/\(\?P<([A-Za-z_][A-Za-z0-9_]*)>/g, '(?<$1>').replace(/\(\?'([A-Za-z_][A-Za-z0-9_]*)'/g, '(?<$1>');
  if (/\\[AzZQEG]|\(\?[#|>]|\(\?[imsx-]+[:)]|\[\[:|\\[pP]\{|\(\*|\\[hHvVRK]|\+\+|\*\+|\?\+|\}\+/.test(src)) {
    throw cf.error(`pcre2_compile() failed: construct not supported by redis2d in "${pattern}"`);
  }
  let re: RegExp;
  try {
    re = new RegExp(src, flags);
  } catch (e) {
    const why = (e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /, '');
    throw cf.error(`pcre2_compile() failed: ${why.toLowerCase()} in "${pattern}"`);
  }
  const names: string[] = [];
  const nameRe = /\(\?<([A-Za-z_][A-Za-z0-9_]*)>/g;
  for (let m = nameRe.exec(src); m; m = nameRe.exec(src)) names.push(m[1]!);
  const captures = new RegExp(`(?:${src})|`, flags).exec('')!.length - 1;
  return { source: pattern, re, captures, names };
}
