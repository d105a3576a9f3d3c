import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net, { type Socket } from 'node:net';
import tls, { type SecureContext, type SecureVersion } from 'node:tls';
import { HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SRV_CONF, MORE1, TAKE1, type Command } from '../conf/command.js';
import { ConfError } from '../conf/errors.js';
import type { Conf } from '../conf/parser.js';
import { bitmaskSlot, flagSlot, mergeValue, numSlot, strSlot } from '../conf/slots.js';
import { UNSET } from '../conf/values.js';
import { compileComplexValue, type ComplexValue } from '../http/script.js';
import type { LogLine } from './messages.js';
import type { PeerAddress } from './peers.js';
import { x509VerifyError } from '../core/x509.js';

/*
 * **extension** TLS to an upstream, as nginx's proxy_ssl_* family does it
 * (ngx_http_proxy_set_ssl, ngx_http_upstream_ssl_init_connection /
 * _ssl_handshake), for any protocol module under its own prefix
 * (`redis2_ssl_*`, `redis_ssl_*`): the directives, the merge with nginx's
 * defaults and -t checks, one secure context per location built at load
 * time, and per connection the handshake with SNI, session reuse, and the
 * certificate checks nginx makes after it (verify result, then the name),
 * with nginx's log lines. verify_depth is accepted and kept; Node's TLS
 * has no depth limit to hand it to (docs/behaviour.md).
 */

export const ACTION_SSL = 'SSL handshaking to upstream';

// NGX_SSL_* protocol bits
const SSLv2 = 0x2;
const SSLv3 = 0x4;
const TLSv1 = 0x8;
const TLSv1_1 = 0x10;
const TLSv1_2 = 0x20;
const TLSv1_3 = 0x40;
const BITMASK_SET = 0x1;

export interface UpstreamSslConf {
  enable: number;
  name: ComplexValue | undefined;
  serverName: number;
  verify: number;
  verifyDepth: number;
  trusted: string | undefined;
  certificate: string | undefined;
  certificateKey: string | undefined;
  protocols: number;
  ciphers: string | undefined;
  sessionReuse: number;
  /** PREFIX_ssl_crl (proxy): checked with the peer's chain when verifying */
  crl?: string;
  /** PREFIX_ssl_password_file (proxy): the key's passwords, tried in order */
  passwords?: string[];
  /** built at merge when enabled */
  rt: SslRuntime | undefined;
}

export function createSslConf(): UpstreamSslConf {
  return {
    enable: UNSET,
    name: undefined,
    serverName: UNSET,
    verify: UNSET,
    verifyDepth: UNSET,
    trusted: undefined,
    certificate: undefined,
    certificateKey: undefined,
    protocols: 0,
    ciphers: undefined,
    sessionReuse: UNSET,
    rt: undefined,
  };
}

/** What a connection needs: the context, the checks to make, and the sessions kept per peer. */
export class SslRuntime {
  readonly sessions = new Map<string, Buffer>();
  /**
   * the certificate a peer presented on the full handshake its session came
   * from: a resumed session may not hand it over again, and the name is
   * checked against it (as OpenSSL keeps it in the session for nginx)
   */
  readonly certs = new Map<string, tls.PeerCertificate>();
  constructor(
    /** the keepalive key suffix (with the request's name after it): a TLS connection is only reused by requests with the same settings */
    readonly poolTag: string,
    readonly context: SecureContext,
    readonly verify: boolean,
    readonly serverName: boolean,
    readonly name: ComplexValue | undefined,
    readonly sessionReuse: boolean,
  ) {}
}

function versions(mask: number): { minVersion: SecureVersion; maxVersion: SecureVersion } {
  const order: Array<[number, SecureVersion]> = [
    [TLSv1, 'TLSv1'],
    [TLSv1_1, 'TLSv1.1'],
    [TLSv1_2, 'TLSv1.2'],
    [TLSv1_3, 'TLSv1.3'],
  ];
  const on = order.filter(([b]) => mask & b).map(([, v]) => v);
  // only SSLv2/SSLv3 named: Node cannot speak them; the oldest it can is the nearest
  if (on.length === 0) return { minVersion: 'TLSv1', maxVersion: 'TLSv1' };
  return { minVersion: on[0]!, maxVersion: on[on.length - 1]! };
}

/** an OpenSSL error as nginx prints it after `(SSL: `: the code, library and reason, no function or file */
export function opensslText(err: Error): string {
  const m = /error:([0-9A-Fa-f]{8}):([^:]*):[^:]*:([^:]*)/.exec(err.message);
  if (!m) return err.message;
  const alert = /SSL alert number (\d+)/.exec(err.message);
  return `error:${m[1]}:${m[2]}::${m[3]}${alert ? `:SSL alert number ${alert[1]}` : ''}`;
}

function loadFile(cf: Conf, what: string, path: string, fn: string): Buffer {
  const full = cf.cycle.confFullName(path);
  try {
    return readFileSync(full);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (e as Error).message;
    throw new ConfError(`${what} "${full}": ${fn}() failed (SSL: error:80000002:system library::${code}:calling fopen(${full}, r) error:10000080:BIO routines::no such file)`);
  }
}

/** ngx_http_proxy_merge_loc_conf's TLS part and ngx_http_proxy_set_ssl, under `prefix` */
export function mergeSslConf(cf: Conf, prefix: string, prev: UpstreamSslConf, c: UpstreamSslConf, passes: boolean): void {
  c.enable = mergeValue(c.enable, prev.enable, 0);
  c.sessionReuse = mergeValue(c.sessionReuse, prev.sessionReuse, 1);
  if (c.protocols === 0) c.protocols = prev.protocols !== 0 ? prev.protocols : BITMASK_SET | TLSv1 | TLSv1_1 | TLSv1_2;
  c.ciphers ??= prev.ciphers ?? 'DEFAULT';
  c.name ??= prev.name;
  c.serverName = mergeValue(c.serverName, prev.serverName, 0);
  c.verify = mergeValue(c.verify, prev.verify, 0);
  c.verifyDepth = mergeValue(c.verifyDepth, prev.verifyDepth, 1);
  c.trusted ??= prev.trusted ?? '';
  c.certificate ??= prev.certificate;
  c.certificateKey ??= prev.certificateKey;
  c.crl ??= prev.crl;
  c.passwords ??= prev.passwords;
  // nginx checks and builds the context where the location passes to an upstream
  if (!c.enable || !passes) return;
  if (prev.rt !== undefined && c.certificate === prev.certificate && c.trusted === prev.trusted && c.protocols === prev.protocols && c.ciphers === prev.ciphers && c.verify === prev.verify && c.name === prev.name && c.serverName === prev.serverName && c.certificateKey === prev.certificateKey && c.sessionReuse === prev.sessionReuse && c.crl === prev.crl && c.passwords === prev.passwords) {
    // an inherited context is shared, as nginx shares the parent's SSL_CTX
    c.rt = prev.rt;
    return;
  }
  const opts: tls.SecureContextOptions = { ...versions(c.protocols), ciphers: c.ciphers };
  if (c.certificate !== undefined) {
    if (c.certificateKey === undefined) {
      throw new ConfError(`no "${prefix}_ssl_certificate_key" is defined for certificate "${c.certificate}"`);
    }
    opts.cert = loadFile(cf, 'cannot load certificate', c.certificate, 'BIO_new_file');
    const key = loadFile(cf, 'cannot load certificate key', c.certificateKey, 'BIO_new_file');
    opts.key = c.passwords === undefined ? key : [{ pem: key, passphrase: keyPassword(key, c.passwords) }];
  }
  if (c.verify) {
    if (c.trusted === '') throw new ConfError(`no ${prefix}_ssl_trusted_certificate for ${prefix}_ssl_verify`);
    opts.ca = loadLookup(cf, 'SSL_CTX_load_verify_locations', c.trusted, 'CERTIFICATE');
    // ngx_ssl_crl: only with verification, as nginx loads it
    if (c.crl !== undefined && c.crl !== '') {
      opts.crl = loadLookup(cf, 'X509_LOOKUP_load_file', c.crl, 'X509 CRL');
    }
  }
  let ctx: SecureContext;
  try {
    ctx = tls.createSecureContext(opts);
  } catch (e) {
    if ((e as Error).message.includes('cipher')) throw new ConfError(`SSL_CTX_set_cipher_list("${c.ciphers}") failed (SSL: ${opensslText(e as Error)})`);
    throw new ConfError(`cannot load certificate "${c.certificate ?? c.trusted}": PEM_read_bio_X509_AUX() failed (SSL: ${opensslText(e as Error)})`);
  }
  // locations with the same settings share pooled connections (the request's name is added to the key)
  const tag = ['\0tls', c.certificate, c.certificateKey, c.trusted, c.protocols, c.ciphers, c.verify, c.serverName, c.sessionReuse, c.crl, c.passwords?.join('\n'), ''].join('|');
  c.rt = new SslRuntime(tag, ctx, c.verify === 1, c.serverName === 1, c.name, c.sessionReuse === 1);
}

/**
 * A PEM file OpenSSL's X509 lookup reads (trusted certificates, CRLs), with
 * nginx's message when it cannot: the fopen() error queue, or no PEM block
 * of the kind in it
 */
function loadLookup(cf: Conf, fn: string, path: string, label: string): Buffer {
  const full = cf.cycle.confFullName(path);
  let data: Buffer;
  try {
    data = readFileSync(full);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (e as Error).message;
    throw new ConfError(`${fn}("${full}") failed (SSL: error:80000002:system library::${code}:calling fopen(${full}, r) error:10000080:BIO routines::no such file error:05880002:x509 certificate routines::system lib)`);
  }
  if (!data.includes(`-----BEGIN ${label}-----`) && !(label === 'CERTIFICATE' && data.includes('-----BEGIN TRUSTED CERTIFICATE-----'))) {
    throw new ConfError(`${fn}("${full}") failed (SSL: error:05800088:x509 certificate routines::no certificate or crl found)`);
  }
  return data;
}

/** the first of `passwords` that opens the key (nginx tries them in order); the last when none does (the load then fails) */
function keyPassword(key: Buffer, passwords: string[]): string {
  for (const p of passwords) {
    try {
      createPrivateKey({ key, format: 'pem', passphrase: p });
      return p;
    } catch {
      // the next one
    }
  }
  return passwords[passwords.length - 1] ?? '';
}

/** the directives `PREFIX_ssl`, `PREFIX_ssl_name`, ... writing to the conf `get` returns */
export function sslCommands(prefix: string, get: (cf: Conf) => UpstreamSslConf): Command[] {
  const ALL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;
  const p = `${prefix}_ssl`;
  return [
    { name: p, ctx: ALL, args: TAKE1, set: flagSlot(get, 'enable') },
    {
      name: `${p}_name`,
      ctx: ALL,
      args: TAKE1,
      set(cf) {
        const c = get(cf);
        if (c.name !== undefined) return 'is duplicate';
        c.name = compileComplexValue(cf, cf.args[1]!);
        return undefined;
      },
    },
    { name: `${p}_server_name`, ctx: ALL, args: TAKE1, set: flagSlot(get, 'serverName') },
    { name: `${p}_verify`, ctx: ALL, args: TAKE1, set: flagSlot(get, 'verify') },
    { name: `${p}_verify_depth`, ctx: ALL, args: TAKE1, set: numSlot(get, 'verifyDepth') },
    { name: `${p}_trusted_certificate`, ctx: ALL, args: TAKE1, set: strSlot(get, 'trusted') },
    { name: `${p}_certificate`, ctx: ALL, args: TAKE1, set: strSlot(get, 'certificate') },
    { name: `${p}_certificate_key`, ctx: ALL, args: TAKE1, set: strSlot(get, 'certificateKey') },
    {
      name: `${p}_protocols`,
      ctx: ALL,
      args: MORE1,
      set: bitmaskSlot(get, 'protocols', { sslv2: SSLv2, sslv3: SSLv3, tlsv1: TLSv1, 'tlsv1.1': TLSv1_1, 'tlsv1.2': TLSv1_2, 'tlsv1.3': TLSv1_3 }),
    },
    { name: `${p}_ciphers`, ctx: ALL, args: TAKE1, set: strSlot(get, 'ciphers') },
    { name: `${p}_session_reuse`, ctx: ALL, args: TAKE1, set: flagSlot(get, 'sessionReuse') },
  ];
}

/** a TLS failure nginx logs in its own words (ngx_http_upstream_ssl_handshake) */
export class UpstreamSslError extends Error {
  readonly code = 'EUPSTREAMSSL';
}

/**
 * Open a connection to `peer`: plain TCP (or a unix socket), or TLS when
 * `ssl` is given. A TLS socket is ready at 'secureConnect' (UpstreamConn
 * waits for it); a failed check destroys it with an UpstreamSslError before
 * anything is sent, which the protocol's connect-failure path logs.
 */
export function openUpstreamSocket(
  peer: PeerAddress,
  bind: { host: string; port: number } | undefined,
  ssl: SslRuntime | undefined,
  sslName: string,
): Socket {
  if (ssl === undefined) {
    return peer.path !== undefined
      ? net.connect({ path: peer.path })
      : net.connect({ host: peer.host, port: peer.port ?? 0, localAddress: bind?.host, localPort: bind?.port || undefined });
  }
  const sni = ssl.serverName && sslName !== '' && net.isIP(sslName) === 0 ? sslName : undefined;
  const s = tls.connect({
    ...(peer.path !== undefined ? { path: peer.path } : { host: peer.host, port: peer.port ?? 0, localAddress: bind?.host, localPort: bind?.port || undefined }),
    secureContext: ssl.context,
    servername: sni,
    rejectUnauthorized: false,
    session: ssl.sessionReuse ? ssl.sessions.get(peer.name) : undefined,
  });
  if (ssl.sessionReuse) s.on('session', (sess: Buffer) => ssl.sessions.set(peer.name, sess));
  if (ssl.verify) {
    s.once('secureConnect', () => {
      if (!s.authorized) {
        const code = String((s.authorizationError as unknown as { code?: string } | undefined)?.code ?? s.authorizationError ?? '');
        // an X509 verify result as nginx prints it: `(20:unable to get local issuer certificate)`
        const [n, text] = x509VerifyError(code) ?? [0, code];
        s.destroy(new UpstreamSslError(`upstream SSL certificate verify error: (${n}:${text})`));
        return;
      }
      let cert = s.getPeerCertificate();
      if (cert.raw === undefined && s.isSessionReused()) cert = ssl.certs.get(peer.name) ?? cert;
      if (tls.checkServerIdentity(sslName, cert) !== undefined) {
        s.destroy(new UpstreamSslError(`upstream SSL certificate does not match "${sslName}"`));
        return;
      }
      if (ssl.sessionReuse && cert.raw !== undefined) ssl.certs.set(peer.name, cert);
    });
  }
  return s;
}

/** the log line of a TLS failure while connecting; undefined for a plain socket error */
export function sslConnectFailed(err: Error): LogLine | undefined {
  if (err instanceof UpstreamSslError) return { level: 'error', msg: `${err.message} while ${ACTION_SSL}` };
  if (!/error:[0-9A-Fa-f]{8}:/.test(err.message)) return undefined;
  // ngx_ssl_connection_error: alerts from the peer are errors, the rest critical
  const level = err.message.includes('alert') ? 'error' : 'crit';
  return { level, msg: `SSL_do_handshake() failed (SSL: ${opensslText(err)}) while ${ACTION_SSL}` };
}

/** the log line of a TLS failure on an established connection; undefined for a plain socket error */
export function sslIoFailed(reading: boolean, err: Error, action: string): string | undefined {
  if (!/error:[0-9A-Fa-f]{8}:/.test(err.message)) return undefined;
  return `${reading ? 'SSL_read()' : 'SSL_write()'} failed (SSL: ${opensslText(err)}) while ${action}`;
}
