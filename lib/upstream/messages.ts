import { errnoText } from '../core/errno.js';
import type { LogLevel } from '../core/error_log.js';
import type { PeerAddress } from './peers.js';
import { sslConnectFailed, sslIoFailed } from './ssl.js';

/*
 * The error-log lines of ngx_http_upstream.c and ngx_event_connect.c that
 * every upstream protocol writes, in nginx's words, made in one place so
 * the exclusive and pipelined redis2 paths (and any protocol after them)
 * cannot drift apart.
 */

// nginx's `while ...` log contexts
export const ACTION_CONNECT = 'connecting to upstream';
export const ACTION_SEND = 'sending request to upstream';
export const ACTION_HEADER = 'reading response header from upstream';
export const ACTION_BODY = 'reading upstream';

export interface LogLine {
  level: LogLevel;
  msg: string;
}

/** connect() failed: unix sockets fail inside connect() itself (ngx_event_connect_peer), with the peer named */
export function connectFailed(peer: PeerAddress, err: NodeJS.ErrnoException): LogLine {
  const ssl = sslConnectFailed(err);
  if (ssl !== undefined) return ssl;
  const text = errnoText(err);
  if (peer.path !== undefined) {
    const level = err.code === 'ECONNREFUSED' || err.code === 'EAGAIN' ? 'error' : 'crit';
    return { level, msg: `connect() to ${peer.name} failed (${text}) while ${ACTION_CONNECT}` };
  }
  return { level: 'error', msg: `connect() failed (${text}) while ${ACTION_CONNECT}` };
}

/** a failed bind() of the local address (*_bind): nginx cannot even start the connection */
export function bindFailed(addrText: string | undefined, err: NodeJS.ErrnoException): LogLine {
  return { level: 'crit', msg: `bind(${addrText}) failed (${errnoText(err)}) while ${ACTION_CONNECT}` };
}

/** a connected socket failed: writev() while the request goes out, recv() after */
export function ioFailed(reading: boolean, err: NodeJS.ErrnoException, action: string): string {
  const ssl = sslIoFailed(reading, err, action);
  if (ssl !== undefined) return ssl;
  return `${reading ? 'recv()' : 'writev()'} failed (${errnoText(err)}) while ${action}`;
}

export function timedOut(action: string): string {
  return `upstream timed out (110: Connection timed out) while ${action}`;
}

export function prematurelyClosed(action: string): string {
  return `upstream prematurely closed connection while ${action}`;
}
