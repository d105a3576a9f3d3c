import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import {
  createServer as createPlainServer,
  createSecureServer,
  constants as h2c,
  type Http2SecureServer,
  type Http2Server,
  type Settings,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import * as tls from 'node:tls';
import type { TLSSocket } from 'node:tls';
import type { AddrConf } from './servers.js';
import { ALPN_H2, anyVerifies, bindSessionEvents, chooseServer } from './tls.js';

/*
 * HTTP/2 on a `listen ... ssl http2` address (ALPN h2), through node:http2.
 * node:http2 takes only sockets its own TLS server made, so an http2
 * address's connections go through one Http2SecureServer per address
 * (the accepted socket, after nginx's first-byte peek, is handed to it);
 * a connection that chose http/1.x comes back (`unknownProtocol`) and is
 * read by HttpConnection as on any TLS address.
 * Each stream is handed to the same HTTP engine as an HTTP/1.1 request on
 * a stream-sized in-memory socket (StreamSocket): the request's pseudo
 * headers and headers become a request head (`Connection: close`, the
 * body framed by its content-length, else chunked), and the engine's
 * HTTP/1.1 response is read back into the stream's :status, headers
 * (without the hop-by-hop ones) and DATA, with backpressure both ways.
 * So every module, phase and variable runs unchanged; the engine marks
 * such a request HTTP/2.0 ($server_protocol, $request, $http2) and counts
 * it as a request of its connection (stub_status, $connection).
 * A plain `listen ... http2` speaks HTTP/2 with prior knowledge (h2c):
 * the connection's first bytes are checked against the client preface and
 * the socket handed to one plain Http2Server per address
 * (docs/behaviour.md §11).
 */

/**
 * ngx_http_v2_module's settings for an address (its default server's),
 * hung on CoreSrvConf.http2 by the http2 module (lib/modules/http2).
 */
export interface H2Conf {
  /** http2_max_concurrent_streams */
  maxConcurrentStreams: number;
  /** http2_body_preread_size: nginx's SETTINGS_INITIAL_WINDOW_SIZE */
  prereadSize: number;
  /** large_client_header_buffers' size: the largest header field (and list) nginx takes */
  maxHeaderListSize: number;
  /** keepalive_timeout of the default server (nginx 1.19.7+: the idle timeout of HTTP/2 too), ms */
  idleTimeout: number;
  /** keepalive_requests: after this many streams the connection says GOAWAY */
  maxRequests: number;
}

export const DEFAULT_H2: H2Conf = { maxConcurrentStreams: 128, prereadSize: 65536, maxHeaderListSize: 4 * 8192, idleTimeout: 75000, maxRequests: 1000 };

/** the SETTINGS nginx sends (ngx_http_v2_send_settings): streams, window, and its largest frame size */
function settingsOf(c: H2Conf): Settings {
  return { maxConcurrentStreams: c.maxConcurrentStreams, initialWindowSize: c.prereadSize, maxFrameSize: 16777215, maxHeaderListSize: c.maxHeaderListSize };
}

/** what a stream's socket pretends to be: the TLS connection's addresses */
interface Peer {
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  localAddress: string | undefined;
  localPort: number | undefined;
}

const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade']);

const enum Body {
  Head,
  Length,
  Chunked,
  Close,
  Done,
}

/** the engine's HTTP/1.1 response, turned into one HTTP/2 stream's response */
class ResponseReader {
  private head = '';
  private state = Body.Head;
  private left = 0;
  /** chunked: reading a size line (`line`), the data (`left`), or the CRLF after it */
  private line = '';
  private crlf = 0;
  private trailer = false;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly isHead: boolean,
  ) {}

  /** feed bytes; returns false when the stream wants the writer to wait for 'drain' */
  feed(b: Buffer): boolean {
    let ok = true;
    let p = 0;
    while (p < b.length && this.state !== Body.Done) {
      if (this.state === Body.Head) {
        const text = b.toString('latin1', p);
        const end = (this.head + text).indexOf('\r\n\r\n');
        if (end === -1) {
          this.head += text;
          return true;
        }
        const used = end + 4 - this.head.length;
        this.head = (this.head + text).slice(0, end);
        p += used;
        this.respond();
        continue;
      }
      if (this.state === Body.Length) {
        const n = Math.min(this.left, b.length - p);
        ok = this.stream.write(b.subarray(p, p + n)) && ok;
        p += n;
        this.left -= n;
        if (this.left === 0) this.finish();
        continue;
      }
      if (this.state === Body.Close) {
        ok = this.stream.write(b.subarray(p)) && ok;
        return ok;
      }
      // chunked
      if (this.left > 0) {
        const n = Math.min(this.left, b.length - p);
        ok = this.stream.write(b.subarray(p, p + n)) && ok;
        p += n;
        this.left -= n;
        if (this.left === 0) this.crlf = 2;
        continue;
      }
      if (this.crlf > 0) {
        this.crlf--;
        p++;
        continue;
      }
      const c = b[p++]!;
      if (c !== 0x0a) {
        this.line += String.fromCharCode(c);
        continue;
      }
      const line = this.line.replace(/\r$/, '');
      this.line = '';
      if (this.trailer) {
        if (line === '') this.finish();
        continue;
      }
      const size = parseInt(line, 16);
      if (size === 0) this.trailer = true;
      else this.left = size;
    }
    return ok;
  }

  /** the end of the engine's bytes: a close-delimited body ends here */
  end(): void {
    if (this.state === Body.Close) this.finish();
    else if (this.state !== Body.Done) this.stream.close(h2c.NGHTTP2_INTERNAL_ERROR);
  }

  private respond(): void {
    const lines = this.head.split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers: OutgoingHttpHeaders = { ':status': status };
    let chunked = false;
    let length = -1;
    for (let i = 1; i < lines.length; i++) {
      const colon = lines[i]!.indexOf(':');
      const name = lines[i]!.slice(0, colon).toLowerCase();
      const value = lines[i]!.slice(colon + 1).trim();
      if (name === 'transfer-encoding') chunked = value.toLowerCase() === 'chunked';
      if (HOP.has(name)) continue;
      if (name === 'content-length') length = Number(value);
      const have = headers[name];
      if (have === undefined) headers[name] = value;
      else headers[name] = Array.isArray(have) ? [...have, value] : [String(have), value];
    }
    this.head = '';
    const noBody = this.isHead || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (status >= 100 && status < 200) {
      // 100 Continue: the engine sends the real response next
      this.stream.additionalHeaders({ ':status': status });
      return;
    }
    this.stream.respond(headers, { endStream: noBody || length === 0 });
    if (noBody || length === 0) this.state = Body.Done;
    else if (chunked) this.state = Body.Chunked;
    else if (length > 0) {
      this.state = Body.Length;
      this.left = length;
    } else this.state = Body.Close;
  }

  private finish(): void {
    this.state = Body.Done;
    this.stream.end();
  }
}

/** one HTTP/2 stream seen by the engine as a socket carrying one HTTP/1.1 request */
export class StreamSocket extends Duplex {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  private readonly reader: ResponseReader;

  constructor(
    private readonly stream: ServerHttp2Stream,
    peer: Peer,
    isHead: boolean,
  ) {
    super({ allowHalfOpen: true });
    this.remoteAddress = peer.remoteAddress;
    this.remotePort = peer.remotePort;
    this.localAddress = peer.localAddress;
    this.localPort = peer.localPort;
    this.reader = new ResponseReader(stream, isHead);
    stream.on('close', () => this.destroy());
  }

  setNoDelay(): this {
    return this;
  }

  override _read(): void {
    this.stream.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.stream.destroyed) return cb();
    if (this.reader.feed(chunk)) cb();
    else this.stream.once('drain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.stream.destroyed) this.reader.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (!this.stream.destroyed && !this.stream.closed) this.stream.close(h2c.NGHTTP2_CANCEL);
    cb(err);
  }

  /** the request's bytes, as the engine reads them; the stream waits while the engine does not read */
  request(bytes: Buffer): void {
    if (!this.push(bytes)) this.stream.pause();
  }
}

/** the HTTP/1.1 head of a stream's request */
export function requestHead(headers: IncomingHttpHeaders, endStream: boolean): { head: string; chunked: boolean; isHead: boolean } {
  const method = String(headers[':method'] ?? 'GET');
  const path = String(headers[':path'] ?? '/');
  let head = `${method} ${path} HTTP/1.1\r\n`;
  const authority = headers[':authority'];
  if (headers.host === undefined && authority !== undefined) head += `Host: ${String(authority)}\r\n`;
  let length = false;
  for (const [name, v] of Object.entries(headers)) {
    if (name.startsWith(':') || v === undefined || HOP.has(name) || name === 'expect') continue;
    if (name === 'content-length') length = true;
    // cookie crumbs are one header again (RFC 9113 8.2.3), as nginx joins them
    if (name === 'cookie' && Array.isArray(v)) head += `Cookie: ${v.join('; ')}\r\n`;
    else for (const one of Array.isArray(v) ? v : [v]) head += `${name}: ${one}\r\n`;
  }
  const chunked = !endStream && !length;
  if (chunked) head += 'Transfer-Encoding: chunked\r\n';
  head += 'Connection: close\r\n\r\n';
  return { head, chunked, isHead: method === 'HEAD' };
}

/** what the connection that owns a raw socket does with what the server makes of it */
export interface H2Owner {
  /** the handshake is done: the TLS socket (h2: its streams come through `stream`) */
  secure(sock: TLSSocket): void;
  /** the handshake failed */
  error(err: Error): void;
  /** one HTTP/2 stream's request */
  stream(s: StreamSocket): void;
}

const servers = new WeakMap<AddrConf, Http2SecureServer>();
const plainServers = new WeakMap<AddrConf, Http2Server>();

/** the connection that owns an accepted socket (read through a TLS socket's or a session's proxy too) */
const OWNER = Symbol('redis2d.h2owner');
type Owned = { [OWNER]?: H2Owner; _parent?: Owned };
const ownerOf = (s: unknown): H2Owner | undefined => {
  const o = s as Owned | undefined;
  return o?.[OWNER] ?? o?._parent?.[OWNER];
};

interface ServerInternals {
  /** tls.Server's default context: the address's default server's */
  _sharedCreds: tls.SecureContext;
}

function serverFor(ac: AddrConf): Http2SecureServer {
  let srv = servers.get(ac);
  if (srv !== undefined) return srv;
  const dflt = ac.defaultServer.ssl!.context!;
  srv = createSecureServer({
    allowHTTP1: false,
    requestCert: anyVerifies(ac),
    rejectUnauthorized: false,
    settings: settingsOf(ac.defaultServer.http2 ?? DEFAULT_H2),
    SNICallback: (name, cb) => {
      const chosen = chooseServer(ac, name);
      cb(null, chosen?.srv.ssl?.context ?? dflt);
    },
  });
  (srv as unknown as ServerInternals)._sharedCreds = dflt;
  const sessions = ac.defaultServer.ssl!.sessions;
  if (sessions !== undefined) bindSessionEvents(srv, sessions);
  // nginx's ALPN list on an http2 address: h2, then HTTP/1.x (which comes back to HttpConnection)
  (tls as unknown as { convertALPNProtocols(p: string[], out: object): void }).convertALPNProtocols(ALPN_H2, srv);
  srv.on('secureConnection', (sock: TLSSocket) => ownerOf(sock)?.secure(sock));
  srv.on('unknownProtocol', () => {});
  srv.on('tlsClientError', (err: Error, sock: TLSSocket) => ownerOf(sock)?.error(err));
  serveStreams(srv, ac);
  servers.set(ac, srv);
  return srv;
}

/** the plain (h2c, prior knowledge) server of an address */
function plainServerFor(ac: AddrConf): Http2Server {
  let srv = plainServers.get(ac);
  if (srv !== undefined) return srv;
  srv = createPlainServer({ settings: settingsOf(ac.defaultServer.http2 ?? DEFAULT_H2) });
  serveStreams(srv, ac);
  plainServers.set(ac, srv);
  return srv;
}

/** sessions and streams, alike for h2 and h2c */
function serveStreams(srv: Http2SecureServer | Http2Server, ac: AddrConf): void {
  const conf = ac.defaultServer.http2 ?? DEFAULT_H2;
  srv.on('session', (session: ServerHttp2Session) => {
    session.on('error', () => {});
    sessions.add(session);
    // keepalive_timeout: an HTTP/2 connection without streams closes (GOAWAY) when it runs out
    if (conf.idleTimeout > 0) session.setTimeout(conf.idleTimeout, () => session.close());
    session.once('close', () => sessions.delete(session));
    if (closing) session.close();
  });
  srv.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number) => {
    const session = stream.session;
    const sock = session?.socket;
    const owner = ownerOf(sock);
    if (owner === undefined || sock === undefined || session === undefined) {
      stream.close(h2c.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    // keepalive_requests (and keepalive_timeout 0): this stream is answered, then GOAWAY (ngx_http_v2_state_headers)
    const n = (streamCount.get(session) ?? 0) + 1;
    streamCount.set(session, n);
    if (n >= conf.maxRequests || conf.idleTimeout === 0) session.close();
    const endStream = (flags & h2c.NGHTTP2_FLAG_END_STREAM) !== 0;
    const { head, chunked, isHead } = requestHead(headers, endStream);
    const s = new StreamSocket(stream, { remoteAddress: sock.remoteAddress, remotePort: sock.remotePort, localAddress: sock.localAddress, localPort: sock.localPort }, isHead);
    s.request(Buffer.from(head, 'latin1'));
    stream.on('error', () => {});
    stream.on('data', (d: Buffer) => {
      s.request(chunked ? Buffer.concat([Buffer.from(`${d.length.toString(16)}\r\n`), d, Buffer.from('\r\n')]) : d);
    });
    stream.on('end', () => {
      if (chunked) s.request(Buffer.from('0\r\n\r\n'));
    });
    owner.stream(s);
  });
}

const streamCount = new WeakMap<object, number>();

const sessions = new Set<ServerHttp2Session>();
let closing = false;

/** graceful stop: every session sends GOAWAY and closes once its streams are answered (as nginx's) */
export function closeH2Sessions(): void {
  closing = true;
  for (const s of sessions) s.close();
}

/** hand an accepted socket (its first bytes put back) to the address's HTTP/2 TLS server */
export function startH2Tls(raw: Socket, ac: AddrConf, owner: H2Owner): void {
  (raw as Owned)[OWNER] = owner;
  serverFor(ac).emit('connection', raw);
}

/** hand an accepted socket whose first bytes are the client preface (put back) to the address's h2c server */
export function startH2c(raw: Socket, ac: AddrConf, owner: H2Owner): void {
  (raw as Owned)[OWNER] = owner;
  plainServerFor(ac).emit('connection', raw);
}

/** the client connection preface (RFC 9113 3.4) */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * Does `b` (the first bytes of an h2c connection) still agree with the
 * preface? nginx compares its first 16 bytes once it has them, then the
 * other 8: 'more' until it can tell.
 */
export function prefaceCheck(b: Buffer): 'yes' | 'no' | 'more' {
  const first = 16;
  if (b.length < first) return 'more';
  if (b.compare(PREFACE, 0, first, 0, first) !== 0) return 'no';
  if (b.length < PREFACE.length) return 'more';
  return b.compare(PREFACE, first, PREFACE.length, first, PREFACE.length) === 0 ? 'yes' : 'no';
}

/**
 * What nginx sends a client whose first bytes are not the preface: its
 * SETTINGS (already queued by ngx_http_v2_init), the connection WINDOW_UPDATE
 * and GOAWAY with PROTOCOL_ERROR; then it closes.
 */
export function prefaceRefusal(c: H2Conf): Buffer {
  const b = Buffer.alloc(9 + 18 + 9 + 4 + 9 + 8);
  let p = 0;
  const frame = (len: number, type: number): void => {
    b.writeUIntBE(len, p, 3);
    b[p + 3] = type;
    b[p + 4] = 0;
    b.writeUInt32BE(0, p + 5);
    p += 9;
  };
  frame(18, 0x4);
  for (const [id, v] of [[3, c.maxConcurrentStreams], [4, c.prereadSize], [5, 16777215]] as const) {
    b.writeUInt16BE(id, p);
    b.writeUInt32BE(v, p + 2);
    p += 6;
  }
  frame(4, 0x8);
  b.writeUInt32BE(0x7fffffff - 65535, p);
  p += 4;
  frame(8, 0x7);
  b.writeUInt32BE(0, p);
  b.writeUInt32BE(h2c.NGHTTP2_PROTOCOL_ERROR, p + 4);
  return b;
}
