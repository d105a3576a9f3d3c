import type { Module } from '../conf/command.js';
import { coreModule } from './core.js';
import { eventsModule } from './events.js';
import { httpModule } from './http.js';
import { httpCoreModule } from './http_core.js';
import { noopModule } from './noop.js';
import { upstreamModule } from './upstream.js';
import { redis2Module } from './redis2.js';

/**
 * The module table, in nginx's order: hooks run in this order, and a
 * directive name is looked up in it. Adding a module = one line here.
 */
export const modules: Module[] = [coreModule, eventsModule, httpModule, httpCoreModule, noopModule, upstreamModule, redis2Module] as Module[];
