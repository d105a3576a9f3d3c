import type { Conf } from '../../conf/parser.js';
import type { CharsetMainConf, MapBlock, Table } from './conf.js';
import { UTF8_INVALID, utf8Decode } from '../../core/utf8.js';

/*
 * charset_map SRC DST { XX YY; ... } (ngx_http_charset_map_block): the
 * table from SRC to DST and its reverse. DST `utf-8` makes the values
 * UTF-8 byte sequences in hex; otherwise both sides are bytes. Bytes
 * 0x00-0x7f map to themselves, the rest to `?` until a line maps them
 * (from UTF-8: to nothing, which the filter writes as `&#N;`).
 */

/** ngx_http_add_charset: the index of a name (case-insensitive), added when new */
export function addCharset(m: CharsetMainConf, name: string): number {
  const low = name.toLowerCase();
  const i = m.charsets.findIndex((c) => c.name.length === name.length && c.name.toLowerCase() === low);
  if (i !== -1) return i;
  m.charsets.push({ name, utf8: low === 'utf-8', tables: new Map() });
  return m.charsets.length - 1;
}

/** ngx_hextoi: hex digits only, -1 for anything else or nothing */
function hextoi(s: string): number {
  if (s.length === 0 || !/^[0-9a-fA-F]+$/.test(s)) return -1;
  return parseInt(s, 16);
}

export function charsetMapBlock(cf: Conf, m: CharsetMainConf): string | undefined {
  const [, a, b] = cf.args as [string, string, string];
  const src = addCharset(m, a);
  const dst = addCharset(m, b);
  if (src === dst) throw cf.error(`"charset_map" between the same charsets "${a}" and "${b}"`);
  for (const t of m.maps) {
    if ((t.src === src && t.dst === dst) || (t.src === dst && t.dst === src)) {
      throw cf.error(`duplicate "charset_map" between "${a}" and "${b}"`);
    }
  }
  const toUtf8 = b.toLowerCase() === 'utf-8';
  let src2dst: Table;
  let dst2src: Table;
  if (toUtf8) {
    const map: Buffer[] = [];
    for (let i = 0; i < 256; i++) map.push(Buffer.from([i < 128 ? i : 0x3f]));
    const rev = new Map<number, number>();
    for (let i = 1; i < 128; i++) rev.set(i, i);
    src2dst = { kind: 'toUtf8', map };
    dst2src = { kind: 'fromUtf8', map: rev };
  } else {
    const fwd = new Uint8Array(256);
    const rev = new Uint8Array(256);
    for (let i = 0; i < 256; i++) fwd[i] = rev[i] = i < 128 ? i : 0x3f;
    src2dst = { kind: 'byte', map: fwd };
    dst2src = { kind: 'byte', map: rev };
  }
  const block: MapBlock = { src, dst, src2dst, dst2src };
  m.maps.push(block);
  cf.parseBlock(cf.cmdType, cf.ctx, (cf) => {
    if (cf.args.length !== 2) throw cf.error('invalid parameters number');
    const [k, v] = cf.args as [string, string];
    const from = hextoi(k);
    if (from === -1 || from > 255) throw cf.error(`invalid value "${k}"`);
    if (src2dst.kind === 'toUtf8' && dst2src.kind === 'fromUtf8') {
      const bytes: number[] = [];
      for (let i = 0; i < v.length; i += 2) {
        const d = i + 2 > v.length ? -1 : hextoi(v.slice(i, i + 2));
        if (d === -1 || d > 255) throw cf.error(`invalid value "${v}"`);
        bytes.push(d);
      }
      const seq = Buffer.from(bytes);
      const n = seq.length ? utf8Decode(seq, 0, seq.length, { next: 0 }) : UTF8_INVALID;
      if (n > 0xffff) throw cf.error(`invalid value "${v}"`);
      src2dst.map[from] = seq;
      dst2src.map.set(n, from);
      return undefined;
    }
    if (src2dst.kind === 'byte' && dst2src.kind === 'byte') {
      const to = hextoi(v);
      if (to === -1 || to > 255) throw cf.error(`invalid value "${v}"`);
      src2dst.map[from] = to;
      dst2src.map[to] = from;
    }
    return undefined;
  });
  return undefined;
}
