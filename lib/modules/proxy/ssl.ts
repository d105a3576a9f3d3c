import { HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SRV_CONF, TAKE1, TAKE2, type Command } from '../../conf/command.js';
import { noteNoEffect } from '../noop/module.js';
import type { Conf } from '../../conf/parser.js';
import { strSlot } from '../../conf/slots.js';
import { sslCommands, type UpstreamSslConf } from '../../upstream/ssl.js';
import { readPasswordFile } from '../ssl/certs.js';
import type { ProxyLocConf } from './conf.js';

/*
 * proxy_ssl_*: TLS to an https:// backend with nginx's settings and checks
 * (lib/upstream/ssl.ts builds the context at merge and checks the
 * certificate after the handshake; the redis2_ssl_* family is the same
 * table under another prefix). nginx has no `proxy_ssl` switch: the URL's
 * scheme (or a proxy_pass with variables) turns TLS on (module.ts merge).
 */

const ALL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;

/** ngx_http_proxy_ssl_password_file: read at once, one password a line */
function passwordFile(get: (cf: Conf) => UpstreamSslConf): Command['set'] {
  return (cf) => {
    const c = get(cf);
    if (c.passwords !== undefined) return 'is duplicate';
    c.passwords = readPasswordFile(cf);
    return undefined;
  };
}

export function proxySslCommands(conf: (cf: Conf) => ProxyLocConf): Command[] {
  const get = (cf: Conf): UpstreamSslConf => conf(cf).ssl;
  return [
    ...sslCommands('proxy', get).filter((c) => c.name !== 'proxy_ssl'),
    { name: 'proxy_ssl_crl', ctx: ALL, args: TAKE1, set: strSlot(get, 'crl') },
    { name: 'proxy_ssl_password_file', ctx: ALL, args: TAKE1, set: passwordFile(get) },
    // OpenSSL's SSL_CONF_cmd has no Node equivalent: accepted and noted, as ssl_conf_command (docs/behaviour.md §16)
    {
      name: 'proxy_ssl_conf_command',
      ctx: ALL,
      args: TAKE2,
      set(cf) {
        noteNoEffect(cf.cycle, 'proxy_ssl_conf_command');
        return undefined;
      },
    },
  ];
}

/** nginx's plcf->ssl: an https:// URL, or one with variables (its scheme known per request) */
export function proxyWantsTls(c: ProxyLocConf): boolean {
  const t = c.target;
  if (t === undefined) return false;
  return t.kind === 'complex' || c.url.slice(0, 8).toLowerCase() === 'https://';
}
