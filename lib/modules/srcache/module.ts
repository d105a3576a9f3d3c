import {
  FLAG,
  HTTP_LIF_CONF,
  HTTP_LOC_CONF,
  HTTP_MAIN_CONF,
  HTTP_SRV_CONF,
  MORE1,
  TAKE1,
  TAKE23,
  type CommandHandler,
} from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { bitmaskSlot, flagSlot, mergeValue, secSlot, sizeSlot } from '../../conf/slots.js';
import { UNSET, atoi } from '../../conf/values.js';
import type { HttpRequest } from '../../http/http_request.js';
import { defineHttpModule, locConf } from '../../http/module.js';
import { compileComplexValue } from '../../http/script.js';
import { VAR_NOCACHEABLE, httpVariables } from '../../http/variables.js';
import type { SrcacheLocConf } from './conf.js';
import { fetchHandler } from './fetch.js';
import { currentCtx } from './state.js';
import { HIDE_DEFAULT, storeHeaderFilter } from './store.js';

/*
 * srcache (openresty/srcache-nginx-module), configuration side: the
 * directives with the module's contexts and defaults; the fetch runs at
 * the end of the access phase (fetch.ts), the store is a header and body
 * filter (store.ts). In the module list srcache comes after headers and
 * headers-more, so its header filter sees the response before theirs, as
 * the loaded module's does in nginx (the chain runs later modules first).
 */

export type { SrcacheLocConf };

const conf = (cf: Conf): SrcacheLocConf => locConf(cf, srcacheModule);

/* the methods a srcache_fetch/srcache_store subrequest may use (ngx_http_srcache_parse_method_name: as written, uppercase) */
const SUBREQUEST_METHODS = new Set(['GET', 'PUT', 'POST', 'HEAD', 'COPY', 'MOVE', 'LOCK', 'MKCOL', 'TRACE', 'DELETE', 'UNLOCK', 'OPTIONS', 'PROPFIND', 'PROPPATCH']);

function template(key: 'fetch' | 'store'): CommandHandler {
  return (cf) => {
    const c = conf(cf);
    if (c[key] !== undefined) return 'is duplicate';
    const a = cf.args;
    if (!SUBREQUEST_METHODS.has(a[1]!)) throw cf.error(`${a[0]} specifies bad HTTP method ${a[1]}`);
    c[key] = { method: a[1]!, uri: compileComplexValue(cf, a[2]!), args: a.length > 3 ? compileComplexValue(cf, a[3]!) : undefined };
    return undefined;
  };
}

function skipSlot(key: 'fetchSkip' | 'storeSkip'): CommandHandler {
  return (cf) => {
    const c = conf(cf);
    if (c[key] !== undefined) return 'is duplicate';
    c[key] = compileComplexValue(cf, cf.args[1]!);
    return undefined;
  };
}

function statuses(cf: Conf): string | undefined {
  const c = conf(cf);
  if (c.storeStatuses !== undefined) return 'is duplicate';
  const list: number[] = [];
  for (let i = 1; i < cf.args.length; i++) {
    const n = atoi(cf.args[i]!);
    if (n === -1) throw cf.error(`status code "${cf.args[i]}" is an invalid number`);
    list.push(n);
  }
  c.storeStatuses = list;
  return undefined;
}

/* srcache_methods' words (ngx_conf_set_bitmask_slot, any case) */
const METHOD_MASKS: Record<string, number> = { get: 1, head: 2, post: 4, put: 8, delete: 16 };
const MASK_METHODS: Array<[number, string]> = [[1, 'GET'], [2, 'HEAD'], [4, 'POST'], [8, 'PUT'], [16, 'DELETE']];

function methodList(key: 'storeMethods'): CommandHandler {
  return (cf) => {
    const c = conf(cf);
    if (c[key] !== undefined) return 'is duplicate';
    c[key] = cf.args.slice(1).map((m) => m.toUpperCase());
    return undefined;
  };
}

function nameList(key: 'storePassHeaders' | 'storeHideHeaders'): CommandHandler {
  return (cf) => {
    (conf(cf)[key] ??= []).push(cf.args[1]!);
    return undefined;
  };
}

// the module's contexts: most directives also in `if` blocks, the flags and header lists not
const ALL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF | HTTP_LIF_CONF;
const NO_IF = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;

export const srcacheModule = defineHttpModule<unknown, unknown, SrcacheLocConf>({
  name: 'srcache',
  preConfiguration(cf) {
    const vars = httpVariables(cf);
    vars.add(cf, 'srcache_fetch_status', VAR_NOCACHEABLE).get = (r) => currentCtx(r)?.fetchStatus ?? 'BYPASS';
    vars.add(cf, 'srcache_store_status', VAR_NOCACHEABLE).get = (r) => currentCtx(r)?.storeStatus ?? 'BYPASS';
    // ngx_http_srcache_expire_variable: only once the response is being stored; seconds left from now
    vars.add(cf, 'srcache_expire', VAR_NOCACHEABLE).get = (r) => {
      const ctx = currentCtx(r);
      if (ctx === undefined || ctx.storeStatus !== 'STORE') return undefined;
      const c = r.locConf[srcacheModule.index] as SrcacheLocConf;
      let e = ctx.validSec === 0 ? c.defaultExpire : ctx.validSec - Math.floor(Date.now() / 1000);
      if (c.maxExpire > 0 && e > c.maxExpire) e = c.maxExpire;
      return String(e);
    };
  },
  phases: {
    access: (r): number => fetchHandler(r as HttpRequest, r.locConf[srcacheModule.index] as SrcacheLocConf | undefined),
  },
  headerFilter(r) {
    storeHeaderFilter(r, r.locConf[srcacheModule.index] as SrcacheLocConf | undefined);
  },
  createLocConf: () => ({
    fetch: undefined,
    store: undefined,
    fetchSkip: undefined,
    storeSkip: undefined,
    storeStatuses: undefined,
    storeMethods: undefined,
    methods: undefined,
    methodMask: 0,
    storeMaxSize: UNSET,
    storeNoStore: UNSET,
    storeNoCache: UNSET,
    storePrivate: UNSET,
    storePassHeaders: undefined,
    storeHideHeaders: undefined,
    hidden: new Set(),
    hideContentType: false,
    hideLastModified: false,
    storeRanges: UNSET,
    bufferSize: UNSET,
    ignoreContentEncoding: UNSET,
    headerBufferSize: UNSET,
    requestCacheControl: UNSET,
    responseCacheControl: UNSET,
    defaultExpire: UNSET,
    maxExpire: UNSET,
  }),
  mergeLocConf(_cf, prev, c) {
    c.fetch ??= prev.fetch;
    c.store ??= prev.store;
    c.fetchSkip ??= prev.fetchSkip;
    c.storeSkip ??= prev.storeSkip;
    c.storeStatuses ??= prev.storeStatuses;
    c.storeMethods ??= prev.storeMethods;
    // ngx_http_srcache_merge_loc_conf: GET and HEAD are always cache methods
    if (c.methodMask === 0) c.methodMask = prev.methodMask;
    c.methodMask |= METHOD_MASKS.get! | METHOD_MASKS.head!;
    c.methods = MASK_METHODS.filter(([m]) => c.methodMask & m).map(([, name]) => name);
    c.storeMaxSize = mergeValue(c.storeMaxSize, prev.storeMaxSize, 0);
    c.storeNoStore = mergeValue(c.storeNoStore, prev.storeNoStore, 0);
    c.storeNoCache = mergeValue(c.storeNoCache, prev.storeNoCache, 0);
    c.storePrivate = mergeValue(c.storePrivate, prev.storePrivate, 0);
    c.storePassHeaders ??= prev.storePassHeaders;
    c.storeHideHeaders ??= prev.storeHideHeaders;
    const hidden = new Set([...HIDE_DEFAULT, ...(c.storeHideHeaders ?? [])].map((h) => h.toLowerCase()));
    for (const p of c.storePassHeaders ?? []) hidden.delete(p.toLowerCase());
    c.hidden = hidden;
    // Content-Type and Last-Modified are written by the store itself: hidden, they are left out too
    c.hideContentType = hidden.has('content-type');
    c.hideLastModified = hidden.has('last-modified');
    c.storeRanges = mergeValue(c.storeRanges, prev.storeRanges, 0);
    c.ignoreContentEncoding = mergeValue(c.ignoreContentEncoding, prev.ignoreContentEncoding, 0);
    c.headerBufferSize = mergeValue(c.headerBufferSize, prev.headerBufferSize, 4096);
    c.requestCacheControl = mergeValue(c.requestCacheControl, prev.requestCacheControl, 0);
    c.responseCacheControl = mergeValue(c.responseCacheControl, prev.responseCacheControl, 1);
    c.defaultExpire = mergeValue(c.defaultExpire, prev.defaultExpire, 60);
    c.maxExpire = mergeValue(c.maxExpire, prev.maxExpire, 0);
  },
  commands: [
    { name: 'srcache_fetch', ctx: ALL, args: TAKE23, set: template('fetch') },
    { name: 'srcache_store', ctx: ALL, args: TAKE23, set: template('store') },
    { name: 'srcache_fetch_skip', ctx: ALL, args: TAKE1, set: skipSlot('fetchSkip') },
    { name: 'srcache_store_skip', ctx: ALL, args: TAKE1, set: skipSlot('storeSkip') },
    { name: 'srcache_store_statuses', ctx: ALL, args: MORE1, set: statuses },
    { name: 'srcache_store_methods', ctx: ALL, args: MORE1, set: methodList('storeMethods') },
    { name: 'srcache_methods', ctx: NO_IF, args: MORE1, set: bitmaskSlot(conf, 'methodMask', METHOD_MASKS) },
    { name: 'srcache_store_max_size', ctx: ALL, args: TAKE1, set: sizeSlot(conf, 'storeMaxSize') },
    { name: 'srcache_store_no_store', ctx: NO_IF, args: FLAG, set: flagSlot(conf, 'storeNoStore') },
    { name: 'srcache_store_no_cache', ctx: NO_IF, args: FLAG, set: flagSlot(conf, 'storeNoCache') },
    { name: 'srcache_store_private', ctx: NO_IF, args: FLAG, set: flagSlot(conf, 'storePrivate') },
    { name: 'srcache_store_pass_header', ctx: NO_IF, args: TAKE1, set: nameList('storePassHeaders') },
    { name: 'srcache_store_hide_header', ctx: NO_IF, args: TAKE1, set: nameList('storeHideHeaders') },
    // the module's buffer size is read nowhere: accepted as a size
    { name: 'srcache_buffer', ctx: ALL, args: TAKE1, set: sizeSlot(conf, 'bufferSize') },
    { name: 'srcache_store_ranges', ctx: NO_IF, args: FLAG, set: flagSlot(conf, 'storeRanges') },
    { name: 'srcache_ignore_content_encoding', ctx: NO_IF, args: FLAG, set: flagSlot(conf, 'ignoreContentEncoding') },
    { name: 'srcache_header_buffer_size', ctx: ALL, args: TAKE1, set: sizeSlot(conf, 'headerBufferSize') },
    { name: 'srcache_request_cache_control', ctx: NO_IF, args: FLAG, set: flagSlot(conf, 'requestCacheControl') },
    { name: 'srcache_response_cache_control', ctx: NO_IF, args: FLAG, set: flagSlot(conf, 'responseCacheControl') },
    { name: 'srcache_default_expire', ctx: ALL, args: TAKE1, set: secSlot(conf, 'defaultExpire') },
    { name: 'srcache_max_expire', ctx: ALL, args: TAKE1, set: secSlot(conf, 'maxExpire') },
  ],
});
