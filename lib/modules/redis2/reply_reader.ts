import type { LogLevel } from '../../core/error_log.js';
import { ACTION_HEADER } from '../../upstream/messages.js';
import { ReplyScanner, ScanResult, isReplyType } from '../../upstream/resp_scanner.js';

/*
 * Reading one request's replies, the same on an exclusive connection
 * (exclusive.ts) and on a pipelined one (pipelined_try.ts): nginx's fixed
 * buffer of redis2_buffer_size bytes (the window), the reply scanner, the
 * start of the response on the first byte, the bytes streamed to the
 * client with backpressure, and the log lines of a malformed reply. The
 * window is emptied only while the client keeps up; when it is full and
 * the client pushes back, the caller stops reading until the sink drains.
 * That bounds memory per request and also gives the `near pos N in "..."`
 * of a malformed reply the same base as nginx (the bytes the buffer holds).
 */

/** Where the reply bytes go (the HTTP response, or a test). */
export interface ReplySink {
  /** the first byte arrived and is a reply type: send the status and headers */
  start(): void;
  /** reply bytes; false asks the request to stop reading until `onDrain` fires */
  write(chunk: Buffer): boolean;
  /** call `cb` once when the sink accepts data again */
  onDrain(cb: () => void): void;
  /** a malformed reply ended the stream early (the response still ends normally, as nginx's) */
  invalid?(): void;
}

/** What a try tells its reader. */
export interface ReaderOwner {
  readonly o: { bufferSize: number; log(level: LogLevel, msg: string): void };
  /** the try ended (settled): stop emitting */
  isDone(): boolean;
  /** the sink drained after pushing back */
  sinkDrained(): void;
}

export const enum Read {
  /** the piece was this request's and more replies are due */
  More,
  /** every expected reply is complete: `end` bytes of the piece were its own */
  Done,
  /** a malformed reply (logged): nginx ends the response normally, the stream cannot be followed */
  Invalid,
  /** the first byte is no reply type (logged): 502, invalid_response */
  BadStart,
  /** the try ended while the response started (the sink gave up at once, e.g. HEAD) */
  Gone,
}

/** the reply bytes read so far (the window), for nginx's quoted log excerpts */
function windowText(win: Buffer[], winLen: number): string {
  return win.length === 1 ? win[0]!.toString('latin1') : Buffer.concat(win, winLen).toString('latin1');
}

export class ReplyReader {
  private readonly owner: ReaderOwner;
  private readonly sink: ReplySink;
  private readonly scanner: ReplyScanner;
  /** the response started (status and headers went out) */
  started = false;
  /**
   * a read was handled: the log's `reading upstream` rather than `reading
   * response header ...` (nginx handles the first read in process_header).
   * The try sets it once it has handled a step's result.
   */
  bodyRead = false;
  /** the sink pushed back; the window is kept until it drains */
  sinkBusy = false;
  /** after Read.Done: the bytes of the last piece that were this request's */
  end = 0;
  // nginx's u->buffer: the pieces it holds since it was last emptied
  private readonly win: Buffer[] = [];
  private winLen = 0;

  constructor(owner: ReaderOwner, sink: ReplySink, expected: number) {
    this.owner = owner;
    this.sink = sink;
    this.scanner = new ReplyScanner(expected);
  }

  /** room left in the window, which is emptied first when the sink keeps up (0: wait for the sink) */
  room(): number {
    if (!this.sinkBusy) {
      this.win.length = 0;
      this.winLen = 0;
    }
    return this.owner.o.bufferSize - this.winLen;
  }

  /** a piece that fits the window (at most room()); `action` names what the try was doing, for log lines */
  step(piece: Buffer, action: () => string): Read {
    const base = this.winLen;
    this.win.push(piece);
    this.winLen += piece.length;
    const o = this.owner.o;

    if (!this.started) {
      if (!isReplyType(piece[0]!)) {
        o.log('error', `redis2 sent invalid response: "${windowText(this.win, this.winLen)}" while ${ACTION_HEADER}`);
        return Read.BadStart;
      }
      this.started = true;
      this.sink.start();
      if (this.owner.isDone()) return Read.Gone;
    }

    const scanner = this.scanner;
    const r = scanner.feed(piece);
    if (r === ScanResult.More) {
      this.emit(piece);
      return Read.More;
    }
    if (r === ScanResult.Invalid) {
      // nginx drops what this read brought and ends the response normally
      o.log('error', `Redis server returned invalid response near pos ${base + scanner.end} in "${windowText(this.win, this.winLen)}" while ${action()}`);
      this.sink.invalid?.();
      return Read.Invalid;
    }
    const end = (this.end = scanner.end);
    this.emit(end === piece.length ? piece : piece.subarray(0, end));
    return Read.Done;
  }

  /** after Read.Done with bytes left in the piece: nginx's warning (the connection is then closed) */
  logExtra(piece: Buffer, action: string): void {
    const end = this.end;
    this.owner.o.log('warn', `Redis server returned extra bytes: "${piece.toString('latin1', end)}" (len ${piece.length - end}) while ${action}`);
  }

  /** feed bytes after the client left: replies are framed and dropped */
  drop(bytes: Buffer): ScanResult {
    return this.scanner.feed(bytes);
  }

  /** after drop() returned Complete: the bytes of `bytes` that were this request's */
  dropEnd(): number {
    return this.scanner.end;
  }

  private emit(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (!this.sink.write(bytes) && !this.sinkBusy && !this.owner.isDone()) {
      this.sinkBusy = true;
      this.sink.onDrain(() => {
        this.sinkBusy = false;
        this.owner.sinkDrained();
      });
    }
  }
}
