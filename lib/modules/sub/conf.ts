import type { ComplexValue } from '../../http/script.js';
import type { TypeList } from '../../http/types.js';
import type { Tables } from './tables.js';

/* sub_filter's location conf. */

export interface SubPair {
  /** the search string, lowercased (variables allowed) */
  match: ComplexValue;
  value: ComplexValue;
}

export interface SubLocConf {
  pairs: SubPair[] | undefined;
  /** built once when no pattern has variables */
  tables: Tables | undefined;
  once: number;
  lastModified: number;
  types: TypeList | undefined;
}
