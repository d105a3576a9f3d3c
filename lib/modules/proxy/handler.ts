import type { HttpRequest } from '../../http/http_request.js';
import { evalComplexValue } from '../../http/eval.js';
import type { Request } from '../../http/request.js';
import { escapeUriPath } from '../../http/uri.js';
import { findUpstream, resolvedUpstream, upstreamModule, type UpstreamMainConf, type UpstreamSrvConf } from '../../upstream/module.js';
import type { PeerTarget } from '../../upstream/peers.js';
import { UpstreamRun, type UpstreamTryHandle } from '../../upstream/run.js';
import { parseUrl } from '../../upstream/url.js';
import type { ProxyLocConf } from './conf.js';
import { redirectRewriter, cookieRewriter } from './rewrite_headers.js';
import { ProxyTry, type ProxyRequest, type ProxyRun as ProxyTryOwner } from './try.js';
import type { HeaderPolicy } from '../../upstream/response.js';
import { localAddress, type LocalAddress } from '../../upstream/bind.js';

/*
 * The proxy content handler (ngx_http_proxy_handler + create_request):
 * pick the upstream, build the request nginx would send (method, URI by
 * nginx's replacement rules, headers in nginx's order, the body read by the
 * engine), and run it through the generic upstream loop, one ProxyTry per
 * peer tried.
 */

/** what a URL with variables resolved to, per request ($proxy_host, $proxy_port) */
interface Resolved {
  upstream: UpstreamSrvConf;
  host: string;
  port: string;
  /** the URI part of the evaluated URL ('' when none) */
  uri: string;
  tls: boolean;
}

const resolvedOf = new WeakMap<Request, Resolved>();

/** $proxy_host: the Host nginx sends by default */
export function proxyHostOf(r: Request, plcf: ProxyLocConf | undefined): string | undefined {
  const t = plcf?.target;
  if (t === undefined) return undefined;
  if (t.kind === 'upstream') return t.host;
  return resolvedOf.get(r)?.host;
}

/** $proxy_port */
export function proxyPortOf(r: Request, plcf: ProxyLocConf | undefined): string | undefined {
  const t = plcf?.target;
  if (t === undefined) return undefined;
  if (t.kind === 'upstream') return t.port;
  return resolvedOf.get(r)?.port;
}

/** $proxy_add_x_forwarded_for: the client's X-Forwarded-For lines, then its address */
export function forwardedFor(r: Request): string {
  const addr = (r as HttpRequest).conn.remoteAddr;
  let prev = '';
  for (const [k, v] of r.req.headers) {
    if (k.length === 15 && k.toLowerCase() === 'x-forwarded-for') prev = prev === '' ? v : `${prev}, ${v}`;
  }
  return prev === '' ? addr : `${prev}, ${addr}`;
}

/* `http://host:port/uri` of a URL with variables (ngx_http_proxy_eval) */
function resolveComplex(r: Request, text: string): Resolved | string {
  let add: number;
  let port: number;
  let tls = false;
  if (text.slice(0, 7).toLowerCase() === 'http://') {
    add = 7;
    port = 80;
  } else if (text.slice(0, 8).toLowerCase() === 'https://') {
    add = 8;
    port = 443;
    tls = true;
  } else {
    return `invalid URL prefix in "${text}"`;
  }
  const rest = text.slice(add);
  let hostPort = rest;
  let uri = '';
  const slash = rest.indexOf('/');
  if (slash !== -1) {
    hostPort = rest.slice(0, slash);
    uri = rest.slice(slash);
  }
  const u = parseUrl(hostPort, { defaultPort: port, noResolve: true });
  if (!u.ok) return `${u.err} in upstream "${rest}"`;
  const umcf = r.srv.ctx.main[upstreamModule.index] as UpstreamMainConf | undefined;
  const hostText = u.url.noPort || u.url.port === port ? u.url.host : `${u.url.host}:${u.url.port}`;
  // an upstream block of that name first (nginx's ngx_http_upstream_add lookup), else a literal address
  const block = umcf ? findUpstream(umcf, u.url.host, 0) : undefined;
  const upstream = block ?? (u.url.addrs.length ? resolvedUpstream(u.url.addrs[0]!.family === 'inet6' ? u.url.host : u.url.addrs[0]!.host, u.url.port) : undefined);
  if (upstream === undefined) return `no resolver defined to resolve ${u.url.host}`;
  return { upstream, host: hostText, port: String(u.url.port), uri, tls };
}

/** the request URI nginx sends (ngx_http_proxy_create_request's three cases) */
function requestUri(r: Request, plcf: ProxyLocConf, varUri: string, fromVariables: boolean): string {
  if (fromVariables && varUri.length > 0) return varUri;
  const http = r as HttpRequest;
  if (varUri.length === 0 && !r.internal && http.main === http) return r.requestUri;
  const locLen = r.validLocation && varUri.length > 0 ? plcf.location.length : 0;
  const rest = r.uri.length >= locLen ? r.uri.slice(locLen) : '';
  const raw = r.requestUri;
  const q = raw.indexOf('?');
  const path = q === -1 ? raw : raw.slice(0, q);
  const quoted = r.internal || path.includes('%') || path.includes(' ');
  let uri = (r.validLocation ? varUri : '') + (quoted ? escapeUriPath(rest) : rest);
  if (r.args.length > 0) uri += `?${r.args}`;
  return uri;
}

/** the header lines nginx sends: proxy_set_header (and defaults), then the client's not named there */
function requestHeaders(r: Request, plcf: ProxyLocConf, hostHeader: string, bodyLength: number): string[] {
  const out: string[] = [];
  const named = new Set<string>();
  // a header whose value comes out empty is not sent (nginx skips it)
  const add = (name: string, value: string): void => {
    if (value.length > 0) out.push(name, value);
  };
  const set = plcf.setHeaders;
  if (set !== undefined) {
    for (const [name, cv] of set) {
      named.add(name.toLowerCase());
      add(name, evalComplexValue(r, cv));
    }
  }
  // nginx's default headers, where proxy_set_header did not name them
  if (!named.has('host')) add('Host', hostHeader);
  if (!named.has('connection')) add('Connection', 'close');
  if (!named.has('content-length') && bodyLength >= 0) add('Content-Length', String(bodyLength));
  for (const n of ['host', 'connection', 'content-length', 'transfer-encoding', 'te', 'keep-alive', 'expect', 'upgrade']) named.add(n);
  if (plcf.passRequestHeaders) {
    for (const [name, value] of r.req.headers) {
      if (!named.has(name.toLowerCase())) add(name, value);
    }
  }
  return out;
}

/** ngx_http_upstream_ssl_name: proxy_ssl_name or the URL's host, without a port */
function sslNameOf(r: Request, plcf: ProxyLocConf, host: string): string {
  const rt = plcf.ssl.rt;
  const name = rt?.name !== undefined ? evalComplexValue(r, rt.name) : host;
  const from = name.startsWith('[') ? Math.max(name.indexOf(']'), 0) : 0;
  const colon = name.indexOf(':', from);
  return colon === -1 ? name : name.slice(0, colon);
}

/** the content handler of a proxy_pass location */
export function proxyContentHandler(r: Request, plcf: ProxyLocConf): number {
  const t = plcf.target;
  if (t === undefined) return 500;
  let upstream: UpstreamSrvConf;
  let hostHeader: string;
  let varUri: string;
  let tls = false;
  if (t.kind === 'upstream') {
    upstream = t.upstream;
    hostHeader = t.host;
    varUri = t.uri ?? '';
    tls = plcf.url.slice(0, 8).toLowerCase() === 'https://';
  } else {
    const res = resolveComplex(r, evalComplexValue(r, t.value));
    if (typeof res === 'string') {
      r.log('error', res);
      return 502;
    }
    resolvedOf.set(r, res);
    upstream = res.upstream;
    hostHeader = res.host;
    varUri = res.uri;
    tls = res.tls;
  }

  let body: Buffer | undefined;
  let bodyLength = -1;
  if (plcf.setBody !== undefined) {
    body = Buffer.from(evalComplexValue(r, plcf.setBody), 'latin1');
    bodyLength = body.length;
  } else {
    const chunks = r.body;
    const http = r as HttpRequest;
    // the client's length goes out even without the body (nginx's $proxy_internal_body_length)
    if (chunks !== undefined && (chunks.length > 0 || http.contentLengthIn >= 0 || http.chunkedIn)) {
      const b = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      bodyLength = b.length;
      if (plcf.passRequestBody) body = b;
    } else if (http.contentLengthIn >= 0) bodyLength = http.contentLengthIn;
  }
  // proxy_pass_request_body off still announces the length (nginx does)
  const headers = requestHeaders(r, plcf, hostHeader, bodyLength);
  const method = plcf.method !== undefined ? evalComplexValue(r, plcf.method) : r.method;
  const req: ProxyRequest = {
    method,
    path: requestUri(r, plcf, varUri, t.kind === 'complex'),
    headers,
    body,
    tls,
    sslName: tls ? sslNameOf(r, plcf, hostHeader) : '',
  };
  return new ProxyRun(r, plcf, upstream, req).run();
}

/** One request's run through the upstream loop, with a ProxyTry per peer. */
export class ProxyRun extends UpstreamRun implements ProxyTryOwner {
  readonly plcf: ProxyLocConf;
  readonly req: ProxyRequest;
  readonly policy: HeaderPolicy;
  readonly upstream: UpstreamSrvConf;
  /** proxy_bind for this request */
  readonly bind: LocalAddress | undefined;

  constructor(r: Request, plcf: ProxyLocConf, us: UpstreamSrvConf, req: ProxyRequest) {
    super(r, us, req.tls ? 'https' : 'http', { mask: plcf.nextUpstream, tries: plcf.nextUpstreamTries, timeout: plcf.nextUpstreamTimeout });
    this.ignoreClientAbort = plcf.ignoreClientAbort === 1;
    this.plcf = plcf;
    this.req = req;
    this.upstream = us;
    this.bind = localAddress(r, plcf.bind);
    this.addrSuffix = req.path;
    this.policy = { hide: plcf.hidden, placeholders: true, redirect: redirectRewriter(plcf), cookie: cookieRewriter(plcf) };
  }

  protected startTry(peer: PeerTarget): UpstreamTryHandle {
    return new ProxyTry(this, peer);
  }

  /** the response header is about to go out: $upstream_status is the backend's */
  started(status: number): void {
    this.replyStarted(status);
  }
}
