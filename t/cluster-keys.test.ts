import t from 'tap';
import { startRedis } from './helpers/redis.js';
import { CROSS_SLOT, NO_SLOT, commandTable, routeOf, splitCommands, type CommandTable } from '../lib/upstream/cluster/commands.js';
import { parseResp } from '../lib/upstream/cluster/resp_value.js';
import { keySlot } from '../lib/upstream/cluster/slot.js';

/*
 * Key positions and slots of requests (lib/upstream/cluster/commands.ts)
 * with the command table of a real redis-server (COMMAND), checked
 * against what that server says itself: COMMAND GETKEYS for the keys,
 * CLUSTER KEYSLOT is checked in t/cluster-routing.test.ts.
 */

const enc = (...args: string[]): Buffer => Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`, 'latin1');

t.test('routes match COMMAND GETKEYS of a real Redis', async (t) => {
  const redis = await startRedis(t);
  const raw = Buffer.from(await redis.command(['COMMAND']), 'latin1');
  const table = commandTable(parseResp(raw, 0)![0]) as CommandTable;
  t.ok(table.size > 200, `${table.size} commands in the table`);

  const cases: string[][] = [
    ['GET', 'a'],
    ['SET', '{u}x', 'v', 'EX', '10'],
    ['MSET', '{u}a', '1', '{u}b', '2'],
    ['MSET', 'a', '1', 'b', '2'],
    ['MGET', '{t}1', '{t}2', '{t}3'],
    ['EVAL', 'return 1', '2', '{k}1', '{k}2', 'arg'],
    ['EVALSHA', 'abc', '0', 'x'],
    ['ZUNIONSTORE', '{z}d', '2', '{z}a', '{z}b', 'WEIGHTS', '1', '2'],
    ['ZUNION', '2', 'a', 'b'],
    ['XREAD', 'COUNT', '2', 'STREAMS', '{s}1', '{s}2', '0', '0'],
    ['OBJECT', 'ENCODING', 'k'],
    ['XINFO', 'STREAM', 's'],
    ['LMPOP', '2', '{l}a', '{l}b', 'LEFT'],
    ['RENAME', 'a', 'b'],
    ['SORT', 'k', 'LIMIT', '0', '1'],
  ];
  for (const c of cases) {
    const r = routeOf(enc(...c), table);
    const keys = (await redis.command(['COMMAND', 'GETKEYS', ...c])).split('\r\n').filter((_, i, a) => i > 0 && a[i - 1]!.startsWith('$'));
    const slots = new Set(keys.map((k) => keySlot(Buffer.from(k))));
    const want = slots.size === 0 ? NO_SLOT : slots.size > 1 ? CROSS_SLOT : [...slots][0];
    t.equal(r.slot, want, `${c.join(' ')}: keys ${JSON.stringify(keys)}`);
  }
  t.equal(routeOf(enc('GET', 'a'), table).readonly, true, 'GET is read-only');
  t.equal(routeOf(Buffer.concat([enc('SELECT', '0'), enc('GET', 'a')]), table).readonly, true, 'SELECT does not make a request a write');
  t.equal(routeOf(Buffer.concat([enc('GET', 'a'), enc('SET', 'a', '1')]), table).readonly, false);
  t.equal(routeOf(enc('PING'), table).slot, NO_SLOT);
});

t.test('raw queries: inline and RESP commands', async (t) => {
  t.same(
    splitCommands(Buffer.from('get a\r\nset "b c" \'d\'\r\n*2\r\n$3\r\nget\r\n$1\r\nz\r\n')),
    [[Buffer.from('get'), Buffer.from('a')], [Buffer.from('set'), Buffer.from('b c'), Buffer.from('d')], [Buffer.from('get'), Buffer.from('z')]],
  );
  t.equal(splitCommands(Buffer.from('*2\r\n$3\r\nget\r\n$9\r\nz\r\n')), undefined, 'a bulk longer than the bytes: not commands');
  // before the table arrives, the first argument is taken as the key
  t.equal(routeOf(Buffer.from('get {x}1\r\nget {x}2\r\n'), undefined).slot, keySlot(Buffer.from('x')));
  t.equal(routeOf(Buffer.from('get a\r\nget b\r\n'), undefined).slot, CROSS_SLOT);
});

t.test('hash tags', async (t) => {
  t.equal(keySlot(Buffer.from('{user1000}.following')), keySlot(Buffer.from('{user1000}.followers')));
  t.equal(keySlot(Buffer.from('foo{}{bar}')), keySlot(Buffer.from('foo{}{bar}')), 'an empty tag hashes the whole key');
  t.not(keySlot(Buffer.from('foo{}{bar}')), keySlot(Buffer.from('bar')));
  t.equal(keySlot(Buffer.from('foo{{bar}}zap')), keySlot(Buffer.from('{bar')), 'the tag runs from the first { to the next }');
  t.equal(keySlot(Buffer.from('123456789')), 12739, 'CRC16/XMODEM("123456789") = 0x31C3 → 12739');
});
