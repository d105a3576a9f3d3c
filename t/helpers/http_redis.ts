import net from 'node:net';
import { raw, normalize } from './server.js';

/*
 * HTTP exchanges for the redis2 tests: one request, the response split into
 * head and (de-chunked) body, Date/Server/port normalised.
 */

export interface Reply {
  /** status line and headers, normalised, without the blank line */
  head: string;
  status: number;
  /** the body as sent on the wire (chunked framing included) */
  wire: string;
  /** the body with chunked framing removed */
  body: string;
  /** true when the chunked body ended with its last chunk */
  complete: boolean;
}

export function dechunk(wire: string): { body: string; complete: boolean } {
  let body = '';
  let i = 0;
  for (;;) {
    const eol = wire.indexOf('\r\n', i);
    if (eol < 0) return { body, complete: false };
    const n = parseInt(wire.slice(i, eol), 16);
    if (Number.isNaN(n)) return { body, complete: false };
    if (n === 0) return { body, complete: wire.slice(eol, eol + 4) === '\r\n\r\n' };
    body += wire.slice(eol + 2, eol + 2 + n);
    i = eol + 2 + n + 2;
  }
}

/** the de-chunked body of a whole chunked response (head included) */
export function chunkedBody(resp: string): string {
  return dechunk(resp.slice(resp.indexOf('\r\n\r\n') + 4)).body;
}

/** a client that asks for `path`, reads past 100 000 bytes of the answer, then leaves */
export function leaveMidReply(port: number, path: string): Promise<void> {
  return new Promise<void>((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    let got = 0;
    c.on('data', (d) => {
      got += d.length;
      if (got > 100000) {
        c.destroy();
        resolve();
      }
    });
    c.on('error', () => resolve());
    c.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
}

export function parseReply(text: string, port: number): Reply {
  const end = text.indexOf('\r\n\r\n');
  const head = normalize(end < 0 ? text : text.slice(0, end + 2), port).replace(/\r\n$/, '');
  const wire = end < 0 ? '' : text.slice(end + 4);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
  const chunked = /\r\nTransfer-Encoding: chunked\r\n/i.test(text.slice(0, end + 2));
  const d = chunked ? dechunk(wire) : { body: wire, complete: true };
  return { head, status, wire, body: d.body, complete: d.complete };
}

export async function request(port: number, path: string, opts: { method?: string; version?: string; body?: string; headers?: string[] } = {}): Promise<Reply> {
  const method = opts.method ?? 'GET';
  const version = opts.version ?? '1.1';
  let req = `${method} ${path} HTTP/${version}\r\nHost: x\r\nConnection: close\r\n`;
  for (const h of opts.headers ?? []) req += `${h}\r\n`;
  if (opts.body !== undefined) req += `Content-Length: ${Buffer.byteLength(opts.body, 'latin1')}\r\n`;
  req += '\r\n' + (opts.body ?? '');
  return parseReply(await raw(port, req, 3000), port);
}
