import { createHash, type X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Conf } from '../../conf/parser.js';
import type { HttpRequest } from '../../http/http_request.js';
import type { Request } from '../../http/request.js';
import { clientVerify, type TlsConn } from '../../http/tls.js';
import { VAR_CHANGEABLE, VAR_NOCACHEABLE, httpVariables } from '../../http/variables.js';

/*
 * ngx_http_ssl_module's variables, read from the connection's TLSSocket.
 * Each is "not found" on a connection without TLS (plain HTTP, or plain
 * bytes on a TLS port), as nginx's handlers when c->ssl is NULL.
 */

type Get = (s: TLSSocket, tc: TlsConn) => string | undefined;

function tlsOf(r: Request): TlsConn | undefined {
  const tc = (r as HttpRequest).conn.tls;
  return tc !== undefined && tc.secure ? tc : undefined;
}

/**
 * SSL_SESSION's session_id from its DER form (SEQUENCE { version INTEGER,
 * ssl_version INTEGER, cipher OCTET STRING, session_id OCTET STRING, ... }),
 * as nginx's ngx_hex_dump prints it (lowercase)
 */
function sessionId(der: Buffer | undefined): string | undefined {
  if (der === undefined || der.length < 2 || der[0] !== 0x30) return undefined;
  let p = 1;
  const len = (): number => {
    const b = der[p++]!;
    if (b < 0x80) return b;
    let n = 0;
    for (let i = 0; i < (b & 0x7f); i++) n = n * 256 + der[p++]!;
    return n;
  };
  len();
  for (let field = 0; field < 4; field++) {
    const tag = der[p++];
    const n = len();
    if (field === 3) return tag === 0x04 ? der.subarray(p, p + n).toString('hex') : undefined;
    p += n;
    if (p > der.length) return undefined;
  }
  return undefined;
}

/** X509_NAME_print_ex(XN_FLAG_RFC2253): the RDNs last first, joined by commas (node's lines come escaped) */
function rfc2253(name: string): string {
  return name
    .split('\n')
    .reverse()
    .join(',');
}

/** X509_NAME_oneline: `/C=../O=../CN=..` in the certificate's order, unescaped */
function oneline(name: string): string {
  return name
    .split('\n')
    .map((rdn) => `/${rdn.replace(/\\(.)/g, '$1')}`)
    .join('');
}

function peer(s: TLSSocket): X509Certificate | undefined {
  return s.getPeerX509Certificate();
}

/** ngx_escape_uri(NGX_ESCAPE_URI_COMPONENT) */
function escapeComponent(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const keep = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
    out += keep ? s[i] : `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const VARS: Array<[string, Get]> = [
  ['ssl_protocol', (s) => s.getProtocol() ?? undefined],
  ['ssl_cipher', (s) => s.getCipher()?.name],
  // the client's offered list is not exposed by node: not found
  ['ssl_ciphers', () => undefined],
  ['ssl_curve', () => undefined],
  ['ssl_curves', () => undefined],
  ['ssl_session_id', (s) => sessionId(s.getSession())],
  ['ssl_session_reused', (s) => (s.isSessionReused() ? 'r' : '.')],
  ['ssl_early_data', () => undefined],
  ['ssl_server_name', (_s, tc) => (tc.rawServerName !== undefined && tc.rawServerName.length ? tc.rawServerName : undefined)],
  ['ssl_alpn_protocol', (s) => (typeof s.alpnProtocol === 'string' ? s.alpnProtocol : undefined)],
  ['ssl_client_raw_cert', (s) => peer(s)?.toString().replace(/\n$/, '')],
  ['ssl_client_cert', (s) => peer(s)?.toString().replace(/\n$/, '').replace(/\n/g, '\n\t')],
  ['ssl_client_escaped_cert', (s) => {
    const p = peer(s);
    return p === undefined ? undefined : escapeComponent(p.toString());
  }],
  ['ssl_client_s_dn', (s) => { const p = peer(s); return p && rfc2253(p.subject); }],
  ['ssl_client_i_dn', (s) => { const p = peer(s); return p && rfc2253(p.issuer); }],
  ['ssl_client_s_dn_legacy', (s) => { const p = peer(s); return p && oneline(p.subject); }],
  ['ssl_client_i_dn_legacy', (s) => { const p = peer(s); return p && oneline(p.issuer); }],
  ['ssl_client_serial', (s) => peer(s)?.serialNumber],
  ['ssl_client_fingerprint', (s) => {
    const p = peer(s);
    return p === undefined ? undefined : createHash('sha1').update(p.raw).digest('hex');
  }],
  ['ssl_client_verify', (_s, tc) => {
    const v = clientVerify(tc);
    if (!v.cert) return 'NONE';
    return v.reason === undefined ? 'SUCCESS' : `FAILED:${v.reason}`;
  }],
  ['ssl_client_v_start', (s) => peer(s)?.validFrom],
  ['ssl_client_v_end', (s) => peer(s)?.validTo],
  ['ssl_client_v_remain', (s) => {
    const p = peer(s);
    if (p === undefined) return undefined;
    const end = Date.parse(p.validTo) / 1000;
    const now = Math.floor(Date.now() / 1000);
    return end < now + 86400 ? '0' : String(Math.floor((end - now) / 86400));
  }],
];

/** ngx_http_ssl_add_variables */
export function defineSslVariables(cf: Conf): void {
  const vars = httpVariables(cf);
  for (const [name, get] of VARS) {
    const def = vars.add(cf, name, VAR_CHANGEABLE | (name === 'ssl_early_data' ? VAR_NOCACHEABLE : 0));
    def.get = (r) => {
      const tc = tlsOf(r);
      return tc === undefined ? undefined : get(tc.socket!, tc);
    };
  }
}
