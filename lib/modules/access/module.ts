import { HTTP_LMT_CONF, HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SRV_CONF, TAKE1, } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import type { HttpRequest } from '../../http/http_request.js';
import { DECLINED, OK, type Request } from '../../http/request.js';
import { locConf, defineHttpModule } from '../../http/module.js';
import { inetAddr, inet6Addr, ptocidr } from './cidr.js';

/*
 * ngx_http_access_module: allow/deny by client address. Rules are kept per
 * family as nginx does (a rule for `all` goes into every list); the first
 * matching rule of the client's family decides, in the access phase.
 */

interface Rule4 {
  addr: number;
  mask: number;
  deny: boolean;
}

interface Rule6 {
  addr: Uint8Array;
  mask: Uint8Array;
  deny: boolean;
}

export interface AccessLocConf {
  rules: Rule4[] | undefined;
  rules6: Rule6[] | undefined;
  rulesUn: boolean[] | undefined;
}

function u32(b: Uint8Array): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

function accessRule(cf: Conf): undefined {
  const alcf = locConf(cf, accessModule);
  const value = cf.args[1]!;
  const deny = cf.args[0]![0] === 'd';
  const all = value === 'all';
  let family: 4 | 6 | 'unix' | undefined;
  let addr: Uint8Array = new Uint8Array(16);
  let mask: Uint8Array = new Uint8Array(16);

  if (all) {
    family = undefined;
  } else if (value === 'unix:') {
    family = 'unix';
  } else {
    const res = ptocidr(value);
    if (res === undefined) throw cf.error(`invalid parameter "${value}"`);
    if (res.rc === 'done') cf.warn(`low address bits of ${value} are meaningless`);
    family = res.cidr.family;
    addr = res.cidr.addr;
    mask = res.cidr.mask;
  }

  if (family === 4 || all) {
    (alcf.rules ??= []).push(all ? { addr: 0, mask: 0, deny } : { addr: u32(addr), mask: u32(mask), deny });
  }
  if (family === 6 || all) {
    (alcf.rules6 ??= []).push(all ? { addr: new Uint8Array(16), mask: new Uint8Array(16), deny } : { addr, mask, deny });
  }
  if (family === 'unix' || all) (alcf.rulesUn ??= []).push(deny);
  return undefined;
}

function found(r: Request, deny: boolean): number {
  if (deny) {
    // under `satisfy any` the post-access phase logs it, if no other handler lets the request in
    if (r.loc.satisfy === 0) r.log('error', 'access forbidden by rule');
    return 403;
  }
  return OK;
}

function check4(r: Request, rules: Rule4[], addr: number): number {
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (((addr & rule.mask) >>> 0) === rule.addr) return found(r, rule.deny);
  }
  return DECLINED;
}

function check6(r: Request, rules: Rule6[], p: Uint8Array): number {
  next: for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    for (let n = 0; n < 16; n++) if ((p[n]! & rule.mask[n]!) !== rule.addr[n]) continue next;
    return found(r, rule.deny);
  }
  return DECLINED;
}

/** ngx_http_access_handler */
export function accessHandler(r: Request): number {
  const alcf = r.locConf[accessModule.index] as AccessLocConf | undefined;
  if (alcf === undefined) return DECLINED;
  // the connection's address as realip may have set it
  const peer = (r as HttpRequest).conn.remoteAddr;
  if (peer === 'unix:') {
    // a unix-domain connection
    if (alcf.rulesUn !== undefined && alcf.rulesUn.length) return found(r, alcf.rulesUn[0]!);
    return DECLINED;
  }
  if (peer.indexOf(':') === -1) {
    if (alcf.rules === undefined) return DECLINED;
    const b = inetAddr(peer);
    return b === undefined ? DECLINED : check4(r, alcf.rules, u32(b));
  }
  const pct = peer.indexOf('%');
  const b6 = inet6Addr(pct === -1 ? peer : peer.slice(0, pct));
  if (b6 === undefined) return DECLINED;
  if (alcf.rules !== undefined && isV4Mapped(b6)) {
    return check4(r, alcf.rules, u32(b6.subarray(12)));
  }
  if (alcf.rules6 !== undefined) return check6(r, alcf.rules6, b6);
  return DECLINED;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

const CTX = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF | HTTP_LMT_CONF;

export const accessModule = defineHttpModule<unknown, unknown, AccessLocConf>({
  name: 'http_access',
  createLocConf: () => ({ rules: undefined, rules6: undefined, rulesUn: undefined }),
  mergeLocConf(_cf, prev, conf) {
    if (conf.rules === undefined && conf.rules6 === undefined && conf.rulesUn === undefined) {
      conf.rules = prev.rules;
      conf.rules6 = prev.rules6;
      conf.rulesUn = prev.rulesUn;
    }
  },
  phases: { access: accessHandler },
  commands: [
    { name: 'allow', ctx: CTX, args: TAKE1, set: accessRule },
    { name: 'deny', ctx: CTX, args: TAKE1, set: accessRule },
  ],
});
