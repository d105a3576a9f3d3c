import { EventEmitter } from 'node:events';

/*
 * The parts of net.Socket that HttpConnection uses, for the in-process
 * engine benches (http-engine.ts, srcache-engine.ts): every write is taken
 * at once; a subclass counts the responses in what is written.
 */
export abstract class FakeSocket extends EventEmitter {
  remoteAddress = '127.0.0.1';
  remotePort = 40000;
  localAddress = '127.0.0.1';
  localPort = 18080;
  writableNeedDrain = false;
  responses = 0;
  bytes = 0;
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
