import type { Socket } from 'node:net';
import type { UpstreamKeepalive, UpstreamSrvConf } from '../modules/upstream.js';

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
 */

export interface ConnectionPool {
  /** an idle, connected socket to `peer`, or undefined to connect anew */
  acquire(peer: string): Socket | undefined;
  /** a fresh connection to `peer` was opened (its use count and age start now) */
  opened?(peer: string, socket: Socket): void;
  /** give `socket` back; a pool closes whatever it does not keep */
  release(peer: string, socket: Socket, reusable: boolean): void;
}

/** No keepalive: a fresh connection per request, closed after. */
export const noPool: ConnectionPool = {
  acquire(): Socket | undefined {
    return undefined;
  },
  release(_peer: string, socket: Socket): void {
    socket.destroy();
  },
};

/** What nginx keeps on the connection itself: its use count and birth. */
interface ConnInfo {
  requests: number;
  start: number;
}

interface Idle {
  peer: string;
  socket: Socket;
  timer: NodeJS.Timeout;
  drop: () => void;
}

export class KeepaliveCache implements ConnectionPool {
  /** most recently used first */
  private readonly idle: Idle[] = [];
  private readonly info = new WeakMap<Socket, ConnInfo>();

  constructor(private readonly conf: UpstreamKeepalive) {}

  /** idle connections now (tests and status) */
  get size(): number {
    return this.idle.length;
  }

  acquire(peer: string): Socket | undefined {
    for (let i = 0; i < this.idle.length; i++) {
      const item = this.idle[i]!;
      if (item.peer !== peer) continue;
      this.idle.splice(i, 1);
      this.unwatch(item);
      item.socket.ref();
      const ci = this.info.get(item.socket);
      if (ci) ci.requests++;
      return item.socket;
    }
    return undefined;
  }

  opened(_peer: string, socket: Socket): void {
    this.info.set(socket, { requests: 1, start: Date.now() });
  }

  release(peer: string, socket: Socket, reusable: boolean): void {
    const ci = this.info.get(socket);
    if (
      !reusable ||
      !ci ||
      socket.destroyed ||
      !socket.readable ||
      !socket.writable ||
      ci.requests >= this.conf.requests ||
      Date.now() - ci.start > this.conf.time
    ) {
      socket.destroy();
      return;
    }
    if (this.idle.length >= this.conf.maxCached) {
      const lru = this.idle.pop()!;
      this.unwatch(lru);
      lru.socket.destroy();
    }
    const item: Idle = {
      peer,
      socket,
      timer: setTimeout(() => this.remove(item), this.conf.timeout),
      drop: () => this.remove(item),
    };
    // anything from Redis while idle (bytes, EOF, an error) makes the connection unusable
    socket.on('data', item.drop);
    socket.on('end', item.drop);
    socket.on('close', item.drop);
    socket.on('error', item.drop);
    if (socket.isPaused()) socket.resume();
    // an idle connection does not keep a worker alive (nginx closes them on exit)
    item.timer.unref();
    socket.unref();
    this.idle.unshift(item);
  }

  /** close every idle connection (worker exit) */
  closeAll(): void {
    for (const item of this.idle.splice(0)) {
      this.unwatch(item);
      item.socket.destroy();
    }
  }

  private unwatch(item: Idle): void {
    clearTimeout(item.timer);
    item.socket.off('data', item.drop);
    item.socket.off('end', item.drop);
    item.socket.off('close', item.drop);
    item.socket.off('error', item.drop);
  }

  private remove(item: Idle): void {
    const i = this.idle.indexOf(item);
    if (i >= 0) this.idle.splice(i, 1);
    this.unwatch(item);
    item.socket.destroy();
  }
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
