import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { CoreSrvConf } from './core/module.js';
import { validateHost } from './parse.js';
import { findVirtualServer, type AddrConf } from './servers.js';
import { x509VerifyError } from '../core/x509.js';

/*
 * The connection side of TLS termination (nginx's ngx_http_ssl_handshake,
 * ngx_http_ssl_servername and the checks of ngx_http_process_request). The
 * ssl module (lib/modules/ssl) judges the directives and builds each
 * server's SslServer; this file only reads them, so the http layer needs
 * nothing from the module above it.
 *
 * An address speaks TLS when its listen has `ssl` or its default server
 * says `ssl on`. nginx peeks at the first byte: 0x16 (a TLS record) or a
 * set high bit (an SSLv2 hello) starts a handshake; anything else is plain
 * HTTP, read as usual and answered with the 497 page. The TLS socket wraps
 * the accepted one (node:tls's TLSSocket, as tls.Server does), so the same
 * HttpConnection reads its requests; a plain listen never comes here.
 */

/**
 * nginx makes its session ticket keys once per configuration in the master,
 * so every worker takes the others' tickets. redis2d's workers build their
 * own contexts: the master hands each generation a random seed in this
 * variable, and the keys are derived from it (lib/modules/ssl/context.ts).
 */
export const TLS_SEED_ENV = 'REDIS2D_TLS_TICKET_SEED';

/** what the ssl module says about one server block (hung on CoreSrvConf.ssl) */
export interface SslServer {
  /** the server's certificates, protocols, ciphers...; undefined without ssl_certificate */
  context: SecureContext | undefined;
  /** `ssl on` (deprecated): every address this server is the default of speaks TLS */
  enable: boolean;
  /** ssl_verify_client: 0 off, 1 on, 2 optional, 3 optional_no_ca */
  verify: number;
  /** ssl_reject_handshake on */
  rejectHandshake: boolean;
  /** ssl_buffer_size: the largest TLS record sent (node's setMaxSendFragment, 512 to 16384) */
  bufferSize: number;
  /** ssl_session_cache builtin or shared: where session IDs are kept (undefined: off / none) */
  sessions: SessionCache | undefined;
}

/** a server-side TLS session cache keyed by session ID (lib/modules/ssl/sessions.ts) */
export interface SessionCache {
  /** the session's DER, or null; `cb` may run at once or later (a zone in the master) */
  get(id: Buffer, cb: (data: Buffer | null) => void): void;
  set(id: Buffer, data: Buffer): void;
}

const emitters = new WeakMap<SessionCache, EventEmitter>();

/**
 * node:tls asks a TLSSocket's `server` for sessions by ID ('newSession',
 * 'resumeSession', as tls.Server does); this stands in for it. OpenSSL
 * looks sessions up in the context the handshake started with: the
 * address's default server's, so its ssl_session_cache is the one used,
 * as in nginx.
 */
export function sessionEvents(cache: SessionCache): EventEmitter {
  let e = emitters.get(cache);
  if (e !== undefined) return e;
  e = new EventEmitter();
  bindSessionEvents(e, cache);
  emitters.set(cache, e);
  return e;
}

/** the listeners node:tls calls (on a stand-in, or on an http2 address's TLS server) */
export function bindSessionEvents(e: EventEmitter, cache: SessionCache): void {
  e.on('newSession', (id: Buffer, data: Buffer, done: () => void) => {
    cache.set(id, data);
    done();
  });
  e.on('resumeSession', (id: Buffer, done: (err: Error | null, data: Buffer | null) => void) => {
    cache.get(id, (data) => done(null, data));
  });
}

/** the TLS state of a connection accepted on a TLS address */
export class TlsConn {
  /** waiting for the first byte; then the handshake; `secure` once done; `plain` for plain HTTP */
  state: 'peek' | 'handshake' | 'secure' | 'plain' = 'peek';
  socket: TLSSocket | undefined = undefined;
  /** the server the SNI name chose (nginx's hc->conf_ctx), and that name (validated, lowercase) */
  sniServer: CoreSrvConf | undefined = undefined;
  sniName: string | undefined = undefined;
  /** the SNI name as the client sent it ($ssl_server_name), from its ClientHello */
  rawServerName: string | undefined = undefined;
  /** SSL_get_verify_result as node's code (UNABLE_TO_GET_ISSUER_CERT_LOCALLY...), read when the handshake ends */
  verifyCode: string | undefined = undefined;

  get secure(): boolean {
    return this.state === 'secure';
  }
}

/** does a connection to this address start with a TLS handshake */
export function addrIsSsl(ac: AddrConf): boolean {
  return ac.ssl || (ac.defaultServer.ssl?.enable ?? false);
}

/** nginx's first-byte test: a TLS record (0x16) or an SSLv2 hello (high bit) */
export function looksLikeTls(first: number): boolean {
  return first === 0x16 || (first & 0x80) !== 0;
}

const ALPN_HTTP1 = ['http/1.1', 'http/1.0', 'http/0.9'];
/** ngx_http_ssl_alpn_select's list on an http2 address */
export const ALPN_H2 = ['h2', ...ALPN_HTTP1];

/**
 * Wrap an accepted socket whose first bytes are a TLS hello. The SNI name
 * picks the server (exact, wildcard, regex names of this address) whose
 * certificates answer; a name no server has, or none, keeps the default
 * server's (nginx's ngx_http_ssl_servername).
 */
export function wrapTls(raw: Socket, ac: AddrConf, tc: TlsConn, hello: Buffer): TLSSocket | 'reject' | undefined {
  const pre = preselect(ac, tc, hello);
  if (pre === undefined || pre === 'reject') return pre;
  const dflt = ac.defaultServer.ssl!;
  const context = pre;
  const requestCert = anyVerifies(ac);
  const sessions = dflt.sessions;
  const sock = new TLSSocket(raw, {
    isServer: true,
    secureContext: context,
    ...(sessions !== undefined ? { server: sessionEvents(sessions) as never } : {}),
    requestCert,
    rejectUnauthorized: false,
    ALPNProtocols: ALPN_HTTP1,
    // a ClientHello longer than the first read: the name comes here (full handshakes only)
    SNICallback: (sni, cb) => {
      if (tc.rawServerName === undefined) {
        tc.rawServerName = sni;
        const chosen = chooseServer(ac, sni);
        if (chosen !== undefined) {
          tc.sniServer = chosen.srv;
          tc.sniName = chosen.host;
        }
      }
      const srv = tc.sniServer?.ssl ?? dflt;
      if (srv.rejectHandshake) return cb(new Error('rejected'), undefined);
      cb(null, srv.context ?? dflt.context);
    },
  });
  const size = (tc.sniServer?.ssl ?? dflt).bufferSize;
  if (size !== 16384) sock.setMaxSendFragment(Math.max(512, Math.min(16384, size)));
  tc.socket = sock;
  tc.state = 'handshake';
  return sock;
}

/**
 * node asks SNICallback only on a full handshake (its certificate
 * callback), and a resumed one forgets the name: the name is read from the
 * ClientHello instead, so the server is chosen on every handshake as
 * OpenSSL's servername callback does for nginx. Returns the context to
 * start with, `reject` (ssl_reject_handshake), or undefined (no context).
 */
export function preselect(ac: AddrConf, tc: TlsConn, hello: Buffer): SecureContext | 'reject' | undefined {
  const dflt = ac.defaultServer.ssl;
  if (!dflt?.context) return undefined;
  let context = dflt.context;
  const name = sniOf(hello);
  if (name !== undefined) {
    tc.rawServerName = name;
    const chosen = chooseServer(ac, name);
    if (chosen !== undefined) {
      tc.sniServer = chosen.srv;
      tc.sniName = chosen.host;
      if (chosen.srv.ssl?.context) context = chosen.srv.ssl.context;
    }
  }
  // ssl_reject_handshake of the server the name chose (or the default one): nginx's unrecognized_name alert
  if (sniOf(hello) !== undefined || hello.length > 5) {
    const srv = tc.sniServer?.ssl ?? dflt;
    if (srv.rejectHandshake && (name !== undefined || helloComplete(hello))) return 'reject';
  }
  return context;
}

/** ngx_http_ssl_servername's lookup: the server a name picks, undefined when none has it */
export function chooseServer(ac: AddrConf, name: string): { srv: CoreSrvConf; host: string } | undefined {
  const host = name.length ? validateHost(name) : undefined;
  if (host === undefined || host === '') return undefined;
  const vs = findVirtualServer(ac, host);
  // findVirtualServer falls back to the default server; nginx's lookup declines instead
  if (vs.srv === ac.defaultServer && !namedIn(ac, host)) return undefined;
  return { srv: vs.srv, host };
}

/** a fatal unrecognized_name alert (112), as OpenSSL sends for nginx's servername callback */
export const UNRECOGNIZED_NAME_ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70]);

/** the first record holds the whole ClientHello (its absence of a name is then certain) */
function helloComplete(b: Buffer): boolean {
  return b.length >= 5 && b[0] === 0x16 && b.length >= 5 + b.readUInt16BE(3);
}

/**
 * The server_name extension of a ClientHello at the start of `b` (one TLS
 * record): undefined when there is none or the hello is not all there.
 */
export function sniOf(b: Buffer): string | undefined {
  if (b.length < 43 || b[0] !== 0x16 || b[5] !== 0x01) return undefined;
  const end = Math.min(b.length, 5 + b.readUInt16BE(3));
  let p = 43;
  const skip = (lenBytes: number): boolean => {
    if (p + lenBytes > end) return false;
    const n = lenBytes === 1 ? b[p]! : b.readUInt16BE(p);
    p += lenBytes + n;
    return p <= end;
  };
  // session id, cipher suites, compression methods
  if (!skip(1) || !skip(2) || !skip(1) || p + 2 > end) return undefined;
  const extEnd = Math.min(end, p + 2 + b.readUInt16BE(p));
  p += 2;
  while (p + 4 <= extEnd) {
    const type = b.readUInt16BE(p);
    const len = b.readUInt16BE(p + 2);
    p += 4;
    if (type === 0 && p + 5 <= extEnd && b[p + 2] === 0) {
      const n = b.readUInt16BE(p + 3);
      if (p + 5 + n > extEnd) return undefined;
      return b.toString('latin1', p + 5, p + 5 + n);
    }
    p += len;
  }
  return undefined;
}

/** whether `host` matches one of the address's names (not just the default server) */
function namedIn(ac: AddrConf, host: string): boolean {
  if (ac.exact.has(host)) return true;
  for (const h of ac.head) {
    if (host.endsWith(h.suffix) && host.length > h.suffix.length) return true;
    if (h.bare !== undefined && host === h.bare) return true;
  }
  for (const t of ac.tail) if (host.startsWith(t.prefix) && host.length > t.prefix.length) return true;
  for (const r of ac.regex) if (r.re.re.test(host)) return true;
  return false;
}

/** node sets the verify mode per socket: a certificate is asked when any server of the address verifies */
export function anyVerifies(ac: AddrConf): boolean {
  for (const srv of allServers(ac)) if (srv.ssl && srv.ssl.verify !== 0) return true;
  return false;
}

function allServers(ac: AddrConf): CoreSrvConf[] {
  const out = new Set<CoreSrvConf>([ac.defaultServer]);
  for (const s of ac.exact.values()) out.add(s);
  for (const h of ac.head) out.add(h.srv);
  for (const t of ac.tail) out.add(t.srv);
  for (const r of ac.regex) out.add(r.srv);
  return [...out];
}

/**
 * An OpenSSL error as nginx prints it after `(SSL: `: node's message
 * carries the same code and reason with a thread id and function name
 * around them (`C0..:error:0A0000C1:SSL routines:func:no shared cipher:...`).
 */
export function opensslErrorText(err: Error): string | undefined {
  const m = /error:([0-9A-F]{8}):([^:]*):[^:]*:([^:\n]*)/.exec(err.message);
  if (!m) return undefined;
  return `error:${m[1]}:${m[2]}::${m[3]}`;
}

/** ngx_ssl_verify_error_optional: what `optional_no_ca` lets through */
const OPTIONAL = new Set([18, 19, 20, 27, 21]);

export interface ClientVerify {
  /** the client sent a certificate */
  cert: boolean;
  /** `N:text` of a failed verification, undefined when it passed (or none was sent) */
  error: string | undefined;
  /** the text alone (for $ssl_client_verify's FAILED:...) */
  reason: string | undefined;
  optional: boolean;
}

/** SSL_get_verify_result and SSL_get_peer_certificate, through node's TLSSocket */
export function clientVerify(tc: TlsConn): ClientVerify {
  const peer = tc.socket!.getPeerX509Certificate();
  const code = peer === undefined ? undefined : tc.verifyCode;
  if (code === undefined) return { cert: peer !== undefined, error: undefined, reason: undefined, optional: false };
  const known = x509VerifyError(code) ?? [0, String(code).toLowerCase().replace(/_/g, ' ')];
  return { cert: true, error: `${known[0]}:${known[1]}`, reason: known[1], optional: OPTIONAL.has(known[0]) };
}

/** node's internal handle keeps SSL_get_verify_result (tls.Server reads it the same way) */
interface VerifyHandle {
  _handle?: { verifyError?: () => (Error & { code?: string }) | null | undefined };
}

/** the handshake's verification result of the client's certificate, as node's code */
export function readVerify(sock: TLSSocket): string | undefined {
  const err = (sock as unknown as VerifyHandle)._handle?.verifyError?.();
  return err ? err.code ?? err.message : undefined;
}
