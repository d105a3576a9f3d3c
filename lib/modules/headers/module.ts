import { HTTP_LIF_CONF, HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SRV_CONF, TAKE12, TAKE23, type CommandHandler } from '../../conf/command.js';
import { compileComplexValue } from '../../http/script.js';
import { locConf, defineHttpModule } from '../../http/module.js';
import type { AddHeader, HeadersLocConf } from './conf.js';
import { expiresDirective } from './expires.js';
import { addHeaders } from './filter.js';

/*
 * ngx_http_headers_filter_module: `expires` (expires.ts) and `add_header
 * NAME VALUE [always]`. A level with no add_header of its own inherits its
 * parent's list as a whole; one without expires, its parent's.
 */

export type { AddHeader, HeadersLocConf };

/** ngx_http_headers_add: `NAME VALUE [always]` onto add_header's or add_trailer's list */
function addLine(key: 'headers' | 'trailers'): CommandHandler {
  return (cf) => {
    const hcf = locConf(cf, headersModule);
    const value = cf.args[2]!;
    const h: AddHeader = {
      name: cf.args[1]!,
      value: value.length === 0 ? undefined : compileComplexValue(cf, value),
      always: false,
    };
    (hcf[key] ??= []).push(h);
    if (cf.args.length === 3) return undefined;
    if (cf.args[3] !== 'always') throw cf.error(`invalid parameter "${cf.args[3]}"`);
    h.always = true;
    return undefined;
  };
}

export const headersModule = defineHttpModule<unknown, unknown, HeadersLocConf>({
  name: 'headers',
  createLocConf: () => ({ headers: undefined, trailers: undefined, expires: undefined }),
  headerFilter(r) {
    addHeaders(r, r.locConf[headersModule.index] as HeadersLocConf | undefined);
  },
  mergeLocConf(_cf, prev, conf) {
    if (conf.headers === undefined) conf.headers = prev.headers;
    if (conf.trailers === undefined) conf.trailers = prev.trailers;
    if (conf.expires === undefined) conf.expires = prev.expires;
  },
  commands: [
    {
      name: 'expires',
      ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF | HTTP_LIF_CONF,
      args: TAKE12,
      set: (cf): string | undefined => expiresDirective(cf, locConf<HeadersLocConf>(cf, headersModule)),
    },
    { name: 'add_header', ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF | HTTP_LIF_CONF, args: TAKE23, set: addLine('headers') },
    { name: 'add_trailer', ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF | HTTP_LIF_CONF, args: TAKE23, set: addLine('trailers') },
  ],
});
