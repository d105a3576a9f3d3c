import type { UpstreamKeepalive, UpstreamSrvConf } from './module.js';
import type { ConnUser, UpstreamConn } from './conn.js';

/*
 * Upstream keepalive (nginx's ngx_http_upstream_keepalive_module), per
 * worker and per upstream block: at most `keepalive N` idle connections,
 * most recently used first. A request never waits for one: it takes an idle
 * connection to the peer the balancer chose, or connects anew. A connection
 * comes back only when every expected reply was read in full with no extra
 * bytes; it is closed instead once it has served `keepalive_requests`
 * requests or lived `keepalive_time`. While idle, any byte or close from
 * Redis drops it, and `keepalive_timeout` closes it. When the cache is full
 * the least recently used connection is closed to make room.
 *
 * Why not generic-pool: it queues acquirers when the pool is empty or at its
 * limit; nginx never waits, and its limit bounds only the idle set, not the
 * connections in use. A small LRU list does exactly that.
 *
 * Keys are the peer name (plus the state tag, conn_state.ts). An idle
 * connection's events come here through its UpstreamConn (listeners attached
 * once per connection, not per request).
 */

export interface ConnectionPool {
  /** an idle, connected connection for `key`, or undefined to connect anew */
  acquire(key: string): UpstreamConn | undefined;
  /** a fresh connection for `key` was opened (its use count and age start now) */
  opened?(key: string, conn: UpstreamConn): void;
  /** give `conn` back; a pool closes whatever it does not keep */
  release(key: string, conn: UpstreamConn, reusable: boolean): void;
  /** may one more request use `conn` (keepalive_requests, keepalive_time)? the pipelined redis2 path asks per joiner */
  canJoin(conn: UpstreamConn): boolean;
}

/** No keepalive: a fresh connection per request, closed after. */
export const noPool: ConnectionPool = {
  acquire(): UpstreamConn | undefined {
    return undefined;
  },
  release(_key: string, conn: UpstreamConn): void {
    conn.destroy();
  },
  canJoin(): boolean {
    return true;
  },
};

export class KeepaliveCache implements ConnectionPool, ConnUser {
  /** most recently used first */
  private readonly idle: UpstreamConn[] = [];
  /** connections opened through this cache (the ones it may keep) */
  private readonly mine = new WeakSet<UpstreamConn>();

  constructor(private readonly conf: UpstreamKeepalive) {}

  /** idle connections now (tests and status) */
  get size(): number {
    return this.idle.length;
  }

  acquire(key: string): UpstreamConn | undefined {
    const idle = this.idle;
    for (let i = 0; i < idle.length; i++) {
      const c = idle[i]!;
      if (c.key !== key) continue;
      idle.splice(i, 1);
      c.user = undefined;
      c.disarm();
      c.socket.ref();
      c.requests++;
      return c;
    }
    return undefined;
  }

  opened(_key: string, conn: UpstreamConn): void {
    conn.requests = 1;
    conn.start = Date.now();
    this.mine.add(conn);
  }

  canJoin(conn: UpstreamConn): boolean {
    return conn.requests < this.conf.requests && Date.now() - conn.start <= this.conf.time;
  }

  release(key: string, conn: UpstreamConn, reusable: boolean): void {
    const socket = conn.socket;
    if (
      !reusable ||
      !this.mine.has(conn) ||
      socket.destroyed ||
      !socket.readable ||
      !socket.writable ||
      conn.requests >= this.conf.requests ||
      Date.now() - conn.start > this.conf.time
    ) {
      conn.destroy();
      return;
    }
    if (this.idle.length >= this.conf.maxCached) this.idle.pop()!.destroy();
    conn.key = key;
    // anything from Redis while idle (bytes, EOF, an error) makes the connection unusable
    conn.user = this;
    // an idle connection does not keep a worker alive (nginx closes them on exit)
    conn.arm(this.conf.timeout, false);
    if (socket.isPaused()) socket.resume();
    socket.unref();
    this.idle.unshift(conn);
  }

  /** close every idle connection (worker exit) */
  closeAll(): void {
    for (const c of this.idle.splice(0)) c.destroy();
  }

  private remove(c: UpstreamConn): void {
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    c.destroy();
  }

  connConnect(c: UpstreamConn): void {
    this.remove(c);
  }
  connData(c: UpstreamConn): void {
    this.remove(c);
  }
  connEnd(c: UpstreamConn): void {
    this.remove(c);
  }
  connError(c: UpstreamConn): void {
    this.remove(c);
  }
  connClose(c: UpstreamConn): void {
    this.remove(c);
  }
  connTimeout(c: UpstreamConn): void {
    this.remove(c);
  }
  connWritten(): void {}
}

const caches = new WeakMap<UpstreamSrvConf, KeepaliveCache>();

/** The upstream's keepalive cache in this worker, or noPool without `keepalive`. */
export function poolOf(us: UpstreamSrvConf): ConnectionPool {
  const ka = us.keepalive;
  if (!ka.active || ka.maxCached <= 0) return noPool;
  let c = caches.get(us);
  if (!c) {
    c = new KeepaliveCache(ka);
    caches.set(us, c);
  }
  return c;
}
