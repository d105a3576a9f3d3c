import { UNSET } from '../../conf/values.js';
import type { SslServer } from '../../http/tls.js';
import type { ShmZone } from '../../http/zones.js';

/*
 * ngx_http_ssl_srv_conf_t: one server level's TLS settings. Numbers are
 * UNSET (-1) until set; lists are `null` until set (nginx's
 * NGX_CONF_UNSET_PTR), so `ssl_certificate` at http level is inherited by
 * a server that has none of its own.
 */

export const NGX_SSL_SSLv2 = 0x0002;
export const NGX_SSL_SSLv3 = 0x0004;
export const NGX_SSL_TLSv1 = 0x0008;
export const NGX_SSL_TLSv1_1 = 0x0010;
export const NGX_SSL_TLSv1_2 = 0x0020;
export const NGX_SSL_TLSv1_3 = 0x0040;
/** NGX_CONF_BITMASK_SET: the directive was given */
export const BITMASK_SET = 1;

export interface SslSrvConf {
  enable: number;
  /** where `ssl on` stands (the merge's messages name it) */
  file: string;
  line: number;
  certificates: string[] | null;
  certificateKeys: string[] | null;
  /** ssl_password_file's lines (null: unset) */
  passwords: string[] | null;
  dhparam: string | undefined;
  ecdhCurve: string | undefined;
  protocols: number;
  ciphers: string | undefined;
  bufferSize: number;
  verify: number;
  verifyDepth: number;
  clientCertificate: string | undefined;
  trustedCertificate: string | undefined;
  crl: string | undefined;
  preferServerCiphers: number;
  builtinSessionCache: number;
  /** ssl_session_cache shared:NAME:SIZE: its zone */
  sharedCache: ShmZone | undefined;
  sessionTickets: number;
  sessionTicketKeys: string[] | null;
  sessionTimeout: number;
  ocsp: number;
  ocspResponder: string | undefined;
  ocspCache: string | null | undefined;
  stapling: number;
  staplingFile: string | undefined;
  staplingResponder: string | undefined;
  staplingVerify: number;
  earlyData: number;
  rejectHandshake: number;
  confCommands: Array<[string, string]> | null;
  /** what the connection side reads (set by the merge when the server has TLS) */
  server: SslServer | undefined;
}

export function createSslSrvConf(): SslSrvConf {
  return {
    enable: UNSET,
    file: '',
    line: 0,
    certificates: null,
    certificateKeys: null,
    passwords: null,
    dhparam: undefined,
    ecdhCurve: undefined,
    protocols: 0,
    ciphers: undefined,
    bufferSize: UNSET,
    verify: UNSET,
    verifyDepth: UNSET,
    clientCertificate: undefined,
    trustedCertificate: undefined,
    crl: undefined,
    preferServerCiphers: UNSET,
    builtinSessionCache: UNSET,
    sharedCache: undefined,
    sessionTickets: UNSET,
    sessionTicketKeys: null,
    sessionTimeout: UNSET,
    ocsp: UNSET,
    ocspResponder: undefined,
    ocspCache: undefined,
    stapling: UNSET,
    staplingFile: undefined,
    staplingResponder: undefined,
    staplingVerify: UNSET,
    earlyData: UNSET,
    rejectHandshake: UNSET,
    confCommands: null,
    server: undefined,
  };
}
