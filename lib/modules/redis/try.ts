import type { Socket } from 'node:net';
import { makeRoom } from '../../core/slots.js';
import { ConnPhase, ConnTry } from '../../upstream/conn_try.js';
import type { PeerTarget } from '../../upstream/peers.js';
import type { Failure } from '../../upstream/run.js';
import { openUpstreamSocket } from '../../upstream/ssl.js';
import type { RedisRun } from './handler.js';
import { RedisReading, type ReadingOwner } from './reading.js';

/*
 * One exchange with one Redis peer on a connection of its own, as nginx's
 * non-buffered upstream runs ngx_http_redis: the generic try (ConnTry:
 * connect or take a pooled connection whose state tag matches, write the
 * command once, timeouts, log lines) with the reply read by reading.ts,
 * the socket paused while the client is slow. A connection goes back to
 * the keepalive cache only after a complete reply with nothing after it (a
 * not-found one too, as the module marks it); a HEAD or 416 answer closes
 * it (nginx finalizes the upstream there); a redis_bind connection is the
 * request's own and is never kept.
 */

export class RedisTry extends ConnTry implements ReadingOwner {
  readonly run: RedisRun;
  private readonly pooled: boolean;
  private readonly reading = new RedisReading(this);
  private readonly onDrained = (): void => {
    this.reading.waiting = false;
    if (!this.isDone()) this.resumeReading();
  };

  constructor(run: RedisRun, peer: PeerTarget) {
    super(run, run, peer, run.rlcf);
    this.run = run;
    this.pooled = run.bind === undefined;
    this.sslAction = run.ssl !== undefined;
    this.begin(run.pool, run.poolKey, this.pooled);
  }

  protected openSocket(): Socket | undefined {
    // ngx_event_connect_peer: none when every worker_connections slot is taken
    if (!makeRoom()) return undefined;
    const run = this.run;
    const sock = openUpstreamSocket(this.peer as PeerTarget, run.bind, run.ssl, run.sslName);
    if (run.socketKeepalive) sock.setKeepAlive(true);
    return sock;
  }

  protected request(): Buffer {
    return this.run.query;
  }

  protected onData(chunk: Buffer): void {
    this.reading.data(chunk);
  }

  protected override isStarted(): boolean {
    return this.reading.started;
  }

  override settle(status: number, complete: boolean, reusable: boolean, failure: Failure | undefined, aborted: boolean): void {
    if (this.isDone()) return;
    this.reading.release();
    super.settle(status, complete, reusable && this.pooled, failure, aborted);
  }

  override fail(status: number, failure: Failure, msg: string): void {
    super.fail(status, failure, msg);
  }

  // ---- ReadingOwner

  bodyStarted(): void {
    this.phase = ConnPhase.Body;
  }

  /* a full client socket pauses Redis until it drains */
  pushBack(): void {
    this.pauseReading();
    this.run.r.onDrain(this.onDrained);
  }
}
