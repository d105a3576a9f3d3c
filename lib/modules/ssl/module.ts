import {
  FLAG,
  HTTP_MAIN_CONF,
  HTTP_SRV_CONF,
  MORE1,
  TAKE1,
  TAKE12,
  TAKE2,
  type Command,
} from '../../conf/command.js';
import { ConfError } from '../../conf/errors.js';
import type { Conf } from '../../conf/parser.js';
import { bitmaskSlot, enumSlot, flagSlot, mergeValue, numSlot, secSlot, sizeSlot, strSlot } from '../../conf/slots.js';
import { UNSET, atoi, parseSize } from '../../conf/values.js';
import { httpCoreModule, type CoreMainConf } from '../../http/core/module.js';
import { defineHttpModule, srvConf, type HttpCtx } from '../../http/module.js';
import { readPasswordFile } from './certs.js';
import {
  BITMASK_SET,
  NGX_SSL_SSLv2,
  NGX_SSL_SSLv3,
  NGX_SSL_TLSv1,
  NGX_SSL_TLSv1_1,
  NGX_SSL_TLSv1_2,
  NGX_SSL_TLSv1_3,
  createSslSrvConf,
  type SslSrvConf,
} from './conf.js';
import { buildContext } from './context.js';
import { BUILTIN_DEFAULT, BuiltinCache, SharedCache, registerSessionOps } from './sessions.js';
import { sharedZoneAdd } from '../../http/zones.js';
import type { SslServer } from '../../http/tls.js';

registerSessionOps();
import { defineSslVariables } from './variables.js';

/*
 * ngx_http_ssl_module (docs/behaviour.md §3): the ssl_* directives with
 * nginx's contexts, arities and value checks; the merge that loads every
 * server's certificates and keys and fails with nginx's words; and, after
 * the http block, the `listen ... ssl` check that each TLS address's
 * default server has a certificate. The connection side is lib/http/tls.ts.
 * What node:tls cannot do on a TLSSocket (OCSP stapling, early data,
 * ssl_conf_command, a verify depth) is accepted and noted once.
 */

const MS = HTTP_MAIN_CONF | HTTP_SRV_CONF;
const NGX_SSL_BUFSIZE = 16384;
/** NGX_SSL_NONE_SCACHE etc. (ssl_session_cache) */
const NO_SCACHE = -2;
const NONE_SCACHE = -3;
const NO_BUILTIN_SCACHE = -4;
const DFLT_BUILTIN_SCACHE = -5;

const conf = (cf: Conf): SslSrvConf => srvConf(cf, sslModule);

const PROTOCOLS: Record<string, number> = {
  sslv2: NGX_SSL_SSLv2,
  sslv3: NGX_SSL_SSLv3,
  tlsv1: NGX_SSL_TLSv1,
  'tlsv1.1': NGX_SSL_TLSv1_1,
  'tlsv1.2': NGX_SSL_TLSv1_2,
  'tlsv1.3': NGX_SSL_TLSv1_3,
};

/** ngx_conf_set_str_array_slot: every value appended */
function strArray(key: 'certificates' | 'certificateKeys' | 'sessionTicketKeys') {
  return (cf: Conf): undefined => {
    const c = conf(cf);
    (c[key] ??= []).push(cf.args[1]!);
    return undefined;
  };
}

/** ngx_http_ssl_enable: the flag, its place, and nginx 1.22's deprecation warning */
function setEnable(cf: Conf, cmd: Command): string | undefined {
  const c = conf(cf);
  cf.warn('the "ssl" directive is deprecated, use the "listen ... ssl" directive instead');
  const rv = flagSlot<SslSrvConf>(conf, 'enable')(cf, cmd);
  if (typeof rv === 'string') return rv;
  const w = cf.where();
  c.file = w.file;
  c.line = w.line;
  return undefined;
}

/** ngx_http_ssl_password_file */
function setPasswordFile(cf: Conf): string | undefined {
  const c = conf(cf);
  if (c.passwords !== null) return 'is duplicate';
  c.passwords = readPasswordFile(cf);
  return undefined;
}

/** ngx_http_ssl_session_cache: off | none | builtin[:size] | shared:name:size */
function setSessionCache(cf: Conf): string | undefined {
  const c = conf(cf);
  for (let i = 1; i < cf.args.length; i++) {
    const v = cf.args[i]!;
    if (v === 'off') c.builtinSessionCache = NO_SCACHE;
    else if (v === 'none') c.builtinSessionCache = NONE_SCACHE;
    else if (v === 'builtin') c.builtinSessionCache = DFLT_BUILTIN_SCACHE;
    else if (v.length > 8 && v.startsWith('builtin:')) {
      const n = atoi(v.slice(8));
      if (n === -1) throw cf.error(`invalid session cache "${v}"`);
      c.builtinSessionCache = n;
    } else if (v.length > 7 && v.startsWith('shared:')) {
      const colon = v.indexOf(':', 7);
      const name = colon === -1 ? v.slice(7) : v.slice(7, colon);
      if (name.length === 0) throw cf.error(`invalid session cache "${v}"`);
      const n = parseSize(colon === -1 ? '' : v.slice(colon + 1));
      if (n === -1) throw cf.error(`invalid session cache "${v}"`);
      if (n < 8 * 4096) throw cf.error(`session cache "${v}" is too small`);
      c.sharedCache = sharedZoneAdd(cf, name, n, 'ssl');
      // the zone's ngx_ssl_session_cache_t (rbtree, sentinel, expire queue) and its log context
      c.sharedCache.reserved = [80, 27 + name.length];
      c.sharedCache.label = 'ssl_session_cache';
    } else throw cf.error(`invalid session cache "${v}"`);
  }
  if (c.sharedCache !== undefined && c.builtinSessionCache === UNSET) c.builtinSessionCache = NO_BUILTIN_SCACHE;
  return undefined;
}

/** ngx_http_ssl_ocsp_cache: off | shared:name:size */
function setOcspCache(cf: Conf): string | undefined {
  const c = conf(cf);
  if (c.ocspCache !== undefined) return 'is duplicate';
  const v = cf.args[1]!;
  if (v === 'off') {
    c.ocspCache = null;
    return undefined;
  }
  const m = /^shared:([^:]+):(.*)$/.exec(v);
  const n = m ? parseSize(m[2]!) : -1;
  if (!m || n === -1) throw cf.error(`invalid OCSP cache "${v}"`);
  if (n < 8 * 4096) throw cf.error(`OCSP cache "${v}" is too small`);
  c.ocspCache = m[1]!;
  return undefined;
}

/** ngx_conf_set_keyval_slot */
function setConfCommand(cf: Conf): string | undefined {
  const c = conf(cf);
  (c.confCommands ??= []).push([cf.args[1]!, cf.args[2]!]);
  return undefined;
}

/** ngx_conf_set_enum_slot for ssl_ocsp, which nginx declares FLAG (so on/off/leaf with one argument) */
function setOcsp(cf: Conf): string | undefined {
  return enumSlot<SslSrvConf>(conf, 'ocsp', { off: 0, on: 1, leaf: 2 })(cf, { name: 'ssl_ocsp', ctx: MS, args: FLAG, set: () => undefined }) ?? undefined;
}

const str = (key: Parameters<typeof strSlot<SslSrvConf>>[1]) => strSlot<SslSrvConf>(conf, key);
const flag = (key: Parameters<typeof flagSlot<SslSrvConf>>[1]) => flagSlot<SslSrvConf>(conf, key);

const commands: Command[] = [
  { name: 'ssl', ctx: MS, args: FLAG, set: setEnable },
  { name: 'ssl_certificate', ctx: MS, args: TAKE1, set: strArray('certificates') },
  { name: 'ssl_certificate_key', ctx: MS, args: TAKE1, set: strArray('certificateKeys') },
  { name: 'ssl_password_file', ctx: MS, args: TAKE1, set: setPasswordFile },
  { name: 'ssl_dhparam', ctx: MS, args: TAKE1, set: str('dhparam') },
  { name: 'ssl_ecdh_curve', ctx: MS, args: TAKE1, set: str('ecdhCurve') },
  { name: 'ssl_protocols', ctx: MS, args: MORE1, set: protocolsSlot },
  { name: 'ssl_ciphers', ctx: MS, args: TAKE1, set: str('ciphers') },
  { name: 'ssl_buffer_size', ctx: MS, args: TAKE1, set: sizeSlot<SslSrvConf>(conf, 'bufferSize') },
  { name: 'ssl_verify_client', ctx: MS, args: TAKE1, set: enumSlot<SslSrvConf>(conf, 'verify', { off: 0, on: 1, optional: 2, optional_no_ca: 3 }) },
  { name: 'ssl_verify_depth', ctx: MS, args: TAKE1, set: numSlot<SslSrvConf>(conf, 'verifyDepth') },
  { name: 'ssl_client_certificate', ctx: MS, args: TAKE1, set: str('clientCertificate') },
  { name: 'ssl_trusted_certificate', ctx: MS, args: TAKE1, set: str('trustedCertificate') },
  { name: 'ssl_prefer_server_ciphers', ctx: MS, args: FLAG, set: flag('preferServerCiphers') },
  { name: 'ssl_session_cache', ctx: MS, args: TAKE12, set: setSessionCache },
  { name: 'ssl_session_tickets', ctx: MS, args: FLAG, set: flag('sessionTickets') },
  { name: 'ssl_session_ticket_key', ctx: MS, args: TAKE1, set: strArray('sessionTicketKeys') },
  { name: 'ssl_session_timeout', ctx: MS, args: TAKE1, set: secSlot<SslSrvConf>(conf, 'sessionTimeout') },
  { name: 'ssl_crl', ctx: MS, args: TAKE1, set: str('crl') },
  { name: 'ssl_ocsp', ctx: MS, args: FLAG, set: setOcsp },
  { name: 'ssl_ocsp_responder', ctx: MS, args: TAKE1, set: str('ocspResponder') },
  { name: 'ssl_ocsp_cache', ctx: MS, args: TAKE1, set: setOcspCache },
  { name: 'ssl_stapling', ctx: MS, args: FLAG, set: flag('stapling') },
  { name: 'ssl_stapling_file', ctx: MS, args: TAKE1, set: str('staplingFile') },
  { name: 'ssl_stapling_responder', ctx: MS, args: TAKE1, set: str('staplingResponder') },
  { name: 'ssl_stapling_verify', ctx: MS, args: FLAG, set: flag('staplingVerify') },
  { name: 'ssl_early_data', ctx: MS, args: FLAG, set: flag('earlyData') },
  { name: 'ssl_conf_command', ctx: MS, args: TAKE2, set: setConfCommand },
  { name: 'ssl_reject_handshake', ctx: MS, args: FLAG, set: flag('rejectHandshake') },
];

/** ngx_conf_set_bitmask_slot with NGX_CONF_BITMASK_SET marking the directive given (a second one adds to it) */
function protocolsSlot(cf: Conf, cmd: Command): string | undefined {
  const c = conf(cf);
  c.protocols |= BITMASK_SET;
  const rv = bitmaskSlot<SslSrvConf>(conf, 'protocols', PROTOCOLS)(cf, cmd);
  return typeof rv === 'string' ? rv : undefined;
}

const mergeStr = (c: string | undefined, p: string | undefined, d: string | undefined): string | undefined => c ?? p ?? d;
function mergePtr<T>(c: T | null, p: T | null): T | null {
  return c !== null ? c : p;
}

/** ngx_http_ssl_merge_srv_conf, with its messages (no `in FILE:LINE`: they come after the block) */
function merge(cf: Conf, prev: SslSrvConf, c: SslSrvConf): void {
  if (c.enable === UNSET) {
    if (prev.enable === UNSET) c.enable = 0;
    else {
      c.enable = prev.enable;
      c.file = prev.file;
      c.line = prev.line;
    }
  }
  c.sessionTimeout = mergeValue(c.sessionTimeout, prev.sessionTimeout, 300);
  c.preferServerCiphers = mergeValue(c.preferServerCiphers, prev.preferServerCiphers, 0);
  c.earlyData = mergeValue(c.earlyData, prev.earlyData, 0);
  c.rejectHandshake = mergeValue(c.rejectHandshake, prev.rejectHandshake, 0);
  if (c.protocols === 0) c.protocols = prev.protocols !== 0 ? prev.protocols : BITMASK_SET | NGX_SSL_TLSv1 | NGX_SSL_TLSv1_1 | NGX_SSL_TLSv1_2;
  c.bufferSize = mergeValue(c.bufferSize, prev.bufferSize, NGX_SSL_BUFSIZE);
  c.verify = mergeValue(c.verify, prev.verify, 0);
  c.verifyDepth = mergeValue(c.verifyDepth, prev.verifyDepth, 1);
  c.certificates = mergePtr(c.certificates, prev.certificates);
  c.certificateKeys = mergePtr(c.certificateKeys, prev.certificateKeys);
  c.passwords = mergePtr(c.passwords, prev.passwords);
  c.dhparam = mergeStr(c.dhparam, prev.dhparam, '');
  c.clientCertificate = mergeStr(c.clientCertificate, prev.clientCertificate, '');
  c.trustedCertificate = mergeStr(c.trustedCertificate, prev.trustedCertificate, '');
  c.crl = mergeStr(c.crl, prev.crl, '');
  c.ecdhCurve = mergeStr(c.ecdhCurve, prev.ecdhCurve, 'auto');
  c.ciphers = mergeStr(c.ciphers, prev.ciphers, 'HIGH:!aNULL:!MD5');
  c.confCommands = mergePtr(c.confCommands, prev.confCommands);
  c.ocsp = mergeValue(c.ocsp, prev.ocsp, 0);
  c.ocspResponder = mergeStr(c.ocspResponder, prev.ocspResponder, '');
  if (c.ocspCache === undefined) c.ocspCache = prev.ocspCache ?? null;
  c.stapling = mergeValue(c.stapling, prev.stapling, 0);
  c.staplingVerify = mergeValue(c.staplingVerify, prev.staplingVerify, 0);
  c.staplingFile = mergeStr(c.staplingFile, prev.staplingFile, '');
  c.staplingResponder = mergeStr(c.staplingResponder, prev.staplingResponder, '');

  const certs = c.certificates;
  if (c.enable) {
    if (certs) {
      if (c.certificateKeys === null) {
        throw new ConfError(`no "ssl_certificate_key" is defined for the "ssl" directive in ${c.file}:${c.line}`);
      }
      if (c.certificateKeys.length < certs.length) {
        throw new ConfError(`no "ssl_certificate_key" is defined for certificate "${certs[certs.length - 1]}" and the "ssl" directive in ${c.file}:${c.line}`);
      }
    } else if (!c.rejectHandshake) {
      throw new ConfError(`no "ssl_certificate" is defined for the "ssl" directive in ${c.file}:${c.line}`);
    }
  } else if (certs) {
    if (c.certificateKeys === null || c.certificateKeys.length < certs.length) {
      throw new ConfError(`no "ssl_certificate_key" is defined for certificate "${certs[certs.length - 1]}"`);
    }
  } else if (!c.rejectHandshake) {
    mergeSessions(c, prev);
    return;
  }

  if (c.verify && !c.clientCertificate && c.verify !== 3) {
    // nginx builds the context (ciphers, certificates) before this check
    buildContext(cf, { ...c, verify: 0 });
    throw new ConfError('no ssl_client_certificate for ssl_verify_client');
  }
  if (c.ocsp && c.verify === 3) {
    throw new ConfError('"ssl_ocsp" is incompatible with "ssl_verify_client optional_no_ca"');
  }
  mergeSessions(c, prev);
  c.server = {
    context: buildContext(cf, c),
    enable: c.enable === 1,
    verify: c.verify,
    rejectHandshake: c.rejectHandshake === 1,
    bufferSize: c.bufferSize,
    sessions: sessionCache(c),
  };
}

/** ssl_session_cache as the connection side uses it: shared (across workers), else builtin, else none */
function sessionCache(c: SslSrvConf): SslServer['sessions'] {
  const timeout = c.sessionTimeout * 1000;
  if (c.sharedCache !== undefined) return new SharedCache(c.sharedCache, timeout);
  if (c.builtinSessionCache === DFLT_BUILTIN_SCACHE) return new BuiltinCache(BUILTIN_DEFAULT, timeout);
  if (c.builtinSessionCache >= 0) return new BuiltinCache(c.builtinSessionCache, timeout);
  return undefined;
}

function mergeSessions(c: SslSrvConf, prev: SslSrvConf): void {
  c.builtinSessionCache = mergeValue(c.builtinSessionCache, prev.builtinSessionCache, NONE_SCACHE);
  c.sharedCache ??= prev.sharedCache;
  c.sessionTickets = mergeValue(c.sessionTickets, prev.sessionTickets, 1);
  c.sessionTicketKeys = mergePtr(c.sessionTicketKeys, prev.sessionTicketKeys);
}

/**
 * ngx_http_ssl_init: each TLS address's default server needs a certificate
 * (or ssl_reject_handshake, then every server of it does). Then each
 * server's settings are hung on its core conf for the connection side.
 */
function postConfiguration(cf: Conf): void {
  const ctx = cf.ctx as HttpCtx;
  const cmcf = ctx.main[httpCoreModule.index] as CoreMainConf;
  for (const cscf of cmcf.servers) cscf.ssl = (cscf.ctx.srv[sslModule.index] as SslSrvConf).server;
  for (const port of cmcf.ports) {
    for (const addr of port.addrs) {
      if (!addr.opt.ssl) continue;
      const dflt = addr.defaultServer.ctx.srv[sslModule.index] as SslSrvConf;
      if (dflt.certificates) continue;
      if (!dflt.rejectHandshake) {
        throw new ConfError(`no "ssl_certificate" is defined for the "listen ... ssl" directive in ${addr.defaultServer.file}:${addr.defaultServer.line}`);
      }
      for (const s of addr.servers) {
        const sc = s.ctx.srv[sslModule.index] as SslSrvConf;
        if (sc.certificates || sc.rejectHandshake) continue;
        throw new ConfError(`no "ssl_certificate" is defined for the "listen ... ssl" directive in ${s.file}:${s.line}`);
      }
    }
  }
}

export const sslModule = defineHttpModule<unknown, SslSrvConf, unknown>({
  name: 'ssl',
  commands,
  preConfiguration(cf) {
    defineSslVariables(cf);
  },
  createSrvConf: () => createSslSrvConf(),
  mergeSrvConf: merge,
  postConfiguration,
});
