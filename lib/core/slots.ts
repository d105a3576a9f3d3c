import { getMainLog } from './error_log.js';

/*
 * worker_connections: nginx's per-worker pool of connections. Every
 * listening socket, client connection and upstream connection (idle
 * keepalive ones included) holds one slot. When none is free, nginx first
 * closes idle client connections (waiting for a request, or keep-alive
 * between requests) to make room — at most max(1, min(32, idle/8)) at a
 * time, oldest first, with one [warn] a second (ngx_drain_connections) —
 * and only when nothing idle is left refuses: an accepted client is closed
 * at once, an upstream connection is not made (the caller logs nginx's
 * `[alert] N worker_connections are not enough`).
 */

let capacity = 0;
let used = 0;
let lastReuseWarn = 0;
let idleCount: () => number = () => 0;
let closeIdle: (n: number) => void = () => {};

/** this worker's worker_connections (0: no limit) */
export function setSlotCapacity(n: number): void {
  capacity = n;
}

export function slotCapacity(): number {
  return capacity;
}

/** how the HTTP side counts and closes its idle client connections */
export function setIdleDrain(count: () => number, close: (n: number) => void): void {
  idleCount = count;
  closeIdle = close;
}

export function holdSlot(n = 1): void {
  used += n;
}

export function releaseSlot(n = 1): void {
  used -= n;
}

export function slotsUsed(): number {
  return used;
}

/** room for one more connection, idle clients closed to make it if needed; false: there is none */
export function makeRoom(): boolean {
  if (capacity === 0 || used < capacity) return true;
  const idle = idleCount();
  if (idle === 0) return false;
  const now = Math.floor(Date.now() / 1000);
  if (now !== lastReuseWarn) {
    lastReuseWarn = now;
    getMainLog().write('warn', 0, `${capacity} worker_connections are not enough, reusing connections`);
  }
  closeIdle(Math.max(Math.min(32, Math.floor(idle / 8)), 1));
  return used < capacity;
}
