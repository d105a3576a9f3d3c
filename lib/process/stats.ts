import cluster, { type Worker } from 'node:cluster';
import { counters, setCountersCollector, zeroCounters, type StubCounters } from '../core/counters.js';

/*
 * stub_status totals across workers. nginx's workers bump counters in one
 * shared memory zone that lives as long as the master (reloads included);
 * Node has no shared memory between processes, so each worker keeps its
 * own (lib/core/counters.ts: plain numbers, nothing on the hot path) and
 * the master sums them when a status page is asked for:
 *
 *   worker → master   stats-req  (a stub_status request)
 *   master → workers  stats-poll (every live worker, old generations included)
 *   workers → master  stats-report (their counters)
 *   master → worker   stats-res  (the sum)
 *
 * The master also keeps each worker's last report (workers send one every
 * second while their counters move, and one as they exit), so the running
 * totals (accepts, handled, requests) of workers gone since (a reload, a
 * crash) stay in the sum as they do in nginx's zone; their gauges (active,
 * reading, writing, waiting) leave with them. A worker that does not answer
 * a poll within 500 ms counts with its last report. Why not a file with a
 * slot per worker: every counter change would be a write(2), on every
 * request, for a page that is read once in a while.
 */

interface Msg {
  redis2d?: string;
  id?: number;
  c?: StubCounters;
}

const isMsg = (m: unknown): m is Msg => typeof m === 'object' && m !== null && typeof (m as Msg).redis2d === 'string';

// ------------------------------------------------------------ worker side

let reqSeq = 0;
const waiting = new Map<number, (c: StubCounters) => void>();
let lastSent = '';

function report(id: number): void {
  const c = { ...counters };
  lastSent = JSON.stringify(c);
  try {
    process.send?.({ redis2d: 'stats-report', id, c });
  } catch {
    /* the channel closed under us (the master is gone or we are exiting) */
  }
}

/** in a cluster worker: answer polls, report on change and at exit, and ask the master for stub_status */
export function installWorkerStats(): void {
  process.on('message', (m: unknown) => {
    if (!isMsg(m)) return;
    if (m.redis2d === 'stats-poll' && typeof m.id === 'number') report(m.id);
    else if (m.redis2d === 'stats-res' && typeof m.id === 'number' && m.c) {
      const done = waiting.get(m.id);
      waiting.delete(m.id);
      done?.(m.c);
    }
  });
  setInterval(() => {
    if (process.connected && JSON.stringify(counters) !== lastSent) report(0);
  }, 1000).unref();
  process.on('exit', () => {
    if (process.connected) report(0);
  });
  setCountersCollector(
    () =>
      new Promise((resolve) => {
        if (!process.connected) return resolve({ ...counters });
        const id = ++reqSeq;
        // the master answers within its poll's bound; past that, this worker's own
        const timer = setTimeout(() => {
          waiting.delete(id);
          resolve({ ...counters });
        }, 2000);
        waiting.set(id, (c) => {
          clearTimeout(timer);
          resolve(c);
        });
        try {
          process.send!({ redis2d: 'stats-req', id });
        } catch {
          waiting.delete(id);
          clearTimeout(timer);
          resolve({ ...counters });
        }
      }),
  );
}

// ------------------------------------------------------------ master side

/** each worker's last report (worker.id → counters), kept after it exits */
const reports = new Map<number, { c: StubCounters; alive: boolean }>();
let pollSeq = 0;

interface Poll {
  from: Worker;
  reqId: number;
  left: Set<number>;
  timer: NodeJS.Timeout;
}
const polls = new Map<number, Poll>();

function totals(): StubCounters {
  const t = zeroCounters();
  for (const { c, alive } of reports.values()) {
    t.accepted += c.accepted;
    t.handled += c.handled;
    t.requests += c.requests;
    if (!alive) continue;
    t.active += c.active;
    t.reading += c.reading;
    t.writing += c.writing;
    t.waiting += c.waiting;
  }
  return t;
}

function finishPoll(id: number): void {
  const p = polls.get(id);
  if (!p) return;
  polls.delete(id);
  clearTimeout(p.timer);
  send(p.from, { redis2d: 'stats-res', id: p.reqId, c: totals() });
}

function send(w: Worker, m: Msg): void {
  if (w.isDead() || !w.isConnected()) return;
  try {
    w.send(m);
  } catch {
    /* the worker is going away: its poll slot times out */
  }
}

/** in the master, before the first worker starts: keep the workers' reports and answer stub_status */
export function installMasterStats(): void {
  cluster.on('message', (worker: Worker, m: unknown) => {
    if (!isMsg(m)) return;
    if (m.redis2d === 'stats-report' && m.c) {
      const entry = reports.get(worker.id);
      reports.set(worker.id, { c: m.c, alive: entry ? entry.alive : !worker.isDead() });
      if (typeof m.id === 'number' && m.id !== 0) {
        const p = polls.get(m.id);
        if (p) {
          p.left.delete(worker.id);
          if (p.left.size === 0) finishPoll(m.id);
        }
      }
    } else if (m.redis2d === 'stats-req' && typeof m.id === 'number') {
      const id = ++pollSeq;
      const live = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
      const p: Poll = { from: worker, reqId: m.id, left: new Set(live.map((w) => w.id)), timer: setTimeout(() => finishPoll(id), 500) };
      polls.set(id, p);
      for (const w of live) send(w, { redis2d: 'stats-poll', id });
    }
  });
  cluster.on('exit', (worker: Worker) => {
    const entry = reports.get(worker.id);
    if (entry) entry.alive = false;
    for (const [id, p] of polls) {
      if (p.left.delete(worker.id) && p.left.size === 0) finishPoll(id);
    }
  });
}
