import t from 'tap';
import { ASYNC, Zone, ZoneStore, runZoneOp, slabChunk } from '../lib/core/zones.js';

/*
 * The zone store and its dict operations (lib/core/zones.ts), run as the
 * owner runs them: what ngx.shared.DICT-like users and limit_req/limit_conn
 * build on. Expiry, incr with an initial value, compare-and-update, LRU
 * eviction under the slab budget, and nginx's chunk sizes.
 */

t.test('slab chunks and pages', async (t) => {
  t.same([1, 8, 9, 84, 128, 129, 2048, 2049, 5000].map(slabChunk), [8, 8, 16, 128, 128, 256, 2048, 4096, 8192]);
  t.equal(new ZoneStore('a', 32768).pages, 7, '32k: 7 pages, as nginx');
  t.equal(new ZoneStore('b', 65536).pages, 15, '64k: 15 pages');
  t.equal(new ZoneStore('c', 1048576).pages, 254, '1m: 254 pages');
});

t.test('get / set / add / delete with expiry', async (t) => {
  const z = new ZoneStore('d', 65536);
  t.same(runZoneOp(z, 'set', 'k', { value: 'v', ttl: 100 }, 1000), [true, null]);
  t.equal(runZoneOp(z, 'get', 'k', null, 1050), 'v');
  t.equal(runZoneOp(z, 'get', 'k', null, 1100), null, 'expired at its ttl');
  t.same(runZoneOp(z, 'add', 'k', { value: 1, ttl: 0 }, 1200), [true, null], 'add after expiry');
  t.same(runZoneOp(z, 'add', 'k', { value: 2, ttl: 0 }, 1300), [false, 'exists']);
  t.equal(runZoneOp(z, 'delete', 'k', null, 1400), true);
  t.equal(runZoneOp(z, 'get', 'k', null, 1400), null);
  t.same(runZoneOp(z, 'set', 'k', { value: 'x', ttl: 0 }, 1), [true, null]);
  t.same(runZoneOp(z, 'set', 'k', { value: null, ttl: 0 }, 1), [true, null], 'set nil deletes');
  t.equal(runZoneOp(z, 'get', 'k', null, 1), null);
});

t.test('incr and compare-and-update', async (t) => {
  const z = new ZoneStore('e', 65536);
  t.same(runZoneOp(z, 'incr', 'n', { delta: 1, init: null, initTtl: 0 }, 0), [null, 'not found']);
  t.same(runZoneOp(z, 'incr', 'n', { delta: 2, init: 10, initTtl: 0 }, 0), [12, null]);
  t.same(runZoneOp(z, 'incr', 'n', { delta: -5, init: 10, initTtl: 0 }, 0), [7, null]);
  runZoneOp(z, 'set', 's', { value: 'str', ttl: 0 }, 0);
  t.same(runZoneOp(z, 'incr', 's', { delta: 1, init: 0, initTtl: 0 }, 0), [null, 'not a number']);
  t.same(runZoneOp(z, 'cas', 'n', { old: 7, value: 8, ttl: 0 }, 0), [true, 8]);
  t.same(runZoneOp(z, 'cas', 'n', { old: 7, value: 9, ttl: 0 }, 0), [false, 8], 'a stale compare fails and says the current value');
  t.same(runZoneOp(z, 'cas', 'new', { old: null, value: [1, 2], ttl: 0 }, 0), [true, [1, 2]], 'cas from nothing creates');
});

t.test('a full dict drops its least recently used entries', async (t) => {
  const z = new ZoneStore('f', 32768);
  let n = 0;
  for (; n < 1000; n++) runZoneOp(z, 'set', `key${n}`, { value: 'x'.repeat(40), ttl: 0 }, 0);
  t.ok(z.map.size > 50 && z.map.size < 1000, `bounded by the zone (${z.map.size} kept)`);
  t.equal(runZoneOp(z, 'get', 'key0', null, 0), null, 'the oldest went');
  t.equal(runZoneOp(z, 'get', `key${n - 1}`, null, 0), 'x'.repeat(40), 'the newest stayed');
  t.same(runZoneOp(z, 'set', 'huge', { value: 'y'.repeat(40000), ttl: 0 }, 0), [false, 'no memory'], 'bigger than the zone');
});

t.test('a local zone answers at once; an unknown operation is an error', async (t) => {
  const zone = new Zone('g', 32768, []);
  const got = zone.run('incr', 'c', { delta: 1, init: 0, initTtl: 0 }, () => t.fail('no callback for a local zone'));
  t.not(got, ASYNC);
  t.same(got, [1, null]);
  t.throws(() => zone.run('nope', 'c', null, () => {}), { code: 'ERR_ZONE_OP' });
});
