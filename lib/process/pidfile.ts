import { closeSync, openSync, readSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { errnoSuffix, type ErrorLog } from '../core/error_log.js';

/*
 * The pid file (ngx_create_pidfile / ngx_delete_pidfile / the reading half
 * of ngx_signal_process). Written by the master once it serves, removed when
 * it exits; `-s` reads it.
 */

/** write `PID\n`; throws nginx's `open() "PATH" failed (N: text)` message */
export function writePidFile(path: string, pid = process.pid): void {
  const tmp = `${path}.${pid}.tmp`;
  try {
    writeFileSync(tmp, `${pid}\n`);
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never created */
    }
    throw new Error(`open() "${path}" failed ${errnoSuffix(e)}`);
  }
}

/** remove the pid file if it still names this process */
export function removePidFile(path: string): void {
  try {
    const text = readPidText(path);
    if (text.trim() !== String(process.pid)) return;
    unlinkSync(path);
  } catch {
    /* already gone */
  }
}

/**
 * a reload that names another pid file (master and single process alike):
 * write the new one, then remove the old; a failure is logged and the
 * reload goes on, as nginx's does
 */
export function movePidFile(from: string, to: string, log: ErrorLog): void {
  if (to === from) return;
  try {
    writePidFile(to);
    removePidFile(from);
  } catch (e) {
    log.write('emerg', 0, (e as Error).message);
  }
}

function readPidText(path: string): string {
  const fd = openSync(path, 'r');
  try {
    // NGX_INT64_LEN + 2: nginx reads no more than that
    const buf = Buffer.alloc(22);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return buf.toString('latin1', 0, n);
  } finally {
    closeSync(fd);
  }
}

export type PidResult = { pid: number } | { level: 'error'; msg: string };

/** the master's pid, or nginx's message for a missing or bad pid file */
export function readPidFile(path: string): PidResult {
  let text: string;
  try {
    text = readPidText(path);
  } catch (e) {
    return { level: 'error', msg: `open() "${path}" failed ${errnoSuffix(e)}` };
  }
  // nginx strips trailing CR/LF, then wants a plain decimal number
  text = text.replace(/[\r\n]+$/, '');
  if (!/^[0-9]+$/.test(text) || text.length > 19) {
    return { level: 'error', msg: `invalid PID number "${text}" in "${path}"` };
  }
  return { pid: Number(text) };
}
