/*
 * nginx's reusable-connections queue (ngx_reusable_connection): the
 * connections waiting for a request, oldest first, taken from the front
 * when worker_connections runs out. Intrusive (the links are fields of the
 * connection), so a connection going busy and idle again, once per
 * request, allocates nothing: a Set's add/delete churn leaves holes in its
 * hash table that it rehashes away now and then.
 */

export interface Reusable {
  rqPrev: Reusable | undefined;
  rqNext: Reusable | undefined;
  rqIn: boolean;
}

export class ReusableQueue<T extends Reusable> {
  private head: T | undefined = undefined;
  private tail: T | undefined = undefined;
  size = 0;

  /** at the back, unless queued already (where it is stays: nginx does not requeue a reusable one) */
  add(c: T): void {
    if (c.rqIn) return;
    c.rqIn = true;
    c.rqNext = undefined;
    c.rqPrev = this.tail;
    if (this.tail === undefined) this.head = c;
    else this.tail.rqNext = c;
    this.tail = c;
    this.size++;
  }

  delete(c: T): void {
    if (!c.rqIn) return;
    c.rqIn = false;
    const p = c.rqPrev as T | undefined;
    const n = c.rqNext as T | undefined;
    if (p === undefined) this.head = n;
    else p.rqNext = n;
    if (n === undefined) this.tail = p;
    else n.rqPrev = p;
    c.rqPrev = c.rqNext = undefined;
    this.size--;
  }

  /** the oldest, or undefined */
  first(): T | undefined {
    return this.head;
  }
}
