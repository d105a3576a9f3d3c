import {
  BLOCK,
  HTTP_LMT_CONF,
  HTTP_LOC_CONF,
  HTTP_MAIN_CONF,
  HTTP_SRV_CONF,
  MORE1,
  NOARGS,
  TAKE12,
} from '../../conf/command.js';
import { hostname } from 'node:os';
import type { Conf } from '../../conf/parser.js';
import type { CompiledRegex } from '../../conf/regex.js';
import { httpRegexCompile } from '../regex_exec.js';
import type { SslServer } from '../tls.js';
import type { H2Conf } from '../h2.js';
import { mergeValue } from '../../conf/slots.js';
import { UNSET } from '../../conf/values.js';
import { PartKind, type ComplexValue } from '../script.js';
import { KEEPALIVE_DISABLE_MSIE6 } from '../user_agent.js';
import type { ErrorLogSpec } from '../../core/error_log.js';
import type { ContentHandler } from '../request.js';
import { defineCoreVariables } from '../core_variables.js';
import { httpVariables } from '../variables.js';
import { createConfs, defineHttpModule, locConf, srvConf, type HttpCtx } from '../module.js';
import { coreValueCommands } from './directives.js';
import { addDefaultListen, listenDirective, type ConfPort } from './listen.js';

/*
 * ngx_http_core_module: server and location blocks and the core directives.
 * The conf shapes here are what the request side reads.
 */

export interface ListenOpt {
  /** 'inet' | 'inet6' | 'unix' */
  family: 'inet' | 'inet6' | 'unix';
  /** address as nginx prints it: `127.0.0.1:8080`, `[::1]:80`, `unix:/path`, `0.0.0.0:80` */
  text: string;
  /** numeric address to bind: `0.0.0.0`, `127.0.0.1`, `::`, `::1` ('' for unix) */
  host: string;
  /** 0 for unix sockets */
  port: number;
  /** the socket path for unix:PATH */
  path: string | undefined;
  /** true when host is the wildcard (0.0.0.0 / ::): nginx binds it once per port */
  wildcard: boolean;
  defaultServer: boolean;
  /** listen(2) backlog: -1 means nginx's default (NGX_LISTEN_BACKLOG 511) */
  backlog: number;
  /** true when `bind` was given or implied (backlog=, reuseport, ipv6only=, ...) */
  bind: boolean;
  reuseport: boolean;
  /** IPV6_V6ONLY for inet6 addresses (nginx's default: on) */
  ipv6only: boolean;
  /** rcvbuf= / sndbuf= in bytes, -1 unset */
  rcvbuf: number;
  sndbuf: number;
  /** `deferred` (accepted, Linux TCP_DEFER_ACCEPT) */
  deferred: boolean;
  /** so_keepalive=on|off|[keepidle]:[keepintvl]:[keepcnt]; undefined when not given */
  soKeepalive: string | undefined;
  /** `ssl`: connections start with a TLS handshake (OR-ed over the servers sharing the address) */
  ssl: boolean;
  /** `http2`: HTTP/2 through ALPN on TLS, with prior knowledge (h2c) on plain listens (lib/http/h2.ts) */
  http2: boolean;
  /** where the listen directive stands, for conflicts reported later */
  file: string;
  line: number;
}

/** One `error_page` code → target (ngx_http_err_page_t). */
export interface ErrorPage {
  status: number;
  /** -1: keep the status; 0: `=` (the target's status); N: `=N` */
  overwrite: number;
  /** the target URI (or `@named` location, or URL), possibly with variables */
  value: ComplexValue;
  /** args split off a constant `/uri?args` target */
  args: string;
}

/** One try_files entry (ngx_http_try_file_t). */
export interface TryFile {
  /** the name with variables, as written minus a trailing slash */
  value: ComplexValue;
  /** a trailing `/`: test for a directory */
  testDir: boolean;
  /** `=CODE` as the last entry: the code; else 0 */
  code: number;
}

export interface ServerName {
  /** lowercased name, or the regex source for `~` names */
  name: string;
  regex: CompiledRegex | undefined;
}

export interface CoreMainConf {
  servers: CoreSrvConf[];
  /** every listen address, with the servers on it (ngx_http_conf_port_t list) */
  ports: ConfPort[];
}

export interface CoreSrvConf {
  /** this server's conf level (srv and loc arrays of every module) */
  ctx: HttpCtx;
  listen: ListenOpt[];
  serverNames: ServerName[];
  /** ms; default 60000 */
  clientHeaderTimeout: number;
  /** the first header buffer (nginx reads a head into it, then into large_client_header_buffers); default 1024 */
  clientHeaderBufferSize: number;
  /** `large_client_header_buffers NUMBER SIZE`: default 4 8k; a request line or
   * header line longer than size is 414/400, as nginx */
  largeClientHeaderBuffers: { num: number; size: number };
  /** `max_headers N` (Debian's nginx 1.22.1 backports it): more header lines are 494; default 1000 */
  maxHeaders: number;
  /** merge_slashes (default on): `//` in a URI is one `/`; flags 1/0, -1 unset */
  mergeSlashes: number;
  /** underscores_in_headers (default off): `_` is a valid header name byte */
  underscoresInHeaders: number;
  /** ignore_invalid_headers (default on): a header whose name has a byte nginx does not allow is dropped */
  ignoreInvalidHeaders: number;
  /** TLS settings of this server (the ssl module sets them after the http block is merged) */
  ssl: SslServer | undefined;
  /** HTTP/2 settings of this server (the http2 module sets them after the http block is merged) */
  http2: H2Conf | undefined;
  /** the file and line of the `server {` directive */
  file: string;
  line: number;
}

export interface CoreLocConf {
  /** location name as written after the modifier ('' for the server level) */
  name: string;
  exactMatch: boolean;
  noRegex: boolean;
  named: boolean;
  /** `if` blocks are unnamed pseudo-locations (nginx's noname) */
  noname: boolean;
  regex: CompiledRegex | undefined;
  /** the loc conf array of this level (this object is at coreModule's index) */
  locConf: unknown[];
  /** nested locations and `if` blocks in config order */
  locations: CoreLocConf[];
  /** 1 when `internal;` (merged: 0 when absent) */
  internal: number;

  // --- files: filled by root/alias/index/try_files, merged with nginx's defaults
  /** root or alias path, full-named against the prefix; default `PREFIX/html`;
   * `root` loses a trailing slash, `alias` keeps it */
  root: string;
  /** compiled root/alias when it has variables (or is an alias in a regex location) */
  rootValue: ComplexValue | undefined;
  /** true when `root` holds an alias: the location name (prefix locations) or the
   * whole URI (regex locations, rootValue set) is replaced by it */
  alias: boolean;
  /** `index` files (ngx_http_index_module); default ['index.html'] */
  index: ComplexValue[];
  /** `try_files` (not inherited, as nginx): the last entry is the fallback
   * (`=404` → code set, `@name` or a URI) */
  tryFiles: TryFile[] | undefined;

  // --- types
  /** default `text/plain` */
  defaultType: string;
  /** extension (lowercased) → MIME type; default html, gif, jpg (nginx's built-in) */
  types: Map<string, string>;

  // --- body, timeouts, keepalive (ms / bytes)
  /** default 1m; 0 = unlimited */
  clientMaxBodySize: number;
  /** default 2 * pagesize = 8192 */
  clientBodyBufferSize: number;
  /** default 60000 */
  clientBodyTimeout: number;
  /** default 60000 */
  sendTimeout: number;
  /** auth_delay: a 401 from the access phase waits this long (ms, default 0) */
  authDelay: number;
  /** recursive_error_pages (default off): an error page's own error may go through error_page again */
  recursiveErrorPages: number;
  /** limit_rate / limit_rate_after (sizes, maybe with variables): the response's pace (lib/http/rate.ts) */
  limitRate: ComplexValue | undefined | null;
  limitRateAfter: ComplexValue | undefined | null;
  /** msie_padding (default on): the error page's padding for MSIE and Chrome */
  msiePadding: number;
  /** msie_refresh (default off): MSIE gets a 301/302 as a 200 page that refreshes to the Location */
  msieRefresh: number;
  /** chunked_transfer_encoding (default on): off closes an HTTP/1.1 response without a length instead */
  chunkedTransferEncoding: number;
  /** keepalive_disable bits (KEEPALIVE_DISABLE_*; 0 unset): browsers whose connections close after a response */
  keepaliveDisable: number;
  /** default 75000; 0 disables keepalive */
  keepaliveTimeout: number;
  /** seconds, `Keep-Alive: timeout=N` header; 0 = no header (default) */
  keepaliveHeaderTimeout: number;
  /** default 1000 (nginx >= 1.19.10) */
  keepaliveRequests: number;
  /** accepted (`resolver_timeout`); default 30000 */
  resolverTimeout: number;
  /** 0 off, 1 on (default), 2 build */
  serverTokens: number;
  /** `error_page` entries (inherited as a whole only when this level has none) */
  errorPages: ErrorPage[] | undefined;
  /** error_log of this level; undefined = inherit / the main error log */
  errorLog: ErrorLogSpec[] | undefined;
  /** `log_not_found`: a missing file's open() error is logged (default 1) */
  logNotFound: number;
  /** `log_subrequest`: subrequests are access-logged too (default 0) */
  logSubrequest: number;
  /** `etag`: static files get an ETag (default 1) */
  etag: number;
  /** `if_modified_since off|exact|before` → 0|1|2 (default exact) */
  ifModifiedSince: number;
  /** `max_ranges`: most ranges served (default unlimited; 0 disables ranges) */
  maxRanges: number;
  /** `post_action`: a URI or @name run after the response is sent (undefined: none) */
  postAction: string | undefined;
  /** `absolute_redirect`: a Location starting with `/` is made absolute (default 1) */
  absoluteRedirect: number;
  /** `server_name_in_redirect`: that Location names the server's first name, not Host (default 0) */
  serverNameInRedirect: number;
  /** `port_in_redirect`: that Location carries the port unless it is 80 (default 1) */
  portInRedirect: number;
  /** `satisfy`: 0 all, 1 any (the access phase, phases.ts) */
  satisfy: number;
  /**
   * `limit_except METHOD ... { }`: the methods it lets through as they are
   * (GET brings HEAD) and the unnamed level every other method is served
   * under (nginx's limit_except_loc_conf; phases.ts updateLocationConfig)
   */
  limitExcept: { allowed: Set<string>; loc: CoreLocConf } | undefined;
  /** this level is a limit_except block (nginx's lmt_excpt) */
  lmtExcept: boolean;

  /** the content handler a module installed here (redis2_pass, echo, return's default, ...) */
  handler: ContentHandler | undefined;
  /** nginx's auto_redirect: the URI without this location's trailing `/` is redirected to it */
  autoRedirect: boolean;
  file: string;
  line: number;
}

/** Unset markers for fields whose every value is meaningful (nginx tests data == NULL). */
export const UNSET_STR = '\0unset';
export const UNSET_TYPES: Map<string, string> = new Map();
export const UNSET_INDEX: ComplexValue[] = [];

/** nginx's ngx_http_core_default_types: used when no level has `types {}`. */
function defaultTypes(): Map<string, string> {
  return new Map([
    ['html', 'text/html'],
    ['gif', 'image/gif'],
    ['jpg', 'image/jpeg'],
  ]);
}

const constValue = (text: string): ComplexValue => ({
  source: text,
  constant: text,
  parts: [{ kind: PartKind.Literal, text }],
  maxCapture: 0,
});

const mainOf = (cf: Conf): CoreMainConf => (cf.ctx as HttpCtx).main[httpCoreModule.index] as CoreMainConf;

export function coreLoc(loc: unknown[]): CoreLocConf {
  return loc[httpCoreModule.index] as CoreLocConf;
}

/**
 * What an upstream content directive (redis2_pass, proxy_pass, fastcgi_pass,
 * memcached_pass...) does to its location: the handler, and auto_redirect
 * when the location's name ends in `/` (`/dir` is then 301 to `/dir/`).
 */
export function setUpstreamHandler(clcf: CoreLocConf, handler: ContentHandler): void {
  clcf.handler = handler;
  if (clcf.name.endsWith('/')) clcf.autoRedirect = true;
}

/** A new unnamed location level (rewrite's `if`), added under the current location. */
export function addIfLocation(cf: Conf): HttpCtx {
  const parent = cf.ctx as HttpCtx;
  const loc = createConfs(cf, 'loc');
  const clcf = coreLoc(loc);
  clcf.noname = true;
  clcf.locConf = loc;
  coreLoc(parent.loc).locations.push(clcf);
  return { main: parent.main, srv: parent.srv, loc };
}

/** the methods limit_except knows (ngx_methods_names) */
const LIMIT_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'MKCOL', 'COPY', 'MOVE', 'OPTIONS', 'PROPFIND', 'PROPPATCH', 'LOCK', 'UNLOCK', 'PATCH']);

/**
 * ngx_http_core_limit_except: an unnamed level under the location (merged
 * from it, as an `if` level is) holding the directives of the block, which
 * may only be those allowed in limit_except (HTTP_LMT_CONF: allow/deny,
 * auth_basic, proxy_pass...); requests with another method are served
 * under it.
 */
function limitExceptBlock(cf: Conf): string | undefined {
  const pctx = cf.ctx as HttpCtx;
  const pclcf = coreLoc(pctx.loc);
  if (pclcf.limitExcept) return 'is duplicate';
  const allowed = new Set<string>();
  for (let i = 1; i < cf.args.length; i++) {
    const m = cf.args[i]!.toUpperCase();
    if (!LIMIT_METHODS.has(m)) throw cf.error(`invalid method "${cf.args[i]}"`);
    allowed.add(m);
  }
  if (allowed.has('GET')) allowed.add('HEAD');
  const loc = createConfs(cf, 'loc');
  const clcf = coreLoc(loc);
  clcf.locConf = loc;
  clcf.name = pclcf.name;
  clcf.noname = true;
  clcf.lmtExcept = true;
  pclcf.limitExcept = { allowed, loc: clcf };
  pclcf.locations.push(clcf);
  cf.parseBlock(HTTP_LMT_CONF, { main: pctx.main, srv: pctx.srv, loc });
  return undefined;
}

function locationBlock(cf: Conf): string | undefined {
  const pctx = cf.ctx as HttpCtx;
  const loc = createConfs(cf, 'loc');
  const ctx: HttpCtx = { main: pctx.main, srv: pctx.srv, loc };
  const clcf = coreLoc(loc);
  clcf.locConf = loc;
  const where = cf.where();
  clcf.file = where.file;
  clcf.line = where.line;

  const args = cf.args;
  if (args.length === 3) {
    const mod = args[1]!;
    const name = args[2]!;
    if (mod === '=') {
      clcf.name = name;
      clcf.exactMatch = true;
    } else if (mod === '^~') {
      clcf.name = name;
      clcf.noRegex = true;
    } else if (mod === '~' || mod === '~*') {
      clcf.name = name;
      clcf.regex = httpRegexCompile(cf, name, mod === '~*');
    } else {
      throw cf.error(`invalid location modifier "${mod}"`);
    }
  } else {
    const name = args[1]!;
    if (name.startsWith('=')) {
      clcf.name = name.slice(1);
      clcf.exactMatch = true;
    } else if (name.startsWith('^~')) {
      clcf.name = name.slice(2);
      clcf.noRegex = true;
    } else if (name.startsWith('~*')) {
      clcf.name = name.slice(2);
      clcf.regex = httpRegexCompile(cf, clcf.name, true);
    } else if (name.startsWith('~')) {
      clcf.name = name.slice(1);
      clcf.regex = httpRegexCompile(cf, clcf.name, false);
    } else {
      clcf.name = name;
      if (name.startsWith('@')) clcf.named = true;
    }
  }

  const pclcf = coreLoc(pctx.loc);
  if (cf.cmdType === HTTP_LOC_CONF) {
    if (pclcf.exactMatch) {
      throw cf.error(`location "${clcf.name}" cannot be inside the exact location "${pclcf.name}"`);
    }
    if (pclcf.named) {
      throw cf.error(`location "${clcf.name}" cannot be inside the named location "${pclcf.name}"`);
    }
    if (clcf.named) throw cf.error(`named location "${clcf.name}" can be on the server level only`);
    if (!clcf.regex && !clcf.name.startsWith(pclcf.name)) {
      throw cf.error(`location "${clcf.name}" is outside location "${pclcf.name}"`);
    }
  }
  pclcf.locations.push(clcf);
  // nothing follows the block: it is parsed by the running loop (no call-stack depth per nesting level)
  cf.enterBlock(HTTP_LOC_CONF, ctx);
  return undefined;
}

/** ngx_http_core_server_name */
function serverNameDirective(cf: Conf): string | undefined {
  const cscf = srvConf(cf, httpCoreModule);
  for (let i = 1; i < cf.args.length; i++) {
    const v = cf.args[i]!;
    if ((v[0] === '*' && (v.length < 3 || v[1] !== '.')) || (v[0] === '.' && v.length < 2)) {
      throw cf.error(`server name "${v}" is invalid`);
    }
    if (v.includes('/')) cf.warn(`server name "${v}" has suspicious symbols`);
    if (!v.startsWith('~')) {
      const name = v.toLowerCase() === '$hostname' ? hostname() : v;
      cscf.serverNames.push({ name: name.toLowerCase(), regex: undefined });
      continue;
    }
    if (v.length === 1) throw cf.error(`empty regex in server name "${v}"`);
    const src = v.slice(1);
    // nginx makes the regex caseless only when it holds an uppercase letter
    cscf.serverNames.push({ name: src, regex: httpRegexCompile(cf, src, /[A-Z]/.test(src)) });
  }
  return undefined;
}

function serverBlock(cf: Conf): string | undefined {
  const pctx = cf.ctx as HttpCtx;
  const srv = createConfs(cf, 'srv');
  const loc = createConfs(cf, 'loc');
  const ctx: HttpCtx = { main: pctx.main, srv, loc };
  const cscf = srv[httpCoreModule.index] as CoreSrvConf;
  cscf.ctx = ctx;
  const where = cf.where();
  cscf.file = where.file;
  cscf.line = where.line;
  coreLoc(loc).locConf = loc;
  mainOf(cf).servers.push(cscf);
  cf.parseBlock(HTTP_SRV_CONF, ctx);
  return undefined;
}

export const httpCoreModule = defineHttpModule<CoreMainConf, CoreSrvConf, CoreLocConf>({
  name: 'http_core',
  createMainConf: () => ({ servers: [], ports: [] }),
  preConfiguration(cf) {
    defineCoreVariables(httpVariables(cf));
  },
  createSrvConf: () => ({
    ctx: { main: [], srv: [], loc: [] },
    listen: [],
    serverNames: [],
    clientHeaderTimeout: UNSET,
    clientHeaderBufferSize: UNSET,
    largeClientHeaderBuffers: { num: UNSET, size: UNSET },
    maxHeaders: UNSET,
    mergeSlashes: UNSET,
    underscoresInHeaders: UNSET,
    ignoreInvalidHeaders: UNSET,
    ssl: undefined,
    http2: undefined,
    file: '',
    line: 0,
  }),
  mergeSrvConf(cf, prev, conf) {
    addDefaultListen(cf, conf);
    // a server without server_name answers to "" (ngx_http_core_merge_srv_conf)
    if (conf.serverNames.length === 0) conf.serverNames.push({ name: '', regex: undefined });
    conf.clientHeaderTimeout = mergeValue(conf.clientHeaderTimeout, prev.clientHeaderTimeout, 60000);
    conf.clientHeaderBufferSize = mergeValue(conf.clientHeaderBufferSize, prev.clientHeaderBufferSize, 1024);
    conf.maxHeaders = mergeValue(conf.maxHeaders, prev.maxHeaders, 1000);
    conf.mergeSlashes = mergeValue(conf.mergeSlashes, prev.mergeSlashes, 1);
    conf.underscoresInHeaders = mergeValue(conf.underscoresInHeaders, prev.underscoresInHeaders, 0);
    conf.ignoreInvalidHeaders = mergeValue(conf.ignoreInvalidHeaders, prev.ignoreInvalidHeaders, 1);
    if (conf.largeClientHeaderBuffers.num === UNSET) {
      conf.largeClientHeaderBuffers =
        prev.largeClientHeaderBuffers.num === UNSET ? { num: 4, size: 8192 } : { ...prev.largeClientHeaderBuffers };
    }
  },
  createLocConf: () => ({
    name: '',
    exactMatch: false,
    noRegex: false,
    named: false,
    noname: false,
    regex: undefined,
    locConf: [],
    locations: [],
    internal: UNSET,
    root: '',
    rootValue: undefined,
    alias: false,
    index: UNSET_INDEX,
    tryFiles: undefined,
    defaultType: UNSET_STR,
    types: UNSET_TYPES,
    clientMaxBodySize: UNSET,
    clientBodyBufferSize: UNSET,
    clientBodyTimeout: UNSET,
    sendTimeout: UNSET,
    authDelay: UNSET,
    recursiveErrorPages: UNSET,
    limitRate: undefined,
    limitRateAfter: undefined,
    msiePadding: UNSET,
    msieRefresh: UNSET,
    chunkedTransferEncoding: UNSET,
    keepaliveDisable: 0,
    keepaliveTimeout: UNSET,
    keepaliveHeaderTimeout: UNSET,
    keepaliveRequests: UNSET,
    resolverTimeout: UNSET,
    serverTokens: UNSET,
    errorPages: undefined,
    errorLog: undefined,
    logNotFound: UNSET,
    logSubrequest: UNSET,
    etag: UNSET,
    ifModifiedSince: UNSET,
    maxRanges: UNSET,
    postAction: undefined,
    absoluteRedirect: UNSET,
    serverNameInRedirect: UNSET,
    portInRedirect: UNSET,
    satisfy: UNSET,
    limitExcept: undefined,
    lmtExcept: false,
    handler: undefined,
    autoRedirect: false,
    file: '',
    line: 0,
  }),
  mergeLocConf(cf, prev, conf) {
    // ngx_http_core_merge_loc_conf: root and alias travel together
    if (conf.root === '') {
      if (prev.root === '') prev.root = cf.cycle.fullName('html');
      conf.root = prev.root;
      conf.rootValue = prev.rootValue;
      conf.alias = prev.alias;
    }
    // ngx_http_index_merge_loc_conf
    if (conf.index === UNSET_INDEX) {
      conf.index = prev.index === UNSET_INDEX ? [constValue('index.html')] : prev.index;
    }
    // the http level's `types` (or nginx's three built-in ones) reach every server
    if (conf.types === UNSET_TYPES) {
      if (prev.types === UNSET_TYPES) prev.types = defaultTypes();
      conf.types = prev.types;
    }
    if (conf.defaultType === UNSET_STR) {
      conf.defaultType = prev.defaultType === UNSET_STR ? 'text/plain' : prev.defaultType;
    }
    if (conf.errorPages === undefined) conf.errorPages = prev.errorPages;
    if (conf.errorLog === undefined) conf.errorLog = prev.errorLog;
    conf.internal = mergeValue(conf.internal, prev.internal, 0);
    conf.clientMaxBodySize = mergeValue(conf.clientMaxBodySize, prev.clientMaxBodySize, 1024 * 1024);
    conf.clientBodyBufferSize = mergeValue(conf.clientBodyBufferSize, prev.clientBodyBufferSize, 2 * 4096);
    conf.clientBodyTimeout = mergeValue(conf.clientBodyTimeout, prev.clientBodyTimeout, 60000);
    conf.sendTimeout = mergeValue(conf.sendTimeout, prev.sendTimeout, 60000);
    conf.authDelay = mergeValue(conf.authDelay, prev.authDelay, 0);
    conf.recursiveErrorPages = mergeValue(conf.recursiveErrorPages, prev.recursiveErrorPages, 0);
    if (conf.limitRate === undefined) conf.limitRate = prev.limitRate ?? null;
    if (conf.limitRateAfter === undefined) conf.limitRateAfter = prev.limitRateAfter ?? null;
    conf.msiePadding = mergeValue(conf.msiePadding, prev.msiePadding, 1);
    conf.msieRefresh = mergeValue(conf.msieRefresh, prev.msieRefresh, 0);
    conf.chunkedTransferEncoding = mergeValue(conf.chunkedTransferEncoding, prev.chunkedTransferEncoding, 1);
    // ngx_conf_merge_bitmask_value: the default is msie6
    if (conf.keepaliveDisable === 0) conf.keepaliveDisable = prev.keepaliveDisable !== 0 ? prev.keepaliveDisable : KEEPALIVE_DISABLE_MSIE6;
    conf.keepaliveTimeout = mergeValue(conf.keepaliveTimeout, prev.keepaliveTimeout, 75000);
    conf.keepaliveHeaderTimeout = mergeValue(conf.keepaliveHeaderTimeout, prev.keepaliveHeaderTimeout, 0);
    conf.keepaliveRequests = mergeValue(conf.keepaliveRequests, prev.keepaliveRequests, 1000);
    conf.resolverTimeout = mergeValue(conf.resolverTimeout, prev.resolverTimeout, 30000);
    conf.serverTokens = mergeValue(conf.serverTokens, prev.serverTokens, 1);
    conf.logNotFound = mergeValue(conf.logNotFound, prev.logNotFound, 1);
    conf.logSubrequest = mergeValue(conf.logSubrequest, prev.logSubrequest, 0);
    conf.etag = mergeValue(conf.etag, prev.etag, 1);
    conf.ifModifiedSince = mergeValue(conf.ifModifiedSince, prev.ifModifiedSince, 1);
    conf.maxRanges = mergeValue(conf.maxRanges, prev.maxRanges, 0x7fffffff);
    if (conf.postAction === undefined) conf.postAction = prev.postAction;
    conf.absoluteRedirect = mergeValue(conf.absoluteRedirect, prev.absoluteRedirect, 1);
    conf.serverNameInRedirect = mergeValue(conf.serverNameInRedirect, prev.serverNameInRedirect, 0);
    conf.portInRedirect = mergeValue(conf.portInRedirect, prev.portInRedirect, 1);
    conf.satisfy = mergeValue(conf.satisfy, prev.satisfy, 0);
  },
  commands: [
    { name: 'server', ctx: HTTP_MAIN_CONF, args: BLOCK | NOARGS, set: serverBlock },
    { name: 'location', ctx: HTTP_SRV_CONF | HTTP_LOC_CONF, args: BLOCK | TAKE12, set: locationBlock },
    { name: 'limit_except', ctx: HTTP_LOC_CONF, args: BLOCK | MORE1, set: limitExceptBlock },
    {
      name: 'internal',
      ctx: HTTP_LOC_CONF,
      args: NOARGS,
      set(cf) {
        const clcf = locConf(cf, httpCoreModule);
        if (clcf.internal !== UNSET) return 'is duplicate';
        clcf.internal = 1;
      },
    },
    {
      name: 'server_name',
      ctx: HTTP_SRV_CONF,
      args: MORE1,
      set: serverNameDirective,
    },
    { name: 'listen', ctx: HTTP_SRV_CONF, args: MORE1, set: listenDirective },
    ...coreValueCommands,
  ],
});

