import type { ComplexValue } from '../../http/script.js';

/* The srcache module's conf shapes, read by the directives (module.ts) and the request side. */

/** `srcache_fetch|srcache_store METHOD URI [ARGS]` */
export interface SubrequestTemplate {
  method: string;
  uri: ComplexValue;
  args: ComplexValue | undefined;
}

export interface SrcacheLocConf {
  fetch: SubrequestTemplate | undefined;
  store: SubrequestTemplate | undefined;
  fetchSkip: ComplexValue | undefined;
  storeSkip: ComplexValue | undefined;
  /** response statuses stored (default 200 301 302) */
  storeStatuses: number[] | undefined;
  /** request methods whose responses are stored (default GET HEAD) */
  storeMethods: string[] | undefined;
  /** request methods that fetch and store (merged from methodMask: GET and HEAD always among them; HEAD is never stored) */
  methods: string[] | undefined;
  /** srcache_methods: GET 1, HEAD 2, POST 4, PUT 8, DELETE 16 (0: unset) */
  methodMask: number;
  /** bytes of header and body at most (0: no limit) */
  storeMaxSize: number;
  storeNoStore: number;
  storeNoCache: number;
  storePrivate: number;
  storePassHeaders: string[] | undefined;
  storeHideHeaders: string[] | undefined;
  /** merged: lowercased names kept out of a stored response */
  hidden: Set<string>;
  /** merged: srcache_store_hide_header Content-Type / Last-Modified (their own lines are not written either) */
  hideContentType: boolean;
  hideLastModified: boolean;
  /** srcache_store_ranges: a 206 the range filter made is stored as such */
  storeRanges: number;
  /** srcache_buffer (unused by the module) */
  bufferSize: number;
  ignoreContentEncoding: number;
  headerBufferSize: number;
  requestCacheControl: number;
  responseCacheControl: number;
  /** seconds */
  defaultExpire: number;
  maxExpire: number;
}
