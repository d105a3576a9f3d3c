import {
  FLAG,
  HTTP_LIF_CONF,
  HTTP_LMT_CONF,
  HTTP_LOC_CONF,
  HTTP_MAIN_CONF,
  HTTP_SRV_CONF,
  MORE1,
  TAKE1,
  TAKE12,
  TAKE1234,
  TAKE2,
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
import { createSslConf, mergeSslConf } from '../../upstream/ssl.js';
import { proxySslCommands, proxyWantsTls } from './ssl.js';
import { cookieFlagsDirective } from './cookie_flags.js';
import { upstreamAdd } from '../../upstream/module.js';
import { hiddenHeaders } from '../../upstream/response.js';
import {
  NEXT_UPSTREAM_ERROR,
  NEXT_UPSTREAM_HTTP_403,
  NEXT_UPSTREAM_HTTP_429,
  NEXT_UPSTREAM_HTTP_500,
  NEXT_UPSTREAM_HTTP_502,
  NEXT_UPSTREAM_HTTP_503,
  NEXT_UPSTREAM_HTTP_504,
  NEXT_UPSTREAM_INVALID_RESPONSE,
  NEXT_UPSTREAM_NON_IDEMPOTENT,
  NEXT_UPSTREAM_NOT_FOUND,
  NEXT_UPSTREAM_OFF,
  NEXT_UPSTREAM_TIMEOUT,
  mergeNextUpstream,
} from '../../upstream/run.js';
import { parseUrl } from '../../upstream/url.js';
import type { ProxyLocConf, RewriteRule } from './conf.js';
import { proxyContentHandler, proxyHostOf, proxyPortOf, forwardedFor } from './handler.js';
import { closeProxyPools } from './try.js';

/*
 * ngx_http_proxy_module, configuration side: proxy_pass and the directives
 * around it with nginx's contexts, arities, defaults and merge rules. The
 * request side is handler.ts (the run and the request it sends) and try.ts
 * (one exchange with a peer, over the upstream layer's connections).
 */

export type { ProxyLocConf };

const conf = (cf: Conf): ProxyLocConf => locConf(cf, proxyModule);

/** headers nginx hides from a proxied response unless proxy_pass_header names them */
const HIDE_DEFAULT = [
  'Date',
  'Server',
  'X-Pad',
  'X-Accel-Expires',
  'X-Accel-Redirect',
  'X-Accel-Limit-Rate',
  'X-Accel-Buffering',
  'X-Accel-Charset',
];

/** proxy_ignore_headers' names (ngx_http_upstream_ignore_headers_masks) */
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

/** ngx_http_proxy_pass */
function proxyPass(cf: Conf): string | undefined {
  const plcf = conf(cf);
  if (plcf.target !== undefined) return 'is duplicate';
  const clcf = locConf(cf, httpCoreModule);
  // a location ending in `/` redirects the URI without it (nginx's auto_redirect)
  setUpstreamHandler(clcf, proxyHandler);

  const url = cf.args[1]!;
  if (countVariables(url)) {
    plcf.target = { kind: 'complex', value: compileComplexValue(cf, url) };
    plcf.url = url;
    return undefined;
  }
  let add: number;
  let port: number;
  if (url.slice(0, 7).toLowerCase() === 'http://') {
    add = 7;
    port = 80;
  } else if (url.slice(0, 8).toLowerCase() === 'https://') {
    add = 8;
    port = 443;
  } else {
    throw cf.error('invalid URL prefix');
  }
  const rest = url.slice(add);
  const { hostPort, uri } = splitUri(rest);
  const parsed = parseUrl(hostPort, { defaultPort: port, noResolve: true });
  if (!parsed.ok) throw cf.error(`${parsed.err} in upstream "${rest}"`);
  const u = parsed.url;
  const upstream = upstreamAdd(cf, u, 0);
  let host: string;
  let portText: string;
  if (u.family === 'unix') {
    host = 'localhost';
    portText = '';
  } else if (u.noPort || u.port === port) {
    host = u.host;
    portText = String(port);
  } else {
    host = `${u.host}:${u.port}`;
    portText = String(u.port);
  }
  plcf.target = { kind: 'upstream', upstream, host, port: portText, uri: uri.length > 0 ? uri : undefined };
  plcf.url = url;
  plcf.location = clcf.name;
  if (clcf.named || clcf.regex !== undefined || clcf.noname) {
    if (uri.length > 0) {
      throw cf.error(
        '"proxy_pass" cannot have URI part in location given by regular expression, or inside named location, or inside "if" statement, or inside "limit_except" block',
      );
    }
    plcf.location = '';
  }
  return undefined;
}

/** `host:port/uri` → the address part and the URI part ('' when none); `unix:/path:/uri` too */
export function splitUri(text: string): { hostPort: string; uri: string } {
  if (text.slice(0, 5).toLowerCase() === 'unix:') {
    const colon = text.indexOf(':', 5);
    if (colon === -1) return { hostPort: text, uri: '' };
    return { hostPort: text.slice(0, colon), uri: text.slice(colon + 1) };
  }
  const slash = text.indexOf('/');
  if (slash === -1) return { hostPort: text, uri: '' };
  return { hostPort: text.slice(0, slash), uri: text.slice(slash) };
}

/** ngx_http_proxy_redirect: `default`, `off`, or `FROM TO` (FROM may be `~regex` / `~*regex`) */
function proxyRedirect(cf: Conf): string | undefined {
  const plcf = conf(cf);
  const a = cf.args;
  if (plcf.redirect === null) return 'is duplicate';
  if (a.length === 2) {
    if (a[1] === 'off') {
      if (plcf.redirect !== undefined) return 'is duplicate';
      plcf.redirect = null;
      return undefined;
    }
    if (a[1] !== 'default') throw cf.error(`invalid parameter "${a[1]}"`);
    if (plcf.redirectDefault) return 'is duplicate';
    plcf.redirectDefault = true;
    plcf.redirect ??= [];
    return undefined;
  }
  (plcf.redirect ??= []).push(rewriteRule(cf, a[1]!, a[2]!));
  return undefined;
}

function rewriteRule(cf: Conf, from: string, to: string): RewriteRule {
  if (from.startsWith('~')) {
    const caseless = from.startsWith('~*');
    const re = httpRegexCompile(cf, from.slice(caseless ? 2 : 1), caseless);
    return { from: undefined, regex: re, to: compileComplexValue(cf, to) };
  }
  return { from: compileComplexValue(cf, from), regex: undefined, to: compileComplexValue(cf, to) };
}

/** proxy_cookie_domain / proxy_cookie_path: `off` or `FROM TO` */
function cookieRule(key: 'cookieDomain' | 'cookiePath'): CommandHandler {
  return (cf) => {
    const plcf = conf(cf);
    const a = cf.args;
    if (plcf[key] === null) return 'is duplicate';
    if (a.length === 2) {
      if (a[1] !== 'off') throw cf.error(`invalid parameter "${a[1]}"`);
      if (plcf[key] !== undefined) return 'is duplicate';
      plcf[key] = null;
      return undefined;
    }
    (plcf[key] ??= []).push(rewriteRule(cf, a[1]!, a[2]!));
    return undefined;
  };
}

function proxySetHeader(cf: Conf): string | undefined {
  const plcf = conf(cf);
  (plcf.setHeaders ??= []).push([cf.args[1]!, compileComplexValue(cf, cf.args[2]!)]);
  return undefined;
}

function proxyHttpVersion(cf: Conf): string | undefined {
  const plcf = conf(cf);
  if (plcf.httpVersion !== UNSET) return 'is duplicate';
  const v = cf.args[1]!;
  if (v === '1.0') plcf.httpVersion = 1000;
  else if (v === '1.1') plcf.httpVersion = 1001;
  else throw cf.error(`invalid value "${v}"`);
  return undefined;
}

function nameList(key: 'hideHeaders' | 'passHeaders'): CommandHandler {
  return (cf) => {
    (conf(cf)[key] ??= []).push(cf.args[1]!);
    return undefined;
  };
}

/** ngx_conf_set_bufs_slot */
function proxyBuffers(cf: Conf): string | undefined {
  const plcf = conf(cf);
  if (plcf.buffers.num !== UNSET) return 'is duplicate';
  const num = atoi(cf.args[1]!);
  const size = parseSize(cf.args[2]!);
  if (num <= 0 || size <= 0) return 'invalid value';
  plcf.buffers = { num, size };
  return undefined;
}

function complexOnce(key: 'method' | 'setBody'): CommandHandler {
  return (cf) => {
    const plcf = conf(cf);
    if (plcf[key] !== undefined) return 'is duplicate';
    plcf[key] = compileComplexValue(cf, cf.args[1]!);
    return undefined;
  };
}

/** What clcf.handler is set to by proxy_pass: the location's conf goes with the request. */
const proxyHandler: ContentHandler = (r) => proxyContentHandler(r, r.locConf[proxyModule.index] as ProxyLocConf);

const LOC = HTTP_LOC_CONF | HTTP_LIF_CONF | HTTP_LMT_CONF;
const ALL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;

export const proxyModule = defineHttpModule<unknown, unknown, ProxyLocConf>({
  name: 'proxy',
  exitProcess() {
    closeProxyPools();
  },
  preConfiguration(cf) {
    const vars = httpVariables(cf);
    vars.add(cf, 'proxy_host', VAR_NOCACHEABLE).get = (r) => proxyHostOf(r, r.locConf[proxyModule.index] as ProxyLocConf | undefined);
    vars.add(cf, 'proxy_port', VAR_NOCACHEABLE).get = (r) => proxyPortOf(r, r.locConf[proxyModule.index] as ProxyLocConf | undefined);
    vars.add(cf, 'proxy_add_x_forwarded_for', VAR_NOCACHEABLE).get = (r) => forwardedFor(r);
  },
  createLocConf: () => ({
    target: undefined,
    url: '',
    location: '',
    setHeaders: undefined,
    passRequestHeaders: UNSET,
    passRequestBody: UNSET,
    httpVersion: UNSET,
    method: undefined,
    redirect: undefined,
    redirectDefault: false,
    cookieDomain: undefined,
    cookiePath: undefined,
    cookieFlags: undefined,
    hideHeaders: undefined,
    passHeaders: undefined,
    hidden: new Set(),
    ignoreHeaders: 0,
    interceptErrors: UNSET,
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
    setBody: undefined,
    bind: undefined,
    ignoreClientAbort: UNSET,
    socketKeepalive: UNSET,
    limitRate: UNSET,
    forceRanges: UNSET,
    ssl: createSslConf(),
  }),
  mergeLocConf(cf, prev, c) {
    if (c.target === undefined && prev.target !== undefined) {
      // nginx inherits the handler with the upstream (an `if` inside a proxied location)
      c.target = prev.target;
      c.url = prev.url;
      c.location = prev.location;
    }
    c.setHeaders ??= prev.setHeaders;
    c.passRequestHeaders = mergeValue(c.passRequestHeaders, prev.passRequestHeaders, 1);
    c.passRequestBody = mergeValue(c.passRequestBody, prev.passRequestBody, 1);
    c.httpVersion = mergeValue(c.httpVersion, prev.httpVersion, 1000);
    c.method ??= prev.method;
    if (c.redirect === undefined && !c.redirectDefault) {
      c.redirect = prev.redirect;
      c.redirectDefault = prev.redirect === undefined ? true : prev.redirectDefault;
    }
    if (c.cookieDomain === undefined) c.cookieDomain = prev.cookieDomain ?? null;
    if (c.cookiePath === undefined) c.cookiePath = prev.cookiePath ?? null;
    if (c.cookieFlags === undefined) c.cookieFlags = prev.cookieFlags ?? null;
    c.hideHeaders ??= prev.hideHeaders;
    c.passHeaders ??= prev.passHeaders;
    c.hidden = hiddenHeaders(HIDE_DEFAULT, c.hideHeaders ?? [], c.passHeaders ?? []);
    if (c.ignoreHeaders === 0) c.ignoreHeaders = prev.ignoreHeaders;
    c.interceptErrors = mergeValue(c.interceptErrors, prev.interceptErrors, 0);
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
    c.setBody ??= prev.setBody;
    if (c.bind === undefined) c.bind = prev.bind === undefined ? null : prev.bind;
    c.ignoreClientAbort = mergeValue(c.ignoreClientAbort, prev.ignoreClientAbort, 0);
    c.socketKeepalive = mergeValue(c.socketKeepalive, prev.socketKeepalive, 0);
    c.limitRate = mergeValue(c.limitRate, prev.limitRate, 0);
    c.forceRanges = mergeValue(c.forceRanges, prev.forceRanges, 0);
    // TLS where the location proxies to https (or to a URL with variables), as ngx_http_proxy_set_ssl
    c.ssl.enable = proxyWantsTls(c) ? 1 : 0;
    mergeSslConf(cf, 'proxy', prev.ssl, c.ssl, c.ssl.enable === 1);
  },
  commands: [
    { name: 'proxy_pass', ctx: LOC, args: TAKE1, set: proxyPass },
    { name: 'proxy_redirect', ctx: ALL, args: TAKE12, set: proxyRedirect },
    { name: 'proxy_cookie_domain', ctx: ALL, args: TAKE12, set: cookieRule('cookieDomain') },
    { name: 'proxy_cookie_path', ctx: ALL, args: TAKE12, set: cookieRule('cookiePath') },
    { name: 'proxy_cookie_flags', ctx: ALL, args: TAKE1234, set: (cf) => cookieFlagsDirective(cf, conf(cf)) },
    { name: 'proxy_set_header', ctx: ALL, args: TAKE2, set: proxySetHeader },
    { name: 'proxy_pass_request_headers', ctx: ALL, args: FLAG, set: flagSlot(conf, 'passRequestHeaders') },
    { name: 'proxy_pass_request_body', ctx: ALL, args: FLAG, set: flagSlot(conf, 'passRequestBody') },
    { name: 'proxy_http_version', ctx: ALL, args: TAKE1, set: proxyHttpVersion },
    { name: 'proxy_method', ctx: ALL, args: TAKE1, set: complexOnce('method') },
    { name: 'proxy_set_body', ctx: ALL, args: TAKE1, set: complexOnce('setBody') },
    { name: 'proxy_hide_header', ctx: ALL, args: TAKE1, set: nameList('hideHeaders') },
    { name: 'proxy_pass_header', ctx: ALL, args: TAKE1, set: nameList('passHeaders') },
    { name: 'proxy_ignore_headers', ctx: ALL, args: MORE1, set: bitmaskSlot(conf, 'ignoreHeaders', IGNORE_MASKS) },
    { name: 'proxy_intercept_errors', ctx: ALL, args: FLAG, set: flagSlot(conf, 'interceptErrors') },
    { name: 'proxy_ignore_client_abort', ctx: ALL, args: FLAG, set: flagSlot(conf, 'ignoreClientAbort') },
    { name: 'proxy_force_ranges', ctx: ALL, args: FLAG, set: flagSlot(conf, 'forceRanges') },
    { name: 'proxy_limit_rate', ctx: ALL, args: TAKE1, set: sizeSlot(conf, 'limitRate') },
    { name: 'proxy_socket_keepalive', ctx: ALL, args: FLAG, set: flagSlot(conf, 'socketKeepalive') },
    {
      name: 'proxy_next_upstream',
      ctx: ALL,
      args: MORE1,
      set: bitmaskSlot(conf, 'nextUpstream', {
        error: NEXT_UPSTREAM_ERROR,
        timeout: NEXT_UPSTREAM_TIMEOUT,
        invalid_header: NEXT_UPSTREAM_INVALID_RESPONSE,
        non_idempotent: NEXT_UPSTREAM_NON_IDEMPOTENT,
        http_500: NEXT_UPSTREAM_HTTP_500,
        http_502: NEXT_UPSTREAM_HTTP_502,
        http_503: NEXT_UPSTREAM_HTTP_503,
        http_504: NEXT_UPSTREAM_HTTP_504,
        http_403: NEXT_UPSTREAM_HTTP_403,
        http_404: NEXT_UPSTREAM_NOT_FOUND,
        http_429: NEXT_UPSTREAM_HTTP_429,
        updating: 0x800,
        off: NEXT_UPSTREAM_OFF,
      }),
    },
    { name: 'proxy_next_upstream_tries', ctx: ALL, args: TAKE1, set: numSlot(conf, 'nextUpstreamTries') },
    { name: 'proxy_next_upstream_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'nextUpstreamTimeout') },
    { name: 'proxy_connect_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'connectTimeout') },
    { name: 'proxy_send_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'sendTimeout') },
    { name: 'proxy_read_timeout', ctx: ALL, args: TAKE1, set: msecSlot(conf, 'readTimeout') },
    { name: 'proxy_buffering', ctx: ALL, args: FLAG, set: flagSlot(conf, 'buffering') },
    { name: 'proxy_request_buffering', ctx: ALL, args: FLAG, set: flagSlot(conf, 'requestBuffering') },
    { name: 'proxy_buffer_size', ctx: ALL, args: TAKE1, set: sizeSlot(conf, 'bufferSize') },
    { name: 'proxy_buffers', ctx: ALL, args: TAKE2, set: proxyBuffers },
    { name: 'proxy_busy_buffers_size', ctx: ALL, args: TAKE1, set: sizeSlot(conf, 'busyBuffersSize') },
    { name: 'proxy_bind', ctx: ALL, args: TAKE12, set: bindSlot(conf, 'bind') },
    ...proxySslCommands(conf),
  ],
});
