import type { Conf } from '../conf/parser.js';
import { httpVariables } from './variables.js';

/*
 * Complex values (ngx_http_complex_value_t): an argument with `$var`,
 * `${var}` and `$1`..`$9` compiled once at config time into literal pieces
 * and references. Requests evaluate the program; nothing re-parses strings.
 */

export const enum PartKind {
  Literal,
  Var,
  Capture,
}

export type Part =
  | { kind: PartKind.Literal; text: string }
  | { kind: PartKind.Var; index: number; name: string }
  | { kind: PartKind.Capture; n: number };

export interface ComplexValue {
  /** the source text, for messages and -T */
  source: string;
  /** set when the value has no variables: evaluation returns it as is */
  constant: string | undefined;
  parts: Part[];
  /** highest $N used (0 when none) */
  maxCapture: number;
}

/** ngx_http_script_variables_count: how many `$` the text holds. */
export function countVariables(value: string): number {
  let n = 0;
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) === 0x24) n++;
  return n;
}

function isNameChar(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95;
}

/**
 * ngx_http_script_compile: split the value into literal text, variable
 * references (registered for the unknown-variable check) and captures.
 */
export function compileComplexValue(cf: Conf, value: string): ComplexValue {
  if (countVariables(value) === 0) {
    return { source: value, constant: value, parts: value ? [{ kind: PartKind.Literal, text: value }] : [], maxCapture: 0 };
  }
  const vars = httpVariables(cf);
  const parts: Part[] = [];
  let maxCapture = 0;
  let i = 0;
  const len = value.length;
  while (i < len) {
    if (value.charCodeAt(i) === 0x24) {
      if (++i === len) throw cf.error('invalid variable name');
      const c = value.charCodeAt(i);
      if (c >= 0x31 && c <= 0x39) {
        const n = c - 0x30;
        parts.push({ kind: PartKind.Capture, n });
        if (n > maxCapture) maxCapture = n;
        i++;
        continue;
      }
      let bracket = false;
      if (c === 0x7b) {
        bracket = true;
        if (++i === len) throw cf.error('invalid variable name');
      }
      const start = i;
      let end = -1;
      for (; i < len; i++) {
        const ch = value.charCodeAt(i);
        if (ch === 0x7d && bracket) {
          end = i++;
          bracket = false;
          break;
        }
        if (!isNameChar(ch)) break;
      }
      const name = value.slice(start, end === -1 ? i : end);
      if (bracket) throw cf.error(`the closing bracket in "${name}" variable is missing`);
      if (name.length === 0) throw cf.error('invalid variable name');
      parts.push({ kind: PartKind.Var, index: vars.getIndex(name), name: name.toLowerCase() });
      continue;
    }
    const start = i;
    while (i < len && value.charCodeAt(i) !== 0x24) i++;
    parts.push({ kind: PartKind.Literal, text: value.slice(start, i) });
  }
  return { source: value, constant: undefined, parts, maxCapture };
}
