import { HTTP_LIF_CONF, HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SRV_CONF, MORE1 } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import type { HttpRequest } from '../../http/http_request.js';
import { defineHttpModule, locConf } from '../../http/module.js';
import { DECLINED, DONE, type Request } from '../../http/request.js';
import { parseArgs, type DirectiveKind } from './args.js';
import type { HeadersMoreLocConf } from './conf.js';
import { applyInput } from './input.js';
import { applyOutput } from './output.js';

/*
 * ngx_http_headers_more_filter_module (openresty/headers-more-nginx-module):
 *
 *   more_set_headers [-s STATUS...] [-t TYPE...] 'Name: value' ...
 *   more_clear_headers [-s STATUS...] [-t TYPE...] Name ...     (Name may end in `*`)
 *   more_set_input_headers [-r] [-t TYPE...] 'Name: value' ...
 *   more_clear_input_headers [-t TYPE...] Name ...
 *
 * in http, server, location and location `if`. A level's directives run
 * after the ones it inherits (the lists are joined, not replaced). The
 * output side is a header filter that runs before add_header's; the input
 * side runs at the end of the rewrite phase (after `set`, `rewrite`, `if`).
 * A value nginx refuses at run time (Content-Length not a number, an
 * invalid Host) closes the connection without a response, as nginx does.
 */

export type { HeadersMoreLocConf };

const CTX = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF | HTTP_LIF_CONF;

function directive(kind: DirectiveKind) {
  return (cf: Conf): undefined => {
    const conf = locConf(cf, headersMoreModule);
    const parsed = parseArgs(cf, kind);
    if (kind.input) (conf.input ??= []).push({ types: parsed.types, replace: parsed.replace, headers: parsed.headers });
    else (conf.output ??= []).push({ statuses: parsed.statuses, types: parsed.types, headers: parsed.headers });
    return undefined;
  };
}

function join<T>(prev: T[] | undefined, own: T[] | undefined): T[] | undefined {
  if (own === undefined) return prev;
  return prev === undefined ? own : [...prev, ...own];
}

/** the end of the rewrite phase: the input headers of the request's level */
function inputHandler(req: Request): number {
  const conf = req.locConf[headersMoreModule.index] as HeadersMoreLocConf | undefined;
  const cmds = conf?.input;
  if (cmds === undefined) return DECLINED;
  const r = req as HttpRequest;
  if (applyInput(r, cmds)) return DECLINED;
  closeRequest(r);
  return DONE;
}

/** a handler or filter error (NGX_ERROR): nginx closes the connection as is */
function closeRequest(r: HttpRequest): void {
  r.main.terminate();
  // whoever still works for the request (an upstream, a subrequest) lets go
  r.main.abort();
}

export const headersMoreModule = defineHttpModule<unknown, unknown, HeadersMoreLocConf>({
  name: 'headers_more',
  createLocConf: () => ({ output: undefined, input: undefined }),
  mergeLocConf(_cf, prev, conf) {
    conf.output = join(prev.output, conf.output);
    conf.input = join(prev.input, conf.input);
  },
  phases: { rewriteTail: inputHandler },
  headerFilter(r) {
    const conf = r.locConf[headersMoreModule.index] as HeadersMoreLocConf | undefined;
    const cmds = conf?.output;
    if (cmds === undefined || applyOutput(r, cmds)) return;
    // the header filter failed: nothing of the response is sent
    closeRequest(r);
  },
  commands: [
    { name: 'more_set_headers', ctx: CTX, args: MORE1, set: directive({ input: false, clear: false }) },
    { name: 'more_clear_headers', ctx: CTX, args: MORE1, set: directive({ input: false, clear: true }) },
    { name: 'more_set_input_headers', ctx: CTX, args: MORE1, set: directive({ input: true, clear: false }) },
    { name: 'more_clear_input_headers', ctx: CTX, args: MORE1, set: directive({ input: true, clear: true }) },
  ],
});
