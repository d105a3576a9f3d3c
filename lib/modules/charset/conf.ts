import type { TypeList } from '../../http/types.js';

/* ngx_http_charset_filter_module's conf shapes. */

/** a charset's recoding table to another charset */
export type Table =
  /** 8-bit to 8-bit: byte → byte */
  | { kind: 'byte'; map: Uint8Array }
  /** 8-bit to UTF-8: byte → its UTF-8 bytes */
  | { kind: 'toUtf8'; map: Buffer[] }
  /** UTF-8 to 8-bit: code point (< 0x10000) → byte, 0 unmapped */
  | { kind: 'fromUtf8'; map: Map<number, number> };

export interface Charset {
  /** as first written (case kept: nginx sends that spelling) */
  name: string;
  utf8: boolean;
  /** index of the other charset → this one's table to it (after postconfiguration) */
  tables: Map<number, Table>;
}

/** one charset_map block */
export interface MapBlock {
  src: number;
  dst: number;
  src2dst: Table;
  dst2src: Table;
}

export interface CharsetMainConf {
  charsets: Charset[];
  maps: MapBlock[];
  /** source → destination pairs the locations recode between (checked against the maps) */
  recodes: Array<{ src: number; dst: number }>;
}

/** charset / source_charset: unset, off, a charset index, or a variable */
export type CharsetRef = { kind: 'unset' } | { kind: 'off' } | { kind: 'index'; index: number } | { kind: 'var'; index: number };

export interface CharsetLocConf {
  charset: CharsetRef;
  source: CharsetRef;
  override: number;
  types: TypeList | undefined;
}

/** nginx's default charset_types */
export const CHARSET_DEFAULT_TYPES = ['text/html', 'text/xml', 'text/plain', 'text/vnd.wap.wml', 'application/javascript', 'application/rss+xml'] as const;
