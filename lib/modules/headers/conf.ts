import type { ComplexValue } from '../../http/script.js';

/* add_header's and expires' conf shapes, read by the directives (module.ts) and the filter (filter.ts). */

export interface AddHeader {
  name: string;
  /** undefined for an empty value: nginx then adds nothing */
  value: ComplexValue | undefined;
  /** `always`: also on error statuses (see status.ts for the list without it) */
  always: boolean;
}

/** ngx_http_expires_t */
export const enum Expires {
  Off,
  Epoch,
  Max,
  Access,
  Modified,
  Daily,
}

export interface ExpiresConf {
  kind: Expires;
  /** seconds (negative: in the past); for Daily, seconds past midnight */
  time: number;
  /** a value with variables, parsed per request */
  value: ComplexValue | undefined;
}

export interface HeadersLocConf {
  headers: AddHeader[] | undefined;
  /** add_trailer lines (inherited as a whole, as add_header's) */
  trailers: AddHeader[] | undefined;
  /** undefined: not set at this level (merged: off) */
  expires: ExpiresConf | undefined;
}
