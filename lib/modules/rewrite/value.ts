import type { Conf } from '../../conf/parser.js';
import { compileComplexValue, countVariables } from '../../http/script.js';
import { OP_COMPLEX, OP_VALUE, type Op } from './ops.js';

/** ngx_http_rewrite_value: push a constant, or a value with variables, onto the stack. */
export function compileValue(cf: Conf, codes: Op[], text: string): void {
  if (countVariables(text) === 0) {
    codes.push({ kind: OP_VALUE, text });
    return;
  }
  codes.push({ kind: OP_COMPLEX, cv: compileComplexValue(cf, text) });
}
