import type { Module } from '../conf/command.js';
import { httpModule } from '../http/block.js';
import { httpCoreModule } from '../http/core/module.js';
import { upstreamModule } from '../upstream/module.js';
import { accessModule } from './access/module.js';
import { autoindexModule } from './autoindex/module.js';
import { authBasicModule } from './auth_basic/module.js';
import { limitReqModule } from './limit_req/module.js';
import { realipModule } from './realip/module.js';
import { limitConnModule } from './limit_conn/module.js';
import { coreModule } from './core/module.js';
import { echoModule } from './echo/module.js';
import { emptyGifModule } from './empty_gif/module.js';
import { eventsModule } from './events/module.js';
import { headersModule } from './headers/module.js';
import { http2Module } from './http2/module.js';
import { headersMoreModule } from './headers_more/module.js';
import { logModule } from './log/module.js';
import { luaModule } from './lua/module.js';
import { mapModule } from './map/module.js';
import { noopModule } from './noop/module.js';
import { noopCoreModule } from './noop/main.js';
import { refererModule } from './referer/module.js';
import { charsetModule } from './charset/module.js';
import { gzipModule } from './gzip/module.js';
import { gzipStaticModule } from './gzip_static/module.js';
import { fastcgiModule } from './fastcgi/module.js';
import { proxyModule } from './proxy/module.js';
import { redis2Module } from './redis2/module.js';
import { redisModule } from './redis/module.js';
import { memcModule } from './memc/module.js';
import { rewriteModule } from './rewrite/module.js';
import { setMiscModule } from './set_misc/module.js';
import { srcacheModule } from './srcache/module.js';
import { sslModule } from './ssl/module.js';
import { stubStatusModule } from './stub_status/module.js';
import { subModule } from './sub/module.js';

/**
 * The module table, in nginx's order: the only place a module is
 * registered. A directive name is looked up in it; phase and log hooks
 * run in this order, header filters in reverse (lib/http/hooks.ts). Each
 * module brings its whole life in its object: directives, confs, and
 * request-time hooks. Adding a module = one line here.
 */
export const modules: Module[] = [
  coreModule,
  eventsModule,
  noopCoreModule,
  httpModule,
  httpCoreModule,
  // nginx's ngx_http_ssl_module comes right after the core modules (its merge loads certificates)
  sslModule,
  // nginx's ngx_http_v2_module follows the ssl module
  http2Module,
  noopModule,
  // ngx_http_referer_module: $invalid_referer only (no hooks)
  refererModule,
  // before headers: its range header filter (force_ranges) runs after add_header's, as nginx's range filter
  redisModule,
  memcModule,
  // nginx's ngx_http_gzip_filter_module: under add_header's filter (it sees the headers add_header and
  // expires made) and above the range filter (which its cleared Accept-Ranges then leaves alone)
  gzipModule,
  // nginx's charset filter: after gzip in the list (its header filter runs first, so a recoded body is then
  // compressed), before headers (add_header's filter runs before it)
  charsetModule,
  // nginx's sub filter: its header filter runs before charset's, its body filter above charset's
  subModule,
  headersModule,
  logModule,
  stubStatusModule,
  // content handlers for locations without one (gzip_static; autoindex after it: tried first, as nginx)
  gzipStaticModule,
  autoindexModule,
  emptyGifModule,
  upstreamModule,
  redis2Module,
  proxyModule,
  fastcgiModule,
  echoModule,
  accessModule,
  // after access: allow/deny is asked first, as nginx runs the access phase's handlers
  authBasicModule,
  // the pre-access handlers run in this order (nginx runs a phase's handlers last-registered first:
  // realip, limit_req, limit_conn)
  realipModule,
  limitReqModule,
  limitConnModule,
  mapModule,
  rewriteModule,
  setMiscModule,
  // an addon filter: after headers in the list, so its header filter runs before add_header's (hooks.ts)
  headersMoreModule,
  // ngx_lua is an addon loaded after these: its header filter runs before theirs
  luaModule,
  // after headers-more: its store sees the response before headers-more's changes (nginx loads it later)
  srcacheModule,
] as Module[];
