import t from 'tap';
import { ReusableQueue, type Reusable } from '../lib/http/reusable_queue.js';

/*
 * The reusable-connections queue (lib/http/reusable_queue.ts): oldest first,
 * a connection queued again keeps its place, one leaving from anywhere
 * unlinks cleanly; what worker_connections' eviction relies on (the
 * eviction itself is tested end to end with the worker_connections tests).
 */

interface C extends Reusable {
  name: string;
}
const conn = (name: string): C => ({ name, rqPrev: undefined, rqNext: undefined, rqIn: false });

function drain(q: ReusableQueue<C>): string[] {
  const out: string[] = [];
  for (let c = q.first(); c !== undefined; c = q.first()) {
    out.push(c.name);
    q.delete(c);
  }
  return out;
}

t.test('oldest first; adding again keeps the place; deleting anywhere', async (t) => {
  const q = new ReusableQueue<C>();
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(conn) as [C, C, C, C];
  q.add(a);
  q.add(b);
  q.add(c);
  q.add(a);
  t.equal(q.size, 3, 'a queued twice counts once');
  q.delete(b);
  q.delete(b);
  t.equal(q.size, 2, 'deleting twice is harmless');
  q.add(d);
  q.add(b);
  t.same(drain(q), ['a', 'c', 'd', 'b'], 'order of (first) arrival');
  t.equal(q.size, 0);
  t.equal(q.first(), undefined);
  q.add(c);
  q.delete(c);
  q.add(a);
  t.same(drain(q), ['a'], 'head and tail reset when it empties');
  q.add(a);
  q.add(b);
  q.add(c);
  q.delete(c);
  q.add(d);
  q.delete(a);
  t.same(drain(q), ['b', 'd'], 'deleting the tail and the head relinks');
  t.notOk(a.rqIn || b.rqIn || c.rqIn || d.rqIn, 'none left marked');
});
