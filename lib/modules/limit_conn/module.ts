import { FLAG, HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SRV_CONF, TAKE1, TAKE2, type Command } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { enumSlot, flagSlot, mergeValue } from '../../conf/slots.js';
import { UNSET, atoi } from '../../conf/values.js';
import { getMainLog } from '../../core/error_log.js';
import { ASYNC, slabChunk, zoneOp, type ZoneValue } from '../../core/zones.js';
import { evalComplexValue } from '../../http/eval.js';
import type { HttpRequest } from '../../http/http_request.js';
import { defineHttpModule, locConf, type HttpModule } from '../../http/module.js';
import { P, PhaseRun } from '../../http/phases.js';
import { DECLINED, type Request } from '../../http/request.js';
import { compileComplexValue, type ComplexValue } from '../../http/script.js';
import { VAR_NOCACHEABLE, httpVariables } from '../../http/variables.js';
import { checkZones, runtimeZone, sharedZoneAdd, type ShmZone } from '../../http/zones.js';
import { LEVELS, LEVEL_WORDS } from '../limit_req/module.js';
import { parseZoneSize, statusBounds } from '../limit_req/limits.js';

/*
 * ngx_http_limit_conn_module: limit_conn_zone KEY zone=NAME:SIZE declares
 * a zone of counters; limit_conn NAME N lets at most N requests with the
 * same key be processed at once (pre-access), counted across workers in
 * the zone (lib/core/zones.ts). A counter goes down when its request is
 * over (after its log phase, as nginx's pool cleanup), and its node goes
 * when it reaches 0.
 */

const TAG = 'limit_conn';

interface LimitConnLimit {
  zone: ShmZone;
  conn: number;
}

interface LimitConnLocConf {
  limits: LimitConnLimit[] | undefined;
  logLevel: number;
  statusCode: number;
  dryRun: number;
}

const enum Got {
  Ok = 0,
  Limited = 1,
  NoMemory = 2,
}

registerOps();

function registerOps(): void {
  // ngx_http_limit_conn_handler's locked part: count one more, unless at the limit or out of room
  zoneOp('limit_conn', (z, key, a, now): ZoneValue => {
    const limit = a as number;
    const e = z.peek(key, now);
    if (e === undefined) {
      // the node: rbtree node up to color (32) + color, len, conn (4) + the key
      const bytes = slabChunk(32 + 4 + key.length);
      if (!z.put(key, 1, 0, bytes)) return Got.NoMemory;
      return Got.Ok;
    }
    if ((e.value as number) >= limit) return Got.Limited;
    e.value = (e.value as number) + 1;
    return Got.Ok;
  });
  // ngx_http_limit_conn_cleanup
  zoneOp('limit_conn_release', (z, key, _a, now): ZoneValue => {
    const e = z.peek(key, now);
    if (e === undefined) return null;
    const n = (e.value as number) - 1;
    if (n <= 0) z.remove(key);
    else e.value = n;
    return null;
  });
}

const STATUS_TEXT = ['', 'PASSED', 'REJECTED', 'REJECTED_DRY_RUN'];
/** r->main->limit_conn_status: 1 passed, 2 rejected, 3 rejected (dry run) */
const statuses = new WeakMap<HttpRequest, number>();

function limitConnZone(cf: Conf, cmd: Command): undefined {
  const key: ComplexValue = compileComplexValue(cf, cf.args[1]!);
  const v = cf.args[2]!;
  let name: string | undefined;
  let size = 0;
  if (v.startsWith('zone=')) {
    const colon = v.indexOf(':', 5);
    if (colon === -1) throw cf.error(`invalid zone size "${v}"`);
    name = v.slice(5, colon);
    size = parseZoneSize(v.slice(colon + 1));
    if (size === -1) throw cf.error(`invalid zone size "${v}"`);
    if (size < 8 * 4096) throw cf.error(`zone "${v}" is too small`);
  } else throw cf.error(`invalid parameter "${v}"`);
  if (name === '') throw cf.error(`"${cmd.name}" must have "zone" parameter`);
  const z = sharedZoneAdd(cf, name, size, TAG);
  if (z.data !== undefined) throw cf.error(`${cmd.name} "${name}" is already bound to key "${(z.data as ComplexValue).source}"`);
  z.data = key;
  z.key = key.source;
  z.label = 'limit_conn_zone';
  // the zone's header (rbtree and sentinel: 64 bytes) and its log context ` in limit_conn_zone "NAME"`
  z.reserved = [64, 22 + name.length];
  return undefined;
}

function limitConn(cf: Conf): string | undefined {
  const lccf = locConf(cf, limitConnModule);
  const zone = sharedZoneAdd(cf, cf.args[1]!, 0, TAG);
  const limits = (lccf.limits ??= []);
  if (limits.some((l) => l.zone === zone)) return 'is duplicate';
  const n = atoi(cf.args[2]!);
  if (n <= 0) throw cf.error(`invalid number of connections "${cf.args[2]}"`);
  if (n > 65535) throw cf.error('connection limit must be less 65536');
  limits.push({ zone, conn: n });
  return undefined;
}

/** the request's counters: released after its log phase, or at once when a later limit refuses */
function release(zone: ShmZone, key: string): void {
  runtimeZone(zone).run('limit_conn_release', key, null, () => {});
}

class ConnRun extends PhaseRun {
  readonly conf: LimitConnLocConf;
  /** counters taken so far (ngx_http_limit_conn_cleanup_all gives them back on a refusal) */
  readonly taken: Array<[ShmZone, string]> = [];

  constructor(r: HttpRequest, conf: LimitConnLocConf) {
    super(r, P.PreAccess);
    this.conf = conf;
  }

  refuse(): void {
    for (const [z, k] of this.taken.splice(0)) release(z, k);
    const r = this.r;
    if (this.conf.dryRun) {
      statuses.set(r.main, 3);
      return this.end(DECLINED);
    }
    statuses.set(r.main, 2);
    this.end(this.conf.statusCode);
  }

  step(i: number): void {
    const r = this.r;
    const limits = this.conf.limits!;
    for (; i < limits.length; i++) {
      const limit = limits[i]!;
      const keyCv = limit.zone.data as ComplexValue;
      const key = evalComplexValue(r, keyCv);
      if (key.length === 0) continue;
      if (key.length > 255) {
        r.log('error', `the value of the "${keyCv.source}" key is more than 255 bytes: "${key}"`);
        continue;
      }
      statuses.set(r.main, 1);
      const at = i;
      let sync = true;
      const res = runtimeZone(limit.zone).run('limit_conn', key, limit.conn, (v) => {
        if (sync) return;
        this.answer(at, limit, key, v as Got);
      });
      sync = false;
      if (res === ASYNC) return;
      if (!this.took(limit, key, res as Got)) return;
    }
    this.end(DECLINED);
  }

  /** an answer that came later (the zone is the master's) */
  answer(at: number, limit: LimitConnLimit, key: string, got: Got): void {
    const r = this.r;
    if (r.finished || r.aborted) {
      // the client left while we asked: give the counter back
      if (got === Got.Ok) release(limit.zone, key);
      for (const [z, k] of this.taken.splice(0)) release(z, k);
      return;
    }
    if (this.took(limit, key, got)) this.step(at + 1);
  }

  /** record a lookup's result; false when the request is refused */
  took(limit: LimitConnLimit, key: string, got: Got): boolean {
    const r = this.r;
    if (got === Got.Ok) {
      this.taken.push([limit.zone, key]);
      const zone = limit.zone;
      (r.main.cleanups ??= []).push(() => release(zone, key));
      return true;
    }
    if (got === Got.NoMemory) {
      getMainLog().write('crit', 0, `ngx_slab_alloc() failed: no memory in limit_conn_zone "${limit.zone.name}"`);
    } else {
      r.log(LEVELS[this.conf.logLevel]!, `limiting connections${this.conf.dryRun ? ', dry run,' : ''} by zone "${limit.zone.name}"`);
    }
    // the counters this request took are given back now, not at its end: their cleanups were the last pushed
    const cl = r.main.cleanups;
    if (cl !== undefined && this.taken.length) cl.length -= this.taken.length;
    this.refuse();
    return false;
  }
}

export function limitConnHandler(req: Request): number {
  const r = req as HttpRequest;
  if (statuses.has(r.main)) return DECLINED;
  const conf = r.locConf[limitConnModule.index] as LimitConnLocConf | undefined;
  if (conf === undefined || conf.limits === undefined || conf.limits.length === 0) return DECLINED;
  const run = new ConnRun(r, conf);
  run.step(0);
  return run.returned();
}

const ALL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;
const lccfOf = (cf: Conf): LimitConnLocConf => locConf(cf, limitConnModule);

export const limitConnModule: HttpModule<unknown, unknown, LimitConnLocConf> = defineHttpModule<unknown, unknown, LimitConnLocConf>({
  name: 'http_limit_conn',
  preConfiguration(cf) {
    httpVariables(cf).add(cf, 'limit_conn_status', VAR_NOCACHEABLE).get = (r: Request) => {
      const s = statuses.get((r as HttpRequest).main);
      return s === undefined ? undefined : STATUS_TEXT[s];
    };
  },
  initCoreConf(cf) {
    checkZones(cf.cycle);
  },
  createLocConf: () => ({ limits: undefined, logLevel: UNSET, statusCode: UNSET, dryRun: UNSET }),
  mergeLocConf(_cf, prev, conf) {
    if (conf.limits === undefined) conf.limits = prev.limits;
    conf.logLevel = mergeValue(conf.logLevel, prev.logLevel, 3);
    conf.statusCode = mergeValue(conf.statusCode, prev.statusCode, 503);
    conf.dryRun = mergeValue(conf.dryRun, prev.dryRun, 0);
  },
  phases: { preAccess: limitConnHandler },
  commands: [
    { name: 'limit_conn_zone', ctx: HTTP_MAIN_CONF, args: TAKE2, set: limitConnZone },
    { name: 'limit_conn', ctx: ALL, args: TAKE2, set: limitConn },
    { name: 'limit_conn_log_level', ctx: ALL, args: TAKE1, set: enumSlot(lccfOf, 'logLevel', LEVEL_WORDS) },
    { name: 'limit_conn_status', ctx: ALL, args: TAKE1, set: statusBounds(lccfOf) },
    { name: 'limit_conn_dry_run', ctx: ALL, args: FLAG, set: flagSlot(lccfOf, 'dryRun') },
  ],
});
