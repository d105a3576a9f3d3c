import net from 'node:net';
import { ReplyScanner, ScanResult, isReplyType } from './scanner.js';
import { errnoText } from './errno.js';
import { noPool, type ConnectionPool } from './pool.js';
import { RedisConn, type ConnUser } from './conn.js';

/*
 * One request to one Redis peer, as nginx's non-buffered upstream runs it
 * for redis2: connect, write the query once, read replies with the scanner
 * and stream the raw bytes to a sink, then decide whether the connection
 * may be kept. Log lines and statuses are nginx's.
 *
 * Reading follows nginx's fixed buffer of redis2_buffer_size bytes: each
 * step handles at most the room left in that buffer; the buffer is emptied
 * only while the sink keeps up. When the sink pushes back and the buffer is
 * full, the Redis socket is paused until the sink drains. That bounds memory
 * per request and also gives the `near pos N in "..."` of a malformed reply
 * the same base as nginx (the bytes the buffer holds).
 */

export type LogLevel = 'emerg' | 'alert' | 'crit' | 'error' | 'warn' | 'notice' | 'info' | 'debug';

export interface RedisPeer {
  /** `127.0.0.1:6379`, `[::1]:6379` or `unix:/path`: $upstream_addr and log text */
  name: string;
  host?: string;
  port?: number;
  /** unix socket path */
  path?: string;
}

/** Where the reply bytes go (the HTTP response, or a test). */
export interface ReplySink {
  /** the first byte arrived and is a reply type: send the status and headers */
  start(): void;
  /** reply bytes; false asks the request to stop reading until `onDrain` fires */
  write(chunk: Buffer): boolean;
  /** call `cb` once when the sink accepts data again */
  onDrain(cb: () => void): void;
}

export interface UpstreamRequestOptions {
  peer: RedisPeer;
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
  /** the keepalive cache key (peer name plus state tag); default: the peer's name */
  poolKey?: string;
  log(level: LogLevel, msg: string): void;
  /** on a shared connection (shared_try.ts): the replies outgrew one redis2_buffer_size window */
  bigReply?(): void;
}

/** Who hears the outcome: called once, synchronously, as the try ends. */
export interface TryOwner {
  tryDone(out: UpstreamOutcome): void;
}

/** Why a try failed, in redis2_next_upstream's terms. */
export type Failure = 'error' | 'timeout' | 'invalid_response';

export interface UpstreamOutcome {
  /** $upstream_status: 200 once the reply started, else 502 / 504 / 500 */
  status: number;
  /** status and headers went to the sink */
  started: boolean;
  /** the response ended normally (possibly after a logged invalid reply or extra bytes) */
  complete: boolean;
  /** the connection could go back to a pool */
  reusable: boolean;
  /** set when the try failed (not complete) */
  failure: Failure | undefined;
  /** the sink's side went away (abort) */
  aborted: boolean;
  /** the connection came from the keepalive cache */
  cached: boolean;
  /** the query was (at least partly) written: nginx's u->request_sent */
  sent: boolean;
  /** what the try was doing when it ended (the log's `while ...`) */
  action: string;
  /** ms from start to connected, undefined if never connected */
  connectTime: number | undefined;
  /** ms from start to the end of this try */
  responseTime: number;
}

export interface UpstreamRequest {
  readonly done: Promise<UpstreamOutcome>;
  /** the client went away: close the Redis connection (never reuse it) */
  abort(): void;
}

const enum Phase {
  Connecting,
  Sending,
  Reading,
  Finished,
}

// nginx's `while ...` log contexts; shared_try.ts uses the same words
export const ACTION_CONNECT = 'connecting to upstream';
export const ACTION_SEND = 'sending request to upstream';
export const ACTION_HEADER = 'reading response header from upstream';
export const ACTION_BODY = 'reading upstream';

/** the reply bytes read so far (the window), for nginx's quoted log excerpts */
export function windowText(win: Buffer[], winLen: number): string {
  return win.length === 1 ? win[0]!.toString('latin1') : Buffer.concat(win, winLen).toString('latin1');
}

/**
 * One try: a fixed-shape object, its connection's events dispatched to its
 * methods (RedisConn), its outcome handed to the owner synchronously, so
 * the response can be finished in the same turn as the last reply bytes
 * (one write to the client per response).
 */
export class UpstreamTry implements ConnUser {
  private readonly o: UpstreamRequestOptions;
  private readonly sink: ReplySink;
  private readonly owner: TryOwner;
  private readonly pool: ConnectionPool;
  private readonly key: string;
  private readonly t0: number;
  private readonly scanner: ReplyScanner;
  private readonly conn: RedisConn;
  private readonly cached: boolean;
  private phase = Phase.Connecting;
  private started = false;
  private connectTime: number | undefined = undefined;
  private bodyRead = false;
  private sent = false;
  private writeSeq = 0;
  // nginx's u->buffer: the pieces it holds since it was last emptied
  private readonly win: Buffer[] = [];
  private winLen = 0;
  private sinkBusy = false;
  private pending: Buffer | undefined = undefined;

  constructor(o: UpstreamRequestOptions, sink: ReplySink, owner: TryOwner) {
    this.o = o;
    this.sink = sink;
    this.owner = owner;
    const pool = (this.pool = o.pool ?? noPool);
    const key = (this.key = o.poolKey ?? o.peer.name);
    this.t0 = performance.now();
    this.scanner = new ReplyScanner(o.expected);
    const reused = pool.acquire(key);
    this.cached = reused !== undefined;
    if (reused !== undefined) {
      this.conn = reused;
      reused.user = this;
      this.connectTime = 0;
      this.send();
      return;
    }
    const sock =
      o.peer.path !== undefined
        ? net.connect({ path: o.peer.path })
        : net.connect({
            host: o.peer.host,
            port: o.peer.port ?? 0,
            localAddress: o.bind?.host,
            localPort: o.bind?.port || undefined,
          });
    const conn = (this.conn = new RedisConn(sock));
    pool.opened?.(key, conn);
    conn.user = this;
    conn.arm(o.connectTimeout);
  }

  /* a method, so TypeScript does not narrow `phase` across calls that change it */
  private finished(): boolean {
    return this.phase === Phase.Finished;
  }

  private action(): string {
    switch (this.phase) {
      case Phase.Connecting:
        return ACTION_CONNECT;
      case Phase.Sending:
        return ACTION_SEND;
      default:
        // the first read is handled inside nginx's process_header
        return this.bodyRead ? ACTION_BODY : ACTION_HEADER;
    }
  }

  private settle(status: number, complete: boolean, reusable: boolean, failure: Failure | undefined, aborted: boolean): void {
    if (this.finished()) return;
    const act = this.action();
    this.phase = Phase.Finished;
    const conn = this.conn;
    conn.user = undefined;
    conn.disarm();
    if (reusable) this.pool.release(this.key, conn, true);
    else conn.destroy();
    this.owner.tryDone({
      status,
      started: this.started,
      complete,
      reusable,
      failure,
      aborted,
      cached: this.cached,
      sent: this.sent,
      action: act,
      connectTime: this.connectTime,
      responseTime: performance.now() - this.t0,
    });
  }

  private fail(status: number, failure: Failure, level: LogLevel | undefined, msg: string): void {
    if (level) this.o.log(level, msg);
    this.settle(this.started ? 200 : status, false, false, failure, false);
  }

  /** the client went away: close the Redis connection (never reuse it) */
  abort(): void {
    if (this.finished()) return;
    this.settle(this.started ? 200 : 499, false, false, undefined, true);
  }

  connTimeout(): void {
    this.fail(504, 'timeout', 'error', `upstream timed out (110: Connection timed out) while ${this.action()}`);
  }

  connConnect(): void {
    this.connectTime = performance.now() - this.t0;
    this.send();
  }

  private send(): void {
    this.phase = Phase.Sending;
    this.sent = true;
    this.conn.arm(this.o.sendTimeout);
    this.writeSeq = this.conn.write(this.o.query);
  }

  connWritten(_c: RedisConn, seq: number, err: Error | null | undefined): void {
    if (seq !== this.writeSeq || err || this.phase !== Phase.Sending) return;
    this.phase = Phase.Reading;
    this.conn.arm(this.o.readTimeout);
  }

  connError(_c: RedisConn, err: NodeJS.ErrnoException): void {
    if (this.finished()) return;
    const text = errnoText(err);
    if (this.phase === Phase.Connecting) {
      if (err.syscall === 'bind') {
        // nginx cannot even start the connection: 500, no next upstream
        this.o.log('crit', `bind(${this.o.bind?.text}) failed (${text}) while ${ACTION_CONNECT}`);
        this.settle(500, false, false, 'error', false);
        return;
      }
      if (this.o.peer.path !== undefined) {
        // unix sockets fail inside connect() itself (ngx_event_connect_peer)
        const level = err.code === 'ECONNREFUSED' || err.code === 'EAGAIN' ? 'error' : 'crit';
        this.fail(502, 'error', level, `connect() to ${this.o.peer.name} failed (${text}) while ${ACTION_CONNECT}`);
      } else {
        this.fail(502, 'error', 'error', `connect() failed (${text}) while ${ACTION_CONNECT}`);
      }
      return;
    }
    const call = this.phase === Phase.Sending ? 'writev()' : 'recv()';
    this.fail(502, 'error', 'error', `${call} failed (${text}) while ${this.action()}`);
  }

  connEnd(): void {
    if (this.finished()) return;
    this.fail(502, 'error', 'error', `upstream prematurely closed connection while ${this.action()}`);
  }

  connClose(): void {
    // a close without 'end' or 'error' (e.g. reset handled elsewhere)
    if (!this.finished()) this.connEnd();
  }

  connData(_c: RedisConn, chunk: Buffer): void {
    if (this.finished()) return;
    if (this.phase === Phase.Sending) {
      // a reply before our write completed: Redis has read the query
      this.phase = Phase.Reading;
    }
    this.conn.arm(this.o.readTimeout);
    this.consume(chunk);
  }

  /* feed one socket chunk through the buffer window, a step at a time */
  private consume(chunk: Buffer): void {
    let off = 0;
    const size = this.o.bufferSize;
    while (off < chunk.length && !this.finished()) {
      if (!this.sinkBusy) {
        this.win.length = 0;
        this.winLen = 0;
      }
      const room = size - this.winLen;
      if (room <= 0) {
        this.pending = chunk.subarray(off);
        this.conn.socket.pause();
        this.conn.disarm();
        return;
      }
      const piece = off === 0 && chunk.length <= room ? chunk : chunk.subarray(off, off + room);
      off += piece.length;
      this.step(piece, off < chunk.length);
      this.bodyRead = true;
    }
  }

  private step(piece: Buffer, moreInChunk: boolean): void {
    const base = this.winLen;
    this.win.push(piece);
    this.winLen += piece.length;

    if (!this.started) {
      if (!isReplyType(piece[0]!)) {
        this.o.log('error', `redis2 sent invalid response: "${windowText(this.win, this.winLen)}" while ${ACTION_HEADER}`);
        this.fail(502, 'invalid_response', undefined, '');
        return;
      }
      this.started = true;
      this.sink.start();
      if (this.finished()) return; // the sink gave up at once
    }

    const scanner = this.scanner;
    const r = scanner.feed(piece);
    if (r === ScanResult.More) {
      this.emit(piece);
      return;
    }
    if (r === ScanResult.Invalid) {
      // nginx drops what this read brought and ends the response normally
      this.o.log('error', `Redis server returned invalid response near pos ${base + scanner.end} in "${windowText(this.win, this.winLen)}" while ${this.action()}`);
      this.settle(200, true, false, undefined, false);
      return;
    }
    this.emit(scanner.end === piece.length ? piece : piece.subarray(0, scanner.end));
    if (this.finished()) return;
    const extra = piece.length - scanner.end;
    if (extra > 0) {
      this.o.log('warn', `Redis server returned extra bytes: "${piece.toString('latin1', scanner.end)}" (len ${extra}) while ${this.action()}`);
    }
    this.settle(200, true, extra === 0 && !moreInChunk, undefined, false);
  }

  private emit(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (!this.sink.write(bytes) && !this.sinkBusy && !this.finished()) {
      this.sinkBusy = true;
      this.sink.onDrain(() => this.onSinkDrain());
    }
  }

  private onSinkDrain(): void {
    this.sinkBusy = false;
    if (this.finished()) return;
    const rest = this.pending;
    this.pending = undefined;
    if (rest) {
      this.conn.arm(this.o.readTimeout);
      this.consume(rest);
    }
    if (!this.finished() && this.pending === undefined && this.conn.socket.isPaused()) {
      this.conn.arm(this.o.readTimeout);
      this.conn.socket.resume();
    }
  }
}

/** Start the request now; its outcome settles `done` (tests; the handler uses UpstreamTry). */
export function startUpstreamRequest(o: UpstreamRequestOptions, sink: ReplySink): UpstreamRequest {
  let resolve!: (v: UpstreamOutcome) => void;
  const done = new Promise<UpstreamOutcome>((res) => (resolve = res));
  const t = new UpstreamTry(o, sink, { tryDone: (out) => resolve(out) });
  return { done, abort: () => t.abort() };
}
