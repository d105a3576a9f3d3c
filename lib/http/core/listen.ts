import type { Conf } from '../../conf/parser.js';
import { atoi, parseSec, parseSize } from '../../conf/values.js';
import type { HttpCtx } from '../module.js';
import { httpCoreModule, type CoreMainConf, type CoreSrvConf, type ListenOpt } from './module.js';

/*
 * `listen` (ngx_http_core_listen with ngx_parse_url) and the address table
 * nginx builds from it (ngx_http_add_listen): ports → addresses → servers.
 * Conflicts nginx reports while parsing are reported here, with its words.
 */

/** One address:port and the servers listening on it (ngx_http_conf_addr_t). */
export interface ConfAddr {
  opt: ListenOpt;
  servers: CoreSrvConf[];
  /** the `default_server` one, else the first server */
  defaultServer: CoreSrvConf;
}

/** One port of one family (ngx_http_conf_port_t). */
export interface ConfPort {
  family: ListenOpt['family'];
  port: number;
  addrs: ConfAddr[];
}

const NGX_LISTEN_BACKLOG = 511;
const UNIX_PATH_MAX = 108;

interface ParsedUrl {
  family: ListenOpt['family'];
  host: string;
  ports: number[];
  path: string | undefined;
  wildcard: boolean;
}

/** ngx_inet_addr: four decimal octets, each at most 255. */
function inetAddr(s: string): string | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^[0-9]+$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out.join('.');
}

/** ngx_inet6_addr then ngx_inet6_ntop: the compressed text nginx prints. */
function inet6Addr(s: string): string | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  try {
    return new URL(`http://[${s}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}

/** `N` or `N-M` (a port range, ngx_parse_inet_url's last_port) */
function parsePorts(text: string): number[] | string {
  const dash = text.indexOf('-');
  let last = 0;
  let first: number;
  if (dash !== -1) {
    last = atoi(text.slice(dash + 1));
    if (last < 1 || last > 65535) return 'invalid port';
    first = atoi(text.slice(0, dash));
  } else first = atoi(text);
  if (first < 1 || first > 65535) return 'invalid port';
  if (last && first > last) return 'invalid port range';
  const ports: number[] = [];
  for (let p = first; p <= (last || first); p++) ports.push(p);
  return ports;
}

/** ngx_parse_url with u.listen = 1 and default port 80; returns err text on failure. */
function parseListenUrl(url: string): ParsedUrl | string {
  if (url.length >= 5 && url.slice(0, 5).toLowerCase() === 'unix:') {
    const path = url.slice(5);
    if (path.length === 0) return 'no path in the unix domain socket';
    if (path.length + 1 > UNIX_PATH_MAX) return 'too long path in the unix domain socket';
    return { family: 'unix', host: '', ports: [0], path, wildcard: false };
  }
  if (url.startsWith('[')) {
    const close = url.indexOf(']');
    if (close === -1) return 'invalid host';
    const rest = url.slice(close + 1);
    if (rest.includes('/')) return 'invalid host';
    let ports = [80];
    if (rest.length > 0) {
      if (rest[0] !== ':') return 'invalid host';
      const p = parsePorts(rest.slice(1));
      if (typeof p === 'string') return p;
      ports = p;
    }
    const inner = url.slice(1, close);
    if (inner.length === 0) return 'no host';
    const host = inet6Addr(inner);
    if (host === undefined) return 'invalid IPv6 address';
    return { family: 'inet6', host, ports, path: undefined, wildcard: host === '::' };
  }
  if (url.includes('/') || url.includes('?')) return 'invalid host';
  const colon = url.indexOf(':');
  let hostText: string;
  let ports: number[];
  if (colon !== -1) {
    const p = parsePorts(url.slice(colon + 1));
    if (typeof p === 'string') return p;
    ports = p;
    hostText = url.slice(0, colon);
  } else {
    // a bare value is tried as a port (or range) first
    const dash = url.indexOf('-');
    const lastOk = dash === -1 || atoi(url.slice(dash + 1)) !== -1;
    if (lastOk && atoi(dash === -1 ? url : url.slice(0, dash)) !== -1) {
      const p = parsePorts(url);
      if (typeof p === 'string') return p;
      return { family: 'inet', host: '0.0.0.0', ports: p, path: undefined, wildcard: true };
    }
    ports = [80];
    hostText = url;
  }
  if (hostText.length === 0) return 'no host';
  if (hostText === '*') return { family: 'inet', host: '0.0.0.0', ports, path: undefined, wildcard: true };
  const host = inetAddr(hostText);
  if (host !== undefined) return { family: 'inet', host, ports, path: undefined, wildcard: host === '0.0.0.0' };
  // redis2d resolves no names at load; localhost is what configs use
  if (hostText.toLowerCase() === 'localhost') {
    return { family: 'inet', host: '127.0.0.1', ports, path: undefined, wildcard: false };
  }
  return 'host not found';
}

/** ngx_http_core_listen: the `listen` directive. */
/** the parameters a listen has before its own (`default_server`, `backlog=`...) are read */
function listenDefaults(file: string, line: number): Omit<ListenOpt, 'family' | 'text' | 'host' | 'port' | 'path' | 'wildcard'> {
  return {
    defaultServer: false,
    backlog: NGX_LISTEN_BACKLOG,
    bind: false,
    reuseport: false,
    ipv6only: true,
    rcvbuf: -1,
    sndbuf: -1,
    deferred: false,
    soKeepalive: undefined,
    ssl: false,
    http2: false,
    file,
    line,
  };
}

export function listenDirective(cf: Conf): string | undefined {
  const ctx = cf.ctx as HttpCtx;
  const cscf = ctx.srv[httpCoreModule.index] as CoreSrvConf;
  const url = cf.args[1]!;
  const u = parseListenUrl(url);
  if (typeof u === 'string') throw cf.error(`${u} in "${url}" of the "listen" directive`);

  const where = cf.where();
  const base: Omit<ListenOpt, 'text' | 'port'> = {
    family: u.family,
    host: u.host,
    path: u.path,
    wildcard: u.wildcard,
    ...listenDefaults(where.file, where.line),
  };
  /** options that make the socket its own (nginx's lsopt.set) */
  let set = false;
  for (let n = 2; n < cf.args.length; n++) {
    const v = cf.args[n]!;
    if (v === 'default_server' || v === 'default') {
      base.defaultServer = true;
    } else if (v === 'bind') {
      set = base.bind = true;
    } else if (v.startsWith('fastopen=')) {
      if (atoi(v.slice(9)) === -1) throw cf.error(`invalid fastopen "${v}"`);
      set = base.bind = true;
    } else if (v.startsWith('backlog=')) {
      const b = atoi(v.slice(8));
      if (b === -1 || b === 0) throw cf.error(`invalid backlog "${v}"`);
      base.backlog = b;
      set = base.bind = true;
    } else if (v.startsWith('rcvbuf=') || v.startsWith('sndbuf=')) {
      const size = parseSize(v.slice(7));
      if (size === -1) throw cf.error(`invalid ${v.slice(0, 6)} "${v}"`);
      if (v[0] === 'r') base.rcvbuf = size;
      else base.sndbuf = size;
      set = base.bind = true;
    } else if (v.startsWith('accept_filter=')) {
      throw cf.error(`accept filters "${v}" are not supported on this platform, ignored`);
    } else if (v === 'deferred') {
      base.deferred = true;
      set = base.bind = true;
    } else if (v.startsWith('ipv6only=o')) {
      const rest = v.slice(10);
      if (rest === 'n') base.ipv6only = true;
      else if (rest === 'ff') base.ipv6only = false;
      else throw cf.error(`invalid ipv6only flags "${v.slice(9)}"`);
      set = base.bind = true;
    } else if (v === 'reuseport') {
      base.reuseport = true;
      set = base.bind = true;
    } else if (v === 'ssl') {
      base.ssl = true;
    } else if (v === 'http2') {
      base.http2 = true;
    } else if (v.startsWith('so_keepalive=')) {
      base.soKeepalive = soKeepalive(cf, v.slice(13));
      set = base.bind = true;
    } else if (v === 'proxy_protocol') {
      throw cf.error('the "proxy_protocol" parameter is not supported by redis2d');
    } else {
      throw cf.error(`invalid parameter "${v}"`);
    }
  }

  for (const port of u.ports) {
    const text =
      u.family === 'unix' ? `unix:${u.path}` : u.family === 'inet6' ? `[${u.host}]:${port}` : `${u.host}:${port}`;
    const opt: ListenOpt = { ...base, port, text };
    cscf.listen.push(opt);
    addListen(cf, cscf, opt, set);
  }
  return undefined;
}

/** so_keepalive=on|off|[keepidle]:[keepintvl]:[keepcnt] */
function soKeepalive(cf: Conf, value: string): string {
  if (value === 'on' || value === 'off') return value;
  const bad = (): never => {
    throw cf.error(`invalid so_keepalive value: "${value}"`);
  };
  const [idle = '', intvl = '', cnt = ''] = value.split(':', 3);
  const rest = value.split(':').slice(3);
  if (rest.length > 0) bad();
  const i = idle ? parseSec(idle) : 0;
  const t = intvl ? parseSec(intvl) : 0;
  const c = cnt ? atoi(cnt) : 0;
  if (i === -1 || t === -1 || c === -1 || (i === 0 && t === 0 && c === 0)) bad();
  return value;
}

const setKey = new WeakSet<ConfAddr>();

/** ngx_http_add_listen / ngx_http_add_addresses / ngx_http_add_server */
export function addListen(cf: Conf, cscf: CoreSrvConf, opt: ListenOpt, set: boolean): void {
  const cmcf = (cf.ctx as HttpCtx).main[httpCoreModule.index] as CoreMainConf;
  let port = cmcf.ports.find((p) => p.port === opt.port && p.family === opt.family);
  if (!port) {
    port = { family: opt.family, port: opt.port, addrs: [] };
    cmcf.ports.push(port);
  }
  const addr = port.addrs.find((a) => a.opt.host === opt.host && a.opt.path === opt.path);
  if (!addr) {
    const a: ConfAddr = { opt: { ...opt }, servers: [cscf], defaultServer: cscf };
    if (set) setKey.add(a);
    port.addrs.push(a);
    return;
  }
  if (addr.servers.includes(cscf)) throw cf.error(`a duplicate listen ${addr.opt.text}`);
  addr.servers.push(cscf);
  const wasDefault = addr.opt.defaultServer;
  // ssl and http2 hold for the address when any of its listens has them (ngx_http_add_addresses)
  const ssl = opt.ssl || addr.opt.ssl;
  const http2 = opt.http2 || addr.opt.http2;
  if (set) {
    if (setKey.has(addr)) throw cf.error(`duplicate listen options for ${addr.opt.text}`);
    addr.opt = { ...opt };
    setKey.add(addr);
  }
  if (opt.defaultServer) {
    if (wasDefault) throw cf.error(`a duplicate default server for ${addr.opt.text}`);
    addr.defaultServer = cscf;
  }
  addr.opt.defaultServer = wasDefault || opt.defaultServer;
  addr.opt.ssl = ssl;
  addr.opt.http2 = http2;
}

/**
 * A server with no `listen` listens on *:80 (root) or *:8000, as nginx's
 * ngx_http_core_merge_srv_conf.
 */
export function addDefaultListen(cf: Conf, cscf: CoreSrvConf): void {
  if (cscf.listen.length > 0) return;
  const port = process.getuid && process.getuid() === 0 ? 80 : 8000;
  const opt: ListenOpt = {
    family: 'inet',
    text: `0.0.0.0:${port}`,
    host: '0.0.0.0',
    port,
    path: undefined,
    wildcard: true,
    ...listenDefaults(cscf.file, cscf.line),
  };
  cscf.listen.push(opt);
  addListen(cf, cscf, opt, false);
}
