import { ASYNC, zoneOp, type ZoneValue } from '../../core/zones.js';
import type { SessionCache } from '../../http/tls.js';
import { runtimeZone, type ShmZone } from '../../http/zones.js';

/*
 * ssl_session_cache (ngx_ssl_session_cache): session-ID resumption for
 * clients that do not use tickets (TLS 1.2 without the ticket extension,
 * or `ssl_session_tickets off`). node:tls keeps no server cache of its own;
 * it asks for sessions through 'newSession'/'resumeSession'
 * (lib/http/tls.ts), answered here:
 *   builtin[:N]       per worker, as OpenSSL's internal cache: at most N
 *                     sessions (20480), the oldest dropped first;
 *   shared:NAME:SIZE  a shared zone (lib/core/zones.ts): one cache for every
 *                     worker, bounded by the zone's bytes as nginx's slab
 *                     allocator bounds it (expired sessions are dropped
 *                     first, then the oldest, as ngx_ssl_expire_sessions).
 * Sessions live ssl_session_timeout seconds. A session holds its context's
 * session id context, so OpenSSL resumes it only in the server it was made
 * in (nginx's sid_ctx is the same digest).
 */

/** SSL_SESSION_CACHE_MAX_SIZE_DEFAULT */
export const BUILTIN_DEFAULT = 20480;

/** the per-worker cache: a Map in insertion (age) order */
export class BuiltinCache implements SessionCache {
  private readonly map = new Map<string, { data: Buffer; expires: number }>();

  constructor(
    private readonly max: number,
    private readonly timeoutMs: number,
  ) {}

  get(id: Buffer, cb: (data: Buffer | null) => void): void {
    const key = id.toString('hex');
    const e = this.map.get(key);
    if (e !== undefined && e.expires <= Date.now()) this.map.delete(key);
    cb(e !== undefined && e.expires > Date.now() ? e.data : null);
  }

  set(id: Buffer, data: Buffer): void {
    if (this.max <= 0) return;
    const key = id.toString('hex');
    this.map.delete(key);
    while (this.map.size >= this.max) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
    }
    this.map.set(key, { data, expires: Date.now() + this.timeoutMs });
  }
}

/**
 * What a session takes in nginx's zone: its ngx_ssl_sess_id_t node (an
 * rbtree node, id pointer and length, the session pointer, expiry and
 * queue links: 80 bytes on 64-bit) and the session's DER copy; the two are
 * counted as one entry of their summed size.
 */
const SESS_NODE = 80;

/** the cache in a shared zone */
export class SharedCache implements SessionCache {
  constructor(
    private readonly zone: ShmZone,
    private readonly timeoutMs: number,
  ) {}

  get(id: Buffer, cb: (data: Buffer | null) => void): void {
    const done = (res: ZoneValue): void => cb(typeof res === 'string' ? Buffer.from(res, 'base64') : null);
    const res = runtimeZone(this.zone).run('ssl_sess_get', id.toString('hex'), null, done);
    if (res !== ASYNC) done(res);
  }

  set(id: Buffer, data: Buffer): void {
    runtimeZone(this.zone).run('ssl_sess_set', id.toString('hex'), [data.toString('base64'), this.timeoutMs, SESS_NODE + data.length], () => {});
  }
}

/** the zone's operations (registered at load: every process that may own the zone has them) */
export function registerSessionOps(): void {
  zoneOp('ssl_sess_get', (z, key, _a, now) => {
    const e = z.peek(key, now);
    return e === undefined ? null : e.value;
  });
  // ngx_ssl_new_session: expire one old session, then make room by dropping the oldest
  zoneOp('ssl_sess_set', (z, key, a, now) => {
    const [data, timeout, bytes] = a as [string, number, number];
    z.expireSome(now, 1);
    for (let tries = 0; tries < 2 && !z.fits(bytes); tries++) {
      const oldest = z.oldest();
      if (oldest === undefined) break;
      z.remove(oldest);
    }
    return z.put(key, data, now + timeout, bytes);
  });
}
