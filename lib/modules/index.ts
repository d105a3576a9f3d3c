import type { Module } from '../conf/command.js';
import { httpModule } from '../http/block.js';
import { httpCoreModule } from '../http/core/module.js';
import { upstreamModule } from '../upstream/module.js';
import { accessModule } from './access/module.js';
import { coreModule } from './core/module.js';
import { echoModule } from './echo/module.js';
import { eventsModule } from './events/module.js';
import { headersModule } from './headers/module.js';
import { logModule } from './log/module.js';
import { mapModule } from './map/module.js';
import { noopModule } from './noop/module.js';
import { fastcgiModule } from './fastcgi/module.js';
import { proxyModule } from './proxy/module.js';
import { redis2Module } from './redis2/module.js';
import { redisModule } from './redis/module.js';
import { rewriteModule } from './rewrite/module.js';
import { setMiscModule } from './set_misc/module.js';
import { stubStatusModule } from './stub_status/module.js';

/**
 * The module table, in nginx's order: the only place a module is
 * registered. A directive name is looked up in it, and every hook runs in
 * this order (phases, header filters, log; see lib/http/hooks.ts). Each
 * module brings its whole life in its object: directives, confs, and
 * request-time hooks. Adding a module = one line here.
 */
export const modules: Module[] = [
  coreModule,
  eventsModule,
  httpModule,
  httpCoreModule,
  noopModule,
  headersModule,
  logModule,
  stubStatusModule,
  upstreamModule,
  redis2Module,
  redisModule,
  proxyModule,
  fastcgiModule,
  echoModule,
  accessModule,
  mapModule,
  rewriteModule,
  setMiscModule,
] as Module[];
