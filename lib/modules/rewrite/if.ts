import type { Conf } from '../../conf/parser.js';
import { httpRegexCompile } from '../../http/regex_exec.js';
import { httpVariables } from '../../http/variables.js';
import { FILE_DIR, FILE_EXEC, FILE_EXISTS, FILE_PLAIN, OP_EQUAL, OP_FILE, OP_NOT_EQUAL, OP_REGEX_TEST, OP_VAR, type Op } from './ops.js';
import { compileValue } from './value.js';

/*
 * ngx_http_rewrite_if_condition: the words of `if (...)` as nginx's
 * tokenizer leaves them — `(` may stand alone or stick to the first word,
 * `)` to the last — compiled into stack ops that leave the truth value.
 */

export function compileCondition(cf: Conf, codes: Op[]): void {
  // nginx edits the words in place; so do we, on a copy
  const value = cf.args.slice();
  let last = value.length - 1;
  let cur: number;

  if (value[1]!.length < 1 || value[1]![0] !== '(') throw cf.error(`invalid condition "${value[1]}"`);
  if (value[1]!.length === 1) {
    cur = 2;
  } else {
    cur = 1;
    value[1] = value[1]!.slice(1);
  }

  const lv = value[last]!;
  if (lv.length < 1 || lv[lv.length - 1] !== ')') throw cf.error(`invalid condition "${lv}"`);
  if (lv.length === 1) last--;
  else value[last] = lv.slice(0, -1);

  // `if ()`: nothing left between the parentheses
  if (cur > last) throw cf.error(`invalid condition "${value[cur] ?? ''}"`);

  let p = value[cur]!;
  if (p.length > 1 && p[0] === '$') {
    if (cur !== last && cur + 2 !== last) throw cf.error(`invalid condition "${p}"`);
    codes.push({ kind: OP_VAR, index: variableIndex(cf, p.slice(1)) });
    if (cur === last) return;

    cur++;
    p = value[cur]!;
    if (p === '=' || p === '!=') {
      compileValue(cf, codes, value[last]!);
      codes.push({ kind: p === '=' ? OP_EQUAL : OP_NOT_EQUAL });
      return;
    }
    if (p === '~' || p === '~*' || p === '!~' || p === '!~*') {
      const pattern = value[last]!;
      const regex = httpRegexCompile(cf, pattern, p[p.length - 1] === '*');
      codes.push({ kind: OP_REGEX_TEST, regex, negative: p[0] === '!', name: pattern });
      return;
    }
    throw cf.error(`unexpected "${p}" in condition`);
  }

  if ((p.length === 2 && p[0] === '-') || (p.length === 3 && p[0] === '!' && p[1] === '-')) {
    if (cur + 1 !== last) throw cf.error(`invalid condition "${p}"`);
    compileValue(cf, codes, value[last]!);
    const negative = p[0] === '!';
    const letter = negative ? p[2] : p[1];
    const test = letter === 'f' ? FILE_PLAIN : letter === 'd' ? FILE_DIR : letter === 'e' ? FILE_EXISTS : letter === 'x' ? FILE_EXEC : -1;
    if (test === -1) throw cf.error(`invalid condition "${p}"`);
    codes.push({ kind: OP_FILE, test, negative });
    return;
  }

  throw cf.error(`invalid condition "${p}"`);
}

/** ngx_http_rewrite_variable / ngx_http_get_variable_index: no name check, as nginx. */
function variableIndex(cf: Conf, name: string): number {
  if (name.length === 0) throw cf.error('invalid variable name "$"');
  return httpVariables(cf).getIndex(name);
}
