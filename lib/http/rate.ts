/*
 * limit_rate as nginx's write filter applies it (ngx_http_write_filter):
 * by second N of the request (whole seconds, from its start second) the
 * response may have sent rate * (N + 1) bytes past limit_rate_after, and
 * each send is followed by a pause of its bytes / rate. The response's
 * bytes (header included, as nginx's c->sent) queue here while the budget
 * is spent; the producer is held back (write() returns false) until the
 * queue is out and the socket is not full, so memory stays at one chunk.
 */

/** what the gate needs from the connection */
export interface RateSink {
  write(b: Buffer): boolean;
  congested(): boolean;
  /** the producer may go on (the queue is out) */
  resumed(): void;
}

export class RateGate {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  /** bytes sent through the gate */
  private sent = 0;
  private delayedUntil = 0;
  private timer: NodeJS.Timeout | undefined = undefined;
  private emptyCbs: Array<() => void> | undefined = undefined;
  private stopped = false;
  private readonly startSec: number;
  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.flush();
  };

  constructor(
    private readonly sink: RateSink,
    /** bytes per second */
    private readonly rate: number,
    /** limit_rate_after */
    private readonly after: number,
    startMs: number,
  ) {
    this.startSec = Math.floor(startMs / 1000);
  }

  /** false: the producer waits for resumed() */
  write(b: Buffer): boolean {
    if (this.stopped) return false;
    if (b.length === 0) return this.queued === 0 && !this.sink.congested();
    this.queue.push(b);
    this.queued += b.length;
    if (this.timer === undefined) this.flush();
    return this.queued === 0 && !this.sink.congested();
  }

  /** bytes still held back */
  pending(): boolean {
    return this.queued > 0;
  }

  /** cb runs once every queued byte went to the socket (at once when none is queued) */
  whenEmpty(cb: () => void): void {
    if (this.queued === 0) cb();
    else (this.emptyCbs ??= []).push(cb);
  }

  /** the response ended early (client gone): nothing more is sent */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.queued = 0;
    this.emptyCbs = undefined;
  }

  private flush(): void {
    const now = Date.now();
    while (this.queued > 0 && !this.stopped) {
      if (this.delayedUntil > now) return this.arm(this.delayedUntil - now);
      // ngx_http_write_filter: limit = rate * (now_sec - start_sec + 1) - (sent - after)
      const limit = this.rate * (Math.floor(now / 1000) - this.startSec + 1) - (this.sent - this.after);
      if (limit <= 0) {
        this.delayedUntil = now + Math.floor((-limit * 1000) / this.rate) + 1;
        continue;
      }
      const before = this.sent;
      let budget = limit;
      while (budget > 0 && this.queue.length > 0) {
        const head = this.queue[0]!;
        if (head.length <= budget) {
          this.queue.shift();
          this.sink.write(head);
          budget -= head.length;
          this.sent += head.length;
          this.queued -= head.length;
        } else {
          this.queue[0] = head.subarray(budget);
          this.sink.write(head.subarray(0, budget));
          this.sent += budget;
          this.queued -= budget;
          budget = 0;
        }
      }
      // the pause after a send: its bytes past limit_rate_after, at the rate
      const counted = Math.max(this.sent - this.after, 0) - Math.max(before - this.after, 0);
      const delay = Math.floor((counted * 1000) / this.rate);
      if (delay > 0) this.delayedUntil = now + delay;
    }
    if (this.queued === 0 && !this.stopped) {
      const cbs = this.emptyCbs;
      this.emptyCbs = undefined;
      if (cbs !== undefined) for (const cb of cbs) cb();
      this.sink.resumed();
    }
  }

  private arm(ms: number): void {
    if (this.timer === undefined) this.timer = setTimeout(this.onTimer, ms);
  }
}
