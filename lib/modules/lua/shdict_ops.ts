import { zoneOp, type ZoneEntry, type ZoneStore, type ZoneValue } from '../../core/zones.js';

/*
 * ngx.shared.DICT's operations, run at the zone's owner (lib/core/zones.ts:
 * this worker, or the master when there are several workers), each whole,
 * as ngx_http_lua_shdict.c runs them under the zone's mutex:
 *
 * - an entry is [value, flags] with the value's Lua type kept (number,
 *   string as latin1 bytes, boolean); it takes a slab chunk of
 *   32 (rbtree node head) + 36 (shdict node head) + key + value bytes
 *   (value: the string's bytes, 8 for a number, 1 for a boolean);
 * - the store's Map order is the LRU queue (first = least recently used);
 *   a live lookup moves the entry to the recent end, an expired one is
 *   left where it is (get_stale still sees it until it is reclaimed);
 * - each store/get/incr first reclaims up to two expired entries from the
 *   old end (ngx_http_lua_shdict_expire(ctx, 1));
 * - out of room, set/add/replace/incr drop the least recently used entry
 *   (and up to two expired ones after it), up to 30 times, and say
 *   `forcible`; safe_set/safe_add answer "no memory" instead.
 *
 * Arguments and results are JSON-safe (they may cross the IPC channel).
 */

export type ShValue = string | number | boolean;

/** an entry's value in the store: [value, flags]; a list's value is its elements */
type Stored = [ShValue | ShValue[], number];

/** a list element's chunk: ngx_http_lua_shdict_list_node_t's head (queue, length, type) + the value */
const elemBytes = (v: ShValue): number => 21 + valueLen(v);

/** remove an entry, giving back its list elements' chunks too */
function drop(z: ZoneStore, key: string): void {
  const e = z.map.get(key);
  if (e === undefined) return;
  const v = (e.value as Stored)[0];
  if (Array.isArray(v)) for (const x of v) z.free(elemBytes(x));
  z.remove(key);
}

const NODE_HEAD = 32 + 36;

function valueLen(v: ShValue): number {
  return typeof v === 'string' ? v.length : typeof v === 'number' ? 8 : 1;
}

function entryBytes(key: string, v: ShValue): number {
  return NODE_HEAD + key.length + valueLen(v);
}

const expired = (e: ZoneEntry, now: number): boolean => e.expires !== 0 && e.expires <= now;

/**
 * ngx_http_lua_shdict_expire: n = 1 reclaims up to two expired entries
 * from the old end; n = 0 drops the oldest entry whatever its expiry,
 * then up to two expired ones. Returns how many went.
 */
function reclaim(z: ZoneStore, n: number, now: number): number {
  let freed = 0;
  while (n < 3) {
    const k = z.oldest();
    if (k === undefined) return freed;
    const e = z.map.get(k)!;
    if (n++ !== 0 && !expired(e, now)) return freed;
    drop(z, k);
    freed++;
  }
  return freed;
}

/** ngx_http_lua_shdict_lookup: the entry and whether it is stale; a live one becomes the most recent */
function lookup(z: ZoneStore, key: string, now: number): { e: ZoneEntry; stale: boolean } | undefined {
  const e = z.map.get(key);
  if (e === undefined) return undefined;
  if (expired(e, now)) return { e, stale: true };
  z.map.delete(key);
  z.map.set(key, e);
  return { e, stale: false };
}

/**
 * allocate an entry: at once, or (unless `safe`) after dropping old
 * entries; [allocated, forcible]
 */
function insert(z: ZoneStore, key: string, value: [ShValue, number], expires: number, safe: boolean, now: number): [boolean, boolean] {
  const bytes = entryBytes(key, value[0]);
  if (z.fits(bytes)) return [z.put(key, value, expires, bytes), false];
  if (safe) return [false, false];
  let forcible = false;
  for (let i = 0; i < 30; i++) {
    if (reclaim(z, 0, now) === 0) break;
    forcible = true;
    if (z.fits(bytes)) return [z.put(key, value, expires, bytes), true];
  }
  return [false, forcible];
}

export interface StoreArg {
  /** 0 set, 1 add, 2 replace; | 4 safe (ngx_lua's op bits) */
  op: number;
  /** null deletes */
  v: ShValue | null;
  /** ms to live, 0 forever */
  ttl: number;
  flags: number;
}

const ADD = 1;
const REPLACE = 2;
const SAFE = 4;

export interface IncrArg {
  delta: number;
  /** null: a missing key is "not found" */
  init: number | null;
  /** ms to live of an entry incr creates, 0 forever */
  ttl: number;
}

/** register the ops (module.ts, at load: every process that may own a zone has them) */
export function registerShdictOps(): void {
  /** ngx_http_lua_ffi_shdict_store: [ok, err, forcible] */
  zoneOp('shdict.store', (z, key, a, now) => {
    const { op, v, ttl, flags } = a as unknown as StoreArg;
    if (v === null && op & (ADD | REPLACE)) return [false, 'attempt to add or replace nil values', false];
    reclaim(z, 1, now);
    const found = lookup(z, key, now);
    if (op & REPLACE && (found === undefined || found.stale)) return [false, 'not found', false];
    if (op & ADD && found !== undefined && !found.stale) return [false, 'exists', false];
    if (found !== undefined) drop(z, key);
    if (v === null) return [true, null, false];
    const [ok, forcible] = insert(z, key, [v, flags], ttl > 0 ? now + ttl : 0, (op & SAFE) !== 0, now);
    return ok ? [true, null, forcible] : [false, 'no memory', forcible];
  });

  /** ngx_http_lua_ffi_shdict_get: null, or [value, flags, stale] */
  zoneOp('shdict.get', (z, key, stale, now) => {
    if (stale !== true) reclaim(z, 1, now);
    const found = lookup(z, key, now);
    if (found === undefined || (found.stale && stale !== true)) return null;
    const [v, flags] = found.e.value as Stored;
    if (Array.isArray(v)) return [null, 0, false, 'value is a list'];
    return [v, flags, found.stale];
  });

  /** ngx_http_lua_ffi_shdict_incr: [value, err, forcible] */
  zoneOp('shdict.incr', (z, key, a, now) => {
    const { delta, init, ttl } = a as unknown as IncrArg;
    reclaim(z, 1, now);
    const found = lookup(z, key, now);
    if (found !== undefined && !found.stale) {
      const s = found.e.value as Stored;
      if (typeof s[0] !== 'number') return [null, 'not a number', false];
      s[0] += delta;
      return [s[0], null, false];
    }
    if (init === null) return [null, 'not found', false];
    if (found !== undefined) drop(z, key);
    const v = init + delta;
    const [ok, forcible] = insert(z, key, [v, 0], ttl > 0 ? now + ttl : 0, false, now);
    return ok ? [v, null, forcible] : [null, 'no memory', forcible];
  });

  /** ngx_http_lua_ffi_shdict_flush_all: every entry expires now (they stay, stale, until reclaimed) */
  zoneOp('shdict.flush_all', (z, _k, _a, now) => {
    for (const e of z.map.values()) e.expires = 1;
    reclaim(z, 0, now);
    return null;
  });

  /** flush_expired(max): the number reclaimed, oldest first */
  zoneOp('shdict.flush_expired', (z, _k, max, now) => {
    let freed = 0;
    for (const [k, e] of z.map) {
      if (!expired(e, now)) continue;
      drop(z, k);
      if (++freed === max) break;
    }
    return freed;
  });

  /** get_keys(max): live keys, least recently used first; max 0 = all */
  zoneOp('shdict.get_keys', (z, _k, max, now) => {
    const out: ZoneValue[] = [];
    for (const [k, e] of z.map) {
      if (expired(e, now)) continue;
      out.push(k);
      if (out.length === max) break;
    }
    return out;
  });

  /** ttl: ms left (0 forever, negative when stale), null when absent (ngx_http_lua_shdict_peek: no LRU move) */
  zoneOp('shdict.ttl', (z, key, _a, now) => {
    const e = z.map.get(key);
    if (e === undefined) return null;
    return e.expires === 0 ? 0 : e.expires - now;
  });

  /** expire(key, ms): false when absent */
  zoneOp('shdict.expire', (z, key, ms, now) => {
    const e = z.map.get(key);
    if (e === undefined) return false;
    e.expires = (ms as number) > 0 ? now + (ms as number) : 0;
    return true;
  });

  /** free_space: the zone's free pages, in bytes (ngx_lua: pfree * pagesize) */
  zoneOp('shdict.free_space', (z) => z.freePages() * 4096);

  /** lpush / rpush (ngx_http_lua_shdict_push_helper): [length] or [null|false, err] */
  zoneOp('shdict.push', (z, key, a, now) => {
    const { left, v } = a as { left: boolean; v: ShValue };
    reclaim(z, 1, now);
    const found = lookup(z, key, now);
    let list: ShValue[] | undefined;
    if (found !== undefined) {
      const s = found.e.value as Stored;
      if (!Array.isArray(s[0])) {
        if (!found.stale) return [null, 'value not a list'];
        drop(z, key);
      } else {
        list = s[0];
        if (found.stale) {
          // an expired list is emptied and reused, made the most recent
          for (const x of list) z.free(elemBytes(x));
          list.length = 0;
          found.e.expires = 0;
          z.map.delete(key);
          z.map.set(key, found.e);
        }
      }
    }
    if (list === undefined) {
      list = [];
      const head = NODE_HEAD + key.length + 16;
      if (!z.fits(head)) return [false, 'no memory'];
      z.put(key, [list, 0], 0, head);
    }
    if (!z.alloc(elemBytes(v))) {
      if (list.length === 0) drop(z, key);
      return [null, 'no memory'];
    }
    if (left) list.unshift(v);
    else list.push(v);
    return [list.length];
  });

  /** lpop / rpop: [value] ([null] when absent) or [null, err] */
  zoneOp('shdict.pop', (z, key, left, now) => {
    reclaim(z, 1, now);
    const found = lookup(z, key, now);
    if (found === undefined || found.stale) return [null];
    const list = (found.e.value as Stored)[0];
    if (!Array.isArray(list)) return [null, 'value not a list'];
    const v = left === true ? list.shift()! : list.pop()!;
    z.free(elemBytes(v));
    if (list.length === 0) drop(z, key);
    return [v];
  });

  /** llen: [length] (0 when absent) or [null, err] */
  zoneOp('shdict.llen', (z, key, _a, now) => {
    reclaim(z, 1, now);
    const found = lookup(z, key, now);
    if (found === undefined || found.stale) return [0];
    const list = (found.e.value as Stored)[0];
    if (!Array.isArray(list)) return [null, 'value not a list'];
    return [list.length];
  });
}
