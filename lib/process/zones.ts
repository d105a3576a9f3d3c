import cluster, { type Worker } from 'node:cluster';
import type { Cycle } from '../conf/parser.js';
import { getMainLog } from '../core/error_log.js';
import { ZoneStore, runZoneOp, setZoneTransport, type ZoneValue } from '../core/zones.js';
import { zonesOf } from '../http/zones.js';

/*
 * Shared zones across workers (lib/core/zones.ts; docs/behaviour.md
 * §"Shared zones"). With more than one worker the master owns every zone
 * and runs each operation, one at a time, as nginx's zone mutex would:
 *
 *   worker → master   zones     {ops: [[id, zone, op, key, arg], ...]}
 *   master → worker   zones-res {res: [[id, result], ...]}
 *
 * (one message each way per worker event-loop turn, however many calls)
 *
 * The stores outlive reloads while a zone keeps its name and size, as
 * nginx reuses a zone's memory across reloads. With one worker the worker
 * owns its zones itself and no message is sent (the fast path).
 */

/** one operation: [id, zone, op, key, arg] */
type Call = [number, string, string, string, ZoneValue];

/** worker → master: the operations of one event-loop turn */
interface ZoneMsg {
  redis2d: 'zones';
  ops: Call[];
}

/** master → worker: their results, [id, result] */
interface ZoneRes {
  redis2d: 'zones-res';
  res: Array<[number, ZoneValue]>;
}

const isZoneMsg = (m: unknown): m is ZoneMsg => typeof m === 'object' && m !== null && (m as ZoneMsg).redis2d === 'zones';
const isZoneRes = (m: unknown): m is ZoneRes => typeof m === 'object' && m !== null && (m as ZoneRes).redis2d === 'zones-res';

// ------------------------------------------------------------ worker side

/**
 * in a worker of a generation with several workers: every zone call goes
 * to the master. The calls of one event-loop turn (every request parsed
 * from the sockets that were readable) travel in one message, flushed by
 * setImmediate: under load a message carries many, which is what keeps
 * the channel's per-message cost off each request.
 */
export function installWorkerZones(): void {
  const waiting = new Map<number, (res: ZoneValue) => void>();
  let seq = 0;
  let queue: Call[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    const ops = queue;
    queue = [];
    try {
      process.send!({ redis2d: 'zones', ops } satisfies ZoneMsg);
    } catch {
      // the master is gone: this worker is about to go too; its requests stay unanswered
      for (const c of ops) waiting.delete(c[0]);
    }
  };
  process.on('message', (m: unknown) => {
    if (!isZoneRes(m)) return;
    for (const [id, res] of m.res) {
      const done = waiting.get(id);
      if (done === undefined) continue;
      waiting.delete(id);
      done(res);
    }
  });
  setZoneTransport({
    call(zone, op, key, arg, done) {
      const id = ++seq;
      waiting.set(id, done);
      queue.push([id, zone, op, key, arg]);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
  });
}

// ------------------------------------------------------------ master side

const stores = new Map<string, ZoneStore>();

function storeFor(cycle: Cycle, name: string): ZoneStore | undefined {
  const decl = zonesOf(cycle).find((z) => z.name === name);
  if (decl === undefined) return stores.get(name);
  let s = stores.get(name);
  if (s === undefined || s.size !== decl.size) {
    s = new ZoneStore(decl.name, decl.size, decl.reserved);
    stores.set(name, s);
  }
  return s;
}

/** in the master: own the zones of the serving configuration (`cycle()` is the current one) */
export function installMasterZones(cycle: () => Cycle): void {
  cluster.on('message', (worker: Worker, m: unknown) => {
    if (!isZoneMsg(m)) return;
    const c = cycle();
    const res: Array<[number, ZoneValue]> = [];
    for (const [id, z, op, key, arg] of m.ops) {
      let r: ZoneValue = null;
      const store = storeFor(c, z);
      if (store !== undefined) {
        try {
          r = runZoneOp(store, op, key, arg);
        } catch (e) {
          getMainLog().write('alert', 0, `zone "${z}" operation "${op}" failed: ${(e as Error).message}`);
        }
      }
      res.push([id, r]);
    }
    if (worker.isDead() || !worker.isConnected()) return;
    try {
      worker.send({ redis2d: 'zones-res', res } satisfies ZoneRes);
    } catch {
      /* the worker is going away */
    }
  });
}
