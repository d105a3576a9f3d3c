import { ASYNC, type ZoneValue } from '../../core/zones.js';
import { getMainLog } from '../../core/error_log.js';
import { evalComplexValue } from '../../http/eval.js';
import type { HttpRequest } from '../../http/http_request.js';
import { P, PhaseRun } from '../../http/phases.js';
import { DECLINED, DONE, type Request } from '../../http/request.js';
import { runtimeZone } from '../../http/zones.js';
import { LEVELS, limitReqModule, type LimitReqLimit, type LimitReqLocConf, type LimitReqZoneData } from './module.js';
import { Rc } from './bucket.js';

/*
 * ngx_http_limit_req_handler (pre-access). Each limit's key is looked up
 * in its zone; all limits but the last only reserve their node (count++),
 * the last one accounts at once; then the earlier ones are accounted and
 * the longest delay of all wins. A zone call may answer later (another
 * process owns the zone): the handler then returns DONE and the request
 * goes on from the answer. A delayed request waits on a timer, then the
 * phase runs again and the handler declines ($limit_req_status is set).
 */

const enum St {
  Passed = 1,
  Delayed,
  Rejected,
  DelayedDryRun,
  RejectedDryRun,
}

const STATUS_TEXT = ['', 'PASSED', 'DELAYED', 'REJECTED', 'DELAYED_DRY_RUN', 'REJECTED_DRY_RUN'];

/** r->main->limit_req_status */
const statuses = new WeakMap<HttpRequest, St>();

export function limitReqStatusOf(r: HttpRequest): string | undefined {
  const s = statuses.get(r.main);
  return s === undefined ? undefined : STATUS_TEXT[s];
}

/** one lookup of the request: a limit whose node was reserved (NGX_AGAIN) */
interface Held {
  limit: LimitReqLimit;
  key: string;
}

/** call a zone op; k runs at once when the zone is local, later otherwise */
function call(limit: LimitReqLimit, op: string, key: string, arg: ZoneValue, k: (res: ZoneValue) => void): void {
  const res = runtimeZone(limit.zone).run(op, key, arg, k);
  if (res !== ASYNC) k(res);
}

class LimitRun extends PhaseRun {
  readonly conf: LimitReqLocConf;
  readonly limits: LimitReqLimit[];
  readonly held: Held[] = [];
  timer: NodeJS.Timeout | undefined;

  constructor(r: HttpRequest, conf: LimitReqLocConf, limits: LimitReqLimit[]) {
    super(r, P.PreAccess);
    this.conf = conf;
    this.limits = limits;
  }

  /** the lookup loop from limit n (rc: the last lookup's result, DECLINED before any) */
  lookup(n: number, rc: number, excess: number): void {
    const r = this.r;
    const limits = this.limits;
    for (; n < limits.length; n++) {
      const limit = limits[n]!;
      const data = limit.zone.data as LimitReqZoneData;
      const key = evalComplexValue(r, data.key);
      if (key.length === 0) continue;
      if (key.length > 65535) {
        r.log('error', `the value of the "${data.key.source}" key is more than 65535 bytes: "${key}"`);
        continue;
      }
      const last = n === limits.length - 1;
      const at = n;
      let answered = false;
      let sync = true;
      call(limit, 'limit_req', key, { rate: data.rate, burst: limit.burst, account: last }, (res) => {
        answered = true;
        const [code, ex] = res as [Rc, number];
        if (code === Rc.Again) this.held.push({ limit, key });
        if (sync) {
          rc = code;
          excess = ex;
        } else if (code === Rc.Again) this.lookup(at + 1, code, ex);
        else this.decide(at, code, ex);
      });
      sync = false;
      if (!answered) return;
      if (rc !== Rc.Again) return this.decide(n, rc, excess);
    }
    // every key empty: no limit applies; else the earlier limits' reservations still count
    if (rc === DECLINED) return this.end(DECLINED);
    this.decide(limits.length - 1, rc, 0);
  }

  /** after the lookups: reject, or account the held nodes and delay (ngx_http_limit_req_handler's tail) */
  decide(n: number, rc: number, excess: number): void {
    const r = this.r;
    const conf = this.conf;
    const limit = this.limits[n]!;
    if (rc === Rc.Busy || rc === Rc.Error) {
      if (rc === Rc.Busy) {
        const lvl = LEVELS[conf.limitLogLevel]!;
        r.log(lvl, `limiting requests${conf.dryRun ? ', dry run' : ''}, excess: ${fmt(excess)} by zone "${limit.zone.name}"`);
      } else {
        getMainLog().write('alert', 0, `could not allocate node in limit_req zone "${limit.zone.name}"`);
      }
      // ngx_http_limit_req_unlock: the reservations go back
      for (const h of this.held) call(h.limit, 'limit_req_unlock', h.key, null, () => {});
      this.held.length = 0;
      if (conf.dryRun) {
        statuses.set(r.main, St.RejectedDryRun);
        return this.end(DECLINED);
      }
      statuses.set(r.main, St.Rejected);
      return this.end(conf.statusCode);
    }
    if (rc === Rc.Again) excess = 0;
    let maxDelay = excess <= limit.delay ? 0 : Math.floor(((excess - limit.delay) * 1000) / (limit.zone.data as LimitReqZoneData).rate);
    let worst = limit;
    let worstExcess = excess;
    // ngx_http_limit_req_account: the held nodes, last first
    const held = this.held.splice(0).reverse();
    const next = (i: number): void => {
      if (i === held.length) return this.delay(maxDelay, worst, worstExcess);
      const h = held[i]!;
      const rate = (h.limit.zone.data as LimitReqZoneData).rate;
      call(h.limit, 'limit_req_account', h.key, rate, (res) => {
        const ex = res as number;
        if (ex > h.limit.delay) {
          const d = Math.floor(((ex - h.limit.delay) * 1000) / rate);
          if (d > maxDelay) {
            maxDelay = d;
            worst = h.limit;
            worstExcess = ex;
          }
        }
        next(i + 1);
      });
    };
    next(0);
  }

  delay(ms: number, limit: LimitReqLimit, excess: number): void {
    const r = this.r;
    const conf = this.conf;
    if (!ms) {
      statuses.set(r.main, St.Passed);
      return this.end(DECLINED);
    }
    r.log(conf.delayLogLevel, `delaying request${conf.dryRun ? ', dry run' : ''}, excess: ${fmt(excess)}, by zone "${limit.zone.name}"`);
    if (conf.dryRun) {
      statuses.set(r.main, St.DelayedDryRun);
      return this.end(DECLINED);
    }
    statuses.set(r.main, St.Delayed);
    // the phase runs again when the delay is over (the handler then declines)
    let waiting = true;
    this.timer = setTimeout(() => {
      waiting = false;
      this.end(DECLINED);
    }, ms);
    // ngx_http_test_reading meanwhile: a client that closes ends the request (499)
    r.checkBroken(() => {
      if (!waiting) return false;
      waiting = false;
      clearTimeout(this.timer);
      r.log('info', 'client prematurely closed connection');
      return true;
    });
    this.end(DONE);
  }
}

/** `excess` in 1/1000 as nginx prints it: 0.500 */
function fmt(excess: number): string {
  return `${Math.floor(excess / 1000)}.${String(excess % 1000).padStart(3, '0')}`;
}

export function limitReqHandler(req: Request): number {
  const r = req as HttpRequest;
  if (statuses.has(r.main)) return DECLINED;
  const conf = r.locConf[limitReqModule.index] as LimitReqLocConf | undefined;
  const limits = conf?.limits;
  if (conf === undefined || limits === undefined || limits.length === 0) return DECLINED;
  const run = new LimitRun(r, conf, limits);
  run.lookup(0, DECLINED, 0);
  // DONE while waiting: a zone's answer or the delay's timer
  return run.returned();
}
