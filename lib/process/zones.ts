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
 *   worker → master   zone     {id, z: name, op, key, arg}
 *   master → worker   zone-res {id, res}
 *
 * The stores outlive reloads while a zone keeps its name and size, as
 * nginx reuses a zone's memory across reloads. With one worker the worker
 * owns its zones itself and no message is sent (the fast path).
 */

interface ZoneMsg {
  redis2d: 'zone';
  id: number;
  z: string;
  op: string;
  key: string;
  arg: ZoneValue;
}

interface ZoneRes {
  redis2d: 'zone-res';
  id: number;
  res: ZoneValue;
}

const isZoneMsg = (m: unknown): m is ZoneMsg => typeof m === 'object' && m !== null && (m as ZoneMsg).redis2d === 'zone';
const isZoneRes = (m: unknown): m is ZoneRes => typeof m === 'object' && m !== null && (m as ZoneRes).redis2d === 'zone-res';

// ------------------------------------------------------------ worker side

/** in a worker of a generation with several workers: every zone call goes to the master */
export function installWorkerZones(): void {
  const waiting = new Map<number, (res: ZoneValue) => void>();
  let seq = 0;
  process.on('message', (m: unknown) => {
    if (!isZoneRes(m)) return;
    const done = waiting.get(m.id);
    if (done === undefined) return;
    waiting.delete(m.id);
    done(m.res);
  });
  setZoneTransport({
    call(zone, op, key, arg, done) {
      const id = ++seq;
      waiting.set(id, done);
      try {
        process.send!({ redis2d: 'zone', id, z: zone, op, key, arg } satisfies ZoneMsg);
      } catch {
        // the master is gone: this worker is about to go too; the request stays unanswered as nginx's would hang on a dead zone
        waiting.delete(id);
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
    let res: ZoneValue = null;
    const store = storeFor(cycle(), m.z);
    if (store !== undefined) {
      try {
        res = runZoneOp(store, m.op, m.key, m.arg);
      } catch (e) {
        getMainLog().write('alert', 0, `zone "${m.z}" operation "${m.op}" failed: ${(e as Error).message}`);
      }
    }
    if (worker.isDead() || !worker.isConnected()) return;
    try {
      worker.send({ redis2d: 'zone-res', id: m.id, res } satisfies ZoneRes);
    } catch {
      /* the worker is going away */
    }
  });
}
