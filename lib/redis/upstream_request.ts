import net from 'node:net';
import type { Socket } from 'node:net';
import { ReplyScanner, ScanResult, isReplyType } from './scanner.js';
import { errnoText } from './errno.js';
import { noPool, type ConnectionPool } from './pool.js';

/*
 * One request to one Redis peer, as nginx's non-buffered upstream runs it
 * for redis2: connect, write the query once, read replies with the scanner
 * and stream the raw bytes to a sink, then decide whether the connection
 * may be kept. Log lines and statuses are nginx's.
 *
 * Reading follows nginx's fixed buffer of redis2_buffer_size bytes: each
 * step handles at most the room left in that buffer; the buffer is emptied
 * only while the sink keeps up. When the sink pushes back and the buffer is
 * full, the Redis socket is paused until the sink drains. That bounds memory
 * per request and also gives the `near pos N in "..."` of a malformed reply
 * the same base as nginx (the bytes the buffer holds).
 */

export type LogLevel = 'emerg' | 'alert' | 'crit' | 'error' | 'warn' | 'notice' | 'info' | 'debug';

export interface RedisPeer {
  /** `127.0.0.1:6379`, `[::1]:6379` or `unix:/path`: $upstream_addr and log text */
  name: string;
  host?: string;
  port?: number;
  /** unix socket path */
  path?: string;
}

/** Where the reply bytes go (the HTTP response, or a test). */
export interface ReplySink {
  /** the first byte arrived and is a reply type: send the status and headers */
  start(): void;
  /** reply bytes; false asks the request to stop reading until `onDrain` fires */
  write(chunk: Buffer): boolean;
  /** call `cb` once when the sink accepts data again */
  onDrain(cb: () => void): void;
}

export interface UpstreamRequestOptions {
  peer: RedisPeer;
  query: Buffer;
  /** replies expected: the number of queries, or redis2_raw_queries' N */
  expected: number;
  connectTimeout: number;
  sendTimeout: number;
  readTimeout: number;
  bufferSize: number;
  /** redis2_bind: local address (and port, 0 = any) of the connection; text for the log */
  bind?: { host: string; port: number; text: string };
  pool?: ConnectionPool;
  log(level: LogLevel, msg: string): void;
}

/** Why a try failed, in redis2_next_upstream's terms. */
export type Failure = 'error' | 'timeout' | 'invalid_response';

export interface UpstreamOutcome {
  /** $upstream_status: 200 once the reply started, else 502 / 504 / 500 */
  status: number;
  /** status and headers went to the sink */
  started: boolean;
  /** the response ended normally (possibly after a logged invalid reply or extra bytes) */
  complete: boolean;
  /** the connection could go back to a pool */
  reusable: boolean;
  /** set when the try failed (not complete) */
  failure?: Failure;
  /** the sink's side went away (abort) */
  aborted: boolean;
  /** the connection came from the keepalive cache */
  cached: boolean;
  /** the query was (at least partly) written: nginx's u->request_sent */
  sent: boolean;
  /** what the try was doing when it ended (the log's `while ...`) */
  action: string;
  /** ms from start to connected, undefined if never connected */
  connectTime: number | undefined;
  /** ms from start to the end of this try */
  responseTime: number;
}

export interface UpstreamRequest {
  readonly done: Promise<UpstreamOutcome>;
  /** the client went away: close the Redis connection (never reuse it) */
  abort(): void;
}

const enum Phase {
  Connecting,
  Sending,
  Reading,
  Finished,
}

const ACTION_CONNECT = 'connecting to upstream';
const ACTION_SEND = 'sending request to upstream';
const ACTION_HEADER = 'reading response header from upstream';
const ACTION_BODY = 'reading upstream';

function ignore(): void {}

/** Start the request now; its outcome settles `done`. */
export function startUpstreamRequest(o: UpstreamRequestOptions, sink: ReplySink): UpstreamRequest {
  const pool = o.pool ?? noPool;
  const t0 = performance.now();
  const scanner = new ReplyScanner(o.expected);
  let phase = Phase.Connecting;
  let started = false;
  let connectTime: number | undefined;
  let bodyRead = false;
  let timer: NodeJS.Timeout | undefined;
  let resolve!: (v: UpstreamOutcome) => void;
  const done = new Promise<UpstreamOutcome>((res) => (resolve = res));

  // nginx's u->buffer: the pieces it holds since it was last emptied
  let win: Buffer[] = [];
  let winLen = 0;
  let sinkBusy = false;
  let pending: Buffer | undefined;

  let sock: Socket;
  let sent = false;
  const reused = pool.acquire(o.peer.name);
  if (reused) {
    sock = reused;
  } else if (o.peer.path !== undefined) {
    sock = net.connect({ path: o.peer.path });
    pool.opened?.(o.peer.name, sock);
  } else {
    sock = net.connect({
      host: o.peer.host,
      port: o.peer.port ?? 0,
      localAddress: o.bind?.host,
      localPort: o.bind?.port || undefined,
    });
    pool.opened?.(o.peer.name, sock);
  }

  /* a function, so TypeScript does not narrow `phase` across calls that change it */
  function finished(): boolean {
    return phase === Phase.Finished;
  }

  function action(): string {
    switch (phase) {
      case Phase.Connecting:
        return ACTION_CONNECT;
      case Phase.Sending:
        return ACTION_SEND;
      default:
        // the first read is handled inside nginx's process_header
        return bodyRead ? ACTION_BODY : ACTION_HEADER;
    }
  }

  function arm(ms: number): void {
    if (timer) clearTimeout(timer);
    timer = setTimeout(onTimeout, ms);
  }

  function disarm(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
  }

  function detach(): void {
    disarm();
    sock.off('connect', onConnect);
    sock.off('data', onData);
    sock.off('end', onEnd);
    sock.off('error', onError);
    sock.off('close', onClose);
  }

  function settle(
    out: Omit<UpstreamOutcome, 'connectTime' | 'responseTime' | 'started' | 'aborted' | 'cached' | 'sent' | 'action'>,
    aborted = false,
  ): void {
    if (finished()) return;
    const act = action();
    phase = Phase.Finished;
    detach();
    // keep an error listener: a closed or idle socket may still report one (once: sockets are reused)
    if (!sock.listeners('error').includes(ignore)) sock.on('error', ignore);
    if (out.reusable) pool.release(o.peer.name, sock, true);
    else sock.destroy();
    resolve({ ...out, started, aborted, cached: reused !== undefined, sent, action: act, connectTime, responseTime: performance.now() - t0 });
  }

  function fail(status: number, failure: Failure, level: LogLevel | undefined, msg: string): void {
    if (level) o.log(level, msg);
    settle({ status: started ? 200 : status, complete: false, reusable: false, failure });
  }

  function onTimeout(): void {
    fail(504, 'timeout', 'error', `upstream timed out (110: Connection timed out) while ${action()}`);
  }

  function onConnect(): void {
    connectTime = performance.now() - t0;
    send();
  }

  function send(): void {
    phase = Phase.Sending;
    sent = true;
    arm(o.sendTimeout);
    sock.write(o.query, (err) => {
      if (err || phase !== Phase.Sending) return;
      phase = Phase.Reading;
      arm(o.readTimeout);
    });
  }

  function onError(err: NodeJS.ErrnoException): void {
    const text = errnoText(err);
    if (phase === Phase.Connecting) {
      if (err.syscall === 'bind') {
        // nginx cannot even start the connection: 500, no next upstream
        o.log('crit', `bind(${o.bind?.text}) failed (${text}) while ${ACTION_CONNECT}`);
        settle({ status: 500, complete: false, reusable: false, failure: 'error' });
        return;
      }
      if (o.peer.path !== undefined) {
        // unix sockets fail inside connect() itself (ngx_event_connect_peer)
        const level = err.code === 'ECONNREFUSED' || err.code === 'EAGAIN' ? 'error' : 'crit';
        fail(502, 'error', level, `connect() to ${o.peer.name} failed (${text}) while ${ACTION_CONNECT}`);
      } else {
        fail(502, 'error', 'error', `connect() failed (${text}) while ${ACTION_CONNECT}`);
      }
      return;
    }
    const call = phase === Phase.Sending ? 'writev()' : 'recv()';
    fail(502, 'error', 'error', `${call} failed (${text}) while ${action()}`);
  }

  function onEnd(): void {
    if (finished()) return;
    fail(502, 'error', 'error', `upstream prematurely closed connection while ${action()}`);
  }

  function onClose(): void {
    // a close without 'end' or 'error' (e.g. reset handled elsewhere)
    if (!finished()) onEnd();
  }

  function onData(chunk: Buffer): void {
    if (finished()) return;
    if (phase === Phase.Sending) {
      // a reply before our write completed: Redis has read the query
      phase = Phase.Reading;
    }
    arm(o.readTimeout);
    consume(chunk);
  }

  /* feed one socket chunk through the buffer window, a step at a time */
  function consume(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !finished()) {
      if (!sinkBusy) {
        win = [];
        winLen = 0;
      }
      const room = o.bufferSize - winLen;
      if (room <= 0) {
        pending = chunk.subarray(off);
        sock.pause();
        disarm();
        return;
      }
      const piece = chunk.subarray(off, off + room);
      off += piece.length;
      step(piece, off < chunk.length);
      bodyRead = true;
    }
  }

  function step(piece: Buffer, moreInChunk: boolean): void {
    const base = winLen;
    win.push(piece);
    winLen += piece.length;

    if (!started) {
      if (!isReplyType(piece[0])) {
        o.log('error', `redis2 sent invalid response: "${windowText()}" while ${ACTION_HEADER}`);
        fail(502, 'invalid_response', undefined, '');
        return;
      }
      started = true;
      sink.start();
      if (finished()) return; // the sink gave up at once
    }

    const r = scanner.feed(piece);
    if (r === ScanResult.More) {
      emit(piece);
      return;
    }
    if (r === ScanResult.Invalid) {
      // nginx drops what this read brought and ends the response normally
      o.log('error', `Redis server returned invalid response near pos ${base + scanner.end} in "${windowText()}" while ${action()}`);
      settle({ status: 200, complete: true, reusable: false });
      return;
    }
    emit(piece.subarray(0, scanner.end));
    if (finished()) return;
    const extra = piece.length - scanner.end;
    if (extra > 0) {
      o.log('warn', `Redis server returned extra bytes: "${piece.toString('latin1', scanner.end)}" (len ${extra}) while ${action()}`);
    }
    settle({ status: 200, complete: true, reusable: extra === 0 && !moreInChunk });
  }

  function emit(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (!sink.write(bytes) && !sinkBusy && !finished()) {
      sinkBusy = true;
      sink.onDrain(onSinkDrain);
    }
  }

  function onSinkDrain(): void {
    sinkBusy = false;
    if (finished()) return;
    const rest = pending;
    pending = undefined;
    if (rest) {
      arm(o.readTimeout);
      consume(rest);
    }
    if (!finished() && pending === undefined && sock.isPaused()) {
      arm(o.readTimeout);
      sock.resume();
    }
  }

  function windowText(): string {
    return win.length === 1 ? win[0].toString('latin1') : Buffer.concat(win, winLen).toString('latin1');
  }

  sock.on('data', onData);
  sock.on('end', onEnd);
  sock.on('error', onError);
  sock.on('close', onClose);
  if (reused) {
    connectTime = 0;
    send();
  } else {
    sock.on('connect', onConnect);
    arm(o.connectTimeout);
  }

  return {
    done,
    abort(): void {
      if (finished()) return;
      settle({ status: started ? 200 : 499, complete: false, reusable: false }, true);
    },
  };
}
