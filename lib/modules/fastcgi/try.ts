import net, { type Socket } from 'node:net';
import { ConnPhase } from '../../upstream/conn_try.js';
import { HttpConnTry, type HttpTryRun } from '../../upstream/http_try.js';
import { poolOf } from '../../upstream/keepalive.js';
import { ACTION_HEADER, prematurelyClosed } from '../../upstream/messages.js';
import type { PeerTarget } from '../../upstream/peers.js';
import type { FastcgiLocConf } from './conf.js';
import { CgiHeaderParser, RecordParser, stderrLogText } from './record.js';

/*
 * One FastCGI exchange with one peer (ngx_http_fastcgi_module's
 * process_header / input_filter, plugged into the generic try:
 * lib/upstream/conn_try.ts, http_try.ts): the request's
 * records in one write, then the reply's records parsed as they arrive:
 * STDOUT's CGI header becomes the response header (Status, Location and
 * the rest, lib/upstream/response.ts), the rest of STDOUT streams to the
 * client with backpressure (the socket pauses while the client is slow),
 * STDERR is logged as nginx logs it, END_REQUEST completes the response.
 * With fastcgi_keep_conn on the connection goes back to the upstream's
 * keepalive cache.
 */

/** What a try needs from its run (handler.ts FastcgiRun): the request, its records and conf, the loop's callbacks. */
export interface FastcgiRun extends HttpTryRun {
  readonly flcf: FastcgiLocConf;
  readonly records: Buffer[];
}

export class FastcgiTry extends HttpConnTry<FastcgiRun> {
  private readonly records = new RecordParser(1);
  private readonly head: CgiHeaderParser;

  constructor(run: FastcgiRun, peer: PeerTarget) {
    super(run, peer, run.flcf);
    this.head = new CgiHeaderParser(Math.max(run.flcf.bufferSize, 64));
    // fastcgi_limit_rate paces reading only with buffering, as nginx's event pipe
    this.readRate = run.flcf.buffering === 1 ? run.flcf.limitRate : 0;
    this.forceRanges = run.flcf.forceRanges === 1;
    // a bound connection is the request's own (its local address is part of what it asked for)
    this.begin(poolOf(run.upstream), peer.name, run.flcf.keepConn !== 0 && run.bind === undefined);
  }

  protected openSocket(): Socket {
    const peer = this.peer;
    const b = this.run.bind;
    const sock = peer.path !== undefined
      ? net.connect({ path: peer.path })
      : net.connect({ host: peer.host, port: peer.port ?? 0, localAddress: b?.host, localPort: b?.port || undefined });
    // fastcgi_socket_keepalive: SO_KEEPALIVE, the system's probe times (0 leaves them as they are)
    if (this.run.flcf.socketKeepalive === 1) sock.setKeepAlive(true, 0);
    return sock;
  }

  protected request(): Buffer {
    const recs = this.run.records;
    return recs.length === 1 ? recs[0]! : Buffer.concat(recs);
  }

  protected override onEnd(): void {
    // the application closed the connection before END_REQUEST
    const msg = this.phase === ConnPhase.Header ? 'upstream prematurely closed FastCGI stdout' : prematurelyClosed(this.action());
    this.fail(502, 'error', this.phase === ConnPhase.Header ? `${msg} while ${ACTION_HEADER}` : msg);
  }

  protected onData(chunk: Buffer): void {
    const events = this.records.feed(chunk);
    for (const ev of events) {
      if (this.isDone()) return;
      switch (ev.type) {
        case 'stdout':
          this.stdout(ev.data);
          break;
        case 'stderr': {
          const text = stderrLogText(ev.data);
          this.run.log('error', `FastCGI sent in stderr: "${text}" while ${this.action()}`);
          // fastcgi_catch_stderr: before the header, a matching piece makes the response invalid (next upstream, 502)
          const catches = this.run.flcf.catchStderr;
          if (catches !== undefined && this.phase === ConnPhase.Header && catches.some((c) => c !== '' && text.includes(c))) {
            this.fail(502, 'invalid_response', '');
            return;
          }
          break;
        }
        case 'stdout-end':
          break;
        case 'end':
          this.end(false);
          break;
        case 'trailing':
          this.run.log('warn', `upstream sent more data than specified in "Content-Length" header while ${this.action()}`);
          break;
        case 'error':
          this.fail(502, 'invalid_response', `${ev.message} while ${this.action()}`);
          break;
      }
    }
  }

  private stdout(data: Buffer): void {
    if (this.phase === ConnPhase.Header) {
      const res = this.head.feed(data);
      if (res.state === 'more') return;
      if (res.state === 'error') {
        this.fail(502, 'invalid_response', `${res.message} while ${ACTION_HEADER}`);
        return;
      }
      if (!this.header(res.head.status, res.head.statusLine, res.head.headers)) return;
      const rest = res.bodyOffset < data.length ? data.subarray(res.bodyOffset) : undefined;
      if (rest !== undefined) this.body(rest);
      return;
    }
    this.body(data);
  }

  /** the CGI header is complete: next upstream, intercept, or the client's header */
  private header(status: number, statusLine: string, headers: Array<{ name: string; value: string }>): boolean {
    if (this.diverted(status, this.run.flcf.interceptErrors !== 0)) return false;
    const sp = statusLine.indexOf(' ');
    const reason = sp === -1 ? undefined : statusLine.slice(sp + 1);
    return this.passHead(status, reason, headers.map((h) => [h.name, h.value] as const));
  }

  private body(data: Buffer): void {
    this.toClient(this.run.r, data);
  }

  /** END_REQUEST: the response is complete */
  private end(_trailing: boolean): void {
    if (this.phase === ConnPhase.Header) {
      // no header at all: nginx's "upstream prematurely closed FastCGI stdout"
      this.fail(502, 'error', `upstream prematurely closed FastCGI stdout while ${ACTION_HEADER}`);
      return;
    }
    this.settle(this.run.r.status, true, this.run.flcf.keepConn === 1 && this.run.bind === undefined, undefined, false);
  }
}
