/*
 * The process's counters that nginx keeps in its shared zone
 * (ngx_event_module_init): the connection counter behind the error log's
 * `*N` (ngx_connection_counter: every accepted client connection and every
 * upstream connection takes the next number) and stub_status's statistics
 * (ngx_stat_*). Plain numbers, bumped on the hot path at no cost; a worker
 * reports them to its master for stub_status's totals (lib/process/stats.ts),
 * as nginx's workers share theirs.
 */

let connectionCounter = 1;

/** the next connection number (`*N`), for a client or an upstream connection */
export function nextConnectionNumber(): number {
  return connectionCounter++;
}

/** what nginx's stub_status prints: three running totals and four gauges */
export interface StubCounters {
  accepted: number;
  handled: number;
  requests: number;
  active: number;
  reading: number;
  writing: number;
  waiting: number;
}

export const zeroCounters = (): StubCounters => ({ accepted: 0, handled: 0, requests: 0, active: 0, reading: 0, writing: 0, waiting: 0 });

/** this process's own counters */
export const counters: StubCounters = zeroCounters();

/** a client connection's place in the gauges (nginx: reusable = waiting, r->stat_reading, r->stat_writing) */
export const enum ConnStat {
  None,
  Waiting,
  Reading,
  Writing,
}

/** move a connection from one gauge to another; returns the new one */
export function statMove(from: ConnStat, to: ConnStat): ConnStat {
  if (from === to) return to;
  if (from === ConnStat.Waiting) counters.waiting--;
  else if (from === ConnStat.Reading) counters.reading--;
  else if (from === ConnStat.Writing) counters.writing--;
  if (to === ConnStat.Waiting) counters.waiting++;
  else if (to === ConnStat.Reading) {
    // a request starts when its first byte arrives (ngx_http_alloc_request)
    counters.reading++;
    counters.requests++;
  } else if (to === ConnStat.Writing) counters.writing++;
  return to;
}

/**
 * Where stub_status gets the totals: this process's counters, unless the
 * process layer installs a collector that sums every worker's (a master's
 * workers, as nginx's shared zone does).
 */
let collector: (() => Promise<StubCounters>) | undefined;

export function setCountersCollector(fn: (() => Promise<StubCounters>) | undefined): void {
  collector = fn;
}

export function collectCounters(): Promise<StubCounters> {
  return collector ? collector() : Promise.resolve({ ...counters });
}
