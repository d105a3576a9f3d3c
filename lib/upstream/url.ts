import { isIPv6 } from 'node:net';

/*
 * ngx_parse_url (src/core/ngx_inet.c) for the forms upstreams use:
 * `host[:port]`, `[v6addr][:port]`, `unix:/path`. No URI part is allowed
 * (uri_part is never set by the upstream code paths we mirror).
 *
 * Name resolution: nginx calls getaddrinfo() at config time. redis2d never
 * resolves names: `localhost` maps to 127.0.0.1 (what /etc/hosts says on
 * the machines we run on), any other name that is not a literal address is
 * what getaddrinfo() failing gives in nginx: `host not found`.
 */

/** One socket address, as nginx keeps it in ngx_addr_t. */
export interface PeerAddr {
  family: 'inet' | 'inet6' | 'unix';
  /** the address without port: `127.0.0.1`, `::1`, or the socket path */
  host: string;
  /** 0 for unix sockets */
  port: number;
  /** as nginx prints it ($upstream_addr, log lines): `127.0.0.1:6379`, `[::1]:6379`, `unix:/p` */
  name: string;
}

export interface ParsedUrl {
  /** the text as written */
  url: string;
  /** `127.0.0.1`, `[::1]`, `name`, or the unix path (ngx_url_t.host) */
  host: string;
  port: number;
  noPort: boolean;
  family: 'inet' | 'inet6' | 'unix';
  /** resolved addresses; empty when a name was left unresolved (noResolve) */
  addrs: PeerAddr[];
}

export interface UrlOptions {
  defaultPort: number;
  /** leave names unresolved (ngx_url_t.no_resolve): redis2_pass, upstream names */
  noResolve: boolean;
}

/** Either the parsed URL or nginx's u->err text. */
export type UrlResult = { ok: true; url: ParsedUrl } | { ok: false; err: string };

/** sizeof(struct sockaddr_un.sun_path) on Linux */
const SUN_PATH = 108;

export function parseUrl(url: string, opts: UrlOptions): UrlResult {
  if (url.length >= 5 && url.slice(0, 5).toLowerCase() === 'unix:') return parseUnix(url);
  if (url.length > 0 && url[0] === '[') return parseInet6(url, opts);
  return parseInet(url, opts);
}

function parseUnix(url: string): UrlResult {
  const path = url.slice(5);
  if (path.length === 0) return { ok: false, err: 'no path in the unix domain socket' };
  if (path.length + 1 > SUN_PATH) return { ok: false, err: 'too long path in the unix domain socket' };
  const addr: PeerAddr = { family: 'unix', host: path, port: 0, name: `unix:${path}` };
  return { ok: true, url: { url, host: path, port: 0, noPort: false, family: 'unix', addrs: [addr] } };
}

/** ngx_atoi over a port text, range-checked as ngx_parse_*_url does. */
function parsePort(text: string): number {
  if (text.length === 0) return -1;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
    if (n > 65535) return -1;
  }
  return n >= 1 ? n : -1;
}

function parseInet(url: string, opts: UrlOptions): UrlResult {
  if (url.includes('/') || url.includes('?')) return { ok: false, err: 'invalid host' };
  const colon = url.indexOf(':');
  let port: number;
  let noPort = false;
  let host: string;
  if (colon !== -1) {
    port = parsePort(url.slice(colon + 1));
    if (port === -1) return { ok: false, err: 'invalid port' };
    host = url.slice(0, colon);
  } else {
    noPort = true;
    port = opts.defaultPort;
    host = url;
  }
  if (host.length === 0) return { ok: false, err: 'no host' };

  const parsed: ParsedUrl = { url, host, port, noPort, family: 'inet', addrs: [] };
  const ip = inetAddr(host);
  if (ip !== undefined) {
    parsed.addrs.push({ family: 'inet', host: ip, port, name: `${ip}:${port}` });
    return { ok: true, url: parsed };
  }
  if (opts.noResolve) return { ok: true, url: parsed };
  const addrs = resolveHost(host, port);
  if (!addrs) return { ok: false, err: 'host not found' };
  parsed.addrs = addrs;
  return { ok: true, url: parsed };
}

function parseInet6(url: string, opts: UrlOptions): UrlResult {
  const close = url.indexOf(']');
  if (close === -1) return { ok: false, err: 'invalid host' };
  let rest = url.slice(close + 1);
  if (rest.includes('/')) return { ok: false, err: 'invalid host' };
  let port = opts.defaultPort;
  let noPort = false;
  if (rest.length > 0) {
    if (rest[0] !== ':') return { ok: false, err: 'invalid host' };
    rest = rest.slice(1);
    port = parsePort(rest);
    if (port === -1) return { ok: false, err: 'invalid port' };
  } else {
    noPort = true;
  }
  const inner = url.slice(1, close);
  if (inner.length === 0) return { ok: false, err: 'no host' };
  if (!isIPv6(inner) || inner.includes('%')) return { ok: false, err: 'invalid IPv6 address' };
  const canonical = canonicalIPv6(inner);
  const addr: PeerAddr = { family: 'inet6', host: canonical, port, name: `[${canonical}]:${port}` };
  return { ok: true, url: { url, host: url.slice(0, close + 1), port, noPort, family: 'inet6', addrs: [addr] } };
}

/**
 * ngx_inet_addr: a dotted quad of decimal octets (leading zeros allowed,
 * each at most 255, exactly four parts). Returns the canonical text.
 */
export function inetAddr(text: string): string | undefined {
  const octets: number[] = [];
  let cur = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      cur = (cur === -1 ? 0 : cur) * 10 + (c - 48);
      if (cur > 255) return undefined;
      continue;
    }
    if (c === 0x2e && cur !== -1) {
      octets.push(cur);
      cur = -1;
      continue;
    }
    return undefined;
  }
  if (cur === -1) return undefined;
  octets.push(cur);
  if (octets.length !== 4) return undefined;
  return octets.join('.');
}

/** ngx_inet6_ntop's output form (lowercase, longest zero run compressed). */
function canonicalIPv6(text: string): string {
  // WHATWG URL parsing serializes IPv6 hosts exactly that way.
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

/** Config-time name resolution, without DNS (see the note at the top). */
function resolveHost(host: string, port: number): PeerAddr[] | undefined {
  if (host.toLowerCase() === 'localhost') {
    return [{ family: 'inet', host: '127.0.0.1', port, name: `127.0.0.1:${port}` }];
  }
  return undefined;
}

/**
 * ngx_parse_addr_port (used by `*_bind`): a literal address with an
 * optional port, never a name. undefined = nginx's NGX_DECLINED.
 */
export function parseAddrPort(text: string): PeerAddr | undefined {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) return undefined;
    const inner = text.slice(1, close);
    if (!isIPv6(inner)) return undefined;
    // `[addr]` alone is declined: brackets come only with a port
    const rest = text.slice(close + 1);
    if (rest.length === 0 || rest[0] !== ':') return undefined;
    const port = parsePort(rest.slice(1));
    if (port === -1) return undefined;
    const c = canonicalIPv6(inner);
    return { family: 'inet6', host: c, port, name: text };
  }
  if (isIPv6(text)) return { family: 'inet6', host: canonicalIPv6(text), port: 0, name: text };
  const colon = text.indexOf(':');
  let port = 0;
  let host = text;
  if (colon !== -1) {
    port = parsePort(text.slice(colon + 1));
    if (port === -1) return undefined;
    host = text.slice(0, colon);
  }
  const ip = inetAddr(host);
  if (ip === undefined) return undefined;
  return { family: 'inet', host: ip, port, name: text };
}
