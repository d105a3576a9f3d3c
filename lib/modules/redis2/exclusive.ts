import type { Socket } from 'node:net';
import { makeRoom } from '../../core/slots.js';
import type { LogLevel } from '../../core/error_log.js';
import { ConnPhase, ConnTry } from '../../upstream/conn_try.js';
import { noPool, type ConnectionPool } from '../../upstream/keepalive.js';
import type { PeerAddress } from '../../upstream/peers.js';
import { openUpstreamSocket, type SslRuntime } from '../../upstream/ssl.js';
import type { TryOwner, UpstreamOutcome } from '../../upstream/run.js';
import { Read, ReplyReader, type ReaderOwner, type ReplySink } from './reply_reader.js';

export type { ReplySink };

/*
 * One request to one Redis peer on a connection of its own, as nginx's
 * non-buffered upstream runs it for redis2: connect, write the query once,
 * read replies (reply_reader.ts) and stream the raw bytes to a sink, then
 * decide whether the connection may be kept. The connection, its events,
 * log lines and statuses are the generic try's (lib/upstream/conn_try.ts).
 *
 * Each read is handled a window's room at a time; when the sink pushes
 * back and the window is full, the Redis socket is paused until the sink
 * drains.
 */

/** What one try needs: where, what, the timeouts and the buffer, and how to log. */
export interface TryOptions {
  peer: PeerAddress;
  query: Buffer;
  /** replies expected: the number of queries, or redis2_raw_queries' N */
  expected: number;
  connectTimeout: number;
  sendTimeout: number;
  readTimeout: number;
  bufferSize: number;
  /** redis2_bind: local address (and port, 0 = any) of the connection; text for the log */
  bind?: { host: string; port: number; text: string };
  pool?: ConnectionPool;
  /** redis2_ssl on: the location's TLS settings (lib/upstream/ssl.ts) and the name to check / send as SNI */
  ssl?: SslRuntime;
  sslName?: string;
  /** the keepalive cache key (peer name plus state tag); default: the peer's name */
  poolKey?: string;
  log(level: LogLevel, msg: string): void;
  /** on a pipelined connection (pipelined_try.ts): the replies outgrew one redis2_buffer_size window */
  bigReply?(): void;
}

/**
 * One try: a fixed-shape object, its connection's events dispatched to its
 * methods (UpstreamConn), its outcome handed to the owner synchronously, so
 * the response can be finished in the same turn as the last reply bytes
 * (one write to the client per response).
 */
export class ExclusiveTry extends ConnTry implements ReaderOwner {
  readonly o: TryOptions;
  private readonly reader: ReplyReader;
  private pending: Buffer | undefined = undefined;
  private readonly actionFn = (): string => this.action();

  constructor(o: TryOptions, sink: ReplySink, owner: TryOwner) {
    super(owner, o, o.peer, o);
    this.o = o;
    this.sslAction = o.ssl !== undefined;
    this.reader = new ReplyReader(this, sink, o.expected);
    this.begin(o.pool ?? noPool, o.poolKey ?? o.peer.name, true);
  }

  protected openSocket(): Socket | undefined {
    // ngx_event_connect_peer: none when every worker_connections slot is taken
    const o = this.o;
    return makeRoom() ? openUpstreamSocket(o.peer, o.bind, o.ssl, o.sslName ?? '') : undefined;
  }

  protected request(): Buffer {
    return this.o.query;
  }

  protected override isStarted(): boolean {
    return this.reader.started;
  }

  protected override onEnd(): void {
    if (this.reader.started) {
      // redis2 leaves u->length at -1: once the reply began, Redis closing ends the response as
      // complete (last chunk, nothing logged), as nginx's non-buffered upstream does at EOF
      this.settle(200, true, false, undefined, false);
      return;
    }
    super.onEnd();
  }

  protected onData(chunk: Buffer): void {
    this.consume(chunk);
  }

  /* feed one socket chunk through the window, a step at a time */
  private consume(chunk: Buffer): void {
    let off = 0;
    const reader = this.reader;
    while (off < chunk.length && !this.isDone()) {
      const room = reader.room();
      if (room <= 0) {
        this.pending = chunk.subarray(off);
        this.pauseReading();
        return;
      }
      const piece = off === 0 && chunk.length <= room ? chunk : chunk.subarray(off, off + room);
      off += piece.length;
      this.step(piece, off < chunk.length);
      // the first read is handled inside nginx's process_header: the log says `reading upstream` after it
      reader.bodyRead = true;
      if (this.phase === ConnPhase.Header) this.phase = ConnPhase.Body;
    }
  }

  private step(piece: Buffer, moreInChunk: boolean): void {
    switch (this.reader.step(piece, this.actionFn)) {
      case Read.More:
      case Read.Gone:
        return;
      case Read.BadStart:
        this.fail(502, 'invalid_response', '');
        return;
      case Read.Invalid:
        this.settle(200, true, false, undefined, false);
        return;
      case Read.Done: {
        if (this.isDone()) return;
        const extra = piece.length - this.reader.end;
        if (extra > 0) this.reader.logExtra(piece, this.action());
        this.settle(200, true, extra === 0 && !moreInChunk, undefined, false);
      }
    }
  }

  sinkDrained(): void {
    if (this.isDone()) return;
    const rest = this.pending;
    this.pending = undefined;
    if (rest) {
      this.conn.arm(this.o.readTimeout);
      this.consume(rest);
    }
    if (!this.isDone() && this.pending === undefined && this.conn.socket.isPaused()) this.resumeReading();
  }
}

/** One try run on its own, outside any request (the upstream tests drive it so). */
export type UpstreamRequestOptions = TryOptions;
export type { LogLevel, UpstreamOutcome };

export interface UpstreamRequest {
  readonly done: Promise<UpstreamOutcome>;
  /** the client went away: close the Redis connection (never reuse it) */
  abort(): void;
}

/** Start one try now; its outcome settles `done`. */
export function startUpstreamRequest(o: TryOptions, sink: ReplySink): UpstreamRequest {
  let resolve!: (v: UpstreamOutcome) => void;
  const done = new Promise<UpstreamOutcome>((res) => (resolve = res));
  const t = new ExclusiveTry(o, sink, { tryDone: (out) => resolve(out) });
  return { done, abort: () => t.abort() };
}
