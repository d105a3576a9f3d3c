import { BLOCK, EVENT_CONF, FLAG, MAIN_CONF, NOARGS, TAKE1, defineModule } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { ConfError } from '../../conf/errors.js';
import { flagSlot } from '../../conf/slots.js';
import { UNSET, atoi } from '../../conf/values.js';

/*
 * ngx_events_module and ngx_event_core_module. Node picks the event method,
 * so `use`, `multi_accept` and `accept_mutex` are accepted and checked only.
 */

export interface EventsConf {
  seen: boolean;
  workerConnections: number;
  use: string | undefined;
  multiAccept: number;
  acceptMutex: number;
}

const USE_METHODS = ['epoll', 'poll', 'select', 'kqueue', 'eventport', '/dev/poll'];

const ev = (cf: Conf): EventsConf => cf.cycle.coreConfs[eventsModule.index] as EventsConf;

export const eventsModule = defineModule<EventsConf>({
  name: 'events',
  createCoreConf: () => ({ seen: false, workerConnections: UNSET, use: undefined, multiAccept: UNSET, acceptMutex: UNSET }),
  commands: [
    {
      name: 'events',
      ctx: MAIN_CONF,
      args: BLOCK | NOARGS,
      set(cf) {
        const c = ev(cf);
        if (c.seen) return 'is duplicate';
        c.seen = true;
        cf.parseBlock(EVENT_CONF, c);
      },
    },
    {
      name: 'worker_connections',
      ctx: EVENT_CONF,
      args: TAKE1,
      set(cf) {
        const c = ev(cf);
        if (c.workerConnections !== UNSET) return 'is duplicate';
        const n = atoi(cf.args[1]!);
        if (n === -1) throw cf.error(`invalid number "${cf.args[1]}"`);
        c.workerConnections = n;
      },
    },
    {
      name: 'use',
      ctx: EVENT_CONF,
      args: TAKE1,
      set(cf) {
        const c = ev(cf);
        if (c.use !== undefined) return 'is duplicate';
        if (!USE_METHODS.includes(cf.args[1]!)) throw cf.error(`invalid event type "${cf.args[1]}"`);
        c.use = cf.args[1]!;
      },
    },
    { name: 'multi_accept', ctx: EVENT_CONF, args: FLAG, set: flagSlot(ev, 'multiAccept') },
    { name: 'accept_mutex', ctx: EVENT_CONF, args: FLAG, set: flagSlot(ev, 'acceptMutex') },
  ],
  initCoreConf(cf, conf) {
    if (!conf.seen) throw new ConfError('no "events" section in configuration');
  },
});
