import { ANY, HTTP_LIF_CONF, HTTP_LOC_CONF, MORE2, NOARGS, TAKE1, TAKE12, } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { numSlot, mergeValue } from '../../conf/slots.js';
import { UNSET } from '../../conf/values.js';
import type { ContentHandler } from '../../http/request.js';
import { compileComplexValue, type ComplexValue } from '../../http/script.js';
import { locConf, defineHttpModule } from '../../http/module.js';
import { httpCoreModule } from '../../http/core/module.js';

import { echoPaths, type EchoCmd, type EchoLocConf, type EchoMainConf, type EchoOpcode } from './conf.js';
import { echoHeaderFilter } from './filter.js';
import { echoContentHandler } from './handler.js';
import { addEchoVariables } from './vars.js';
/*
 * The echo module's configuration side (openresty/echo-nginx-module,
 * ngx_http_echo_module.c): each directive appends a command with its
 * compiled arguments to the location's handler list (installing the echo
 * content handler) or to the before/after-body filter lists.
 */

export type { EchoCmd, EchoLocConf, EchoMainConf, EchoOpcode };

/** the location's content handler: runs its command list (handler.ts) */
const echoHandler: ContentHandler = (r) => echoContentHandler(r, r.locConf[echoModule.index] as EchoLocConf);
// the body is read by echo_read_request_body (or before a subrequest), not before the handler
echoHandler.ownBody = true;

const conf = (cf: Conf): EchoLocConf => locConf(cf, echoModule);

type ListKey = 'handlerCmds' | 'beforeBodyCmds' | 'afterBodyCmds';

/** ngx_http_echo_helper */
function addCmd(cf: Conf, op: EchoOpcode, list: ListKey): void {
  const elcf = conf(cf);
  let cmds = elcf[list];
  if (!cmds) {
    cmds = elcf[list] = [];
    if (list === 'handlerCmds') locConf(cf, httpCoreModule).handler = echoHandler;
    else elcf.main.requiresFilter = true;
  }
  const args: ComplexValue[] = [];
  for (let i = 1; i < cf.args.length; i++) args.push(compileComplexValue(cf, cf.args[i]!));
  cmds.push({ op, args });
}

/** A handler command that counts as output (echo, echo_duplicate, ...). */
function output(op: EchoOpcode) {
  return (cf: Conf): undefined => {
    conf(cf).seenLeadingOutput = true;
    addCmd(cf, op, 'handlerCmds');
    return undefined;
  };
}

/** echo_location* / echo_subrequest*: a sync point first when nothing was output yet. */
function subrequest(op: EchoOpcode) {
  return (cf: Conf): undefined => {
    const elcf = conf(cf);
    if (!elcf.seenLeadingOutput) {
      elcf.seenLeadingOutput = true;
      addCmd(cf, 'echo_sync', 'handlerCmds');
    }
    addCmd(cf, op, 'handlerCmds');
    return undefined;
  };
}

function plain(op: EchoOpcode, list: ListKey = 'handlerCmds') {
  return (cf: Conf): undefined => {
    addCmd(cf, op, list);
    return undefined;
  };
}

const LOC = HTTP_LOC_CONF | HTTP_LIF_CONF;

export const echoModule = defineHttpModule<EchoMainConf, unknown, EchoLocConf>({
  name: 'echo',
  createMainConf(cf) {
    const emcf: EchoMainConf = { requiresFilter: false };
    // the loc confs keep it (the http level's loc conf is made before cf.ctx is the http one)
    cf.cycle.state.set('echo.main', emcf);
    return emcf;
  },
  headerFilter(r) {
    echoHeaderFilter(r, r.locConf[echoModule.index] as EchoLocConf | undefined);
  },
  preConfiguration(cf) {
    echoPaths.prefix = cf.cycle.prefix;
    addEchoVariables(cf);
  },
  createLocConf: (cf): EchoLocConf => ({
    handlerCmds: undefined,
    beforeBodyCmds: undefined,
    afterBodyCmds: undefined,
    seenLeadingOutput: false,
    status: UNSET,
    main: cf.cycle.state.get('echo.main') as EchoMainConf,
  }),
  mergeLocConf(_cf, prev, c) {
    if (!c.handlerCmds) {
      c.handlerCmds = prev.handlerCmds;
      c.seenLeadingOutput = prev.seenLeadingOutput;
    }
    c.beforeBodyCmds ??= prev.beforeBodyCmds;
    c.afterBodyCmds ??= prev.afterBodyCmds;
    c.status = mergeValue(c.status, prev.status, 200);
  },
  commands: [
    { name: 'echo', ctx: LOC, args: ANY, set: output('echo') },
    { name: 'echo_request_body', ctx: LOC, args: NOARGS, set: output('echo_request_body') },
    { name: 'echo_sleep', ctx: LOC, args: TAKE1, set: plain('echo_sleep') },
    { name: 'echo_before_body', ctx: LOC, args: ANY, set: plain('echo_before_body', 'beforeBodyCmds') },
    { name: 'echo_after_body', ctx: LOC, args: ANY, set: plain('echo_after_body', 'afterBodyCmds') },
    { name: 'echo_location_async', ctx: LOC, args: TAKE12, set: subrequest('echo_location_async') },
    { name: 'echo_location', ctx: LOC, args: TAKE12, set: subrequest('echo_location') },
    { name: 'echo_subrequest_async', ctx: LOC, args: MORE2, set: subrequest('echo_subrequest_async') },
    { name: 'echo_subrequest', ctx: LOC, args: MORE2, set: subrequest('echo_subrequest') },
    { name: 'echo_duplicate', ctx: LOC, args: MORE2, set: output('echo_duplicate') },
    { name: 'echo_read_request_body', ctx: LOC, args: NOARGS, set: plain('echo_read_request_body') },
    { name: 'echo_status', ctx: LOC, args: TAKE1, set: numSlot(conf, 'status') },
    { name: 'echo_flush', ctx: LOC, args: NOARGS, set: output('echo_flush') },
    { name: 'echo_blocking_sleep', ctx: LOC, args: TAKE1, set: plain('echo_blocking_sleep') },
    { name: 'echo_reset_timer', ctx: LOC, args: NOARGS, set: plain('echo_reset_timer') },
    { name: 'echo_foreach_split', ctx: LOC, args: MORE2, set: plain('echo_foreach_split') },
    { name: 'echo_end', ctx: LOC, args: NOARGS, set: plain('echo_end') },
    { name: 'echo_abort_parent', ctx: LOC, args: NOARGS, set: plain('echo_abort_parent') },
    { name: 'echo_exec', ctx: LOC, args: TAKE12, set: plain('echo_exec') },
  ],
});
