import type { Conf } from '../conf/parser.js';
import { ConfError } from '../conf/errors.js';
import type { Request } from './request.js';

/*
 * The variable registry of one http block (ngx_http_variables.c, config side).
 * Modules define variables (core ones, `set`, `map`, set_misc targets);
 * complex values reference them by index. After the http block is parsed,
 * every referenced name must resolve, else `unknown "name" variable`.
 */

/** Reads a variable for a request; `name` is the full name (for prefix ones). */
export type VarGetter = (r: Request, name: string) => string | undefined;
/** Writes a variable (`set` on a changeable variable). */
export type VarSetter = (r: Request, value: string) => void;

export const VAR_CHANGEABLE = 1;
export const VAR_NOCACHEABLE = 2;
/** `set` adds its variable weakly: a later definition may take it over */
export const VAR_WEAK = 4;
export const VAR_PREFIX = 8;

export interface VariableDef {
  name: string;
  flags: number;
  get: VarGetter | undefined;
  set: VarSetter | undefined;
}

export interface IndexedVariable {
  name: string;
  index: number;
  /** resolved at init: the definition (exact or prefix) that serves it */
  def: VariableDef | undefined;
}

export class Variables {
  /** exact names → definition */
  readonly defs = new Map<string, VariableDef>();
  /** prefix definitions (`arg_`, `http_`, ...) */
  readonly prefixes: VariableDef[] = [];
  /** referenced variables, by index */
  readonly indexed: IndexedVariable[] = [];
  private readonly byName = new Map<string, number>();

  /** ngx_http_add_variable; returns the definition to attach handlers to. */
  add(cf: Conf | undefined, name: string, flags: number): VariableDef {
    const key = name.toLowerCase();
    if (flags & VAR_PREFIX) {
      const found = this.prefixes.find((p) => p.name === key);
      if (found) return found;
      const def: VariableDef = { name: key, flags, get: undefined, set: undefined };
      this.prefixes.push(def);
      return def;
    }
    const existing = this.defs.get(key);
    if (existing) {
      if (!(flags & VAR_CHANGEABLE) || !(existing.flags & VAR_CHANGEABLE)) {
        const msg = `the duplicate "${key}" variable`;
        throw cf ? cf.error(msg) : new ConfError(msg);
      }
      if (!(flags & VAR_WEAK)) existing.flags &= ~VAR_WEAK;
      return existing;
    }
    const def: VariableDef = { name: key, flags, get: undefined, set: undefined };
    this.defs.set(key, def);
    return def;
  }

  /** ngx_http_get_variable_index: a reference, resolved later. */
  getIndex(name: string): number {
    const key = name.toLowerCase();
    const found = this.byName.get(key);
    if (found !== undefined) return found;
    const index = this.indexed.length;
    this.indexed.push({ name: key, index, def: undefined });
    this.byName.set(key, index);
    return index;
  }

  /** the index of a referenced variable, without adding one (request-time lookups by name) */
  indexOf(name: string): number | undefined {
    return this.byName.get(name.toLowerCase());
  }

  /** ngx_http_variables_init_vars: resolve every reference or fail. */
  initVars(): void {
    for (const v of this.indexed) {
      const exact = this.defs.get(v.name);
      // a weak definition (`set $arg_x`, NDK's set_var on $arg_x) leaves the
      // name to a prefix variable when one matches, the longest prefix
      // winning, as ngx_http_variables_init_vars does
      if (exact && !(exact.flags & VAR_WEAK)) {
        v.def = exact;
        continue;
      }
      let prefix: VariableDef | undefined;
      for (const p of this.prefixes) {
        if (v.name.startsWith(p.name) && (prefix === undefined || p.name.length > prefix.name.length)) prefix = p;
      }
      if (prefix) {
        v.def = prefix;
        continue;
      }
      if (exact) {
        v.def = exact;
        continue;
      }
      throw new ConfError(`unknown "${v.name}" variable`);
    }
  }
}


/** The registry of the http block being parsed. */
export function httpVariables(cf: Conf): Variables {
  const v = cf.cycle.state.get('http.variables') as Variables | undefined;
  if (!v) throw cf.error('variables are only allowed inside the "http" block');
  return v;
}
