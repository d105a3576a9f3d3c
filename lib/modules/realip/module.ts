import { FLAG, HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SRV_CONF, TAKE1 } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { flagSlot, mergeValue } from '../../conf/slots.js';
import { UNSET } from '../../conf/values.js';
import type { HttpRequest } from '../../http/http_request.js';
import { defineHttpModule, locConf, type HttpModule } from '../../http/module.js';
import { DECLINED, type Request } from '../../http/request.js';
import { httpVariables } from '../../http/variables.js';
import { ptocidr, type Cidr } from '../access/cidr.js';
import { addrText, cidrMatch, connAddr, parseAddrPort, type Addr } from './addr.js';

/*
 * ngx_http_realip_module: when the client's address is one of
 * set_real_ip_from, take the address from real_ip_header (X-Real-IP,
 * X-Forwarded-For, proxy_protocol, any header) instead. The connection's
 * address changes for the request's life ($remote_addr, the error log's
 * `client:`, allow/deny, limit_req keys) and comes back after it (a
 * request cleanup, as nginx's pool cleanup). It runs in post-read with the
 * server's configuration and again in pre-access with the location's.
 */

const enum Type {
  XRealIp,
  Xfwd,
  Proxy,
  Header,
}

interface RealipLocConf {
  from: Array<Cidr | 'unix'> | undefined;
  type: number;
  /** the header's lowercased name (Type.Header) */
  header: string;
  recursive: number;
}

/** the request's original address ($realip_remote_addr / _port), once realip changed it */
const originals = new WeakMap<HttpRequest, { addr: string; port: number }>();

function setRealIpFrom(cf: Conf): undefined {
  const rlcf = locConf(cf, realipModule);
  const from = (rlcf.from ??= []);
  const v = cf.args[1]!;
  if (v === 'unix:') {
    from.push('unix');
    return undefined;
  }
  const res = ptocidr(v);
  if (res !== undefined) {
    if (res.rc === 'done') cf.warn(`low address bits of ${v} are meaningless`);
    from.push(res.cidr);
    return undefined;
  }
  // ngx_inet_resolve_host: only the names /etc/hosts always has are resolved at -t without a resolver
  if (v === 'localhost') {
    from.push(ptocidr('127.0.0.1')!.cidr);
    return undefined;
  }
  throw cf.error(`host not found in set_real_ip_from "${v}"`);
}

function realIpHeader(cf: Conf): string | undefined {
  const rlcf = locConf(cf, realipModule);
  if (rlcf.type !== UNSET) return 'is duplicate';
  const v = cf.args[1]!;
  if (v === 'X-Real-IP') rlcf.type = Type.XRealIp;
  else if (v === 'X-Forwarded-For') rlcf.type = Type.Xfwd;
  else if (v === 'proxy_protocol') rlcf.type = Type.Proxy;
  else {
    rlcf.type = Type.Header;
    rlcf.header = v.toLowerCase();
  }
  return undefined;
}

/**
 * ngx_http_get_forwarded_addr_internal over one header value: from its
 * right end, while the address in hand is trusted, take the next one to
 * the left (only one without real_ip_recursive). 'ok', 'done' (a trusted
 * chain ended early) or undefined (nothing taken).
 */
function forwarded(addr: { a: Addr }, value: string, from: Array<Cidr | 'unix'>, recursive: boolean): 'ok' | 'done' | undefined {
  let len = value.length;
  let found = false;
  do {
    if (!cidrMatch(addr.a, from)) return found ? 'done' : undefined;
    let p = len - 1;
    for (; p > 0; p--, len--) {
      const c = value[p];
      if (c !== ' ' && c !== ',') break;
    }
    for (; p > 0; p--) {
      const c = value[p];
      if (c === ' ' || c === ',') {
        p++;
        break;
      }
    }
    const got = parseAddrPort(value.slice(p, len));
    if (got === undefined) return found ? 'done' : undefined;
    addr.a = got;
    found = true;
    len = p - 1;
    if (!(recursive && p > 0)) break;
  } while (true);
  return 'ok';
}

function realipHandler(req: Request): number {
  const r = req as HttpRequest;
  const rlcf = r.locConf[realipModule.index] as RealipLocConf | undefined;
  if (rlcf === undefined || rlcf.from === undefined) return DECLINED;
  if (originals.has(r.main)) return DECLINED;
  const head = r.main.req;
  let values: string[];
  switch (rlcf.type) {
    case Type.XRealIp: {
      const v = head.byName.get('x-real-ip');
      if (v === undefined) return DECLINED;
      values = [v];
      break;
    }
    case Type.Xfwd:
      values = head.headers.filter((h) => h[0].toLowerCase() === 'x-forwarded-for').map((h) => h[1]);
      if (values.length === 0) return DECLINED;
      break;
    case Type.Proxy:
      // listen ... proxy_protocol is not supported: no connection carries one
      return DECLINED;
    default: {
      const h = head.headers.find((x) => x[0].toLowerCase() === rlcf.header);
      if (h === undefined) return DECLINED;
      values = [h[1]];
    }
  }
  const conn = r.conn;
  const start = connAddr(conn.remoteAddr, conn.remotePort);
  if (start === undefined) return DECLINED;
  const holder = { a: start };
  const recursive = rlcf.recursive === 1;
  // ngx_http_get_forwarded_addr: several X-Forwarded-For lines, the last first
  let rc: 'ok' | 'done' | undefined;
  let found = false;
  for (let i = values.length - 1; i >= 0; i--) {
    rc = forwarded(holder, values[i]!, rlcf.from, recursive);
    if (!recursive) break;
    if (rc === undefined && found) {
      rc = 'done';
      break;
    }
    if (rc !== 'ok') break;
    found = true;
  }
  if (rc === undefined) return DECLINED;
  originals.set(r.main, { addr: conn.remoteAddr, port: conn.remotePort });
  const orig = { addr: conn.remoteAddr, port: conn.remotePort };
  conn.remoteAddr = addrText(holder.a);
  conn.remotePort = holder.a.port;
  (r.main.cleanups ??= []).push(() => {
    conn.remoteAddr = orig.addr;
    conn.remotePort = orig.port;
  });
  return DECLINED;
}

const ALL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;

export const realipModule: HttpModule<unknown, unknown, RealipLocConf> = defineHttpModule<unknown, unknown, RealipLocConf>({
  name: 'http_realip',
  preConfiguration(cf) {
    const vars = httpVariables(cf);
    vars.add(cf, 'realip_remote_addr', 0).get = (r: Request) => {
      const hr = r as HttpRequest;
      return originals.get(hr.main)?.addr ?? hr.conn.remoteAddr;
    };
    vars.add(cf, 'realip_remote_port', 0).get = (r: Request) => {
      const hr = r as HttpRequest;
      const o = originals.get(hr.main);
      const port = o ? o.port : hr.conn.remotePort;
      return port > 0 && port < 65536 ? String(port) : '';
    };
  },
  createLocConf: () => ({ from: undefined, type: UNSET, header: '', recursive: UNSET }),
  mergeLocConf(_cf, prev, conf) {
    if (conf.from === undefined) conf.from = prev.from;
    conf.type = mergeValue(conf.type, prev.type, Type.XRealIp);
    conf.recursive = mergeValue(conf.recursive, prev.recursive, 0);
    if (conf.header === '') conf.header = prev.header;
  },
  phases: { postRead: realipHandler, preAccess: realipHandler },
  commands: [
    { name: 'set_real_ip_from', ctx: ALL, args: TAKE1, set: setRealIpFrom },
    { name: 'real_ip_header', ctx: ALL, args: TAKE1, set: realIpHeader },
    { name: 'real_ip_recursive', ctx: ALL, args: FLAG, set: flagSlot((cf) => locConf(cf, realipModule), 'recursive') },
  ],
});
