import { nextBody, nextLast, type BodyFilter, type HttpRequest } from '../../http/http_request.js';
import type { Table } from './conf.js';
import { UTF8_INCOMPLETE, utf8Decode } from '../../core/utf8.js';

/*
 * The charset filter's body side (ngx_http_charset_body_filter): each
 * piece of the body recoded as it passes, nothing held back but the
 * bytes of a UTF-8 character cut by a piece's end (at most 3). 8-bit to
 * 8-bit and 8-bit to UTF-8 go byte by byte through the charset_map table
 * (unmapped bytes are `?`); UTF-8 to 8-bit decodes as ngx_utf8_decode
 * does: a character the table lacks becomes `&#N;`, invalid UTF-8 `?`.
 */

/** where utf8Decode stopped; one per module, the filter runs to completion */
const step = { next: 0 };

export class CharsetFilter implements BodyFilter {
  next: BodyFilter | undefined;
  /** the start of a UTF-8 character the last piece ended in */
  private saved: Buffer | undefined = undefined;

  constructor(
    next: BodyFilter | undefined,
    private readonly table: Table,
  ) {
    this.next = next;
  }

  body(r: HttpRequest, chunk: Buffer): boolean {
    if (chunk.length === 0) return nextBody(r, this.next, chunk);
    const t = this.table;
    let out: Buffer;
    if (t.kind === 'byte') {
      out = Buffer.allocUnsafe(chunk.length);
      for (let i = 0; i < chunk.length; i++) out[i] = t.map[chunk[i]!]!;
    } else if (t.kind === 'toUtf8') {
      const parts: Buffer[] = [];
      let start = 0;
      for (let i = 0; i < chunk.length; i++) {
        if (chunk[i]! < 0x80) continue;
        if (i > start) parts.push(chunk.subarray(start, i));
        parts.push(t.map[chunk[i]!]!);
        start = i + 1;
      }
      if (start === 0) return nextBody(r, this.next, chunk);
      if (start < chunk.length) parts.push(chunk.subarray(start));
      out = Buffer.concat(parts);
    } else out = this.fromUtf8(chunk, t.map);
    if (out.length === 0) return !r.conn.congested();
    return nextBody(r, this.next, out);
  }

  last(r: HttpRequest): void {
    // an unfinished character at the very end is dropped, as nginx's filter leaves it
    this.saved = undefined;
    nextLast(r, this.next);
  }

  private fromUtf8(chunk: Buffer, map: Map<number, number>): Buffer {
    let text = '';
    let src = 0;
    const saved = this.saved;
    if (saved !== undefined) {
      // complete the character the last piece ended in
      const take = Math.min(4 - saved.length, chunk.length);
      const buf = Buffer.concat([saved, chunk.subarray(0, take)]);
      const n = utf8Decode(buf, 0, buf.length, step);
      if (n === UTF8_INCOMPLETE && buf.length < 4) {
        this.saved = buf;
        return Buffer.alloc(0);
      }
      const c = n < 0x10000 ? (map.get(n) ?? 0) : 0;
      let used = step.next;
      if (c) text += String.fromCharCode(c);
      else if (n === UTF8_INCOMPLETE) {
        text += '?';
        used = 4;
      } else if (n > 0x10ffff) text += '?';
      else text += `&#${n};`;
      src = used - saved.length;
      this.saved = undefined;
    }
    let run = src;
    const end = chunk.length;
    while (src < end) {
      if (chunk[src]! < 0x80) {
        src++;
        continue;
      }
      if (src > run) text += chunk.toString('latin1', run, src);
      const n = utf8Decode(chunk, src, end, step);
      if (n === UTF8_INCOMPLETE) {
        this.saved = Buffer.from(chunk.subarray(src));
        run = end;
        src = end;
        break;
      }
      src = step.next;
      run = src;
      if (n < 0x10000) {
        const c = map.get(n);
        text += c ? String.fromCharCode(c) : `&#${n};`;
      } else if (n > 0x10ffff) text += '?';
      else text += `&#${n};`;
    }
    if (run < end) text += chunk.toString('latin1', run, end);
    return Buffer.from(text, 'latin1');
  }
}
