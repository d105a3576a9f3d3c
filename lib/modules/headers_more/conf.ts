import type { ComplexValue } from '../../http/script.js';

/*
 * headers-more's conf shapes, written by the directives (module.ts, args.ts)
 * and read by the output filter (output.ts) and the input handler (input.ts).
 */

/** headers whose value lives in a field of the request rather than (only) in a header list */
export const enum Slot {
  Generic,
  Server,
  Date,
  ContentType,
  ContentLength,
  Location,
  /** request side */
  Host,
}

/** one `Name: value` argument */
export interface HeaderArg {
  /** the key as the module reads it from the argument (args.ts), `*` kept */
  key: string;
  /** the key lowercased, for matching */
  lower: string;
  /** a key ending in `*`: its lowercased prefix (the wildcard part matches anything) */
  prefix: string | undefined;
  /** undefined for an empty value: the header is cleared */
  value: ComplexValue | undefined;
  slot: Slot;
}

/** one more_set_headers / more_clear_headers directive */
export interface OutputCmd {
  /** -s: the statuses it applies to (undefined: every status) */
  statuses: number[] | undefined;
  /** -t: the content types it applies to (undefined: any) */
  types: string[] | undefined;
  headers: HeaderArg[];
}

/** one more_set_input_headers / more_clear_input_headers directive */
export interface InputCmd {
  /** -t: the request Content-Type values it applies to (undefined: any) */
  types: string[] | undefined;
  /** -r: only replace headers the request has */
  replace: boolean;
  headers: HeaderArg[];
}

export interface HeadersMoreLocConf {
  /** the directives of this level, after the inherited ones */
  output: OutputCmd[] | undefined;
  input: InputCmd[] | undefined;
}
