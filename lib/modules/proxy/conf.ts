import type { CompiledRegex } from '../../conf/regex.js';
import type { ComplexValue } from '../../http/script.js';
import type { UpstreamLocal, UpstreamSrvConf } from '../../upstream/module.js';
import type { UpstreamSslConf } from '../../upstream/ssl.js';
import type { CookieFlagsRule } from './cookie_flags.js';

/* The proxy module's conf shapes, read by the directives (module.ts) and the request side. */

/** What `proxy_pass` names. */
export type ProxyTarget =
  /** a literal URL: the upstream it names (a block or an implicit one) */
  | {
      kind: 'upstream';
      upstream: UpstreamSrvConf;
      /** `host[:port]` as written: $proxy_host and the default Host */
      host: string;
      /** $proxy_port */
      port: string;
      /** the URI part (`/echo/`), undefined when the URL has none */
      uri: string | undefined;
    }
  /** a URL with variables: evaluated per request, then parsed */
  | { kind: 'complex'; value: ComplexValue };

/** One proxy_redirect / proxy_cookie_* rule. */
export interface RewriteRule {
  /** the prefix to replace (a complex value), or a regex on the whole value */
  from: ComplexValue | undefined;
  regex: CompiledRegex | undefined;
  to: ComplexValue;
}

export interface ProxyLocConf {
  target: ProxyTarget | undefined;
  /** the proxy_pass URL as written (proxy_redirect default) */
  url: string;
  /** the location's name when proxy_pass has a URI part there ('' in regex/named/if locations) */
  location: string;
  /** proxy_set_header in order (inherited as a whole); undefined: none at this level */
  setHeaders: Array<[string, ComplexValue]> | undefined;
  passRequestHeaders: number;
  passRequestBody: number;
  /** 1000 or 1001 (proxy_http_version) */
  httpVersion: number;
  method: ComplexValue | undefined;
  /** proxy_redirect: undefined = unset (default), null = off, else the rules ('default' expanded at merge) */
  redirect: RewriteRule[] | null | undefined;
  redirectDefault: boolean;
  cookieDomain: RewriteRule[] | null | undefined;
  cookiePath: RewriteRule[] | null | undefined;
  /** proxy_cookie_flags rules; null: off */
  cookieFlags: CookieFlagsRule[] | null | undefined;
  hideHeaders: string[] | undefined;
  passHeaders: string[] | undefined;
  /** merged: the hidden set */
  hidden: Set<string>;
  ignoreHeaders: number;
  interceptErrors: number;
  nextUpstream: number;
  nextUpstreamTries: number;
  nextUpstreamTimeout: number;
  connectTimeout: number;
  sendTimeout: number;
  readTimeout: number;
  buffering: number;
  requestBuffering: number;
  bufferSize: number;
  buffers: { num: number; size: number };
  busyBuffersSize: number;
  setBody: ComplexValue | undefined;
  bind: UpstreamLocal | null | undefined;
  ignoreClientAbort: number;
  /** PREFIX_socket_keepalive: SO_KEEPALIVE on new upstream sockets */
  socketKeepalive: number;
  /** PREFIX_limit_rate: bytes/s read from the peer (buffering on only, as nginx's event pipe) */
  limitRate: number;
  /** PREFIX_force_ranges: byte ranges on the backend's responses */
  forceRanges: number;
  /** proxy_ssl_* (ssl.ts); its context built at merge where TLS is used */
  ssl: UpstreamSslConf;
}
