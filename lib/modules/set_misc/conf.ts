import type { Request } from '../../http/request.js';
import type { ComplexValue } from '../../http/script.js';

/* set_misc's conf shapes, read by the directives (module.ts) and the transforms (filters.ts). */

/** ndk_upstream_list_t: a name and its weighted buckets (a name repeated `weight` times). */
export interface UpstreamList {
  name: string;
  buckets: string[];
}

export interface SetMiscMainConf {
  upstreamLists: UpstreamList[];
}

/** ngx_http_set_misc_loc_conf_t */
export interface SetMiscLocConf {
  /** set_base32_padding (and the deprecated set_misc_base32_padding): UNSET, 0, 1 */
  base32Padding: number;
  /** set_base32_alphabet: 32 bytes, or undefined until merged */
  base32Alphabet: string | undefined;
  /** the decoding table of base32Alphabet, built as the conf is merged */
  basis32: Uint8Array;
  /**
   * set_rotate's last value in this location (UNSET at first); the module
   * keeps it in the location's conf, so it lives as long as the worker
   * and is shared by every set_rotate of the location
   */
  current: number;
}

/** One compiled set_* directive. */
export interface SetMiscStep {
  /** the directive name, which selects the transform */
  directive: string;
  /** target variable index */
  index: number;
  /** the values the transform receives, in order (NDK's value / multi-value) */
  values: ComplexValue[];
  /** set_hashed_upstream with a literal list name: the list, resolved at config time */
  list: UpstreamList | undefined;
}

/**
 * A transform: the evaluated values in, the new variable value out
 * (undefined = NGX_ERROR: the request fails with 500).
 */
export type SetMiscFilter = (
  r: Request,
  values: string[],
  step: SetMiscStep,
  lists: UpstreamList[],
  lcf: SetMiscLocConf,
) => string | undefined;

