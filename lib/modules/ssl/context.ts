import { constants, createHash, hkdfSync } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { ConfError } from '../../conf/errors.js';
import type { Conf } from '../../conf/parser.js';
import { errnoSuffix } from '../../core/errno.js';
import { TLS_SEED_ENV, opensslErrorText } from '../../http/tls.js';
import { keyMatches, loadCaFile, loadCertificate, loadCertificateKey, loadDhparam } from './certs.js';
import { noteNoEffect } from '../noop/module.js';
import {
  NGX_SSL_TLSv1,
  NGX_SSL_TLSv1_1,
  NGX_SSL_TLSv1_2,
  NGX_SSL_TLSv1_3,
  type SslSrvConf,
} from './conf.js';

/** node's native context (tls.Server sets its session id context the same way) */
interface SidContext {
  setSessionIdContext?: (id: string) => void;
  setTicketKeys?: (keys: Buffer) => void;
}

/*
 * ngx_ssl_create and the steps of ngx_http_ssl_merge_srv_conf that follow
 * it, in nginx's order (ciphers, certificates, client verification, DH
 * parameters, curves, session tickets, stapling), each failing with
 * nginx's line; the result is one node:tls SecureContext per server.
 */

/** OpenSSL 3.0's default TLS 1.3 suites: nginx's ssl_ciphers never touches them */
const TLS13_SUITES = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256';

const VERSIONS: Array<[number, 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3', number]> = [
  [NGX_SSL_TLSv1, 'TLSv1', constants.SSL_OP_NO_TLSv1],
  [NGX_SSL_TLSv1_1, 'TLSv1.1', constants.SSL_OP_NO_TLSv1_1],
  [NGX_SSL_TLSv1_2, 'TLSv1.2', constants.SSL_OP_NO_TLSv1_2],
  [NGX_SSL_TLSv1_3, 'TLSv1.3', constants.SSL_OP_NO_TLSv1_3],
];

/** the protocol range and the holes in it (SSL_OP_NO_* as nginx sets them) */
function protocolOptions(mask: number): Pick<SecureContextOptions, 'minVersion' | 'maxVersion'> & { off: number } {
  const on = VERSIONS.filter(([bit]) => mask & bit);
  if (on.length === 0) {
    // only SSLv2/SSLv3 asked: node speaks neither; nothing will handshake, as with nginx's OpenSSL
    return { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', off: constants.SSL_OP_NO_TLSv1_3 };
  }
  let off = 0;
  const lo = VERSIONS.indexOf(on[0]!);
  const hi = VERSIONS.indexOf(on[on.length - 1]!);
  for (let i = lo; i <= hi; i++) if (!(mask & VERSIONS[i]![0])) off |= VERSIONS[i]![2];
  return { minVersion: on[0]![1], maxVersion: on[on.length - 1]![1], off };
}

/** ngx_ssl_session_ticket_keys: each file 48 or 80 bytes; node takes 48 (name, HMAC, AES) */
function ticketKeys(cf: Conf, files: string[] | null): Buffer | undefined {
  if (!files || files.length === 0) return undefined;
  let first: Buffer | undefined;
  for (const f of files) {
    const path = cf.cycle.confFullName(f);
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (e) {
      throw cf.error(`open() "${path}" failed ${errnoSuffix(e)}`);
    }
    if (data.length !== 48 && data.length !== 80) throw cf.error(`"${path}" must be 48 or 80 bytes`);
    // an 80-byte key (AES-256): node's tickets are AES-128, so its name, then halves of its HMAC and AES keys
    const key = data.length === 48 ? data : Buffer.concat([data.subarray(0, 16), data.subarray(16, 32), data.subarray(48, 64)]);
    first ??= key;
  }
  return first;
}

/** SSL_CTX_set1_curves_list's failure names the first group it cannot set */
function badCurve(list: string): string {
  for (const name of list.split(':')) {
    try {
      createSecureContext({ ecdhCurve: name });
    } catch {
      return name;
    }
  }
  return list;
}

/** the SecureContext of a server with TLS (nginx's conf->ssl), or a ConfError */
export function buildContext(cf: Conf, conf: SslSrvConf): SecureContext {
  const { minVersion, maxVersion, off } = protocolOptions(conf.protocols);
  let secureOptions = off | constants.SSL_OP_NO_COMPRESSION;
  if (conf.preferServerCiphers) secureOptions |= constants.SSL_OP_CIPHER_SERVER_PREFERENCE;
  if (!conf.sessionTickets) secureOptions |= constants.SSL_OP_NO_TICKET;
  const ciphers = conf.ciphers!;

  // ngx_ssl_ciphers
  try {
    createSecureContext({ ciphers: `${ciphers}:${TLS13_SUITES}` });
  } catch (e) {
    const ssl = opensslErrorText(e as Error) ?? 'error:0A0000B9:SSL routines::no cipher match';
    throw new ConfError(`SSL_CTX_set_cipher_list("${ciphers}") failed (SSL: ${ssl})`);
  }

  const opts: SecureContextOptions = {
    minVersion,
    maxVersion,
    secureOptions,
    ciphers: `${ciphers}:${TLS13_SUITES}`,
    honorCipherOrder: conf.preferServerCiphers === 1,
    sessionTimeout: conf.sessionTimeout,
  };

  // ngx_ssl_certificates: each pair in order
  if (conf.certificates) {
    // one certificate per key type: a later pair of a type replaces the earlier one, as in OpenSSL's slots
    const byType = new Map<string, { cert: string; key: { pem: string; passphrase?: string } }>();
    conf.certificates.forEach((c, i) => {
      const certPath = cf.cycle.confFullName(c);
      const rawKey = conf.certificateKeys![i]!;
      const keyPath = rawKey.startsWith('engine:') ? rawKey : cf.cycle.confFullName(rawKey);
      const cert = loadCertificate(certPath);
      const key = loadCertificateKey(keyPath, conf.passwords ?? undefined);
      if (!keyMatches(cert.leaf, key.key)) {
        throw new ConfError(`SSL_CTX_use_PrivateKey("${keyPath}") failed (SSL: error:05800074:x509 certificate routines::key values mismatch)`);
      }
      const type = cert.leaf.publicKey.asymmetricKeyType ?? '';
      byType.delete(type);
      byType.set(type, { cert: cert.pem, key: key.passphrase === undefined ? { pem: key.pem } : { pem: key.pem, passphrase: key.passphrase } });
      if (conf.stapling) stapling(cf, conf, certPath, cert.leaf, cert.chain);
    });
    opts.cert = [...byType.values()].map((p) => p.cert);
    opts.key = [...byType.values()].map((p) => p.key);
  }

  // ngx_ssl_client_certificate / ngx_ssl_trusted_certificate
  const ca: string[] = [];
  if (conf.verify && conf.clientCertificate) ca.push(loadCaFile(cf.cycle.confFullName(conf.clientCertificate)));
  if (conf.trustedCertificate) loadCaFile(cf.cycle.confFullName(conf.trustedCertificate));
  if (ca.length) opts.ca = ca;
  if (conf.crl) {
    const path = cf.cycle.confFullName(conf.crl);
    try {
      statSync(path);
      opts.crl = readFileSync(path);
    } catch (e) {
      throw new ConfError(`X509_LOOKUP_load_file("${path}") failed (SSL: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'error:80000002:system library::No such file or directory' : 'error:05880002:x509 certificate routines::system lib'})`);
    }
  }

  if (conf.dhparam) opts.dhparam = loadDhparam(cf.cycle.confFullName(conf.dhparam));

  // ngx_ssl_ecdh_curve: "auto" is OpenSSL's default list
  const curve = conf.ecdhCurve!;
  if (curve !== 'auto') {
    try {
      createSecureContext({ ecdhCurve: curve });
    } catch {
      const bad = badCurve(curve);
      throw new ConfError(`SSL_CTX_set1_curves_list("${curve}") failed (SSL: error:0A080106:SSL routines::passed invalid argument:group '${bad}' cannot be set)`);
    }
    opts.ecdhCurve = curve;
  }

  const keys = ticketKeys(cf, conf.sessionTicketKeys);
  if (keys) opts.ticketKeys = keys;

  if (conf.earlyData) noteNoEffect(cf.cycle, 'ssl_early_data');
  if (conf.confCommands) noteNoEffect(cf.cycle, 'ssl_conf_command');
  if (conf.ocsp) noteNoEffect(cf.cycle, 'ssl_ocsp');
  if (conf.verifyDepth !== 1 && conf.verify) noteNoEffect(cf.cycle, 'ssl_verify_depth');

  try {
    const sc = createSecureContext(opts);
    // ngx_ssl_session_cache's session id context ("HTTP" and the certificates' digest): resumption works with client verification on
    const sid = createHash('md5').update('HTTP');
    for (const c of (opts.cert as string[] | undefined) ?? []) sid.update(c);
    const sidText = sid.digest('hex');
    (sc.context as SidContext).setSessionIdContext?.(sidText);
    // workers of one generation share ticket keys, as nginx's inherit the master's
    const seed = process.env[TLS_SEED_ENV];
    if (!keys && seed) (sc.context as SidContext).setTicketKeys?.(Buffer.from(hkdfSync('sha256', seed, sidText, 'redis2d session tickets', 48)));
    return sc;
  } catch (e) {
    throw new ConfError(`SSL_CTX_new() failed (SSL: ${opensslErrorText(e as Error) ?? (e as Error).message})`);
  }
}

/**
 * ngx_ssl_stapling: nginx warns and goes on when the issuer is unknown or
 * the certificate names no OCSP responder; else it would staple, which a
 * TLSSocket cannot (node staples only through tls.Server's OCSPRequest
 * event): noted once as having no effect.
 */
function stapling(cf: Conf, conf: SslSrvConf, path: string, leaf: import('node:crypto').X509Certificate, chain: import('node:crypto').X509Certificate[]): void {
  if (conf.staplingFile) {
    noteNoEffect(cf.cycle, 'ssl_stapling');
    return;
  }
  const issuer = chain.find((c) => leaf.checkIssued(c));
  if (issuer === undefined) {
    cf.cycle.warnings.push({ level: 'warn', text: `"ssl_stapling" ignored, issuer certificate not found for certificate "${path}"` });
    return;
  }
  const ocsp = /OCSP - URI:(\S+)/.exec(leaf.infoAccess ?? '');
  if (!ocsp && !conf.staplingResponder) {
    cf.cycle.warnings.push({ level: 'warn', text: `"ssl_stapling" ignored, no OCSP responder URL in the certificate "${path}"` });
    return;
  }
  noteNoEffect(cf.cycle, 'ssl_stapling');
}
