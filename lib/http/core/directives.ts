import {
  BLOCK,
  FLAG,
  HTTP_LIF_CONF,
  HTTP_LOC_CONF,
  HTTP_MAIN_CONF,
  HTTP_SRV_CONF,
  MORE1,
  MORE2,
  NOARGS,
  TAKE1,
  TAKE12,
  TAKE1234,
  TAKE2,
  type Command,
  type CommandHandler,
} from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { bitmaskSlot, enumSlot, flagSlot, msecSlot, numSlot, sizeSlot, strSlot } from '../../conf/slots.js';
import { UNSET, atoi, parseMsec, parseSec, parseSize } from '../../conf/values.js';
import { PartKind, compileComplexValue, countVariables } from '../script.js';
import { parseErrorLog } from '../../conf/error_log.js';
import type { HttpCtx } from '../module.js';
import { KEEPALIVE_DISABLE_MSIE6, KEEPALIVE_DISABLE_NONE, KEEPALIVE_DISABLE_SAFARI } from '../user_agent.js';
import {
  UNSET_INDEX,
  UNSET_STR,
  UNSET_TYPES,
  httpCoreModule,
  type CoreLocConf,
  type CoreSrvConf,
  type ErrorPage,
  type TryFile,
} from './module.js';

/*
 * The value directives of ngx_http_core_module (and of the index and
 * try_files modules, whose values live in CoreLocConf here), with nginx's
 * checks and messages.
 */

const MSL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;

const clcfOf = (cf: Conf): CoreLocConf => (cf.ctx as HttpCtx).loc[httpCoreModule.index] as CoreLocConf;
const cscfOf = (cf: Conf): CoreSrvConf => (cf.ctx as HttpCtx).srv[httpCoreModule.index] as CoreSrvConf;

/** ngx_http_core_root: `root` and `alias` share one slot. */
const setRoot: CommandHandler = (cf, cmd) => {
  const clcf = clcfOf(cf);
  const alias = cmd.name === 'alias';
  if (clcf.root !== '') {
    if (clcf.alias === alias) return 'is duplicate';
    throw cf.error(
      `"${cmd.name}" directive is duplicate, "${clcf.alias ? 'alias' : 'root'}" directive was specified earlier`,
    );
  }
  if (clcf.named && alias) throw cf.error('the "alias" directive cannot be used inside the named location');
  let value = cf.args[1]!;
  for (const v of ['document_root', 'realpath_root']) {
    if (value.includes(`$${v}`) || value.includes(`\${${v}}`)) {
      throw cf.error(`the $${v} variable cannot be used in the "${cmd.name}" directive`);
    }
  }
  if (!alias && value.endsWith('/')) value = value.slice(0, -1);
  // nginx full-names every value that does not start with a variable
  if (!value.startsWith('$')) value = cf.cycle.fullName(value);
  clcf.alias = alias;
  clcf.root = value;
  // an alias in a regex location is a template of the whole path ($1, ...)
  if (countVariables(value) > 0 || (alias && clcf.regex)) clcf.rootValue = compileComplexValue(cf, value);
};

/** ngx_http_index_set_index: appends; values may hold variables. */
const setIndex: CommandHandler = (cf) => {
  const clcf = clcfOf(cf);
  if (clcf.index === UNSET_INDEX) clcf.index = [];
  const n = cf.args.length;
  for (let i = 1; i < n; i++) {
    const v = cf.args[i]!;
    if (v.startsWith('/') && i !== n - 1) cf.warn('only the last index in "index" directive should be absolute');
    if (v.length === 0) throw cf.error(`index "${cf.args[1]}" in "index" directive is invalid`);
    clcf.index.push(compileComplexValue(cf, v));
  }
};

/** ngx_http_try_files */
const setTryFiles: CommandHandler = (cf) => {
  const clcf = clcfOf(cf);
  if (clcf.tryFiles) return 'is duplicate';
  const list: TryFile[] = [];
  const n = cf.args.length;
  for (let i = 1; i < n; i++) {
    let name = cf.args[i]!;
    let testDir = false;
    // the fallback (last) entry keeps its slash: it is a URI
    if (name.endsWith('/') && i + 1 < n) {
      testDir = true;
      name = name.slice(0, -1);
    }
    list.push({ value: compileComplexValue(cf, name), testDir, code: 0 });
  }
  const last = cf.args[n - 1]!;
  if (last.startsWith('=')) {
    const code = atoi(last.slice(1));
    if (code === -1 || code > 999) throw cf.error(`invalid code "${last}"`);
    list[list.length - 1]!.code = code;
  }
  clcf.tryFiles = list;
};

/** ngx_http_core_type: one `MIME ext...;` line inside `types {}` (or an include). */
function typeLine(cf: Conf): string | undefined {
  const clcf = clcfOf(cf);
  if (cf.args[0] === 'include') {
    if (cf.args.length !== 2) throw cf.error('invalid number of arguments in "include" directive');
    cf.include(cf.args[1]!);
    return undefined;
  }
  const type = cf.args[0]!;
  for (let i = 1; i < cf.args.length; i++) {
    const ext = cf.args[i]!.toLowerCase();
    const old = clcf.types.get(ext);
    if (old !== undefined) {
      cf.warn(`duplicate extension "${ext}", content type: "${type}", previous content type: "${old}"`);
    }
    clcf.types.set(ext, type);
  }
  return undefined;
}

const setTypes: CommandHandler = (cf) => {
  const clcf = clcfOf(cf);
  if (clcf.types === UNSET_TYPES) clcf.types = new Map();
  cf.parseBlock(cf.cmdType, cf.ctx, typeLine);
};

const setDefaultType: CommandHandler = (cf) => {
  const clcf = clcfOf(cf);
  if (clcf.defaultType !== UNSET_STR) return 'is duplicate';
  clcf.defaultType = cf.args[1]!;
};

/** ngx_http_core_keepalive: `timeout [header_timeout]` */
const setKeepalive: CommandHandler = (cf) => {
  const clcf = clcfOf(cf);
  if (clcf.keepaliveTimeout !== UNSET) return 'is duplicate';
  const t = parseMsec(cf.args[1]!);
  if (t === -1) return 'invalid value';
  clcf.keepaliveTimeout = t;
  if (cf.args.length === 2) return undefined;
  const h = parseSec(cf.args[2]!);
  if (h === -1) return 'invalid value';
  clcf.keepaliveHeaderTimeout = h;
  return undefined;
};

/** ngx_conf_set_bufs_slot for large_client_header_buffers */
const setLargeBuffers: CommandHandler = (cf) => {
  const cscf = cscfOf(cf);
  if (cscf.largeClientHeaderBuffers.num !== UNSET) return 'is duplicate';
  const num = atoi(cf.args[1]!);
  const size = parseSize(cf.args[2]!);
  if (num === -1 || num === 0 || size === -1 || size === 0) return 'invalid value';
  cscf.largeClientHeaderBuffers = { num, size };
  return undefined;
};

/** ngx_http_core_error_page */
const setErrorPage: CommandHandler = (cf) => {
  const clcf = clcfOf(cf);
  if (!clcf.errorPages) clcf.errorPages = [];
  const args = cf.args;
  let i = args.length - 2;
  let overwrite = -1;
  let n = 1;
  if (args[i]!.startsWith('=')) {
    if (i === 1) throw cf.error(`invalid value "${args[i]}"`);
    if (args[i]!.length > 1) {
      overwrite = atoi(args[i]!.slice(1));
      if (overwrite === -1) throw cf.error(`invalid value "${args[i]}"`);
    } else overwrite = 0;
    n = 2;
  }
  const uri = args[args.length - 1]!;
  const value = compileComplexValue(cf, uri);
  let pageArgs = '';
  if (value.constant !== undefined && uri.startsWith('/')) {
    const q = uri.indexOf('?');
    if (q !== -1) {
      const path = uri.slice(0, q);
      value.constant = path;
      value.parts = [{ kind: PartKind.Literal, text: path }];
      pageArgs = uri.slice(q + 1);
    }
  }
  for (i = 1; i < args.length - n; i++) {
    const status = atoi(args[i]!);
    if (status === -1 || status === 499) throw cf.error(`invalid value "${args[i]}"`);
    if (status < 300 || status > 599) throw cf.error(`value "${args[i]}" must be between 300 and 599`);
    let ow = overwrite;
    // nginx's internal codes answer 400 through their error page
    if (ow === -1 && (status === 497 || status === 495 || status === 496 || status === 494)) ow = 400;
    const page: ErrorPage = { status, overwrite: ow, value, args: pageArgs };
    clcf.errorPages.push(page);
  }
  return undefined;
};

/** ngx_http_set_complex_value_size_slot: a size, or a value with variables judged per request */
function complexSizeSlot(key: 'limitRate' | 'limitRateAfter'): CommandHandler {
  return (cf) => {
    const clcf = clcfOf(cf);
    if (clcf[key] !== undefined) return 'is duplicate';
    const cv = compileComplexValue(cf, cf.args[1]!);
    if (cv.constant !== undefined && parseSize(cv.constant) === -1) return 'invalid value';
    clcf[key] = cv;
    return undefined;
  };
}

/** ngx_conf_set_path_slot: accepted (redis2d writes no temp files); checks kept. */
function pathSlot(): CommandHandler {
  const seen = new WeakSet<object>();
  return (cf) => {
    const at = (cf.ctx as HttpCtx).loc;
    if (seen.has(at)) return 'is duplicate';
    let len = 0;
    let i = 0;
    for (let n = 2; n < cf.args.length; n++, i++) {
      const level = atoi(cf.args[n]!);
      if (level === -1 || level === 0) return 'invalid value';
      len += level + 1;
    }
    if (len > 10 + i) return 'invalid value';
    seen.add(at);
    return undefined;
  };
}

/** `resolver`: accepted; redis2 resolves upstream names once, at load */
function resolverSlot(): CommandHandler {
  const seen = new WeakSet<object>();
  return (cf) => {
    const at = (cf.ctx as HttpCtx).loc;
    if (seen.has(at)) return 'is duplicate';
    seen.add(at);
    return undefined;
  };
}

export const coreValueCommands: Command[] = [
  { name: 'root', ctx: MSL | HTTP_LIF_CONF, args: TAKE1, set: setRoot },
  { name: 'alias', ctx: HTTP_LOC_CONF, args: TAKE1, set: setRoot },
  { name: 'index', ctx: MSL, args: MORE1, set: setIndex },
  { name: 'try_files', ctx: HTTP_SRV_CONF | HTTP_LOC_CONF, args: MORE2, set: setTryFiles },
  { name: 'types', ctx: MSL, args: BLOCK | NOARGS, set: setTypes },
  { name: 'default_type', ctx: MSL, args: TAKE1, set: setDefaultType },
  { name: 'client_max_body_size', ctx: MSL, args: TAKE1, set: sizeSlot(clcfOf, 'clientMaxBodySize') },
  { name: 'client_body_buffer_size', ctx: MSL, args: TAKE1, set: sizeSlot(clcfOf, 'clientBodyBufferSize') },
  { name: 'client_body_timeout', ctx: MSL, args: TAKE1, set: msecSlot(clcfOf, 'clientBodyTimeout') },
  { name: 'send_timeout', ctx: MSL, args: TAKE1, set: msecSlot(clcfOf, 'sendTimeout') },
  { name: 'keepalive_timeout', ctx: MSL, args: TAKE12, set: setKeepalive },
  { name: 'keepalive_requests', ctx: MSL, args: TAKE1, set: numSlot(clcfOf, 'keepaliveRequests') },
  { name: 'server_tokens', ctx: MSL, args: TAKE1, set: enumSlot(clcfOf, 'serverTokens', { off: 0, on: 1, build: 2 }) },
  { name: 'error_page', ctx: MSL | HTTP_LIF_CONF, args: MORE2, set: setErrorPage },
  { name: 'limit_rate', ctx: MSL | HTTP_LIF_CONF, args: TAKE1, set: complexSizeSlot('limitRate') },
  { name: 'limit_rate_after', ctx: MSL | HTTP_LIF_CONF, args: TAKE1, set: complexSizeSlot('limitRateAfter') },
  { name: 'chunked_transfer_encoding', ctx: MSL, args: FLAG, set: flagSlot(clcfOf, 'chunkedTransferEncoding') },
  {
    name: 'keepalive_disable',
    ctx: MSL,
    args: MORE1,
    set: bitmaskSlot(clcfOf, 'keepaliveDisable', { none: KEEPALIVE_DISABLE_NONE, msie6: KEEPALIVE_DISABLE_MSIE6, safari: KEEPALIVE_DISABLE_SAFARI }),
  },
  { name: 'msie_padding', ctx: MSL, args: FLAG, set: flagSlot(clcfOf, 'msiePadding') },
  { name: 'msie_refresh', ctx: MSL, args: FLAG, set: flagSlot(clcfOf, 'msieRefresh') },
  { name: 'recursive_error_pages', ctx: MSL, args: FLAG, set: flagSlot(clcfOf, 'recursiveErrorPages') },
  {
    name: 'error_log',
    ctx: MSL,
    args: MORE1,
    set(cf) {
      const clcf = clcfOf(cf);
      (clcf.errorLog ??= []).push(parseErrorLog(cf));
    },
  },
  {
    name: 'client_header_timeout',
    ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF,
    args: TAKE1,
    set: msecSlot(cscfOf, 'clientHeaderTimeout'),
  },
  { name: 'large_client_header_buffers', ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF, args: TAKE2, set: setLargeBuffers },
  { name: 'client_header_buffer_size', ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF, args: TAKE1, set: sizeSlot(cscfOf, 'clientHeaderBufferSize') },
  // request parsing (lib/http/parse.ts, uri.ts): read from the address's default server, as nginx's docs say
  { name: 'merge_slashes', ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF, args: FLAG, set: flagSlot(cscfOf, 'mergeSlashes') },
  { name: 'underscores_in_headers', ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF, args: FLAG, set: flagSlot(cscfOf, 'underscoresInHeaders') },
  { name: 'ignore_invalid_headers', ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF, args: FLAG, set: flagSlot(cscfOf, 'ignoreInvalidHeaders') },
  { name: 'max_headers', ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF, args: TAKE1, set: numSlot(cscfOf, 'maxHeaders') },
  { name: 'client_body_temp_path', ctx: MSL, args: TAKE1234, set: pathSlot() },
  { name: 'proxy_temp_path', ctx: MSL, args: TAKE1234, set: pathSlot() },
  { name: 'fastcgi_temp_path', ctx: MSL, args: TAKE1234, set: pathSlot() },
  { name: 'scgi_temp_path', ctx: MSL, args: TAKE1234, set: pathSlot() },
  { name: 'uwsgi_temp_path', ctx: MSL, args: TAKE1234, set: pathSlot() },
  { name: 'resolver', ctx: MSL, args: MORE1, set: resolverSlot() },
  { name: 'resolver_timeout', ctx: MSL, args: TAKE1, set: msecSlot(clcfOf, 'resolverTimeout') },
  { name: 'log_not_found', ctx: MSL, args: FLAG, set: flagSlot(clcfOf, 'logNotFound') },
  { name: 'log_subrequest', ctx: MSL, args: FLAG, set: flagSlot(clcfOf, 'logSubrequest') },
  { name: 'etag', ctx: MSL, args: FLAG, set: flagSlot(clcfOf, 'etag') },
  { name: 'if_modified_since', ctx: MSL, args: TAKE1, set: enumSlot(clcfOf, 'ifModifiedSince', { off: 0, exact: 1, before: 2 }) },
  { name: 'max_ranges', ctx: MSL, args: TAKE1, set: numSlot(clcfOf, 'maxRanges') },
  { name: 'post_action', ctx: MSL | HTTP_LIF_CONF, args: TAKE1, set: strSlot(clcfOf, 'postAction') },
  { name: 'absolute_redirect', ctx: MSL, args: FLAG, set: flagSlot(clcfOf, 'absoluteRedirect') },
  { name: 'server_name_in_redirect', ctx: MSL, args: FLAG, set: flagSlot(clcfOf, 'serverNameInRedirect') },
  { name: 'port_in_redirect', ctx: MSL, args: FLAG, set: flagSlot(clcfOf, 'portInRedirect') },
  // 0 all, 1 any (ngx_http_core_access_phase: phases.ts)
  { name: 'satisfy', ctx: MSL, args: TAKE1, set: enumSlot(clcfOf, 'satisfy', { all: 0, any: 1 }) },
  { name: 'auth_delay', ctx: MSL, args: TAKE1, set: msecSlot(clcfOf, 'authDelay') },
];
