import type { CommandHandler } from '../conf/command.js';
import type { Conf } from '../conf/parser.js';
import { evalComplexValue } from '../http/eval.js';
import type { Request } from '../http/request.js';
import { compileComplexValue } from '../http/script.js';
import type { UpstreamLocal } from './conf.js';
import { parseAddrPort } from './url.js';

type KeysOf<C, V> = { [K in keyof C]: C[K] extends V ? K : never }[keyof C];

/**
 * ngx_http_upstream_bind_set_slot: `off`, a literal address[:port], or a
 * value with variables evaluated per request. The field starts undefined
 * (nginx's NGX_CONF_UNSET_PTR); a second directive is `is duplicate`.
 * Only the one-argument form exists here (`transparent` needs TAKE12).
 */
export function bindSlot<C>(get: (cf: Conf) => C, key: KeysOf<C, UpstreamLocal | null | undefined>): CommandHandler {
  return (cf) => {
    const conf = get(cf) as Record<PropertyKey, unknown>;
    if (conf[key] !== undefined) return 'is duplicate';
    const value = cf.args[1]!;
    if (cf.args.length === 2 && value === 'off') {
      conf[key] = null;
      return undefined;
    }
    const cv = compileComplexValue(cf, value);
    if (cv.constant === undefined) {
      conf[key] = { kind: 'complex', value: cv } satisfies UpstreamLocal;
      return undefined;
    }
    const addr = parseAddrPort(value);
    if (!addr) throw cf.error(`invalid address "${value}"`);
    conf[key] = { kind: 'addr', addr } satisfies UpstreamLocal;
    return undefined;
  };
}

/** The local address a request's upstream connection binds to (*_bind), undefined for none. */
export interface LocalAddress {
  host: string;
  /** 0: any port */
  port: number;
  /** as written, for the log's `bind(...) failed` */
  text: string;
}

/* a literal address, or a value whose evaluation may be empty (no bind) or invalid (logged, no bind) */
export function localAddress(r: Request, b: UpstreamLocal | null | undefined): LocalAddress | undefined {
  if (!b) return undefined;
  if (b.kind === 'addr') return { host: b.addr.host, port: b.addr.port, text: b.addr.name };
  const text = evalComplexValue(r, b.value);
  if (text.length === 0) return undefined;
  const addr = parseAddrPort(text);
  if (!addr) {
    r.log('error', `invalid local address "${text}"`);
    return undefined;
  }
  return { host: addr.host, port: addr.port, text };
}
