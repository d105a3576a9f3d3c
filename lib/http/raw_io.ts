import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';

/*
 * A plain TCP client connection read and written through its libuv handle
 * (the object net.Socket wraps), without net.Socket's Readable / Writable
 * machinery: the HTTP engine parses its own bytes and batches its own
 * writes, so the stream layer's per-read push/emit and per-write
 * cork/buffer/uncork/afterWrite work is pure overhead on every request.
 *
 * What stays with net.Socket: the handle's life (destroy, close and error
 * events), the FIN (handed to its Readable side, so `end` and the
 * allowHalfOpen/autoDestroy rules are Node's own), and the shutdown after
 * end() (libuv runs it after the writes queued here). TLS and HTTP/2
 * connections never come here.
 */

interface StreamState {
  [i: number]: number;
}
interface WriteReq {
  handle: RawHandle;
  oncomplete: (this: WriteReq, status: number) => void;
  /** the buffers libuv is writing: they stay alive until it is done */
  chunks: Buffer[] | Buffer | undefined;
  bytes: number;
  io: RawIo | undefined;
}
interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: StreamState;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}
/** the libuv stream handle's methods used here (node's StreamBase) */
interface RawHandle {
  onread: (this: RawHandle) => void;
  reading: boolean;
  readStart(): number;
  readStop(): number;
  writev(req: WriteReq, chunks: Buffer[], allBuffers: boolean): number;
  writeBuffer(req: WriteReq, b: Buffer): number;
  useUserBuffer(b: Buffer): void;
  [RAW]?: RawIo;
}

const RAW = Symbol('redis2d.rawio');
const UV_EOF = -4095;
/** net.Socket's writableHighWaterMark: write() says "wait for drain" at this many bytes queued */
const HWM = 16384;

/*
 * Every plain connection reads into this one buffer (reads are handled one
 * at a time, each to its end): no 64 KiB allocation, shrink and ArrayBuffer
 * per read. What a read brought is copied out at its size (small reads
 * from Node's buffer pool), since the engine keeps the bytes it is given.
 */
const READ_BUF = Buffer.allocUnsafeSlow(65536);

const binding = (process as unknown as { binding(name: string): unknown }).binding('stream_wrap') as StreamWrapBinding;
const sbs = binding.streamBaseState;
const kRead = binding.kReadBytesOrError;
const kAsync = binding.kLastWriteWasAsync;
const WriteWrap = binding.WriteWrap;
/*
 * A write the socket takes at once (the usual case) leaves its request
 * object untouched (node makes its native part only for a write that has
 * to wait): the same object serves the next write, until one waits.
 */
let spareReq: WriteReq | undefined;

/** what a connection hears from its raw I/O */
export interface RawSink {
  onData(d: Buffer): void;
  onDrain(): void;
}

function uvError(err: number, syscall: string): Error {
  const code = getSystemErrorName(err);
  return Object.assign(new Error(`${syscall} ${code}`), { errno: err, code, syscall });
}

/* drop the references to written buffers, keeping the array's storage */
function clearSlots(a: Array<Buffer | undefined>, n: number): void {
  for (let i = 0; i < n; i++) a[i] = undefined;
}

export class RawIo {
  private readonly handle: RawHandle;
  /** bytes written this turn, sent together by flush() (one writev) */
  /*
   * The buffers to write next: the first `pendingN` slots of `pending`. The
   * array is kept from write to write (its slots cleared) while libuv
   * writes at once, as it nearly always does: a new array per response
   * would be a 17-slot allocation each.
   */
  private pending: Array<Buffer | undefined> = [];
  private pendingN = 0;
  private pendingBytes = 0;
  /** bytes libuv still holds from earlier flushes */
  private inflight = 0;
  /** write() returned false: drain is due once everything is out */
  needDrain = false;
  /** the client's FIN was read: no more reading */
  private eof = false;
  /** reading stopped by the connection (backpressure) */
  private paused = false;

  constructor(
    readonly socket: Socket,
    private readonly sink: RawSink,
  ) {
    const h = (socket as unknown as { _handle: RawHandle })._handle;
    this.handle = h;
    h[RAW] = this;
    h.onread = RawIo.onRead;
    h.useUserBuffer(READ_BUF);
    // net.Socket's constructor started reading (read(0)); make sure it runs
    if (!h.reading) {
      h.reading = true;
      h.readStart();
    }
  }

  /** the usual way to take a plain socket: undefined when it has no libuv stream handle to take */
  static take(socket: Socket, sink: RawSink): RawIo | undefined {
    const h = (socket as unknown as { _handle?: Partial<RawHandle> | null })._handle;
    if (h == null || typeof h.writev !== 'function' || typeof h.readStart !== 'function' || typeof h.useUserBuffer !== 'function') return undefined;
    return new RawIo(socket, sink);
  }

  private static onRead(this: RawHandle): void {
    const io = this[RAW]!;
    const nread = sbs[kRead]!;
    if (nread > 0) {
      if (io.socket.destroyed) return;
      const d = Buffer.allocUnsafe(nread);
      READ_BUF.copy(d, 0, 0, nread);
      io.sink.onData(d);
      return;
    }
    if (nread === 0) return;
    const sock = io.socket;
    if (sock.destroyed) return;
    if (nread !== UV_EOF) {
      sock.destroy(uvError(nread, 'read'));
      return;
    }
    // the FIN goes to net.Socket's readable side: its `end` event, then Node's own half-open rules
    io.eof = true;
    this.reading = false;
    this.readStop();
    sock.push(null);
    sock.read(0);
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    const h = this.handle;
    if (h.reading && !this.socket.destroyed) {
      h.reading = false;
      h.readStop();
    }
  }

  resume(): void {
    this.paused = false;
    const h = this.handle;
    if (!h.reading && !this.eof && !this.socket.destroyed) {
      h.reading = true;
      const err = h.readStart();
      if (err) this.socket.destroy(uvError(err, 'read'));
    }
  }

  isPaused(): boolean {
    return this.paused;
  }

  /** queue b for this turn's flush; false when the client should be waited for (drain) */
  write(b: Buffer): boolean {
    const p = this.pending;
    if (this.pendingN < p.length) p[this.pendingN] = b;
    else p.push(b);
    this.pendingN++;
    this.pendingBytes += b.length;
    if (this.pendingBytes + this.inflight >= HWM) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  /** what write() queued goes out: one writev (or one write), synchronously when the socket takes it all */
  flush(): void {
    const n = this.pendingN;
    if (n === 0) return;
    const sock = this.socket;
    const chunks = this.pending;
    const bytes = this.pendingBytes;
    this.pendingN = 0;
    this.pendingBytes = 0;
    if (sock.destroyed) {
      clearSlots(chunks, n);
      return;
    }
    // writev writes the whole array (a length of at least 1 keeps its storage: V8 trims only far below capacity)
    if (chunks.length !== n) chunks.length = n;
    const req = spareReq ?? new WriteWrap();
    spareReq = undefined;
    req.handle = this.handle;
    req.oncomplete = RawIo.onWritten;
    req.io = this;
    req.bytes = bytes;
    const err = n === 1 ? this.handle.writeBuffer(req, chunks[0]!) : this.handle.writev(req, chunks as Buffer[], true);
    if (err !== 0) {
      clearSlots(chunks, n);
      sock.destroy(uvError(err, 'write'));
      return;
    }
    if (sbs[kAsync]) {
      // libuv owns req now: its completion is onWritten
      // libuv keeps the rest: the buffers stay referenced until it is done (the array goes with them)
      if (n === 1) {
        req.chunks = chunks[0];
        chunks[0] = undefined;
      } else {
        req.chunks = chunks as Buffer[];
        this.pending = [];
      }
      this.inflight += bytes;
      return;
    }
    clearSlots(chunks, n);
    req.io = undefined;
    spareReq = req;
    if (this.needDrain && this.inflight === 0) process.nextTick(RawIo.drainTick, this);
  }

  private static onWritten(this: WriteReq, status: number): void {
    const io = this.io!;
    this.io = undefined;
    this.chunks = undefined;
    io.inflight -= this.bytes;
    const sock = io.socket;
    if (sock.destroyed) return;
    if (status < 0) {
      sock.destroy(uvError(status, 'write'));
      return;
    }
    if (io.needDrain && io.inflight === 0 && io.pendingBytes === 0) RawIo.drainTick(io);
  }

  private static drainTick(io: RawIo): void {
    if (!io.needDrain || io.inflight !== 0 || io.pendingBytes !== 0 || io.socket.destroyed) return;
    io.needDrain = false;
    io.sink.onDrain();
  }
}
