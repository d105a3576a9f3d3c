import type { Module } from '../conf/command.js';
import { httpModule } from '../http/block.js';
import { httpCoreModule } from '../http/core/module.js';
import { upstreamModule } from '../upstream/module.js';
import { accessModule } from './access/module.js';
import { coreModule } from './core/module.js';
import { echoModule } from './echo/module.js';
import { eventsModule } from './events/module.js';
import { headersModule } from './headers/module.js';
import { headersMoreModule } from './headers_more/module.js';
import { logModule } from './log/module.js';
import { luaModule } from './lua/module.js';
import { mapModule } from './map/module.js';
import { noopModule } from './noop/module.js';
import { fastcgiModule } from './fastcgi/module.js';
import { proxyModule } from './proxy/module.js';
import { redis2Module } from './redis2/module.js';
import { redisModule } from './redis/module.js';
import { rewriteModule } from './rewrite/module.js';
import { setMiscModule } from './set_misc/module.js';
import { srcacheModule } from './srcache/module.js';
import { stubStatusModule } from './stub_status/module.js';

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
  httpModule,
  httpCoreModule,
  noopModule,
  // before headers: its range header filter (force_ranges) runs after add_header's, as nginx's range filter
  redisModule,
  headersModule,
  logModule,
  stubStatusModule,
  upstreamModule,
  redis2Module,
  proxyModule,
  fastcgiModule,
  echoModule,
  accessModule,
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
