import type { ComplexValue } from '../../http/script.js';

/* add_header's conf shapes, read by the directive (module.ts) and the filter (filter.ts). */

export interface AddHeader {
  name: string;
  /** undefined for an empty value: nginx then adds nothing */
  value: ComplexValue | undefined;
  /** `always`: also on error statuses (see status.ts for the list without it) */
  always: boolean;
}

export interface HeadersLocConf {
  headers: AddHeader[] | undefined;
}

