import type { Request } from './request.js';
import { PartKind, type ComplexValue } from './script.js';
import { VAR_CHANGEABLE, VAR_NOCACHEABLE } from './variables.js';

/*
 * Request-time side of variables and complex values (ngx_http_get_indexed_
 * variable / ngx_http_complex_value). r.vars caches values by index for the
 * request's life; variables flagged NOCACHEABLE are re-read on every use,
 * as nginx flushes them before each script runs. A value `set` by the
 * rewrite module (or a regex's named capture) is stored in r.vars and wins.
 */

/** The value of the variable with this index ('' when not found). */
export function getVariable(r: Request, index: number): string {
  const cached = r.vars[index];
  if (cached !== undefined) return cached;
  const iv = r.variables.indexed[index]!;
  const def = iv.def;
  if (def === undefined || def.get === undefined) return '';
  const v = def.get(r, iv.name);
  const value = v === undefined ? '' : v;
  if (!(def.flags & VAR_NOCACHEABLE)) r.vars[index] = value;
  return value;
}

/**
 * `set $name value`: through the variable's set hook when it has one
 * ($args, $limit_rate), else stored for the rest of the request.
 */
export function setVariable(r: Request, index: number, value: string): void {
  const def = r.variables.indexed[index]!.def;
  if (def !== undefined && def.set !== undefined) {
    def.set(r, value);
    return;
  }
  r.vars[index] = value;
}

/** ngx_http_complex_value: literals, variables and captures, concatenated. */
export function evalComplexValue(r: Request, cv: ComplexValue): string {
  if (cv.constant !== undefined) return cv.constant;
  const parts = cv.parts;
  let out = '';
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (p.kind === PartKind.Literal) out += p.text;
    else if (p.kind === PartKind.Var) out += getVariable(r, p.index);
    else out += captureValue(r, p.n);
  }
  return out;
}

/** $N of the last successful match; empty when there is none. */
export function captureValue(r: Request, n: number): string {
  const caps = r.captures;
  if (caps === undefined || n >= caps.length) return '';
  const v = caps[n];
  return v === undefined ? '' : v;
}

/**
 * ngx_http_get_variable: a variable by name at request time (ngx.var.NAME);
 * undefined when no such variable exists or it has no value.
 */
export function getVariableByName(r: Request, name: string): string | undefined {
  const vars = r.variables;
  const key = name.toLowerCase();
  const idx = vars.indexOf(key);
  if (idx !== undefined) {
    const cached = r.vars[idx];
    if (cached !== undefined) return cached;
    const def = vars.indexed[idx]!.def;
    if (def === undefined || def.get === undefined) return undefined;
    return def.get(r, key);
  }
  const def = vars.defs.get(key) ?? vars.prefixes.find((p) => key.startsWith(p.name));
  if (def === undefined || def.get === undefined) return undefined;
  return def.get(r, key);
}

/**
 * ngx.var.NAME = value: through the variable's set hook, else into its
 * indexed slot; 'notfound' / 'readonly' as nginx refuses.
 */
export function setVariableByName(r: Request, name: string, value: string): 'ok' | 'notfound' | 'readonly' {
  const vars = r.variables;
  const key = name.toLowerCase();
  const def = vars.defs.get(key);
  if (def === undefined) return 'notfound';
  if (!(def.flags & VAR_CHANGEABLE)) return 'readonly';
  if (def.set !== undefined) {
    def.set(r, value);
    return 'ok';
  }
  const idx = vars.indexOf(key);
  if (idx === undefined) return 'readonly';
  r.vars[idx] = value;
  return 'ok';
}
