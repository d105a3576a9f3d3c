import type { CoreSrvConf, ListenOpt } from './core/module.js';
import type { Variables } from './variables.js';
import type { CompiledRegex } from '../conf/regex.js';

/*
 * Listening addresses and virtual servers (ngx_http_optimize_servers and
 * ngx_http_find_virtual_server). Servers are grouped by the address they
 * listen on; per address: exact names, leading wildcards (`*.a.b`, `.a.b`),
 * trailing wildcards (`www.a.*`), regexes in order, then the default server
 * (`default_server`, else the first). A port with a wildcard address binds
 * one socket; specific addresses on it without `bind` share that socket and
 * are told apart by the connection's local address, as nginx does.
 */

export interface AddrConf {
  key: string;
  defaultServer: CoreSrvConf;
  exact: Map<string, CoreSrvConf>;
  /** `*.example.com` / `.example.com`, as [suffix with its dot, alsoBare, server] */
  head: Array<{ suffix: string; bare: string | undefined; srv: CoreSrvConf }>;
  /** `www.example.*` as [prefix with its dot, server] */
  tail: Array<{ prefix: string; srv: CoreSrvConf }>;
  regex: Array<{ re: CompiledRegex; srv: CoreSrvConf }>;
  /** connections to this address speak TLS (`listen ... ssl` in any server listening on it) */
  ssl: boolean;
  /** `listen ... http2` in any of its servers */
  http2: boolean;
}

/** One socket to open. */
export interface ListenSocket {
  opt: ListenOpt;
  /** address configs served through it: key `host:port` (or `unix:path`) */
  addrs: Map<string, AddrConf>;
  /** the wildcard entry for the port (when this socket is a wildcard) */
  wildcard: AddrConf | undefined;
  /** the variable registry of the http block these servers belong to (per config load) */
  variables: Variables;
}

export const addrKey = (host: string, port: number): string => `${host}|${port}`;

function addServer(ac: AddrConf, srv: CoreSrvConf): void {
  for (const sn of srv.serverNames) {
    if (sn.regex) {
      ac.regex.push({ re: sn.regex, srv });
      continue;
    }
    const name = sn.name;
    if (name.startsWith('*.')) {
      if (!ac.head.some((h) => h.suffix === name.slice(1))) ac.head.push({ suffix: name.slice(1), bare: undefined, srv });
    } else if (name.startsWith('.')) {
      if (!ac.head.some((h) => h.suffix === name)) ac.head.push({ suffix: name, bare: name.slice(1), srv });
    } else if (name.endsWith('.*')) {
      if (!ac.tail.some((t) => t.prefix === name.slice(0, -1))) ac.tail.push({ prefix: name.slice(0, -1), srv });
    } else if (!ac.exact.has(name)) {
      ac.exact.set(name, srv);
    }
  }
}

/** Group every server's listen addresses; returns the sockets to open. */
export function buildListens(servers: CoreSrvConf[], variables: Variables): ListenSocket[] {
  const addrs = new Map<string, { opt: ListenOpt; ac: AddrConf }>();
  for (const srv of servers) {
    const seen = new Set<string>();
    // every server has a listen: merging added *:80 / *:8000 where it had none
    for (const opt of srv.listen) {
      const key = opt.family === 'unix' ? `unix:${opt.path}` : addrKey(opt.host, opt.port);
      if (seen.has(key)) continue;
      seen.add(key);
      let e = addrs.get(key);
      if (!e) {
        e = { opt, ac: { key, defaultServer: srv, exact: new Map(), head: [], tail: [], regex: [], ssl: false, http2: false } };
        addrs.set(key, e);
      } else if (opt.defaultServer) {
        e.ac.defaultServer = srv;
        if (!e.opt.defaultServer) e.opt = { ...e.opt, defaultServer: true, bind: e.opt.bind || opt.bind };
      }
      if (opt.bind && !e.opt.bind) e.opt = { ...e.opt, bind: true };
      if (opt.ssl) e.ac.ssl = true;
      if (opt.http2) e.ac.http2 = true;
      addServer(e.ac, srv);
    }
  }
  // head wildcards: the most specific (longest) suffix wins
  for (const { ac } of addrs.values()) {
    ac.head.sort((a, b) => b.suffix.length - a.suffix.length);
    ac.tail.sort((a, b) => b.prefix.length - a.prefix.length);
  }
  const sockets: ListenSocket[] = [];
  const wildByPort = new Map<string, ListenSocket>();
  for (const { opt, ac } of addrs.values()) {
    if (opt.family !== 'unix' && opt.wildcard) {
      const s: ListenSocket = { opt, addrs: new Map([[ac.key, ac]]), wildcard: ac, variables };
      sockets.push(s);
      wildByPort.set(`${opt.family}|${opt.port}`, s);
    }
  }
  for (const { opt, ac } of addrs.values()) {
    if (opt.family !== 'unix' && opt.wildcard) continue;
    const w = opt.family === 'unix' ? undefined : wildByPort.get(`${opt.family}|${opt.port}`);
    if (w && !opt.bind) w.addrs.set(ac.key, ac);
    else sockets.push({ opt, addrs: new Map([[ac.key, ac]]), wildcard: undefined, variables });
  }
  return sockets;
}

/** the AddrConf for a connection accepted on `sock` with this local address */
export function addrFor(sock: ListenSocket, localHost: string | undefined, localPort: number | undefined): AddrConf {
  if (sock.addrs.size === 1 || localHost === undefined) return sock.wildcard ?? sock.addrs.values().next().value!;
  let host = localHost;
  if (host.startsWith('::ffff:') && sock.opt.family === 'inet') host = host.slice(7);
  return sock.addrs.get(addrKey(host, localPort ?? sock.opt.port)) ?? sock.wildcard ?? sock.addrs.values().next().value!;
}

export interface VirtualServer {
  srv: CoreSrvConf;
  /** a regex server_name match: captures for $1.. and named variables */
  match: RegExpExecArray | undefined;
  /** the server_name regex that matched */
  regex: CompiledRegex | undefined;
}

/** ngx_http_find_virtual_server; `host` is validated and lowercased */
export function findVirtualServer(ac: AddrConf, host: string): VirtualServer {
  const exact = ac.exact.get(host);
  if (exact) return { srv: exact, match: undefined, regex: undefined };
  if (host.length) {
    for (const h of ac.head) {
      if (host.endsWith(h.suffix) && host.length > h.suffix.length) return { srv: h.srv, match: undefined, regex: undefined };
      if (h.bare !== undefined && host === h.bare) return { srv: h.srv, match: undefined, regex: undefined };
    }
    for (const t of ac.tail) {
      if (host.startsWith(t.prefix) && host.length > t.prefix.length) return { srv: t.srv, match: undefined, regex: undefined };
    }
    for (const r of ac.regex) {
      const m = r.re.re.exec(host);
      if (m) return { srv: r.srv, match: m, regex: r.re };
    }
  }
  return { srv: ac.defaultServer, match: undefined, regex: undefined };
}
