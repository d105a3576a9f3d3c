import type { CommandHandler } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { UNSET, atoi } from '../../conf/values.js';

/*
 * What limit_req and limit_conn share at config time: nginx's zone size
 * syntax and the *_status slot.
 */

/** ngx_parse_size as 1.22 has it: N, Nk, Nm (no g) */
export function parseZoneSize(s: string): number {
  if (s.length === 0) return -1;
  const last = s[s.length - 1]!;
  let scale = 1;
  let body = s;
  if (last === 'k' || last === 'K') scale = 1024;
  else if (last === 'm' || last === 'M') scale = 1024 * 1024;
  if (scale !== 1) body = s.slice(0, -1);
  const n = atoi(body);
  if (n === -1) return -1;
  return n * scale;
}

/** ngx_conf_set_num_slot with ngx_conf_check_num_bounds 400..599 */
export function statusBounds(get: (cf: Conf) => { statusCode: number }): CommandHandler {
  return (cf) => {
    const conf = get(cf);
    if (conf.statusCode !== UNSET) return 'is duplicate';
    const v = atoi(cf.args[1]!);
    if (v === -1) return 'invalid number';
    if (v < 400 || v > 599) throw cf.error('value must be between 400 and 599');
    conf.statusCode = v;
    return undefined;
  };
}
