import {
  FLAG,
  HTTP_LIF_CONF,
  HTTP_LOC_CONF,
  HTTP_MAIN_CONF,
  HTTP_SRV_CONF,
  MORE1,
  TAKE1,
  TAKE2,
  TAKE23,
  type CommandHandler,
} from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { bitmaskSlot, flagSlot, mergeValue, msecSlot, numSlot, sizeSlot } from '../../conf/slots.js';
import { UNSET, atoi, parseSize } from '../../conf/values.js';
import { httpCoreModule, setUpstreamHandler } from '../../http/core/module.js';
import { defineHttpModule, locConf } from '../../http/module.js';
import type { ContentHandler } from '../../http/request.js';
import { httpRegexCompile } from '../../http/regex_exec.js';
import { compileComplexValue, countVariables } from '../../http/script.js';
import { VAR_NOCACHEABLE, httpVariables } from '../../http/variables.js';
import { bindSlot } from '../../upstream/bind.js';
import { upstreamAddUrl } from '../../upstream/module.js';
import { hiddenHeaders } from '../../upstream/response.js';
import {
  NEXT_UPSTREAM_ERROR,
  NEXT_UPSTREAM_HTTP_403,
  NEXT_UPSTREAM_HTTP_429,
  NEXT_UPSTREAM_HTTP_500,
  NEXT_UPSTREAM_HTTP_503,
  NEXT_UPSTREAM_INVALID_RESPONSE,
  NEXT_UPSTREAM_NON_IDEMPOTENT,
  NEXT_UPSTREAM_NOT_FOUND,
  NEXT_UPSTREAM_OFF,
  NEXT_UPSTREAM_TIMEOUT,
  mergeNextUpstream,
} from '../../upstream/run.js';
import type { FastcgiLocConf } from './conf.js';
import { fastcgiContentHandler, scriptName } from './handler.js';

/*
 * ngx_http_fastcgi_module, configuration side: fastcgi_pass, fastcgi_param
 * and the directives around them with nginx's contexts, arities, defaults
 * and merge rules. The request side is handler.ts (params, the run) and
 * try.ts (the records exchanged with one peer, record.ts).
 */

export type { FastcgiLocConf };

const conf = (cf: Conf): FastcgiLocConf => locConf(cf, fastcgiModule);

/** headers nginx hides from a FastCGI response unless fastcgi_pass_header names them */
const HIDE_DEFAULT = ['Status', 'X-Accel-Expires', 'X-Accel-Redirect', 'X-Accel-Limit-Rate', 'X-Accel-Buffering', 'X-Accel-Charset'];

const IGNORE_MASKS: Record<string, number> = {
  'x-accel-redirect': 0x2,
  'x-accel-expires': 0x4,
  'x-accel-limit-rate': 0x40,
  'x-accel-buffering': 0x80,
  'x-accel-charset': 0x100,
  expires: 0x8,
  'cache-control': 0x10,
  'set-cookie': 0x20,
  vary: 0x200,
};

function fastcgiPass(cf: Conf): string | undefined {
  const flcf = conf(cf);
  if (flcf.target !== undefined) return 'is duplicate';
  // a location ending in `/` redirects the URI without it (nginx's auto_redirect)
  setUpstreamHandler(locConf(cf, httpCoreModule), fastcgiHandler);
  const value = cf.args[1]!;
  if (countVariables(value)) {
    flcf.target = { kind: 'complex', value: compileComplexValue(cf, value) };
    return undefined;
  }
  flcf.target = { kind: 'upstream', upstream: upstreamAddUrl(cf, value) };
  return undefined;
}

function fastcgiParam(cf: Conf): string | undefined {
  const flcf = conf(cf);
  const a = cf.args;
  let ifNotEmpty = false;
  if (a.length === 4) {
    if (a[3] !== 'if_not_empty') throw cf.error(`invalid parameter "${a[3]}"`);
    ifNotEmpty = true;
  }
  (flcf.params ??= []).push({ name: a[1]!, value: compileComplexValue(cf, a[2]!), ifNotEmpty });
  return undefined;
}

function complexOnce(cf: Conf): string | undefined {
  const flcf = conf(cf);
  if (flcf.index !== undefined) return 'is duplicate';
  flcf.index = compileComplexValue(cf, cf.args[1]!);
  return undefined;
}

function splitPathInfo(cf: Conf): string | undefined {
  const flcf = conf(cf);
  if (flcf.splitPathInfo !== undefined) return 'is duplicate';
  const re = httpRegexCompile(cf, cf.args[1]!, false);
  flcf.splitPathInfo = re;
  if (re.captures !== 2) throw cf.error(`pattern "${cf.args[1]}" must have 2 captures`);
  return undefined;
}

function nameList(key: 'hideHeaders' | 'passHeaders'): CommandHandler {
  return (cf) => {
    (conf(cf)[key] ??= []).push(cf.args[1]!);
    return undefined;
  };
}

function fastcgiBuffers(cf: Conf): string | undefined {
  const flcf = conf(cf);
  if (flcf.buffers.num !== UNSET) return 'is duplicate';
  const num = atoi(cf.args[1]!);
  const size = parseSize(cf.args[2]!);
  if (num <= 0 || size <= 0) return 'invalid value';
  flcf.buffers = { num, size };
  return undefined;
}

/** What clcf.handler is set to by fastcgi_pass: the location's conf goes with the request. */
const fastcgiHandler: ContentHandler = (r) => fastcgiContentHandler(r, r.locConf[fastcgiModule.index] as FastcgiLocConf);

const LOC = HTTP_LOC_CONF | HTTP_LIF_CONF;
const ALL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;

export const fastcgiModule = defineHttpModule<unknown, unknown, FastcgiLocConf>({
  name: 'fastcgi',
  preConfiguration(cf) {
    const vars = httpVariables(cf);
    vars.add(cf, 'fastcgi_script_name', VAR_NOCACHEABLE).get = (r) => scriptName(r, r.locConf[fastcgiModule.index] as FastcgiLocConf | undefined)?.script;
    vars.add(cf, 'fastcgi_path_info', VAR_NOCACHEABLE).get = (r) => scriptName(r, r.locConf[fastcgiModule.index] as FastcgiLocConf | undefined)?.pathInfo;
  },
  createLocConf: () => ({
    target: undefined,
    params: undefined,
    httpParams: new Set(),
    index: undefined,
    splitPathInfo: undefined,
    keepConn: UNSET,
    interceptErrors: UNSET,
    hideHeaders: undefined,
    passHeaders: undefined,
    hidden: new Set(),
    ignoreHeaders: 0,
    nextUpstream: 0,
    nextUpstreamTries: UNSET,
    nextUpstreamTimeout: UNSET,
    connectTimeout: UNSET,
    sendTimeout: UNSET,
    readTimeout: UNSET,
    buffering: UNSET,
    requestBuffering: UNSET,
    bufferSize: UNSET,
    buffers: { num: UNSET, size: UNSET },
    busyBuffersSize: UNSET,
    passRequestHeaders: UNSET,
    passRequestBody: UNSET,
    bind: undefined,
    ignoreClientAbort: UNSET,
    socketKeepalive: UNSET,
    limitRate: UNSET,
    forceRanges: UNSET,
    catchStderr: undefined,
  }),
  mergeLocConf(_cf, prev, c) {
    if (c.target === undefined && prev.target !== undefined) c.target = prev.target;
    c.params ??= prev.params;
    c.httpParams = new Set((c.params ?? []).filter((p) => p.name.startsWith('HTTP_')).map((p) => p.name.slice(5)));
    c.index ??= prev.index;
    c.splitPathInfo ??= prev.splitPathInfo;
    c.keepConn = mergeValue(c.keepConn, prev.keepConn, 0);
    c.interceptErrors = mergeValue(c.interceptErrors, prev.interceptErrors, 0);
    c.hideHeaders ??= prev.hideHeaders;
    c.passHeaders ??= prev.passHeaders;
    c.hidden = hiddenHeaders(HIDE_DEFAULT, c.hideHeaders ?? [], c.passHeaders ?? []);
    if (c.ignoreHeaders === 0) c.ignoreHeaders = prev.ignoreHeaders;
    c.nextUpstream = mergeNextUpstream(c.nextUpstream, prev.nextUpstream);
    c.nextUpstreamTries = mergeValue(c.nextUpstreamTries, prev.nextUpstreamTries, 0);
    c.nextUpstreamTimeout = mergeValue(c.nextUpstreamTimeout, prev.nextUpstreamTimeout, 0);
    c.connectTimeout = mergeValue(c.connectTimeout, prev.connectTimeout, 60000);
    c.sendTimeout = mergeValue(c.sendTimeout, prev.sendTimeout, 60000);
    c.readTimeout = mergeValue(c.readTimeout, prev.readTimeout, 60000);
    c.buffering = mergeValue(c.buffering, prev.buffering, 1);
    c.requestBuffering = mergeValue(c.requestBuffering, prev.requestBuffering, 1);
    c.bufferSize = mergeValue(c.bufferSize, prev.bufferSize, 4096);
    if (c.buffers.num === UNSET) c.buffers = prev.buffers.num === UNSET ? { num: 8, size: 4096 } : prev.buffers;
    c.busyBuffersSize = mergeValue(c.busyBuffersSize, prev.busyBuffersSize, 2 * Math.max(c.bufferSize, c.buffers.size));
    c.passRequestHeaders = mergeValue(c.passRequestHeaders, prev.passRequestHeaders, 1);
    c.passRequestBody = mergeValue(c.passRequestBody, prev.passRequestBody, 1);
    if (c.bind === undefined) c.bind = prev.bind === undefined ? null : prev.bind;
    c.ignoreClientAbort = mergeValue(c.ignoreClientAbort, prev.ignoreClientAbort, 0);
    c.socketKeepalive = mergeValue(c.socketKeepalive, prev.socketKeepalive, 0);
    c.limitRate = mergeValue(c.limitRate, prev.limitRate, 0);
    c.forceRanges = mergeValue(c.forceRanges, prev.forceRanges, 0);
    c.catchStderr ??= prev.catchStderr;
  },
  commands: [
    { name: 'fastcgi_pass', ctx: LOC, args: TAKE1, set: fastcgiPass },
    { name: 'fastcgi_param', ctx: ALL, args: TAKE23, set: fastcgiParam },
    { name: 'fastcgi_index', ctx: ALL, args: TAKE1, set: complexOnce },
    { name: 'fastcgi_split_path_info', ctx: ALL, args: TAKE1, set: splitPathInfo },
    { name: 'fastcgi_keep_conn', ctx: ALL, args: FLAG, set: flagSlot(conf, 'keepConn') },
    { name: 'fastcgi_intercept_errors', ctx: ALL, args: FLAG, set: flagSlot(conf, 'interceptErrors') },
    { name: 'fastcgi_hide_header', ctx: ALL, args: TAKE1, set: nameList('hideHeaders') },
    { name: 'fastcgi_pass_header', ctx: ALL, args: TAKE1, set: nameList('passHeaders') },
    { name: 'fastcgi_ignore_headers', ctx: ALL, args: MORE1, set: bitmaskSlot(conf, 'ignoreHeaders', IGNORE_MASKS) },
    { name: 'fastcgi_ignore_client_abort', ctx: ALL, args: FLAG, set: flagSlot(conf, 'ignoreClientAbort') },
    {
      name: 'fastcgi_catch_stderr',
      ctx: ALL,
      args: TAKE1,
      set(cf) {
        (conf(cf).catchStderr ??= []).push(cf.args[1]!);
      },
    },
    { name: 'fastcgi_force_ranges', ctx: ALL, args: FLAG, set: flagSlot(conf, 'forceRanges') },
    { name: 'fastcgi_limit_rate', ctx: ALL, args: TAKE1, set: sizeSlot(conf, 'limitRate') },
    { name: 'fastcgi_socket_keepalive', ctx: ALL, args: FLAG, set: flagSlot(conf, 'socketKeepalive') },
    {
      name: 'fastcgi_next_upstream',
      ctx: ALL,
      args: MORE1,
      set: bitmaskSlot(conf, 'nextUpstream', {
        error: NEXT_UPSTREAM_ERROR,
        timeout: NEXT_UPSTREAM_TIMEOUT,
        invalid_header: NEXT_UPSTREAM_INVALID_RESPONSE,
        non_idempotent: NEXT_UPSTREAM_NON_IDEMPOTENT,
        http_500: NEXT_UPSTREAM_HTTP_500,
        http_503: NEXT_UPSTREAM_HTTP_503,
        http_403: NEXT_UPSTREAM_HTTP_403,
        http_404: NEXT_UPSTREAM_NOT_FOUND,
        http_429: NEXT_UPSTREAM_HTTP_429,
        updating: 0x800,
        off: NEXT_UPSTREAM_OFF,
      }),
    },
    { name: 'fastcgi_next_upstream_tries', ctx: ALL, args: TAKE1, set: numSlot(conf, 'nextUpstreamTries') },
    { name: 'fastcgi_next_upstream_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'nextUpstreamTimeout') },
    { name: 'fastcgi_connect_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'connectTimeout') },
    { name: 'fastcgi_send_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'sendTimeout') },
    { name: 'fastcgi_read_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'readTimeout') },
    { name: 'fastcgi_buffering', ctx: ALL, args: FLAG, set: flagSlot(conf, 'buffering') },
    { name: 'fastcgi_request_buffering', ctx: ALL, args: FLAG, set: flagSlot(conf, 'requestBuffering') },
    { name: 'fastcgi_buffer_size', ctx: ALL, args: TAKE1, set: sizeSlot(conf, 'bufferSize') },
    { name: 'fastcgi_buffers', ctx: ALL, args: TAKE2, set: fastcgiBuffers },
    { name: 'fastcgi_busy_buffers_size', ctx: ALL, args: TAKE1, set: sizeSlot(conf, 'busyBuffersSize') },
    { name: 'fastcgi_pass_request_headers', ctx: ALL, args: FLAG, set: flagSlot(conf, 'passRequestHeaders') },
    { name: 'fastcgi_pass_request_body', ctx: ALL, args: FLAG, set: flagSlot(conf, 'passRequestBody') },
    { name: 'fastcgi_bind', ctx: ALL, args: TAKE1, set: bindSlot(conf, 'bind') },
  ],
});
