import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { nextConnectionNumber } from '../core/counters.js';
import { holdSlot, releaseSlot } from '../core/slots.js';

/*
 * One connection to an upstream peer, alive as long as its socket: the socket's
 * listeners are attached once, here, and hand every event to whoever uses
 * the connection right now (a request's try, or the keepalive cache while
 * it sits idle), so nothing is added or removed per request. It also owns
 * the connection's only timer, re-armed with refresh() instead of a new
 * setTimeout per phase or chunk, and counts writes so a write callback is
 * only ever credited to the try that issued it.
 */

export interface ConnUser {
  connConnect(c: UpstreamConn): void;
  connData(c: UpstreamConn, chunk: Buffer): void;
  connEnd(c: UpstreamConn): void;
  connError(c: UpstreamConn, err: NodeJS.ErrnoException): void;
  connClose(c: UpstreamConn): void;
  connTimeout(c: UpstreamConn): void;
  /** the write numbered `seq` (from write()) completed, or failed with `err` */
  connWritten(c: UpstreamConn, seq: number, err: Error | null | undefined): void;
}

export class UpstreamConn {
  readonly socket: Socket;
  /** who gets the events; undefined: nobody (a closed connection ignores everything) */
  user: ConnUser | undefined = undefined;
  /** the keepalive cache key (peer name, plus the state tag) */
  key = '';
  /** the connection's number: upstream connections take one from the `*N` counter too, as nginx's */
  readonly number = nextConnectionNumber();
  /** what nginx keeps on the connection: its use count and birth (keepalive_requests/time) */
  requests = 1;
  start = 0;
  private timer: NodeJS.Timeout | undefined = undefined;
  private timerMs = -1;
  private timerLive = false;
  private timerRef = true;
  private writesIssued = 0;
  private writesDone = 0;
  private readonly onTimer: () => void;
  private readonly onWritten: (err?: Error | null) => void;

  constructor(socket: Socket) {
    this.socket = socket;
    // a slot of worker_connections while the socket lives (lib/core/slots.ts)
    holdSlot();
    socket.once('close', () => releaseSlot());
    this.onTimer = () => {
      if (!this.timerLive) return;
      this.timerLive = false;
      this.user?.connTimeout(this);
    };
    this.onWritten = (err) => {
      const seq = ++this.writesDone;
      this.user?.connWritten(this, seq, err);
    };
    // a TLS connection is ready once its handshake (and nginx's certificate checks, ssl.ts) passed
    if (socket instanceof TLSSocket) {
      socket.on('secureConnect', () => {
        if (!socket.destroyed) this.user?.connConnect(this);
      });
    } else socket.on('connect', () => this.user?.connConnect(this));
    socket.on('data', (d: Buffer) => this.user?.connData(this, d));
    socket.on('end', () => this.user?.connEnd(this));
    // always listened to: a closed or idle socket may still report an error
    socket.on('error', (e: NodeJS.ErrnoException) => this.user?.connError(this, e));
    socket.on('close', () => this.user?.connClose(this));
  }

  /** write `b`; returns the number the completion callback will carry */
  write(b: Buffer): number {
    this.socket.write(b, this.onWritten);
    return ++this.writesIssued;
  }

  /** (re)start the timeout: `ms` from now; an unref'd timer does not keep the process alive */
  arm(ms: number, ref = true): void {
    let t = this.timer;
    if (t !== undefined && this.timerMs === ms) {
      t.refresh();
    } else {
      if (t !== undefined) clearTimeout(t);
      t = this.timer = setTimeout(this.onTimer, ms);
      this.timerMs = ms;
      this.timerRef = true;
    }
    if (ref !== this.timerRef) {
      if (ref) t.ref();
      else t.unref();
      this.timerRef = ref;
    }
    this.timerLive = true;
  }

  /** stop the timeout (the timer may still fire, harmlessly, and no longer holds the process) */
  disarm(): void {
    this.timerLive = false;
    if (this.timerRef && this.timer !== undefined) {
      this.timer.unref();
      this.timerRef = false;
    }
  }

  destroy(): void {
    this.user = undefined;
    this.timerLive = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.socket.destroy();
  }
}
