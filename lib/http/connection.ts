import type { Socket } from 'node:net';
import { setCaptures } from './regex_exec.js';
import type { Variables } from './variables.js';
import { coreLoc, type CoreSrvConf } from './core/module.js';
import { BodyReader, BodyStatus } from './body.js';
import { HttpRequest, firstName } from './http_request.js';
import { errorLogFor, getMainLog, type ErrorLog } from '../core/error_log.js';
import { ConnStat, counters, nextConnectionNumber, statMove } from '../core/counters.js';
import { Head, Known } from './head.js';
import { HL_END, HL_INVALID, HL_LINE, HeaderLine, HeaderScanner, LINE_ERROR_TEXT, LineError, RL_DONE, RequestLineScanner, parseHeaderLine, validateHost } from './parse.js';
import { runPhases } from './phases.js';
import { hooks } from './hooks.js';
import { OK } from './request.js';
import { addrFor, findVirtualServer, type AddrConf, type ListenSocket } from './servers.js';
import { holdSlot, makeRoom, releaseSlot, setIdleDrain, slotCapacity } from '../core/slots.js';
import { parseComplexUri } from './uri.js';
import type { TLSSocket } from 'node:tls';
import { DEFAULT_H2, closeH2Sessions, prefaceCheck, prefaceRefusal, startH2Tls, startH2c } from './h2.js';
import { RawIo } from './raw_io.js';
import { ReusableQueue, type Reusable } from './reusable_queue.js';
import { TlsConn, UNRECOGNIZED_NAME_ALERT, addrIsSsl, clientVerify, looksLikeTls, opensslErrorText, preselect, readVerify, wrapTls } from './tls.js';

/*
 * One client connection (ngx_http_connection_t + the request reading side
 * of ngx_http_request.c): reads request heads line by line with nginx's
 * limits, then runs one request at a time; pipelined bytes wait in `buf`
 * until the current response is done. Keep-alive, lingering close and the
 * request body (Content-Length or chunked, Expect: 100-continue) live here.
 */

const live = new Set<HttpConnection>();
let exiting = false;

/*
 * worker_connections (lib/core/slots.ts): every accepted socket holds a
 * slot until it closes; the connections waiting for a request (new or
 * keep-alive) are nginx's reusable ones, closed oldest first when the
 * pool is full.
 */
const slotHeld = new WeakSet<Socket>();
const reusable = new ReusableQueue<HttpConnection>();

function freeSlot(sock: Socket): void {
  if (slotHeld.delete(sock)) releaseSlot();
}

setIdleDrain(
  () => reusable.size,
  (n) => {
    for (let c = reusable.first(); c !== undefined && n-- > 0; c = reusable.first()) {
      reusable.delete(c);
      live.delete(c);
      // the slot is free now; nginx closes these silently
      freeSlot(c.socket);
      c.socket.destroy();
    }
  },
);

/*
 * What reading one head takes (nginx's parser states and its header
 * buffers): held only while a head is being read, then given back, so an
 * idle connection (waiting for a request, or keep-alive) carries none.
 */
class HeadState {
  readonly rl = new RequestLineScanner();
  readonly hs = new HeaderScanner();
  /** nginx's current header buffer: where it starts in buf, its size, large buffers taken */
  start = 0;
  cap = 1024;
  nbusy = 0;
}
const headPool: HeadState[] = [];

/** the connection a socket serves (one property instead of a closure per event) */
const CONN = Symbol('redis2d.connection');
type ConnSocket = Socket & { [CONN]?: HttpConnection };

/** ngx_event_accept + ngx_get_connection: a slot for the new client, or the socket closed */
export function acceptConnection(socket: Socket, listen: ListenSocket): void {
  if (!makeRoom()) {
    // ngx_get_connection logs to the listening socket's log: its default server's
    const ac = listen.wildcard ?? listen.addrs.values().next().value;
    const specs = ac ? coreLoc(ac.defaultServer.ctx.loc).errorLog : undefined;
    (specs ? errorLogFor(specs) : getMainLog()).write('alert', 0, `${slotCapacity()} worker_connections are not enough`);
    socket.destroy();
    return;
  }
  holdSlot();
  slotHeld.add(socket);
  // (the slot is given back by the connection's own close listener: one listener less per socket)
  new HttpConnection(socket, listen);
}

/**
 * graceful stop: busy connections close after their response (with
 * `Connection: close`); an idle one closes once seen idle twice, 100 ms
 * apart, with no request between, so a keep-alive client that just reused
 * it is answered instead of reset (nginx closes idle ones at once).
 */
export function closeIdleConnections(): void {
  if (exiting) return;
  exiting = true;
  closeH2Sessions();
  let seen = new Map<HttpConnection, number>();
  const sweep = (): void => {
    const next = new Map<HttpConnection, number>();
    for (const c of live) {
      if (!c.idle()) continue;
      if (seen.get(c) === c.requests) c.socket.destroy();
      else next.set(c, c.requests);
    }
    seen = next;
    if (live.size) setTimeout(sweep, 100).unref();
  };
  sweep();
}

/** worker_shutdown_timeout ran out: every connection closes now, its request logged as it stands (nginx's c->close) */
export function closeAllConnections(): void {
  for (const c of [...live]) c.terminate();
}

export function liveConnections(): number {
  return live.size;
}

/**
 * connections closed after their response whose socket is not closed yet:
 * the response's end still in node's write queue, or the lingering close
 * draining what the client sends (at most 5 s). An exit before would cut
 * the response, or reset the connection over unread bytes.
 */
let closing = 0;
export function closingConnections(): number {
  return closing;
}

const EMPTY = Buffer.alloc(0);

/*
 * Connections written to in this turn, uncorked together by one
 * nextTick: a Redis read that completes thirty responses costs one tick,
 * not thirty (each connection still sends its turn's bytes in one writev).
 */
let corkedList: HttpConnection[] = [];
let uncorkScheduled = false;

function uncorkAll(): void {
  uncorkScheduled = false;
  const list = corkedList;
  corkedList = [];
  for (let i = 0; i < list.length; i++) list[i]!.uncork();
}
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');

/** which of nginx's client timeouts the connection's one timer stands for */
const enum Tm {
  None,
  Header,
  Body,
  Send,
  Keepalive,
}

const enum St {
  Head,
  /** head done, body not asked for yet */
  Wait,
  Body,
  Busy,
  Discard,
  Closed,
}

/** an HTTP/2 stream's request: the connection it came on, and which HTTP/2 ($http2) */
export interface H2Of {
  parent: HttpConnection;
  kind: 'h2' | 'h2c';
}

export class HttpConnection implements Reusable {
  /** the reusable queue's links (reusable_queue.ts) */
  rqPrev: Reusable | undefined = undefined;
  rqNext: Reusable | undefined = undefined;
  rqIn = false;
  /** $connection: an HTTP/2 stream's is its connection's */
  readonly id: number;
  /** `h2` or `h2c` for an HTTP/2 stream's request (nginx's r->stream), else undefined */
  readonly h2: 'h2' | 'h2c' | undefined;
  /** HTTP/2 streams of this connection being processed (nginx's h2c->processing) */
  private h2Streams = 0;
  /** a plain http2 address's connection before its preface was read (h2c) */
  private prefacing = false;
  /** the HTTP/2 connection a stream's request came on */
  private readonly h2Parent: HttpConnection | undefined;
  /** the accepted socket; on a TLS address, the TLS socket wrapping it once the handshake starts */
  socket: Socket;
  /** the TLS state of a connection to a TLS address (undefined on plain ones) */
  tls: TlsConn | undefined = undefined;
  /** the server a request without a better name gets: the default one, or the one the SNI name chose */
  private connSrv: CoreSrvConf;
  /** the client's address; realip replaces it for one request (and puts it back after) */
  remoteAddr: string;
  remotePort: number;
  readonly localAddr: string;
  readonly localPort: number;
  readonly addr: AddrConf;
  /** the variable registry of the config this connection was accepted under */
  readonly variables: Variables;
  requests = 0;
  /** where stub_status counts this connection (waiting, reading, writing) */
  private stat = ConnStat.None;
  private buf: Buffer = EMPTY;
  private state = St.Head;
  /** head parsing */
  /** the state of the head being read (pooled: see HeadState) */
  private hst: HeadState | undefined = undefined;
  /** start of the element being read: the request line, or the current header line */
  private lineStart = 0;
  /** start of the last complete header line (nginx's stale header_name_start; -1 none) */
  private lastHeaderStart = -1;
  /** where the next head's header buffer starts, its size, large buffers it holds (startHead) */
  private nextStart = 0;
  private nextCap = 1024;
  private nextNbusy = 0;
  /** the head being read came with the previous one (nginx's `pipelined request line` action) */
  private pipelined = false;
  /** the buffer state after the last head, for a pipelined head (headDone, next()) */
  private carryStart = 0;
  private carryCap = 0;
  private carryNbusy = 0;
  private carryReceived = 0;
  /** the head being read, once its request line parsed */
  private head: Head | undefined = undefined;
  private headStart = 0;
  private current: HttpRequest | undefined;
  private reader: BodyReader | undefined;
  private bodyCb: ((status: number) => void) | undefined;
  private corked = false;
  /** a plain TCP connection's reads and writes through its libuv handle (raw_io.ts); undefined: through the socket */
  private raw: RawIo | undefined = undefined;
  private drainWaiting = false;
  /** the client's FIN was read (half-close): answer what was asked, then close */
  eof = false;
  /** the access log's status of a request cut by the client before its header went out */
  private goneStatus = 499;
  /*
   * One timer per connection, as nginx has one read/write timer: `deadline`
   * says when the current phase times out (0: no timeout); the Node timer
   * is re-created only when a deadline comes before it fires, and checks
   * the deadline when it does, so most requests touch no timer at all.
   */
  private timer: NodeJS.Timeout | undefined = undefined;
  private timerAt = 0;
  private deadline = 0;
  private timed = Tm.None;
  /*
   * A keep-alive client sends the same Host on every request: the last
   * valid Host value, its validated form and the server it chose (when no
   * regex server_name matched: no captures to set) are kept.
   */
  private lastHostRaw: string | undefined = undefined;
  private lastHost = '';
  private lastServer: CoreSrvConf | undefined = undefined;
  private lastServerName = '';

  /** the listening address as nginx prints it (a connection's log context before any request) */
  private readonly listenText: string;

  /** the listening socket it came from (an HTTP/2 stream's request is served under it too) */
  private readonly listen: ListenSocket;

  /** `h2`: an HTTP/2 stream's request, on its connection (no handshake, no accept of its own) */
  constructor(socket: Socket, listen: ListenSocket, h2?: H2Of) {
    this.listen = listen;
    this.id = h2 === undefined ? nextConnectionNumber() : h2.parent.id;
    this.h2 = h2?.kind;
    this.h2Parent = h2?.parent;
    this.listenText = listen.opt.family === 'unix' ? `unix:${listen.opt.path}` : listen.opt.text;
    this.socket = socket;
    live.add(this);
    reusable.add(this);
    const ra = socket.remoteAddress;
    this.remoteAddr = listen.opt.family === 'unix' ? 'unix:' : ra?.startsWith('::ffff:') && listen.opt.family === 'inet' ? ra.slice(7) : ra ?? '';
    this.remotePort = socket.remotePort ?? 0;
    const la = socket.localAddress;
    // $server_addr of a unix-socket connection is the socket's `unix:PATH`, as nginx's
    this.localAddr =
      listen.opt.family === 'unix' ? `unix:${listen.opt.path}` : la?.startsWith('::ffff:') && listen.opt.family === 'inet' ? la.slice(7) : la ?? '';
    this.localPort = socket.localPort ?? listen.opt.port;
    this.addr = addrFor(listen, this.localAddr, this.localPort);
    this.connSrv = this.addr.defaultServer;
    this.variables = listen.variables;
    socket.setNoDelay(true);
    (socket as ConnSocket)[CONN] = this;
    if (h2 !== undefined) {
      const p = h2.parent;
      this.tls = p.tls;
      this.connSrv = p.connSrv;
      socket.on('data', HttpConnection.sockData);
    } else if (addrIsSsl(this.addr)) {
      // the first byte tells a TLS hello from plain HTTP (nginx peeks at it)
      this.tls = new TlsConn();
      socket.on('data', HttpConnection.sockPeek);
    } else if (this.addr.http2) {
      // a plain http2 address speaks HTTP/2 with prior knowledge only (nginx 1.22)
      this.prefacing = true;
      socket.on('data', HttpConnection.sockPreface);
    } else {
      this.raw = RawIo.take(socket, this);
      if (this.raw === undefined) socket.on('data', HttpConnection.sockData);
    }
    // the server is allowHalfOpen: a FIN ends only the client's side (onEnd)
    socket.on('end', HttpConnection.sockEnd);
    socket.on('error', HttpConnection.sockClose);
    socket.on('close', HttpConnection.sockClose);
    if (this.raw === undefined) socket.on('drain', HttpConnection.sockDrain);
    if (h2 !== undefined) {
      // a stream is a request of its connection: stub_status counts it from its first byte (reading, requests)
      const p = h2.parent;
      this.requests = p.requests++;
      if (p.h2Streams++ === 0 && p.state !== St.Closed) p.stat = statMove(p.stat, ConnStat.None);
      this.startHead(false);
      return;
    }
    counters.accepted++;
    counters.handled++;
    counters.active++;
    this.stat = statMove(ConnStat.None, ConnStat.Waiting);
    this.startHead(false);
    // ngx_http_init_connection: the header timeout runs from the accept
    this.setTimer(Tm.Header, this.defaultSrv().clientHeaderTimeout);
  }

  // the socket's listeners, shared by every connection (`this` is the socket)
  private static sockData(this: ConnSocket, d: Buffer): void {
    this[CONN]!.onData(d);
  }
  private static sockPeek(this: ConnSocket, d: Buffer): void {
    this[CONN]!.onPeek(d);
  }
  private static sockPreface(this: ConnSocket, d: Buffer): void {
    this[CONN]!.onPreface(d);
  }
  private static sockSecure(this: ConnSocket): void {
    this[CONN]!.onSecure();
  }
  private static sockTlsError(this: ConnSocket, err: Error): void {
    this[CONN]!.onTlsError(err);
  }
  private static sockEnd(this: ConnSocket): void {
    this[CONN]!.onEnd();
  }
  private static sockClose(this: ConnSocket): void {
    freeSlot(this);
    this[CONN]!.onClose();
  }
  private static sockDrain(this: ConnSocket): void {
    this[CONN]!.onDrain();
  }
  private static timerFired(c: HttpConnection): void {
    c.checkTimer();
  }

  get exiting(): boolean {
    return exiting;
  }

  idle(): boolean {
    return this.state === St.Head && this.buf.length === 0;
  }

  private defaultSrv(): CoreSrvConf {
    return this.connSrv;
  }

  /**
   * The first bytes on a TLS address: a TLS hello hands the socket to a
   * TLS socket wrapping it (the bytes go back in front for it to read);
   * anything else is plain HTTP, read as usual and answered with 497.
   */
  private onPeek(d: Buffer): void {
    const raw = this.socket;
    const tc = this.tls!;
    raw.removeListener('data', HttpConnection.sockPeek);
    if (d.length === 0 || !looksLikeTls(d[0]!)) {
      tc.state = 'plain';
      raw.on('data', HttpConnection.sockData);
      this.onData(d);
      return;
    }
    raw.pause();
    raw.unshift(d);
    if (this.addr.http2) return this.startH2(raw, tc, d);
    const sock = wrapTls(raw, this.addr, tc, d);
    if (sock === undefined) {
      raw.destroy();
      return;
    }
    if (sock === 'reject') return this.rejectHandshake(raw);
    raw.removeListener('end', HttpConnection.sockEnd);
    raw.removeListener('error', HttpConnection.sockClose);
    raw.removeListener('close', HttpConnection.sockClose);
    raw.removeListener('drain', HttpConnection.sockDrain);
    // the worker_connections slot now goes with the TLS socket's close
    if (slotHeld.delete(raw)) slotHeld.add(sock);
    this.socket = sock;
    (sock as ConnSocket)[CONN] = this;
    sock.on('data', HttpConnection.sockData);
    sock.on('end', HttpConnection.sockEnd);
    sock.on('error', HttpConnection.sockTlsError);
    sock.on('close', HttpConnection.sockClose);
    sock.on('drain', HttpConnection.sockDrain);
    sock.once('secure', HttpConnection.sockSecure);
  }

  /**
   * The first bytes on a plain http2 address (ngx_http_v2_state_preface):
   * the client preface hands the socket to the address's h2c server;
   * anything else gets nginx's SETTINGS, WINDOW_UPDATE and GOAWAY, its
   * info line, and the connection closes.
   */
  private onPreface(d: Buffer): void {
    const raw = this.socket;
    const b = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    const seen = prefaceCheck(b);
    if (seen === 'more') {
      this.buf = b;
      return;
    }
    this.buf = EMPTY;
    raw.removeListener('data', HttpConnection.sockPreface);
    if (seen === 'no') return this.prefaceFailed('invalid connection preface', true);
    this.prefacing = false;
    raw.pause();
    raw.unshift(b);
    raw.removeListener('end', HttpConnection.sockEnd);
    raw.removeListener('drain', HttpConnection.sockDrain);
    // the client's FIN ends the connection (ngx_http_v2_read_handler: recv() 0 finalizes it); the socket is half-open otherwise
    raw.once('end', () => raw.end());
    this.h2Adopted();
    startH2c(raw, this.addr, {
      secure: () => {},
      error: () => {},
      stream: (st) => void new HttpConnection(st as unknown as Socket, this.listen, { parent: this, kind: 'h2c' }),
    });
  }

  /**
   * No preface (ngx_http_v2_read_handler): `why` at info, then nginx's
   * SETTINGS, WINDOW_UPDATE and GOAWAY (PROTOCOL_ERROR) when `goaway`, and
   * the connection closes. A client that closes before any byte is not logged.
   */
  private prefaceFailed(why: string | undefined, goaway: boolean): void {
    this.prefacing = false;
    const raw = this.socket;
    raw.removeListener('data', HttpConnection.sockPreface);
    const log = this.connLog();
    if (why !== undefined && log.enabled('info')) {
      log.write('info', this.id, `${why} while processing HTTP/2 connection, client: ${this.remoteAddr}, server: ${this.listenText}`);
    }
    if (goaway && !raw.destroyed) raw.write(prefaceRefusal(this.addr.defaultServer.http2 ?? DEFAULT_H2));
    this.buf = EMPTY;
    this.closeAfterWrite(true);
  }

  /** node:http2 reads the socket now: this connection holds its slot and counters until it closes */
  private h2Adopted(): void {
    this.stopTimer();
    reusable.delete(this);
    this.state = St.Busy;
  }

  /** one of this HTTP/2 connection's streams ended: without others, the connection is idle (waiting) again */
  private h2StreamDone(): void {
    if (--this.h2Streams === 0 && this.state !== St.Closed) this.stat = statMove(this.stat, ConnStat.Waiting);
  }

  /** ssl_reject_handshake: the alert, nginx's info line, closed */
  private rejectHandshake(raw: Socket): void {
    const log = this.connLog();
    if (log.enabled('info')) log.write('info', this.id, `handshake rejected while SSL handshaking, client: ${this.remoteAddr}, server: ${this.listenText}`);
    raw.resume();
    raw.write(UNRECOGNIZED_NAME_ALERT);
    this.closeAfterWrite(true);
  }

  /**
   * An http2 address: node:http2's TLS server for the address does the
   * handshake (lib/http/h2.ts); h2 streams each run as a request of their
   * own, a connection that chose HTTP/1.x comes back here to be read.
   */
  private startH2(raw: Socket, tc: TlsConn, hello: Buffer): void {
    const pre = preselect(this.addr, tc, hello);
    if (pre === undefined) {
      raw.destroy();
      return;
    }
    if (pre === 'reject') return this.rejectHandshake(raw);
    tc.state = 'handshake';
    startH2Tls(raw, this.addr, {
      secure: (sock) => this.adoptTls(sock),
      error: (err) => this.onTlsError(err),
      stream: (st) => void new HttpConnection(st as unknown as Socket, this.listen, { parent: this, kind: 'h2' }),
    });
  }

  /** the TLS socket node:http2's server made for this connection: h2 streams, or HTTP/1.x read here */
  private adoptTls(sock: TLSSocket): void {
    const raw = this.socket;
    const tc = this.tls!;
    raw.removeListener('end', HttpConnection.sockEnd);
    raw.removeListener('error', HttpConnection.sockClose);
    raw.removeListener('close', HttpConnection.sockClose);
    raw.removeListener('drain', HttpConnection.sockDrain);
    if (slotHeld.delete(raw)) slotHeld.add(sock);
    this.socket = sock;
    (sock as ConnSocket)[CONN] = this;
    tc.socket = sock;
    sock.on('error', HttpConnection.sockTlsError);
    sock.on('close', HttpConnection.sockClose);
    tc.state = 'secure';
    tc.verifyCode = readVerify(sock);
    if (tc.sniServer !== undefined) this.connSrv = tc.sniServer;
    if (sock.alpnProtocol === 'h2') {
      this.h2Adopted();
      return;
    }
    sock.on('data', HttpConnection.sockData);
    sock.on('end', HttpConnection.sockEnd);
    sock.on('drain', HttpConnection.sockDrain);
  }

  /** handshake done: the SNI name's server is the connection's (nginx's hc->conf_ctx) */
  private onSecure(): void {
    const tc = this.tls!;
    tc.state = 'secure';
    tc.verifyCode = readVerify(tc.socket!);
    if (tc.sniServer !== undefined) this.connSrv = tc.sniServer;
  }

  /** a TLS socket's error: a failed handshake is nginx's info line, then the connection closes */
  private onTlsError(err: Error): void {
    const tc = this.tls!;
    if (tc.state === 'handshake' && this.state !== St.Closed) {
      const log = this.connLog();
      const ssl = opensslErrorText(err);
      if (ssl !== undefined && log.enabled('info')) {
        log.write('info', this.id, `SSL_do_handshake() failed (SSL: ${ssl}) while SSL handshaking, client: ${this.remoteAddr}, server: ${this.listenText}`);
      }
    }
    freeSlot(this.socket);
    this.onClose();
  }

  /** the phase's timeout starts now: `ms` from now (0: none) */
  private setTimer(kind: Tm, ms: number): void {
    this.timed = kind;
    if (ms <= 0) {
      this.deadline = 0;
      return;
    }
    const at = Date.now() + ms;
    this.deadline = at;
    if (this.timer !== undefined) {
      if (this.timerAt <= at) return; // it fires first and re-arms for the rest
      clearTimeout(this.timer);
    }
    this.timerAt = at;
    this.timer = setTimeout(HttpConnection.timerFired, ms, this).unref();
  }

  private clearTimer(): void {
    this.timed = Tm.None;
    this.deadline = 0;
  }

  private checkTimer(): void {
    this.timer = undefined;
    if (this.deadline === 0 || this.state === St.Closed) return;
    const left = this.deadline - Date.now();
    if (left > 0) {
      this.timerAt = this.deadline;
      this.timer = setTimeout(HttpConnection.timerFired, left, this).unref();
      return;
    }
    if (this.prefacing) {
      // ngx_http_v2_init runs on the timer too (its SETTINGS go out), then the read handler's timeout
      this.deadline = 0;
      return this.prefaceFailed('client timed out (110: Connection timed out)', true);
    }
    // nginx closes silently: header, body, send and keep-alive timeouts alike;
    // a request timed out while its body was read is logged 408 (not the 499 of a client that left)
    this.deadline = 0;
    if (this.state === St.Head && this.buf.length > this.headStart) this.headTimedOut();
    else if (this.state === St.Head && this.requests === 0) {
      // ngx_http_wait_request_handler: a new connection that never sent a byte
      const log = this.connLog();
      if (log.enabled('info')) {
        log.write('info', this.id, `client timed out (110: Connection timed out) while ${this.waitAction()}, client: ${this.remoteAddr}, server: ${this.listenText}`);
      }
    }
    const r = this.current;
    if (r !== undefined && !r.finished && !r.headerSent) r.errStatus = 408;
    this.socket.destroy();
  }

  /**
   * client_header_timeout on an unfinished head (ngx_http_read_request_header):
   * nginx logs `client timed out` at info with the request line read so far, and
   * access-logs a 408; no response is sent.
   */
  private headTimedOut(): void {
    this.headAbandoned(408, 'client timed out (110: Connection timed out)');
  }

  /** the log's `while ...` for an unfinished head: nginx's c->log->action */
  private headAction(): string {
    if (this.head) return 'reading client request headers';
    return this.pipelined ? 'reading client pipelined request line' : 'reading client request line';
  }

  /** an unfinished head the client stopped sending (timeout, FIN): info line, access log `status`, no response */
  private headAbandoned(status: number, why: string): void {
    const head = this.head;
    let line: string;
    if (head) line = head.line;
    else {
      const buf = this.buf;
      let end = this.headStart;
      while (end < buf.length && buf[end] !== 0x0d && buf[end] !== 0x0a) end++;
      line = buf.toString('latin1', this.headStart, end);
    }
    const action = this.headAction();
    // the header lines read so far are nginx's headers_in: `host: "..."` joins the log line
    const h = head ?? new Head();
    if (!head) h.version = 1000;
    const r = this.newRequest(h, line);
    r.srv = this.defaultSrv();
    r.keepalive = false;
    const loc = coreLoc(r.srv.ctx.loc);
    r.loc = loc;
    r.locConf = loc.locConf;
    r.errStatus = status;
    // $request_length: the request line and header lines nginx had parsed
    if (head) r.headerLength = this.lineStart - this.headStart;
    r.log('info', `${why} while ${action}`);
    r.finished = true;
    this.dropHead();
    runLogPhase(r);
  }

  /**
   * The client's FIN (recv() returned 0). nginx reads no further while a
   * request runs: the response is still written to the half-closed client,
   * and pipelined requests already received are answered, except where a
   * module watches the client (an upstream without ignore_client_abort:
   * r.checkBroken), which ends with 499. Waiting for a head or a body, the
   * connection closes as nginx's recv() == 0 handlers close it.
   */
  private onEnd(): void {
    if (this.eof) return;
    this.eof = true;
    if (this.prefacing) return this.prefaceFailed(this.buf.length ? 'client prematurely closed connection' : undefined, false);
    switch (this.state) {
      case St.Head:
        // complete pipelined heads may wait in buf: parse them; an unfinished one ends there
        if (this.buf.length) this.parseHead();
        else this.closedInHead();
        return;
      case St.Body:
        this.closedInBody();
        return;
      case St.Discard: {
        // ngx_http_read_discarded_request_body: recv() == 0 ends discarding; the connection closes after the response
        const r = this.current!;
        this.reader = undefined;
        this.state = St.Busy;
        r.keepalive = false;
        if (r.finished) this.closeAfterWrite(false);
        return;
      }
      case St.Wait:
      case St.Busy:
        this.current?.clientEof();
        return;
      default:
        return;
    }
  }

  /** FIN while waiting for (the rest of) a request head */
  private closedInHead(): void {
    if (this.buf.length > 0) {
      // ngx_http_read_request_header: `client prematurely closed connection`, access-logged as 400
      this.headAbandoned(400, 'client prematurely closed connection');
    } else if (this.requests === 0) {
      // ngx_http_wait_request_handler
      const log = this.connLog();
      if (log.enabled('info')) {
        log.write('info', this.id, `client closed connection while ${this.waitAction()}, client: ${this.remoteAddr}, server: ${this.listenText}`);
      }
    } else {
      // ngx_http_keepalive_handler logs with no request context
      const log = this.connLog();
      if (log.enabled('info')) log.write('info', this.id, `client ${this.remoteAddr} closed keepalive connection`);
    }
    // what was written (a pipelined burst's last response) still leaves
    this.closeAfterWrite(true);
  }

  /** FIN before the whole request body came: nginx's 400 with c->error (logged, nothing sent) */
  private closedInBody(): void {
    const r = this.current!;
    this.reader = undefined;
    this.bodyCb = undefined;
    r.log('info', 'client prematurely closed connection');
    this.goneStatus = 400;
    this.socket.destroy();
  }

  /** nginx's log action before the first request: the TLS handshake counts from the accept */
  private waitAction(): string {
    const tc = this.tls;
    return tc !== undefined && (tc.state === 'peek' || tc.state === 'handshake') ? 'SSL handshaking' : 'waiting for request';
  }

  /** the log of the connection outside a request: the default server's */
  private connLog(): ErrorLog {
    const specs = coreLoc(this.defaultSrv().ctx.loc).errorLog;
    return specs ? errorLogFor(specs) : getMainLog();
  }

  private onClose(): void {
    if (this.state === St.Closed) return;
    this.state = St.Closed;
    this.stopTimer();
    live.delete(this);
    this.stat = statMove(this.stat, ConnStat.None);
    if (this.h2Parent === undefined) counters.active--;
    else this.h2Parent.h2StreamDone();
    reusable.delete(this);
    this.dropHead();
    const r = this.current;
    if (r && !r.finished) {
      // the client closed before the response ended: nginx's 499 when nothing was
      // sent yet, and the request is still access-logged, as nginx logs every request
      if (!r.headerSent && r.errStatus !== 408 && this.goneStatus !== 0) r.errStatus = this.goneStatus;
      r.abort();
      runLogPhase(r);
    }
  }

  /** closed by the server (worker_shutdown_timeout): the request keeps its status, no 499 */
  terminate(): void {
    this.goneStatus = 0;
    this.abortClient();
  }

  /** a module gave up on a client that half-closed: end as if it had gone (499), close at once */
  abortClient(): void {
    this.onClose();
    this.socket.destroy();
  }

  private stopTimer(): void {
    this.clearTimer();
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  onDrain(): void {
    if (!this.drainWaiting) return;
    this.drainWaiting = false;
    if (this.timed === Tm.Send) this.clearTimer();
    this.current?.drained();
  }

  /** a body filter (gzip) that held the response back can take more while the socket is not full */
  drainedByFilter(): void {
    if (this.drainWaiting) {
      this.drainWaiting = false;
      if (this.timed === Tm.Send) this.clearTimer();
    }
    this.current?.drained();
  }

  /** the response waits for the client to read: send_timeout runs until it does */
  waitDrain(): void {
    this.drainWaiting = true;
    const r = this.current;
    if (r !== undefined && this.state === St.Busy) this.setTimer(Tm.Send, r.loc.sendTimeout);
  }

  congested(): boolean {
    return this.raw !== undefined ? this.raw.needDrain : this.socket.writableNeedDrain;
  }

  private resumeReading(): void {
    if (this.raw !== undefined) this.raw.resume();
    else this.socket.resume();
  }

  write(b: Buffer): boolean {
    if (this.state === St.Closed) return false;
    if (!this.corked) {
      // everything written in this turn leaves in one writev
      this.corked = true;
      if (this.raw === undefined) this.socket.cork();
      corkedList.push(this);
      if (!uncorkScheduled) {
        uncorkScheduled = true;
        process.nextTick(uncorkAll);
      }
    }
    return this.raw !== undefined ? this.raw.write(b) : this.socket.write(b);
  }

  uncork(): void {
    this.corked = false;
    if (this.raw !== undefined) this.raw.flush();
    else this.socket.uncork();
  }

  onData(d: Buffer): void {
    switch (this.state) {
      case St.Head:
        if (this.stat !== ConnStat.Reading) this.stat = statMove(this.stat, ConnStat.Reading);
        // bytes of a request: no longer an idle connection nginx may close for room
        reusable.delete(this);
        this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
        this.parseHead();
        return;
      case St.Body:
      case St.Discard:
        this.feedBody(d);
        return;
      case St.Closed:
        return;
      default:
        this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
        if (this.buf.length > 1 << 20) {
          if (this.raw !== undefined) this.raw.pause();
          else this.socket.pause();
        }
    }
  }

  // ------------------------------------------------------------ request head

  /*
   * The head is read as nginx reads it: its request line and header state
   * machines judge every byte as it arrives (a byte that cannot start a
   * request is a 400 at once, not after a line feed), and its header
   * buffers are simulated: client_header_buffer_size first, then up to
   * large_client_header_buffers NUM of SIZE, a line left unfinished when a
   * buffer fills moving to the next one. Where nginx's buffers fill depends
   * only on the bytes, so the limits hold however the bytes arrive (one
   * packet or one byte at a time): a line that cannot fit one large buffer
   * is 414 (request line) or 494 (header line), running out of buffers 494.
   */
  private parseHead(): void {
    const buf = this.buf;
    const srv = this.defaultSrv();
    const { num, size } = srv.largeClientHeaderBuffers;
    const hb = this.hst ?? this.takeHead();
    for (;;) {
      // where nginx's current header buffer ends: bytes past it are read only after the next buffer is taken
      const fill = hb.start + hb.cap;
      const to = buf.length < fill ? buf.length : fill;
      const head = this.head;
      if (head === undefined) {
        const rl = hb.rl;
        const rc = rl.scan(buf, to);
        if (rl.start !== -1) this.headStart = this.lineStart = rl.start;
        if (rc > 0) return this.lineError(rc as LineError, rl.text(buf, to), rc === LineError.Invalid09Method);
        if (rc === RL_DONE) {
          const h = new Head();
          const e = rl.fill(buf, h);
          if (e !== 0) return this.lineError(e, h.line || rl.text(buf, to), true);
          this.lineStart = rl.pos;
          hb.hs.reset(rl.pos);
          if (!this.checkRequestLine(h)) return;
          this.head = h;
          if (h.version === 9) return this.headDone();
          continue;
        }
        if (rl.pos === fill) {
          // ngx_http_alloc_large_header_buffer(r, 1)
          if (rl.idle) {
            hb.start = fill; // only CR/LF so far: the buffer is reused
            continue;
          }
          if (fill - rl.start >= size || hb.nbusy >= num) {
            return this.headError(414, 'client sent too long URI', undefined, buf.toString('latin1', rl.start, fill), this.headAction());
          }
          this.takeBuffer(rl.start, size);
          continue;
        }
        return this.headWait();
      }
      const hs = hb.hs;
      const rc = hs.scan(buf, to);
      if (rc === HL_LINE) {
        const start = this.lineStart;
        this.lineStart = hs.pos;
        const added = parseHeaderLine(buf, start, hs.pos - 1, head, srv.underscoresInHeaders === 1, srv.ignoreInvalidHeaders === 1);
        this.lastHeaderStart = start;
        if (added === HeaderLine.Added) {
          if (!this.checkHeader(head, srv)) return;
        } else this.ignoredHeader(head, srv, start, hs.pos - 1);
        continue;
      }
      if (rc === HL_END) {
        this.lineStart = hs.pos;
        return this.headDone();
      }
      if (rc === HL_INVALID) {
        // nginx shows the line up to the refused byte, then that byte in hex
        const bad = hs.bad;
        const text = buf.toString('latin1', this.lineStart, bad);
        const hex = buf[bad]!.toString(16).padStart(2, '0');
        return this.headError(400, `client sent invalid header line: "${text}\\x${hex}..."`, head, undefined, 'reading client request headers', true);
      }
      if (hs.pos === fill) {
        // ngx_http_alloc_large_header_buffer(r, 0)
        if (hs.idle) {
          // a line ended exactly at the buffer's end: nothing to move
          if (hb.nbusy >= num) return this.headerTooLong(head, this.lastHeaderStart, fill);
          this.takeBuffer(fill, size);
          continue;
        }
        if (fill - this.lineStart >= size || hb.nbusy >= num) return this.headerTooLong(head, this.lineStart, fill);
        this.takeBuffer(this.lineStart, size);
        continue;
      }
      return this.headWait();
    }
  }

  /**
   * A new head starts at buf[0]. nginx reads it into a fresh
   * client_header_buffer_size buffer, unless its bytes came with the last
   * head and sit in that head's buffer (a pipelined request, which goes on
   * in the same buffer).
   */
  private startHead(pipelined: boolean): void {
    this.lineStart = this.headStart = 0;
    this.lastHeaderStart = -1;
    this.pipelined = pipelined && this.carryReceived > 0;
    if (this.pipelined && this.carryStart + this.carryCap > 0) {
      this.nextStart = this.carryStart;
      this.nextCap = this.carryCap;
      this.nextNbusy = this.carryNbusy;
    } else {
      this.nextStart = 0;
      this.nextCap = this.defaultSrv().clientHeaderBufferSize;
      this.nextNbusy = 0;
    }
    this.carryReceived = 0;
  }

  /** the head's state, from the pool, set up as startHead() decided */
  private takeHead(): HeadState {
    const st = headPool.pop() ?? new HeadState();
    st.rl.reset(0);
    st.start = this.nextStart;
    st.cap = this.nextCap;
    st.nbusy = this.nextNbusy;
    this.hst = st;
    return st;
  }

  /** the head is done with (read, refused or abandoned): its state goes back to the pool */
  private dropHead(): void {
    const st = this.hst;
    if (st === undefined) return;
    this.hst = undefined;
    if (headPool.length < 64) headPool.push(st);
  }

  /**
   * ignore_invalid_headers: a header with a byte nginx does not allow in
   * names (or `_`) is dropped with an info line showing it up to the end of
   * its value (nginx's header_end)
   */
  private ignoredHeader(head: Head, srv: CoreSrvConf, s: number, lf: number): void {
    const log = this.connLog();
    if (!log.enabled('info')) return;
    const buf = this.buf;
    let e = lf;
    while (e > s && buf[e - 1] === 0x0d) e--;
    const colon = buf.indexOf(0x3a, s);
    if (colon !== -1 && colon < e) {
      let v = e;
      while (v > colon + 1 && buf[v - 1] === 0x20) v--;
      // an empty value ends where the line does, spaces included
      if (v > colon + 1) {
        let first = colon + 1;
        while (first < v && buf[first] === 0x20) first++;
        if (first < v) e = v;
      }
    }
    let ctx = `, client: ${this.remoteAddr}, server: ${firstName(srv)}, request: "${head.line}"`;
    if (head.host !== undefined) ctx += `, host: "${head.host}"`;
    const ref = head.headers.find(([n]) => n.length === 7 && n.toLowerCase() === 'referer');
    if (ref) ctx += `, referrer: "${ref[1]}"`;
    log.write('info', this.id, `client sent invalid header line: "${buf.toString('latin1', s, e)}" while reading client request headers${ctx}`);
  }

  /** the next large header buffer, holding the bytes from `from` on */
  private takeBuffer(from: number, size: number): void {
    const hb = this.hst!;
    hb.start = from;
    hb.cap = size;
    hb.nbusy++;
  }

  /** the head is unfinished: client_header_timeout, or the end if the client half-closed */
  private headWait(): void {
    // ngx_http_read_request_header: an unfinished head gets client_header_timeout (once)
    if (this.timed !== Tm.Header) this.setTimer(Tm.Header, this.defaultSrv().clientHeaderTimeout);
    if (this.eof) this.closedInHead();
  }

  /** 494 for a header line that cannot fit (`from`: nginx's header_name_start, -1 when none yet) */
  private headerTooLong(head: Head, from: number, fill: number): void {
    if (from < 0) return this.headError(494, 'client sent too large request', head, undefined, 'reading client request headers', true);
    const s = this.buf.toString('latin1', from, from + Math.min(fill - from, 1748));
    return this.headError(494, `client sent too long header line: "${s}..."`, head, undefined, 'reading client request headers', true);
  }

  /** a request line error: 505 for the version, 400 else; an HTTP/0.9 request gets the page without a head */
  private lineError(e: LineError, text: string, http09: boolean): void {
    this.headError(e === LineError.InvalidVersion ? 505 : 400, LINE_ERROR_TEXT[e - 1]!, undefined, text, this.headAction(), false, http09 && e === LineError.Invalid09Method);
  }

  /**
   * ngx_http_process_request_line's checks, made as soon as the line is
   * read (before any header): the host of an absolute URI, the URI itself.
   */
  private checkRequestLine(h: Head): boolean {
    if (h.uriHost !== undefined) {
      const host = validateHost(h.uriHost);
      if (host === undefined) {
        this.headError(400, 'client sent invalid host in request line', h, undefined, this.headAction(), true);
        return false;
      }
      h.lineHost = host;
    }
    // $request_uri starts at the path: `http://h?a` gives `?a`, `http://h` gives `/`
    const pq = h.pathQuery.length ? h.pathQuery : '/';
    const parsed = parseComplexUri(pq, pq.charCodeAt(0) === 0x3f, this.defaultSrv().mergeSlashes === 1);
    if (!parsed) {
      this.headError(400, 'client sent invalid request', h, undefined, this.headAction(), true);
      return false;
    }
    h.uri = parsed.uri;
    h.args = parsed.args;
    return true;
  }

  /** checks nginx makes as each header arrives: repeated unique headers, the Host value, max_headers */
  private checkHeader(head: Head, srv: CoreSrvConf): boolean {
    if (head.duplicate !== -1) {
      this.headError(400, head.duplicateMessage(), head, undefined, 'reading client request headers', true);
      return false;
    }
    const n = head.headers.length;
    if (n > srv.maxHeaders) {
      this.headError(494, 'client sent too many header lines', head, undefined, 'reading client request headers', true);
      return false;
    }
    const last = head.headers[n - 1]!;
    // the Host header is validated as it arrives (ngx_http_process_host); a keep-alive client's repeated one was already
    if (last[0].length === 4 && head.host === last[1] && last[1] !== this.lastHostRaw && last[0].toLowerCase() === 'host') {
      const v = validateHost(last[1]);
      if (v === undefined) {
        this.headError(400, 'client sent invalid host header', head, undefined, 'reading client request headers', true);
        return false;
      }
      head.hostValid = v;
    }
    return true;
  }

  /**
   * an error before the request could run: default server, its error page.
   * `keepHeaders`: the headers read so far stay nginx's headers_in (log context);
   * `http09`: the request is HTTP/0.9 (no response head).
   */
  private headError(status: number, msg: string, head: Head | undefined, rawLine: string | undefined, action: string, keepHeaders = false, http09 = false): void {
    const h = head ?? new Head();
    if (!head) h.version = http09 ? 9 : 1000;
    if (!keepHeaders) h.forgetHeaders();
    const r = this.newRequest(h, head ? head.line : (rawLine ?? ''));
    // a request line that failed after its method: nginx's r->method is known (a HEAD gets no body),
    // its method_name ($request_method) is not
    if (!head && this.hst?.rl.method(this.buf) === 'HEAD') r.headRequest = true;
    this.dropHead();
    // $request_length: the request line and the header lines nginx accepted (before their checks)
    if (head) r.headerLength = this.lineStart - this.headStart;
    r.srv = this.defaultSrv();
    r.keepalive = false;
    const loc = coreLoc(r.srv.ctx.loc);
    r.loc = loc;
    r.locConf = loc.locConf;
    r.action = action;
    r.log('info', msg);
    r.action = undefined;
    this.state = St.Busy;
    r.finalize(status);
  }

  private newRequest(head: Head, line: string): HttpRequest {
    this.requests++;
    if (this.h2 !== undefined) {
      // nginx's HTTP/2 request: r->http_protocol and the request line it constructs say HTTP/2.0
      head.version = 2000;
      head.protocol = 'HTTP/2.0';
      if (line.endsWith(' HTTP/1.1')) line = `${line.slice(0, -9)} HTTP/2.0`;
      head.line = line;
    }
    const r = new HttpRequest(this, head, line, Date.now(), '');
    this.current = r;
    return r;
  }

  /** a request refused while its head is checked */
  private fail(r: HttpRequest, status: number, msg: string): void {
    // nginx's log action stays `reading client request headers` for whatever this request logs next
    r.log('info', msg);
    r.finalize(status);
  }

  private headDone(): void {
    const head = this.head!;
    const headerLength = this.lineStart - this.headStart;
    // the head's bytes as sent (a view, no copy: $echo_client_request_headers reads them)
    const b = this.buf;
    const rawHead = this.headStart === 0 && this.lineStart === b.length ? b : b.subarray(this.headStart, this.lineStart);
    // nginx's header buffer as the next pipelined head finds it (next())
    const hb = this.hst!;
    this.carryStart = hb.start - this.lineStart;
    this.carryCap = hb.cap;
    this.carryNbusy = hb.nbusy > 0 ? 1 : 0;
    this.carryReceived = this.buf.length - this.lineStart;
    this.dropHead();
    this.buf = this.lineStart < this.buf.length ? this.buf.subarray(this.lineStart) : EMPTY;
    this.lineStart = this.headStart = 0;
    this.head = undefined;
    this.state = St.Busy;
    this.clearTimer();

    const r = this.newRequest(head, head.line);
    r.headerLength = headerLength;
    r.rawHead = rawHead;
    r.srv = this.defaultSrv();
    const sloc = coreLoc(r.srv.ctx.loc);
    r.loc = sloc;
    r.locConf = sloc.locConf;

    // the virtual server, from the request line's host or Host: (both validated as they arrived)
    const hv = head.host;
    if (head.uriHost === undefined && hv !== undefined && hv === this.lastHostRaw) {
      // the same Host as this connection's last request
      const srv = this.lastServer!;
      r.host = this.lastHost;
      r.srv = srv;
      r.serverName = this.lastServerName;
      const loc = coreLoc(srv.ctx.loc);
      r.loc = loc;
      r.locConf = loc.locConf;
    } else {
      const host = head.uriHost !== undefined ? head.lineHost : hv !== undefined ? (head.hostValid ?? validateHost(hv)!) : '';
      r.host = host;
      const vs = findVirtualServer(this.addr, host);
      r.srv = vs.srv;
      r.serverName = firstName(vs.srv);
      const loc = coreLoc(vs.srv.ctx.loc);
      r.loc = loc;
      r.locConf = loc.locConf;
      if (vs.match) setCaptures(r, vs.regex!, vs.match);
      if (head.uriHost === undefined && hv !== undefined && !vs.match) {
        this.lastHostRaw = hv;
        this.lastHost = host;
        this.lastServer = vs.srv;
        this.lastServerName = r.serverName;
      } else this.lastHostRaw = undefined;
    }

    // $request_uri starts at the path: `http://h?a` gives `?a`, `http://h` gives `/`
    r.requestUri = head.pathQuery.length ? head.pathQuery : '/';
    r.uri = head.uri;
    r.args = head.args;
    // ngx_http_process_request_header: these are logged while reading client request headers
    r.action = 'reading client request headers';
    // the Host's server set (at the Host line, in nginx): one that verifies clients must be the SNI name's
    const tc = this.tls;
    if (tc !== undefined && tc.sniName !== undefined && r.host !== tc.sniName && (r.srv.ssl?.verify ?? 0) !== 0) {
      // refused before the Host's server is taken: the request stays in the SNI name's server
      const srv = this.connSrv;
      r.srv = srv;
      r.serverName = firstName(srv);
      const loc = coreLoc(srv.ctx.loc);
      r.loc = loc;
      r.locConf = loc.locConf;
      this.lastHostRaw = undefined;
      return this.fail(r, 421, 'client attempted to request the server name different from the one that was negotiated');
    }
    // nginx 1.22 wants the header even when the request line names the host
    if (head.host === undefined && head.version > 1000) {
      return this.fail(r, 400, 'client sent HTTP/1.1 request without "Host" header');
    }
    const cl = head.contentLength;
    if (cl !== undefined) {
      // ngx_atoof: digits only, up to 2^63 - 1 (leading zeros allowed); the exact value is kept for the log
      if (!/^[0-9]+$/.test(cl)) return this.fail(r, 400, 'client sent invalid "Content-Length" header');
      const n = Number(cl);
      if (n > Number.MAX_SAFE_INTEGER) {
        const big = BigInt(cl);
        if (big > 9223372036854775807n) return this.fail(r, 400, 'client sent invalid "Content-Length" header');
        r.contentLengthText = big.toString();
      }
      r.contentLengthIn = n;
    }
    const te = head.transferEncoding;
    if (te !== undefined) {
      if (head.version < 1001) return this.fail(r, 400, 'client sent HTTP/1.0 request with "Transfer-Encoding" header');
      if (te.toLowerCase() !== 'chunked') {
        return this.fail(r, 501, `client sent unknown "Transfer-Encoding": "${te}"`);
      }
      if (cl !== undefined) {
        return this.fail(r, 400, 'client sent "Content-Length" and "Transfer-Encoding" headers at the same time');
      }
      r.chunkedIn = true;
    }
    if (head.method === 'CONNECT') return this.fail(r, 405, 'client sent CONNECT method');
    if (head.method === 'TRACE') return this.fail(r, 405, 'client sent TRACE method');
    if (this.tls !== undefined && this.tlsRefused(r)) return;
    r.action = undefined;
    if (r.contentLengthIn > 0 || r.chunkedIn) this.state = St.Wait;
    r.initKeepalive(head.connectionType);
    this.stat = statMove(this.stat, ConnStat.Writing);
    runPhases(r);
  }

  /**
   * nginx's TLS checks of a request (ngx_http_set_virtual_server with an
   * SNI name, then ngx_http_process_request): a Host naming another server
   * than the SNI name when that server verifies clients is 421; plain HTTP
   * on a TLS address is 497; a client certificate that failed is 495, a
   * missing one (`ssl_verify_client on`) 496. true when r was answered.
   */
  private tlsRefused(r: HttpRequest): boolean {
    const tc = this.tls!;
    if (tc.state !== 'secure') {
      this.fail(r, 497, 'client sent plain HTTP request to HTTPS port');
      return true;
    }
    const verify = r.srv.ssl?.verify ?? 0;
    if (verify === 0) return false;
    const v = clientVerify(tc);
    if (v.error !== undefined && (verify !== 3 || !v.optional)) {
      this.fail(r, 495, `client SSL certificate verify error: (${v.error})`);
      return true;
    }
    if (verify === 1 && !v.cert) {
      this.fail(r, 496, 'client sent no required SSL certificate');
      return true;
    }
    return false;
  }

  // ------------------------------------------------------------ request body

  private hasBody(r: HttpRequest): boolean {
    return r.contentLengthIn > 0 || r.chunkedIn;
  }

  /**
   * ngx_http_test_expect: reading or discarding a body (whether there is
   * one or not) first answers `Expect: 100-continue` of an HTTP/1.1 request
   */
  private testExpect(r: HttpRequest): void {
    if (r.expectTested || r.version < 1001) return;
    r.expectTested = true;
    // most requests send no Expect: known from the head's bits, without building the header map
    if (r.req instanceof Head && !r.req.has(Known.Expect)) return;
    const e = r.req.byName.get('expect');
    if (e !== undefined && e.length === 12 && e.toLowerCase() === '100-continue') {
      this.write(CONTINUE);
      // nginx counts it in c->sent: $bytes_sent and $body_bytes_sent include it
      r.bytesSent += CONTINUE.length;
      r.bodyBytesSent += CONTINUE.length;
    }
  }

  /**
   * while a chunked body is being discarded, nginx's content_length_n (what
   * $content_length shows): the bytes it wants next, at least
   * client_body_buffer_size; undefined otherwise
   */
  discardingChunked(r: HttpRequest): number | undefined {
    if (r !== this.current || this.state !== St.Discard || !r.chunkedIn || this.reader === undefined) return undefined;
    return Math.max(this.reader.chunkedWant(), r.loc.clientBodyBufferSize);
  }

  /** ngx_http_read_client_request_body: read it all, then cb(OK) or cb(status) */
  readBody(r: HttpRequest, cb: (status: number) => void): void {
    if (r.bodyState !== 'none') {
      cb(OK);
      return;
    }
    this.testExpect(r);
    r.body = [];
    if (!this.hasBody(r)) {
      r.bodyState = 'read';
      cb(OK);
      return;
    }
    r.bodyState = 'reading';
    const body = r.body;
    this.reader = new BodyReader(r.contentLengthIn, r.chunkedIn, r.loc.clientMaxBodySize, (b) => body.push(b));
    this.bodyCb = cb;
    this.state = St.Body;
    this.setTimer(Tm.Body, r.loc.clientBodyTimeout);
    this.feedPending();
    if (this.eof && this.state === St.Body) this.closedInBody();
  }

  /** ngx_http_discard_request_body: read and drop whatever body is left */
  discardBody(r: HttpRequest, expect = true): number {
    if (r.bodyState !== 'none' || r !== this.current) return OK;
    if (expect) this.testExpect(r);
    if (!this.hasBody(r)) return OK;
    r.bodyState = 'discard';
    this.reader = new BodyReader(r.contentLengthIn, r.chunkedIn, 0, undefined);
    this.bodyCb = undefined;
    this.state = St.Discard;
    this.feedPending();
    if (this.eof && this.state === St.Discard) {
      // the client sent all it will: discarding ends, the connection closes after the response
      this.reader = undefined;
      this.state = St.Busy;
      r.keepalive = false;
    }
    // a chunked body already broken in the bytes read with the head: nginx's discard returns 400 at once
    return r.bodyInvalid ? 400 : OK;
  }

  /**
   * the body bytes that came with the head first (nginx's preread from
   * header_in); a pipelined head after a body that ended there stays in
   * nginx's header buffer, after one that needed more reads it does not
   */
  private feedPending(): void {
    const pending = this.buf;
    this.buf = EMPTY;
    if (pending.length === 0) {
      this.carryReceived = 0;
      this.resumeReading();
      return;
    }
    this.feedBody(pending);
    if (this.state === St.Body || this.state === St.Discard) this.carryReceived = 0;
    else {
      const used = pending.length - this.buf.length;
      this.carryStart -= used;
      this.carryReceived -= used;
    }
  }

  private feedBody(d: Buffer): void {
    const reader = this.reader!;
    const st = reader.feed(d);
    if (st === BodyStatus.More) {
      // client_body_timeout is the time between two reads
      if (this.timed === Tm.Body) this.setTimer(Tm.Body, this.current!.loc.clientBodyTimeout);
      return;
    }
    const r = this.current!;
    const cb = this.bodyCb;
    this.reader = undefined;
    this.bodyCb = undefined;
    const wasDiscard = this.state === St.Discard;
    this.state = St.Busy;
    if (this.timed === Tm.Body) this.clearTimer();
    if (st === BodyStatus.Done) {
      this.buf = reader.rest ?? EMPTY;
      if (!wasDiscard) {
        r.bodyState = 'read';
        r.bodyRaw = reader.raw;
      } else r.discardDone = true;
      if (cb) cb(OK);
      else if (r.finished) this.next(r);
      return;
    }
    r.keepalive = false;
    if (st === BodyStatus.TooLarge) {
      r.log('error', `client intended to send too large chunked body: ${reader.received}+${reader.tooLargeChunk} bytes`);
      if (cb) cb(413);
      else this.socket.destroy();
      return;
    }
    r.log('error', 'client sent invalid chunked body');
    r.bodyInvalid = true;
    if (cb) cb(400);
    else if (r.finished) this.closeAfterWrite(false);
    // discarding stops; the response under way ends, then the connection closes (r.keepalive is off)
  }

  // ------------------------------------------------------------ request end

  /** the response is complete (or was cut short: `close`) */
  requestDone(r: HttpRequest, close = false): void {
    if (r !== this.current || this.state === St.Closed) return;
    // a handler that discards the body after its response (echo) answers Expect: 100-continue
    // then, after the response, as nginx does; closing or not
    if (!close && r.discardAfter && r.bodyState === 'none') this.testExpect(r);
    runLogPhase(r);
    if (close || !r.keepalive || exiting) {
      this.closeAfterWrite(close);
      return;
    }
    if (this.state === St.Discard) return; // next() runs when the body is gone
    if (this.state === St.Wait && this.hasBody(r) && r.bodyState === 'none') {
      this.discardBody(r);
      if ((this.state as St) === St.Discard || (this.state as St) === St.Closed) return;
    }
    this.next(r);
  }

  private next(r: HttpRequest): void {
    if (!r.keepalive || exiting) {
      this.closeAfterWrite(false);
      return;
    }
    this.current = undefined;
    this.state = St.Head;
    // the next request starts at once with pipelined bytes, else the connection waits
    this.stat = statMove(this.stat, this.buf.length ? ConnStat.Reading : ConnStat.Waiting);
    this.startHead(this.buf.length > 0);
    this.resumeReading();
    if (this.buf.length) {
      // pipelined: the next head is parsed at once; client_header_timeout if it is unfinished
      this.clearTimer();
      setImmediate(() => {
        if (this.state === St.Head) this.parseHead();
      });
    } else if (this.eof) {
      this.closedInHead();
    } else {
      // ngx_http_set_keepalive: idle between requests, reusable
      reusable.add(this);
      this.setTimer(Tm.Keepalive, r.loc.keepaliveTimeout);
    }
  }

  private closeAfterWrite(reset: boolean): void {
    const sock = this.socket;
    this.state = St.Closed;
    this.stopTimer();
    live.delete(this);
    this.stat = statMove(this.stat, ConnStat.None);
    if (this.h2Parent === undefined) counters.active--;
    else this.h2Parent.h2StreamDone();
    reusable.delete(this);
    this.dropHead();
    // until the socket is closed (response sent, lingering close over), a graceful stop waits (closingConnections)
    if (!sock.destroyed) {
      closing++;
      sock.once('close', () => closing--);
    }
    // what this turn wrote goes out before the FIN
    this.raw?.flush();
    if (reset) {
      // a response cut short: nginx closes the connection as is
      sock.end();
      setTimeout(() => sock.destroy(), 5000).unref();
      return;
    }
    // lingering close: stop sending, drain what the client still sends
    sock.end();
    this.resumeReading();
    setTimeout(() => sock.destroy(), 5000).unref();
  }
}

/** the log phase (hooks.ts): every module's log handler, in module order */
function runLogPhase(r: HttpRequest): void {
  const list = hooks.log;
  for (let i = 0; i < list.length; i++) list[i]!(r);
  // then the request's cleanups (nginx frees the request pool after logging it)
  const cl = r.cleanups;
  if (cl !== undefined) {
    r.cleanups = undefined;
    for (let i = cl.length - 1; i >= 0; i--) cl[i]!();
  }
}

export { getMainLog };
