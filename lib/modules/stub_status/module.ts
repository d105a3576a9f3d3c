import { HTTP_LOC_CONF, HTTP_SRV_CONF, NOARGS, TAKE1, } from '../../conf/command.js';
import { collectCounters, counters, type StubCounters } from '../../core/counters.js';
import { OK, type Request } from '../../http/request.js';
import { VAR_NOCACHEABLE, httpVariables } from '../../http/variables.js';
import { locConf, defineHttpModule } from '../../http/module.js';
import { httpCoreModule } from '../../http/core/module.js';

/*
 * ngx_http_stub_status_module: `stub_status;` (and the old `stub_status on;`,
 * whose argument nginx ignores) makes the location's content handler the
 * status page, nginx's exact text:
 *
 *   Active connections: N
 *   server accepts handled requests
 *    N N N
 *   Reading: N Writing: N Waiting: N
 *
 * (each line with nginx's trailing space), text/plain with a Content-Length
 * and nothing else. The counters are kept where nginx counts them
 * (lib/core/counters.ts, bumped by the connection code); with several
 * workers the page shows their sum (the process layer's collector asks the
 * master, which asks every worker: nginx's shared zone). The variables
 * $connections_active/reading/writing/waiting read this process's gauges.
 */

function statusText(c: StubCounters): string {
  return (
    `Active connections: ${c.active} \n` +
    'server accepts handled requests\n' +
    ` ${c.accepted} ${c.handled} ${c.requests} \n` +
    `Reading: ${c.reading} Writing: ${c.writing} Waiting: ${c.waiting} \n`
  );
}

/** ngx_http_stub_status_handler */
async function stubStatusHandler(r: Request): Promise<number> {
  if (r.method !== 'GET' && r.method !== 'HEAD') return 405;
  const body = Buffer.from(statusText(await collectCounters()), 'latin1');
  if (r.aborted) return OK;
  r.status = 200;
  r.contentType = 'text/plain';
  r.contentLength = body.length;
  const replaced = r.filterFinalized;
  r.sendHeader();
  if (!r.headerOnly && r.filterFinalized === replaced) r.send(body);
  return OK;
}

const VARIABLES: Array<[string, keyof StubCounters]> = [
  ['connections_active', 'active'],
  ['connections_reading', 'reading'],
  ['connections_writing', 'writing'],
  ['connections_waiting', 'waiting'],
];

export const stubStatusModule = defineHttpModule({
  name: 'stub_status',
  preConfiguration(cf) {
    const vars = httpVariables(cf);
    for (const [name, key] of VARIABLES) {
      const v = vars.add(cf, name, VAR_NOCACHEABLE);
      v.get = () => String(counters[key]);
    }
  },
  commands: [
    {
      name: 'stub_status',
      ctx: HTTP_SRV_CONF | HTTP_LOC_CONF,
      args: NOARGS | TAKE1,
      set(cf) {
        locConf(cf, httpCoreModule).handler = stubStatusHandler;
      },
    },
  ],
});
