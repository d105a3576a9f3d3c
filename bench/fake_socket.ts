import { EventEmitter } from 'node:events';

/*
 * The parts of net.Socket that HttpConnection uses, for the in-process
 * engine benches (http-engine.ts, srcache-engine.ts, lua-engine.ts): every
 * write is taken at once; a subclass counts the responses in what is
 * written and calls counted() for each.
 */
export abstract class FakeSocket extends EventEmitter {
  remoteAddress = '127.0.0.1';
  remotePort = 40000;
  localAddress = '127.0.0.1';
  localPort = 18080;
  writableNeedDrain = false;
  responses = 0;
  bytes = 0;
  /** called after each complete response */
  onResponse: (() => void) | undefined = undefined;
  setNoDelay(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
  cork(): void {}
  uncork(): void {}
  resume(): this {
    return this;
  }
  pause(): this {
    return this;
  }
  /** count the response(s) ending in b */
  protected abstract seen(b: Buffer): void;
  /** a subclass saw one more complete response */
  protected counted(): void {
    this.responses++;
    this.onResponse?.();
  }
  write(b: Buffer): boolean {
    this.bytes += b.length;
    this.seen(b);
    return true;
  }
  end(): this {
    return this;
  }
  destroy(): this {
    this.emit('close');
    return this;
  }
}

/**
 * A closed loop as wrk runs one: `conns` connections, each sending its next
 * request in a later turn (as from a socket) once its response is complete;
 * after 1000 responses (keepalive_requests) a connection is replaced by a
 * new one. `run(n)` resolves when n responses came.
 */
export function closedLoop(open: () => FakeSocket, request: Buffer, conns: number): (n: number) => Promise<void> {
  return (n) =>
    new Promise((resolve) => {
      let sent = 0;
      let done = 0;
      const start = (): void => {
        const sock = open();
        sock.onResponse = (): void => {
          done++;
          if (done === n) resolve();
          if (sent >= n) return;
          if (sock.responses === 1000) {
            sock.destroy();
            start();
            return;
          }
          sent++;
          setImmediate(() => sock.emit('data', request));
        };
        sent++;
        setImmediate(() => sock.emit('data', request));
      };
      for (let i = 0; i < conns && i < n; i++) start();
    });
}
