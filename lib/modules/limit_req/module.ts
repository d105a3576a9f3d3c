import { FLAG, HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SRV_CONF, TAKE1, TAKE12, TAKE3, type Command } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { enumSlot, flagSlot, mergeValue } from '../../conf/slots.js';
import { UNSET, atoi } from '../../conf/values.js';
import type { LogLevel } from '../../core/error_log.js';
import type { HttpRequest } from '../../http/http_request.js';
import { defineHttpModule, locConf, type HttpModule } from '../../http/module.js';
import type { Request } from '../../http/request.js';
import { compileComplexValue, type ComplexValue } from '../../http/script.js';
import { VAR_NOCACHEABLE, httpVariables } from '../../http/variables.js';
import { checkZones, sharedZoneAdd, type ShmZone } from '../../http/zones.js';
import { registerLimitReqOps } from './bucket.js';
import { parseZoneSize, statusBounds } from './limits.js';
import { limitReqHandler, limitReqStatusOf } from './request.js';

/*
 * ngx_http_limit_req_module: limit_req_zone KEY zone=NAME:SIZE rate=N r/s|r/m
 * declares a zone of leaky buckets keyed by KEY; limit_req zone=NAME
 * [burst=N] [nodelay | delay=N] applies it in the pre-access phase
 * (request.ts), the buckets shared by every worker (lib/core/zones.ts).
 */

export const TAG = 'limit_req';

registerLimitReqOps();

export interface LimitReqZoneData {
  key: ComplexValue;
  /** requests per 1000 s */
  rate: number;
}

export interface LimitReqLimit {
  zone: ShmZone;
  /** 1/1000 requests */
  burst: number;
  delay: number;
}

export interface LimitReqLocConf {
  limits: LimitReqLimit[] | undefined;
  limitLogLevel: number;
  delayLogLevel: LogLevel;
  statusCode: number;
  dryRun: number;
}

export const LEVELS: LogLevel[] = ['emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info'];
/** limit_req_log_level's words → nginx's level numbers */
export const LEVEL_WORDS = { info: 6, notice: 5, warn: 4, error: 3 };

function limitReqZone(cf: Conf, cmd: Command): undefined {
  const value = cf.args;
  const key = compileComplexValue(cf, value[1]!);
  let size = 0;
  let rate = 1;
  let scale = 1;
  let name: string | undefined;
  for (let i = 2; i < value.length; i++) {
    const v = value[i]!;
    if (v.startsWith('zone=')) {
      const colon = v.indexOf(':', 5);
      if (colon === -1) throw cf.error(`invalid zone size "${v}"`);
      name = v.slice(5, colon);
      size = parseZoneSize(v.slice(colon + 1));
      if (size === -1) throw cf.error(`invalid zone size "${v}"`);
      if (size < 8 * 4096) throw cf.error(`zone "${v}" is too small`);
      continue;
    }
    if (v.startsWith('rate=')) {
      let len = v.length;
      const unit = v.slice(-3);
      if (unit === 'r/s') {
        scale = 1;
        len -= 3;
      } else if (unit === 'r/m') {
        scale = 60;
        len -= 3;
      }
      rate = atoi(v.slice(5, len));
      if (rate <= 0) throw cf.error(`invalid rate "${v}"`);
      continue;
    }
    throw cf.error(`invalid parameter "${v}"`);
  }
  if (name === undefined || name === '') throw cf.error(`"${cmd.name}" must have "zone" parameter`);
  const z = sharedZoneAdd(cf, name, size, TAG);
  if (z.data !== undefined) {
    throw cf.error(`${cmd.name} "${name}" is already bound to key "${(z.data as LimitReqZoneData).key.source}"`);
  }
  z.data = { key, rate: Math.floor((rate * 1000) / scale) } satisfies LimitReqZoneData;
  z.key = key.source;
  z.label = 'limit_req';
  // the zone's header (rbtree, sentinel, queue: 80 bytes) and its log context ` in limit_req zone "NAME"`
  z.reserved = [80, 21 + name.length];
  return undefined;
}

/** NGX_MAX_INT_T_VALUE / 1000: `nodelay`'s delay threshold */
const NODELAY = Math.floor(9223372036854775807 / 1000);

function limitReq(cf: Conf, cmd: Command): string | undefined {
  const lrcf = locConf(cf, limitReqModule);
  let zone: ShmZone | undefined;
  let burst = 0;
  let delay = 0;
  for (let i = 1; i < cf.args.length; i++) {
    const v = cf.args[i]!;
    if (v.startsWith('zone=')) {
      zone = sharedZoneAdd(cf, v.slice(5), 0, TAG);
      continue;
    }
    if (v.startsWith('burst=')) {
      burst = atoi(v.slice(6));
      if (burst <= 0) throw cf.error(`invalid burst value "${v}"`);
      continue;
    }
    if (v.startsWith('delay=')) {
      delay = atoi(v.slice(6));
      if (delay <= 0) throw cf.error(`invalid delay value "${v}"`);
      continue;
    }
    if (v === 'nodelay') {
      delay = NODELAY;
      continue;
    }
    throw cf.error(`invalid parameter "${v}"`);
  }
  if (zone === undefined) throw cf.error(`"${cmd.name}" must have "zone" parameter`);
  const limits = (lrcf.limits ??= []);
  if (limits.some((l) => l.zone === zone)) return 'is duplicate';
  limits.push({ zone, burst: burst * 1000, delay: delay * 1000 });
  return undefined;
}

const ALL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;

export const limitReqModule: HttpModule<unknown, unknown, LimitReqLocConf> = defineHttpModule<unknown, unknown, LimitReqLocConf>({
  name: 'http_limit_req',
  preConfiguration(cf) {
    const v = httpVariables(cf).add(cf, 'limit_req_status', VAR_NOCACHEABLE);
    v.get = (r: Request) => limitReqStatusOf(r as HttpRequest);
  },
  // nginx's ngx_init_cycle: a zone used but never declared with a size
  initCoreConf(cf) {
    checkZones(cf.cycle);
  },
  createLocConf: () => ({ limits: undefined, limitLogLevel: UNSET, delayLogLevel: 'warn', statusCode: UNSET, dryRun: UNSET }),
  mergeLocConf(_cf, prev, conf) {
    if (conf.limits === undefined) conf.limits = prev.limits;
    conf.limitLogLevel = mergeValue(conf.limitLogLevel, prev.limitLogLevel, 3);
    // the delay lines one level below the limit lines (info stays info)
    conf.delayLogLevel = LEVELS[conf.limitLogLevel === 6 ? 6 : conf.limitLogLevel + 1]!;
    conf.statusCode = mergeValue(conf.statusCode, prev.statusCode, 503);
    conf.dryRun = mergeValue(conf.dryRun, prev.dryRun, 0);
  },
  phases: { preAccess: limitReqHandler },
  commands: [
    { name: 'limit_req_zone', ctx: HTTP_MAIN_CONF, args: TAKE3, set: limitReqZone },
    { name: 'limit_req', ctx: ALL, args: TAKE12 | TAKE3, set: limitReq },
    { name: 'limit_req_log_level', ctx: ALL, args: TAKE1, set: enumSlot((cf) => locConf(cf, limitReqModule), 'limitLogLevel', LEVEL_WORDS) },
    { name: 'limit_req_status', ctx: ALL, args: TAKE1, set: statusBounds((cf) => locConf(cf, limitReqModule)) },
    { name: 'limit_req_dry_run', ctx: ALL, args: FLAG, set: flagSlot((cf) => locConf(cf, limitReqModule), 'dryRun') },
  ],
});
