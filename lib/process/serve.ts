import { closeIdleConnections, liveConnections } from '../http/connection.js';
import type { Cycle } from '../conf/parser.js';
import { prepareHttp } from '../http/engine.js';
import type { ErrorLog } from '../core/error_log.js';
import { setMainLog } from '../core/error_log.js';
import type { Loaded } from './cycle.js';
import { closeListening, openListening } from './listen.js';

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
  return openListening(sockets, bindLog);
}

let stopping = false;
/** the cycle being served: its modules' exitProcess hooks run at exit */
let active: Cycle | undefined;

function exitModules(): void {
  if (active) for (const m of active.modules) m.exitProcess?.();
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
 * connections close after their current response), then exit.
 */
export function gracefulStop(onExit: () => void): void {
  if (stopping) return;
  stopping = true;
  closeListening();
  closeIdleConnections();
  // keeps the process alive while requests finish, and checks for the end
  const timer = setInterval(() => {
    if (liveConnections() !== 0) return;
    clearInterval(timer);
    // the last responses may still sit in socket buffers: give them a moment
    setTimeout(() => {
      exitModules();
      onExit();
      process.exit(0);
    }, 50);
  }, 25);
}
