/*
 * Shared zones (nginx's shared memory zones: limit_req_zone,
 * limit_conn_zone, lua_shared_dict), docs/behaviour.md §"Shared zones".
 *
 * Node has no memory shared between processes, so a zone lives in ONE
 * process, its owner, and every operation on it runs there, whole, one at
 * a time: that is what nginx's zone mutex gives. An operation is a named
 * function registered here by the module that needs it (zoneOp), run at
 * the owner as op(store, key, arg, now) → result. Results and arguments
 * are JSON-safe values (they may cross the IPC channel).
 *
 *   one worker (or no master): the worker owns its zones; a call runs at
 *     once, synchronously (the fast path: no message, no promise).
 *   N workers: the master owns the zones (lib/process/zones.ts installs
 *     the transport); a call is one message to the master and one back.
 *
 * Callers use Zone.run(op, key, arg, done): it returns the result when it
 * ran at once, or ASYNC, and then done(result) is called later.
 *
 * The store is a key → entry map kept in LRU order (a Map's insertion
 * order: touching an entry re-inserts it), with an expiry per entry and a
 * byte budget that approximates nginx's slab allocator (each module says
 * what an entry costs; see alloc()).
 */

export type ZoneValue = number | string | boolean | null | ZoneValue[] | { [k: string]: ZoneValue };

export interface ZoneEntry {
  value: ZoneValue;
  /** absolute ms (Date.now() clock) at which the entry is gone; 0 never */
  expires: number;
  /** bytes this entry takes from the zone (its slab chunk) */
  bytes: number;
}

/*
 * Zone sizes are nginx's bytes, spent as nginx's slab allocator spends
 * them (ngx_slab.c): the pool header, a 24-byte page descriptor per page,
 * then 4 KiB pages aligned to a page; each page serves one chunk size (a
 * power of two from 8 to 2048; chunks under 64 bytes keep their bitmap in
 * the page's first chunks); a larger allocation takes whole pages. A
 * store counts chunks per size and the pages they fill, so a zone holds
 * as many entries as nginx's (tested against nginx: t/site-zones.test.ts).
 */
const PAGE = 4096;
/** sizeof(ngx_slab_page_t) on 64-bit */
const PAGE_DESC = 24;
/** sizeof(ngx_slab_pool_t) and the slot and stats tables (9 chunk sizes) before the page descriptors */
const POOL_HEADER = 200 + 9 * 24 + 9 * 32;

/**
 * The chunk nginx's slab allocator gives a request of `size` bytes: the
 * next power of two from 8 up to half a page, then whole pages.
 */
export function slabChunk(size: number): number {
  if (size > PAGE / 2) return Math.ceil(size / PAGE) * PAGE;
  let c = 8;
  while (c < size) c <<= 1;
  return c;
}

/** the pages of a zone of `size` bytes (ngx_slab_init) */
function zonePages(size: number): number {
  let pages = Math.floor((size - POOL_HEADER) / (PAGE + PAGE_DESC));
  const start = Math.ceil((POOL_HEADER + pages * PAGE_DESC) / PAGE) * PAGE;
  pages = Math.min(pages, Math.floor((size - start) / PAGE));
  return Math.max(0, pages);
}

/** pages that `n` chunks of size `chunk` fill */
function pagesFor(chunk: number, n: number): number {
  if (n <= 0) return 0;
  if (chunk > PAGE / 2) return n * (chunk / PAGE);
  const inPage = PAGE / chunk;
  // under 64 bytes the page's bitmap takes its first chunks
  const perPage = chunk < 64 ? inPage - Math.ceil(inPage / 8 / chunk) : inPage;
  return Math.ceil(n / perPage);
}

export class ZoneStore {
  readonly name: string;
  readonly size: number;
  /** the zone's pages */
  readonly pages: number;
  /** pages in use */
  private usedPages = 0;
  /** chunk size → chunks in use */
  private readonly chunks = new Map<number, number>();
  /** LRU order: the first entry is the least recently used */
  readonly map = new Map<string, ZoneEntry>();
  /** module state that is not an entry (nginx keeps it in the zone's own header) */
  readonly meta = new Map<string, ZoneValue>();
  /** what the module allocates first did not fit (nginx: `ngx_slab_alloc() failed: no memory` as the zone starts) */
  readonly short: boolean = false;

  /** `reserved`: the byte sizes of what the module allocates in the zone before any entry */
  constructor(name: string, size: number, reserved: number[] = []) {
    this.name = name;
    this.size = size;
    this.pages = zonePages(size);
    for (const r of reserved) if (!this.take(slabChunk(r))) this.short = true;
  }

  /** pages one more chunk of this size would add */
  private morePages(chunk: number): number {
    const n = this.chunks.get(chunk) ?? 0;
    return pagesFor(chunk, n + 1) - pagesFor(chunk, n);
  }

  private take(chunk: number): boolean {
    const more = this.morePages(chunk);
    if (this.usedPages + more > this.pages) return false;
    this.usedPages += more;
    this.chunks.set(chunk, (this.chunks.get(chunk) ?? 0) + 1);
    return true;
  }

  private give(chunk: number): void {
    const n = this.chunks.get(chunk) ?? 0;
    if (n <= 0) return;
    this.usedPages -= pagesFor(chunk, n) - pagesFor(chunk, n - 1);
    this.chunks.set(chunk, n - 1);
  }

  /** the live entry for key (an expired one is dropped), without touching its LRU place */
  peek(key: string, now: number): ZoneEntry | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.expires !== 0 && e.expires <= now) {
      this.remove(key);
      return undefined;
    }
    return e;
  }

  /** the live entry, moved to the most recently used end */
  get(key: string, now: number): ZoneEntry | undefined {
    const e = this.peek(key, now);
    if (e === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, e);
    return e;
  }

  /** take a chunk for `bytes` that is not an entry (a list's element); false when it does not fit */
  alloc(bytes: number): boolean {
    return this.take(slabChunk(bytes));
  }

  /** give back a chunk alloc() took */
  free(bytes: number): void {
    this.give(slabChunk(bytes));
  }

  /** pages no chunk uses (ngx_slab's pfree) */
  freePages(): number {
    return this.pages - this.usedPages;
  }

  /** room for an entry of `bytes` (a chunk size)? (no eviction: the caller decides what to drop) */
  fits(bytes: number): boolean {
    return this.usedPages + this.morePages(slabChunk(bytes)) <= this.pages;
  }

  /** add or replace an entry; false when it does not fit */
  put(key: string, value: ZoneValue, expires: number, bytes: number): boolean {
    const chunk = slabChunk(bytes);
    const old = this.map.get(key);
    if (old) this.give(old.bytes);
    if (!this.take(chunk)) {
      if (old) this.take(old.bytes);
      return false;
    }
    if (old) this.map.delete(key);
    this.map.set(key, { value, expires, bytes: chunk });
    return true;
  }

  remove(key: string): boolean {
    const e = this.map.get(key);
    if (e === undefined) return false;
    this.give(e.bytes);
    this.map.delete(key);
    return true;
  }

  /** the least recently used key, or undefined */
  oldest(): string | undefined {
    for (const k of this.map.keys()) return k;
    return undefined;
  }

  /** drop expired entries, oldest first, at most n of them */
  expireSome(now: number, n: number): void {
    for (const [k, e] of this.map) {
      if (n-- <= 0) return;
      if (e.expires !== 0 && e.expires <= now) this.remove(k);
    }
  }
}

/** an operation run at the zone's owner, atomically */
export type ZoneOp = (z: ZoneStore, key: string, arg: ZoneValue, now: number) => ZoneValue;

const ops = new Map<string, ZoneOp>();

/** register an operation (at module load, in every process: the master runs them too) */
export function zoneOp(name: string, fn: ZoneOp): void {
  ops.set(name, fn);
}

export class ZoneOpError extends Error {
  readonly code = 'ERR_ZONE_OP';
}

/** run a registered op on a store (the owner's side of a call) */
export function runZoneOp(z: ZoneStore, op: string, key: string, arg: ZoneValue, now = Date.now()): ZoneValue {
  const fn = ops.get(op);
  if (fn === undefined) throw new ZoneOpError(`unknown zone operation "${op}"`);
  return fn(z, key, arg, now);
}

/** a call that did not finish at once: the result comes through `done` */
export const ASYNC: unique symbol = Symbol('zone-async');

/** how a worker reaches zones it does not own (lib/process/zones.ts) */
export interface ZoneTransport {
  call(zone: string, op: string, key: string, arg: ZoneValue, done: (res: ZoneValue) => void): void;
}

let transport: ZoneTransport | undefined;
const local = new Map<string, ZoneStore>();

/** the process layer: zones live elsewhere (the master); undefined = here */
export function setZoneTransport(t: ZoneTransport | undefined): void {
  transport = t;
}

/** a zone as its users see it */
export class Zone {
  readonly name: string;
  readonly size: number;
  private readonly reserved: number[];

  constructor(name: string, size: number, reserved: number[]) {
    this.name = name;
    this.size = size;
    this.reserved = reserved;
  }

  /** this process's store (the owner's, when it is this process) */
  store(): ZoneStore {
    let s = local.get(this.name);
    if (s === undefined || s.size !== this.size) {
      s = new ZoneStore(this.name, this.size, this.reserved);
      local.set(this.name, s);
    }
    return s;
  }

  /** run op on key: the result at once, or ASYNC and done(result) later */
  run(op: string, key: string, arg: ZoneValue, done: (res: ZoneValue) => void): ZoneValue | typeof ASYNC {
    if (transport === undefined) return runZoneOp(this.store(), op, key, arg);
    transport.call(this.name, op, key, arg, done);
    return ASYNC;
  }
}

// ------------------------------------------------------------ dict operations
/*
 * The key → value operations a dict needs (ngx.shared.DICT's get, set,
 * add, incr, delete and a compare-and-update); limit_req and limit_conn
 * register their own (a leaky bucket step, a bounded counter), run the
 * same way.
 */

/** the bytes a dict entry takes: nginx's ngx_http_lua_shdict_node_t (rbtree node + header) + key + value */
function dictBytes(key: string, value: ZoneValue): number {
  const v = typeof value === 'string' ? Buffer.byteLength(value) : 8;
  return slabChunk(32 + 40 + Buffer.byteLength(key) + v);
}

/** make room for `bytes` by dropping the least recently used entries (at most 30, as lua's shdict) */
function evictFor(z: ZoneStore, bytes: number, now: number): boolean {
  z.expireSome(now, 2);
  for (let i = 0; i < 30 && !z.fits(bytes); i++) {
    const k = z.oldest();
    if (k === undefined) break;
    z.remove(k);
  }
  return z.fits(bytes);
}

interface SetArg {
  value: ZoneValue;
  /** ms to live; 0 forever */
  ttl: number;
}

const isSet = (a: ZoneValue): a is ZoneValue & SetArg => typeof a === 'object' && a !== null && !Array.isArray(a) && 'value' in a;

zoneOp('get', (z, key, _a, now) => {
  const e = z.get(key, now);
  return e === undefined ? null : e.value;
});

/** set: [ok, error] as ngx.shared.DICT:set (value null deletes) */
zoneOp('set', (z, key, a, now) => {
  if (!isSet(a)) return [false, 'bad argument'];
  if (a.value === null) {
    z.remove(key);
    return [true, null];
  }
  const bytes = dictBytes(key, a.value);
  z.remove(key);
  if (!z.fits(bytes) && !evictFor(z, bytes, now)) return [false, 'no memory'];
  z.put(key, a.value, a.ttl ? now + a.ttl : 0, bytes);
  return [true, null];
});

zoneOp('add', (z, key, a, now) => {
  if (!isSet(a)) return [false, 'bad argument'];
  if (z.peek(key, now) !== undefined) return [false, 'exists'];
  const bytes = dictBytes(key, a.value);
  if (!z.fits(bytes) && !evictFor(z, bytes, now)) return [false, 'no memory'];
  z.put(key, a.value, a.ttl ? now + a.ttl : 0, bytes);
  return [true, null];
});

zoneOp('delete', (z, key) => z.remove(key));

interface IncrArg {
  delta: number;
  /** the value a missing key starts from; null: a missing key is an error */
  init: number | null;
  /** ttl of an entry incr creates, ms (0 forever) */
  initTtl: number;
}

/** incr: [newValue, error] */
zoneOp('incr', (z, key, a, now) => {
  const { delta, init, initTtl } = a as unknown as IncrArg;
  const e = z.get(key, now);
  if (e === undefined) {
    if (init === null) return [null, 'not found'];
    const v = init + delta;
    const bytes = dictBytes(key, v);
    if (!z.fits(bytes) && !evictFor(z, bytes, now)) return [null, 'no memory'];
    z.put(key, v, initTtl ? now + initTtl : 0, bytes);
    return [v, null];
  }
  if (typeof e.value !== 'number') return [null, 'not a number'];
  e.value += delta;
  return [e.value, null];
});

/** compare-and-update: replace the value only if it is still `old` (by JSON equality); [ok, current] */
zoneOp('cas', (z, key, a, now) => {
  const { old, value, ttl } = a as { old: ZoneValue; value: ZoneValue; ttl: number };
  const e = z.get(key, now);
  const cur = e === undefined ? null : e.value;
  if (JSON.stringify(cur) !== JSON.stringify(old)) return [false, cur];
  const bytes = dictBytes(key, value);
  z.remove(key);
  if (!z.fits(bytes) && !evictFor(z, bytes, now)) return [false, cur];
  z.put(key, value, ttl ? now + ttl : 0, bytes);
  return [true, value];
});
