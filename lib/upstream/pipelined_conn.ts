import type { LogLevel } from '../core/error_log.js';
import { makeRoom } from '../core/slots.js';
import { UpstreamConn, type ConnUser } from './conn.js';
import type { ConnectionPool } from './keepalive.js';
import { connectFailed, ioFailed, prematurelyClosed, timedOut } from './messages.js';
import type { UpstreamSrvConf } from './module.js';
import type { PeerAddress } from './peers.js';
import type { Failure } from './run.js';
import { openUpstreamSocket, type SslRuntime } from './ssl.js';

/*
 * **extension** (redis2d_pipeline): cross-request pipelining, for the
 * Redis modules (redis2's pipelined_try.ts, redis's pipelined.ts). nginx
 * gives every request a Redis connection of its own for the whole exchange,
 * one round trip each. Here requests whose commands are safe to share
 * (redis2's query.ts `shareable`; redis_pass's GET, whose SELECT/AUTH state
 * is in the connection's key) join a connection that
 * other requests are using right now: their queries are queued, written
 * together once per event-loop turn (setImmediate, after every socket read
 * of this turn was handled), and the reply stream is split back by each
 * request's own framing (its reply count), first come first served.
 *
 * The connection comes from, and goes back to, the upstream's keepalive
 * cache (pool.ts) exactly as an exclusive one: it is taken when a request
 * finds no shared connection to join, and released (reusable: every reply
 * read, nothing extra) as soon as no request is left on it. So sequential
 * traffic behaves as nginx's keepalive does, `keepalive N` still bounds the
 * idle set, keepalive_requests counts every request that joined.
 *
 * At most `redis2d_pipeline on N` (default 1) connections per peer take
 * joiners; a request joins the one with the fewest requests on it, or opens
 * another while fewer than N are busy. A connection whose head request's client pushes back (its
 * redis2_buffer_size window full) is paused: requests already queued behind
 * that request wait (head-of-line blocking, bounded by that client's
 * send_timeout), and new requests go elsewhere: another shared connection
 * if N allows, else the exclusive path. See pipelined_try.ts for one request.
 */

/** What the connection reads from a request's options. */
export interface PipelineOptions {
  readonly peer: PeerAddress;
  /** the request's bytes to Redis */
  readonly query: Buffer;
  readonly connectTimeout: number;
  readonly sendTimeout: number;
  readonly readTimeout: number;
  /** SO_KEEPALIVE on a connection it opens (redis_socket_keepalive) */
  readonly socketKeepalive?: boolean;
  /** TLS on (redis2_ssl / redis_ssl): the location's settings (ssl.ts) and the name to check / send as SNI */
  readonly ssl?: SslRuntime;
  readonly sslName?: string;
}

/** One request on a shared connection, as the connection drives it (redis2's PipelinedTry, redis's RedisPipeTry). */
export interface PipelinedEntry {
  readonly o: PipelineOptions;
  readonly t0: number;
  connectTime: number | undefined;
  /** the outcome went to the owner */
  readonly done: boolean;
  /** the client left: replies are read and dropped (set by the connection) */
  discard: boolean;
  /** every expected reply was read */
  readonly replied: boolean;
  /** a malformed reply: the stream cannot be followed past it */
  readonly broke: boolean;
  /** the query went into a write */
  readonly sent: boolean;
  /** a large value is streaming: joiners go elsewhere */
  readonly big: boolean;
  sentBy(seq: number): void;
  /**
   * Take this request's bytes from `chunk[off..n)`: how many were its own,
   * or -1 when its client pushes back (nothing taken; resumeFor() later).
   * `last`: nothing behind it was sent (bytes after its replies are extra).
   */
  feed(chunk: Buffer, off: number, n: number, last: boolean): number;
  /** the connection failed under it */
  fail(status: number, failure: Failure, msg: string, level?: LogLevel): void;
  /** Redis closed the connection inside its reply */
  cut(): void;
  /** its response started */
  started(): boolean;
  /** Redis has read its query (for the log's `while ...` and ioFailed) */
  reading(): boolean;
  action(): string;
  /** the client went away (the upstream run's handle) */
  abort(): void;
}

/** What a request needs from the shared connection it is on. */
export interface PipelinedHost {
  readonly connected: boolean;
  /** TCP is still connecting (before a TLS handshake) */
  readonly tcpConnecting: boolean;
  readonly fromCache: boolean;
  readonly dead: boolean;
  /** the last write Redis has read (its callback fired) */
  readonly ackedSeq: number;
  /** the request's client left: drop its replies as they come */
  abandon(t: PipelinedEntry): void;
  /** the request's client drained: go on reading */
  resumeFor(t: PipelinedEntry): void;
}

const enum Timer {
  None,
  Connect,
  Send,
  Read,
}

export class PipelinedConn implements ConnUser, PipelinedHost {
  readonly conn: UpstreamConn;
  private readonly pool: ConnectionPool;
  private readonly key: string;
  private readonly list: PipelinedConn[];
  connected: boolean;
  /** the connection came from the keepalive cache (a failure then refunds the try, as nginx's peer.cached) */
  readonly fromCache: boolean;
  /** requests in reply order; the head is reading */
  readonly queue: PipelinedEntry[] = [];
  /** requests in the queue whose client is still there */
  live = 0;
  /** queries not written yet (the last `out.length` requests of the queue) */
  private readonly out: Buffer[] = [];
  private outLen = 0;
  /** queued for this turn's flush */
  dirty = false;
  /** torn down or given back: takes no joiner, ignores events */
  dead = false;
  /** paused for the head request's slow client */
  stalled = false;
  private rest: Buffer | undefined = undefined;
  private lastSeq = 0;
  ackedSeq = 0;
  private timer = Timer.None;

  constructor(o: PipelineOptions, pool: ConnectionPool, key: string, list: PipelinedConn[]) {
    this.pool = pool;
    this.key = key;
    this.list = list;
    const reused = pool.acquire(key);
    this.fromCache = reused !== undefined;
    if (reused !== undefined) {
      this.conn = reused;
      this.connected = true;
      reused.user = this;
      return;
    }
    const peer = o.peer;
    const sock = openUpstreamSocket(peer, undefined, o.ssl, o.sslName ?? '');
    if (o.socketKeepalive === true) sock.setKeepAlive(true);
    const conn = (this.conn = new UpstreamConn(sock));
    this.connected = false;
    pool.opened?.(key, conn);
    conn.user = this;
    conn.arm(o.connectTimeout);
    this.timer = Timer.Connect;
  }

  get tcpConnecting(): boolean {
    return this.conn.socket.connecting;
  }

  /**
   * May one more request join? Not while paused or dying, nor while a large
   * value streams (the entry's `big`) (a joiner would wait behind all of it: it is better off on
   * a connection of its own), and only within keepalive_requests/time.
   */
  accepts(): boolean {
    return !this.stalled && !this.dead && !this.queue[0]?.big && this.pool.canJoin(this.conn);
  }

  add<O, T extends PipelinedEntry>(owner: O, make: (owner: O, host: PipelinedHost) => T): T {
    const t = make(owner, this);
    const o = t.o;
    this.queue.push(t);
    this.live++;
    this.out.push(o.query);
    this.outLen += o.query.length;
    if (this.connected) schedule(this);
    return t;
  }

  /** write every queued query in one write (once per turn) */
  flush(): void {
    this.dirty = false;
    const out = this.out;
    const n = out.length;
    if (this.dead || !this.connected || n === 0) return;
    const b = n === 1 ? out[0]! : Buffer.concat(out, this.outLen);
    out.length = 0;
    this.outLen = 0;
    const seq = (this.lastSeq = this.conn.write(b));
    const q = this.queue;
    for (let i = q.length - n; i < q.length; i++) q[i]!.sentBy(seq);
    // a paused connection runs no timer (the exclusive path's rule); else the head's read timer goes on
    if (!this.stalled && this.timer !== Timer.Read) this.arm(Timer.Send, q[q.length - 1]!.o.sendTimeout);
  }

  private arm(kind: Timer, ms: number): void {
    this.timer = kind;
    this.conn.arm(ms);
  }

  /** the queue emptied with every reply read: back to the keepalive cache */
  private release(): void {
    this.retire();
    const conn = this.conn;
    conn.user = undefined;
    conn.disarm();
    if (conn.socket.isPaused()) conn.socket.resume();
    this.pool.release(this.key, conn, true);
  }

  /** take no more joiners (the connection finishes what it has) */
  retire(): void {
    const i = this.list.indexOf(this);
    if (i >= 0) this.list.splice(i, 1);
  }

  /** close the connection; requests still on it hear `fail` (each one's own outcome) */
  kill(fail?: (t: PipelinedEntry) => void): void {
    if (this.dead) return;
    this.dead = true;
    this.retire();
    this.conn.destroy();
    const q = this.queue.splice(0);
    this.live = 0;
    if (fail) for (const t of q) if (!t.done) fail(t);
  }

  // ---- ConnUser

  connConnect(): void {
    if (this.dead) return;
    this.connected = true;
    const now = performance.now();
    for (const t of this.queue) t.connectTime = now - t.t0;
    this.timer = Timer.None;
    this.conn.disarm();
    this.flush();
  }

  connWritten(_c: UpstreamConn, seq: number, err: Error | null | undefined): void {
    if (this.dead || err) return;
    this.ackedSeq = seq;
    if (seq === this.lastSeq && this.timer === Timer.Send && !this.stalled && this.queue.length > 0) this.arm(Timer.Read, this.queue[0]!.o.readTimeout);
  }

  connTimeout(): void {
    this.kill((t) => t.fail(504, 'timeout', timedOut(t.action())));
  }

  connError(_c: UpstreamConn, err: NodeJS.ErrnoException): void {
    if (this.dead) return;
    if (!this.connected) {
      const peer = this.queue[0]?.o.peer;
      if (peer === undefined) return this.kill();
      const line = connectFailed(peer, err);
      this.kill((t) => t.fail(502, 'error', line.msg, line.level));
      return;
    }
    this.kill((t) => t.fail(502, 'error', ioFailed(t.reading(), err, t.action())));
  }

  connEnd(): void {
    // the request whose reply began ends complete, as nginx at EOF (u->length -1); the ones behind it never got a byte
    this.kill((t) => (t.started() ? t.cut() : t.fail(502, 'error', prematurelyClosed(t.action()))));
  }

  connClose(): void {
    this.connEnd();
  }

  connData(_c: UpstreamConn, chunk: Buffer): void {
    if (this.dead) return;
    const head = this.queue[0];
    if (head === undefined || !head.sent) {
      // bytes nobody asked for yet: the stream is out of step
      this.connEnd();
      return;
    }
    this.arm(Timer.Read, head.o.readTimeout);
    this.consume(chunk, 0);
  }

  /* hand the chunk's bytes to the requests they answer, in order */
  private consume(chunk: Buffer, from: number): void {
    const n = chunk.length;
    let off = from;
    const q = this.queue;
    while (off < n) {
      const t = q[0];
      if (t === undefined || !t.sent) {
        // more replies than requests (the last request logs them as nginx does)
        this.kill((x) => x.fail(502, 'error', prematurelyClosed(x.action())));
        return;
      }
      const used = t.feed(chunk, off, n, q.length === 1 || !q[1]!.sent);
      if (this.dead) return;
      if (used < 0) {
        // the head's window is full and its client pushes back: wait for it
        this.stalled = true;
        this.rest = chunk.subarray(off);
        this.conn.socket.pause();
        this.conn.disarm();
        this.timer = Timer.None;
        return;
      }
      off += used;
      if (t.broke) {
        // an invalid reply: nothing after it can be matched to a request
        this.kill((x) => x.fail(502, 'error', prematurelyClosed(x.action())));
        return;
      }
      if (!t.replied) continue;
      q.shift();
      if (!t.discard) this.live--;
      if (q.length === 0) {
        if (off < n) this.kill();
        else this.release();
        return;
      }
      if (this.live === 0) {
        // only abandoned requests left: nobody needs their replies (as nginx, close)
        this.kill();
        return;
      }
    }
  }

  /** the head's client can take data again (or left) */
  resumeFor(t: PipelinedEntry): void {
    if (this.dead || !this.stalled || this.queue[0] !== t) return;
    this.stalled = false;
    const rest = this.rest;
    this.rest = undefined;
    this.arm(Timer.Read, t.o.readTimeout);
    if (rest !== undefined) this.consume(rest, 0);
    if (!this.dead && !this.stalled && this.conn.socket.isPaused()) this.conn.socket.resume();
  }

  /** a request's client left: drop its replies as they come, or close if nobody else needs the connection */
  abandon(t: PipelinedEntry): void {
    if (!t.discard) {
      t.discard = true;
      this.live--;
    }
    if (this.live === 0) {
      this.kill();
      return;
    }
    if (this.stalled && this.queue[0] === t) this.resumeFor(t);
  }
}

/* once per turn: every connection with queued queries writes them */
let dirty: PipelinedConn[] = [];
let scheduled = false;

function flushAll(): void {
  scheduled = false;
  const list = dirty;
  dirty = [];
  for (let i = 0; i < list.length; i++) list[i]!.flush();
}

function schedule(sc: PipelinedConn): void {
  if (sc.dirty) return;
  sc.dirty = true;
  dirty.push(sc);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
}

/** per upstream: peer key → its shared connections taking joiners */
export type PipelinedGroups = Map<string, PipelinedConn[]>;

const groupsByUpstream = new WeakMap<UpstreamSrvConf, PipelinedGroups>();

export function pipelinedGroupsOf(us: UpstreamSrvConf): PipelinedGroups {
  let g = groupsByUpstream.get(us);
  if (g === undefined) {
    g = new Map();
    groupsByUpstream.set(us, g);
  }
  return g;
}

/**
 * Queue the request onto a shared connection to `key`'s peer (at most
 * `maxConns` of them); undefined: all are paused for slow clients, so the
 * caller runs the request on an exclusive connection.
 */
export function joinPipelined<O extends PipelineOptions, T extends PipelinedEntry>(
  groups: PipelinedGroups,
  key: string,
  maxConns: number,
  pool: ConnectionPool,
  o: O,
  /* makes the entry from `o` (a function made once, not a closure per request) */
  make: (o: O, host: PipelinedHost) => T,
): T | undefined {
  let list = groups.get(key);
  if (list === undefined) {
    list = [];
    groups.set(key, list);
  }
  let best: PipelinedConn | undefined;
  for (let i = 0; i < list.length; i++) {
    const sc = list[i]!;
    if (!sc.accepts()) {
      if (!sc.stalled && !sc.dead && !sc.queue[0]?.big) {
        // keepalive_requests / keepalive_time reached: it drains and goes
        sc.retire();
        i--;
      }
      continue;
    }
    if (best === undefined || sc.queue.length < best.queue.length) best = sc;
  }
  // up to maxConns connections share the load: a busy one gets a sibling while there is room
  if (best !== undefined && (best.queue.length === 0 || list.length >= maxConns)) {
    best.conn.requests++;
    return best.add(o, make);
  }
  if (list.length >= maxConns) return undefined;
  // no room for another connection (worker_connections): the exclusive path reports it as nginx does
  if (!makeRoom()) return undefined;
  const sc = new PipelinedConn(o, pool, key, list);
  list.push(sc);
  return sc.add(o, make);
}
