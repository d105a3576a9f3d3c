import { closeAllConnections, closeIdleConnections, closingConnections, liveConnections } from '../http/connection.js';
import type { Cycle } from '../conf/parser.js';
import { prepareHttp } from '../http/engine.js';
import type { ErrorLog } from '../core/error_log.js';
import { setMainLog } from '../core/error_log.js';
import type { Loaded } from './cycle.js';
import { closeListening, listeningCount, openListening } from './listen.js';
import { holdSlot, setSlotCapacity } from '../core/slots.js';
import { eventsModule, type EventsConf } from '../modules/events/module.js';

/*
 * What a serving process (a worker, or the single process of
 * `master_process off`) does with a loaded configuration: make it the
 * active one, listen, and stop fast or gracefully.
 */

/** activate a configuration and open its sockets; false after logging why not */
export async function serveCycle(l: Loaded, mainLog: ErrorLog, bindLog: ErrorLog | undefined): Promise<boolean> {
  const sockets = prepareHttp(l.cycle);
  active = l.cycle;
  for (const m of l.cycle.modules) m.initProcess?.(l.cycle);
  setMainLog(mainLog);
  // worker_connections: the pool of this process; each listening socket holds a slot (ngx_event_process_init)
  const wc = workerConnections(l.cycle);
  if (wc < sockets.length + 1) {
    mainLog.write('emerg', 0, `${wc} worker_connections are not enough for ${sockets.length} listening sockets`);
    return false;
  }
  if (!(await openListening(sockets, bindLog))) return false;
  const n = listeningCount();
  setSlotCapacity(wc);
  holdSlot(n - listenSlots);
  listenSlots = n;
  return true;
}

/** the listening sockets counted in the pool so far */
let listenSlots = 0;

/** events { worker_connections N; }, nginx's default 512 */
export function workerConnections(cycle: Cycle): number {
  const ev = cycle.coreConfs[eventsModule.index] as EventsConf | undefined;
  return ev && ev.workerConnections > 0 ? ev.workerConnections : 512;
}

let stopping = false;
/** the cycle being served: its modules' exitProcess hooks run at exit */
let active: Cycle | undefined;

function exitModules(): void {
  if (active) for (const m of active.modules) m.exitProcess?.();
}

/** worker_shutdown_timeout of the serving cycle, in ms (0: none) */
function shutdownTimeout(): number {
  const core = active?.modules.find((m) => m.name === 'core');
  if (active === undefined || core === undefined) return 0;
  const t = (active.coreConfs[core.index] as { shutdownTimeout?: number }).shutdownTimeout;
  return t !== undefined && t > 0 ? t : 0;
}

/** TERM/INT: nginx's fast shutdown */
export function fastStop(onExit: () => void): void {
  if (stopping) return;
  stopping = true;
  closeListening();
  exitModules();
  onExit();
  process.exit(0);
}

/**
 * QUIT: stop accepting, let every in-flight request finish (keep-alive
 * connections close after their current response), then exit once every
 * connection is closed, lingering closes included (an exit with unread bytes
 * would reset the connection, which can cost a client the response's end;
 * one with the response's end still queued in node would cut it): at once
 * when nothing is open, as nginx's worker (docs/behaviour.md §8).
 */
export function gracefulStop(onExit: () => void): void {
  if (stopping) return;
  stopping = true;
  closeListening();
  closeIdleConnections();
  const finish = (): void => {
    exitModules();
    onExit();
    process.exit(0);
  };
  const idle = (): boolean => liveConnections() === 0 && closingConnections() === 0;
  if (idle()) return finish();
  // worker_shutdown_timeout: then the connections still open are closed (nginx's shutdown timer)
  const wait = shutdownTimeout();
  if (wait > 0) setTimeout(closeAllConnections, wait);
  // keeps the process alive while requests finish, and checks for the end
  const timer = setInterval(() => {
    if (!idle()) return;
    clearInterval(timer);
    finish();
  }, 5);
}
