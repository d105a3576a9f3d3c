import type { Conf, Cycle } from '../conf/parser.js';
import { ConfError } from '../conf/errors.js';
import { Zone, ZoneStore } from '../core/zones.js';

/*
 * The configuration side of shared zones (ngx_shared_memory_add and the
 * zone check of ngx_init_cycle): a zone is declared with a size by one
 * directive (limit_req_zone) and referenced by name, size 0, by others
 * (limit_req), in any order; each zone belongs to one module (its tag).
 * After the whole configuration is read, a zone still without a size is
 * nginx's `zero size shared memory zone "NAME"` (checkZones).
 */

export interface ShmZone {
  name: string;
  size: number;
  tag: string;
  /** the module's state for the zone (limit_req's key and rate), set by the declaring directive */
  data: unknown;
  /** the byte sizes of what the module allocates in the zone before any entry (its header, its log context) */
  reserved: number[];
  /** the runtime zone, made once the size is known */
  zone: Zone | undefined;
  /** the key the declaring directive bound (a reload may not change it while the zone is reused) */
  key: string | undefined;
  /** how nginx names the zone in that message (`limit_req`, `limit_conn_zone`) */
  label: string;
}

const KEY = 'shm.zones';

export function zonesOf(cycle: Cycle): ShmZone[] {
  let list = cycle.state.get(KEY) as ShmZone[] | undefined;
  if (list === undefined) cycle.state.set(KEY, (list = []));
  return list;
}

/** ngx_shared_memory_add: the zone of that name, declared now if new */
export function sharedZoneAdd(cf: Conf, name: string, size: number, tag: string): ShmZone {
  const list = zonesOf(cf.cycle);
  for (const z of list) {
    if (z.name !== name) continue;
    if (z.tag !== tag) throw cf.error(`the shared memory zone "${name}" is already declared for a different use`);
    if (z.size === 0) z.size = size;
    if (size && size !== z.size) {
      throw cf.error(`the size ${size} of shared memory zone "${name}" conflicts with already declared size ${z.size}`);
    }
    return z;
  }
  const z: ShmZone = { name, size, tag, data: undefined, reserved: [], zone: undefined, key: undefined, label: tag };
  list.push(z);
  return z;
}

/** the runtime zone of a declared one (after checkZones gave every zone its size) */
export function runtimeZone(z: ShmZone): Zone {
  return (z.zone ??= new Zone(z.name, z.size, z.reserved));
}

/** ngx_init_cycle's check, after the configuration is read: every zone needs a size */
export function checkZones(cycle: Cycle): void {
  for (const z of zonesOf(cycle)) {
    if (z.size === 0) {
      const e = new ConfError(`zero size shared memory zone "${z.name}"`);
      e.afterParse = true;
      throw e;
    }
    // the zone's own header must fit in it (ngx_init_zone_pool, then the module's init_zone)
    if (new ZoneStore(z.name, z.size, z.reserved).short) {
      const e = new ConfError('ngx_slab_alloc() failed: no memory', undefined, undefined, 'crit');
      e.afterParse = true;
      throw e;
    }
  }
}

/**
 * A reload keeps a zone whose name, size and use are unchanged (its
 * contents live on); the key it is bound to may not change then (nginx's
 * init_zone check, logged without a place). The message, or undefined.
 */
export function zoneReuseError(old: Cycle, next: Cycle): string | undefined {
  const before = new Map(zonesOf(old).map((z) => [z.name, z]));
  for (const z of zonesOf(next)) {
    const o = before.get(z.name);
    if (o === undefined || o.tag !== z.tag || o.size !== z.size) continue;
    if (o.key !== undefined && z.key !== undefined && o.key !== z.key) {
      return `${z.label} "${z.name}" uses the "${z.key}" key while previously it used the "${o.key}" key`;
    }
  }
  return undefined;
}
