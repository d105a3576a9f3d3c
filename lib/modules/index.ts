import type { Module } from '../conf/command.js';
import { coreModule } from './core.js';
import { eventsModule } from './events.js';
import { httpModule } from './http.js';
import { httpCoreModule } from './http_core.js';
import { noopModule } from './noop.js';
import { headersModule } from './headers.js';
import { logModule } from './log.js';
import { stubStatusModule } from './stub_status.js';
import { upstreamModule } from './upstream.js';
import { redis2Module } from './redis2.js';
import { accessModule } from './access.js';
import { mapModule } from './map.js';
import { rewriteModule } from './rewrite.js';
import { setMiscModule } from './set_misc.js';
import { echoModule } from './echo.js';
// request-side halves of echo and set_misc: they register with their config sides
import './echo_run.js';
import './echo_filter.js';
import './set_misc_run.js';
import '../redis/handler.js'; // registers the redis2 content handler (setRedis2ContentHandler)

/**
 * The module table, in nginx's order: hooks run in this order, and a
 * directive name is looked up in it. Adding a module = one line here.
 */
export const modules: Module[] = [coreModule, eventsModule, httpModule, httpCoreModule, noopModule, headersModule, logModule, stubStatusModule, upstreamModule, redis2Module, echoModule, accessModule, mapModule, rewriteModule, setMiscModule] as Module[];
