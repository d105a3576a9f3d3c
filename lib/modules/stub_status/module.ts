import { HTTP_LOC_CONF, HTTP_SRV_CONF, NOARGS, TAKE1, } from '../../conf/command.js';
import type { ContentHandler, Request } from '../../http/request.js';
import { VAR_NOCACHEABLE, httpVariables } from '../../http/variables.js';
import { locConf, defineHttpModule } from '../../http/module.js';
import { httpCoreModule } from '../../http/core/module.js';

/*
 * ngx_http_stub_status_module, config side: `stub_status;` (and the old
 * `stub_status on;`, whose argument nginx ignores) makes the location's
 * content handler the status page. The page itself is the server's: it
 * sets `stubStatus.handler` at startup.
 */

export const stubStatus: { handler: ContentHandler | undefined } = { handler: undefined };

/** the installed content handler: defers to the server's implementation */
function stubStatusHandler(r: Request): number | Promise<number> {
  if (!stubStatus.handler) return 500;
  return stubStatus.handler(r);
}

/** the variables the module defines; getters are attached by the server */
export const STUB_STATUS_VARIABLES = [
  'connections_active',
  'connections_reading',
  'connections_writing',
  'connections_waiting',
];

export const stubStatusModule = defineHttpModule({
  name: 'stub_status',
  preConfiguration(cf) {
    const vars = httpVariables(cf);
    for (const name of STUB_STATUS_VARIABLES) vars.add(cf, name, VAR_NOCACHEABLE);
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
