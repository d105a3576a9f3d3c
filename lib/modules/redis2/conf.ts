import type { PassTarget } from '../../upstream/pass_target.js';
import type { ComplexValue } from '../../http/script.js';
import type { UpstreamLocal } from '../../upstream/module.js';
import type { UpstreamSslConf } from '../../upstream/ssl.js';

/* The redis2 module's conf shapes, read by the directives (module.ts) and the request side. */

/** ngx_pagesize on the platforms we run on: redis2_buffer_size's default */
export const PAGE_SIZE = 4096;

export const OUTPUT_RAW = 0;
export const OUTPUT_JSON = 1;

/** `redis2_pass host:port | NAME | $var` (lib/upstream/pass_target.ts) */
export type Redis2Target = PassTarget;

export interface Redis2LocConf {
  /** redis2_query lines; each argument compiled (an empty argument is the constant '') */
  queries: ComplexValue[][] | undefined;
  /** redis2_raw_query Q, or the Q of redis2_raw_queries N Q */
  rawQuery: ComplexValue | undefined;
  /** the N of redis2_raw_queries (undefined: one reply expected) */
  rawQueriesCount: ComplexValue | undefined;
  /** redis2_literal_raw_query (no variables); '' counts as absent for conflicts */
  literalQuery: string | undefined;
  /**
   * What the handler sends, in the module's order: `queries` if any, else
   * `literalQuery` if non-empty, else `rawQuery` (with rawQueriesCount).
   */
  target: Redis2Target | undefined;
  /** ms */
  connectTimeout: number;
  sendTimeout: number;
  readTimeout: number;
  /** bytes */
  bufferSize: number;
  /** NEXT_UPSTREAM_* mask after merge (never 0; test bits, the SET bit is bookkeeping); OFF clears the rest */
  nextUpstream: number;
  /** redis2_bind: undefined = unset (merged to null), null = off */
  bind: UpstreamLocal | null | undefined;
  /** **extension** redis2d_output: OUTPUT_RAW or OUTPUT_JSON (json.ts) */
  output: number;
  /** **extension** redis2_ssl_* (lib/upstream/ssl.ts) */
  ssl: UpstreamSslConf;
}

