import { utf8Decode } from '../../core/utf8.js';

/*
 * The listing bodies of ngx_http_autoindex_module, byte for byte: HTML
 * (names cut at 50 characters with `..&gt;`, dates, exact or rounded
 * sizes), JSON / JSONP and XML. Names are byte strings (latin1 strings
 * here, one char per byte), as nginx reads them from the directory.
 */

export interface Entry {
  /** the file name's bytes as a latin1 string */
  name: string;
  dir: boolean;
  file: boolean;
  /** seconds */
  mtime: number;
  size: number;
}

const NAME_LEN = 50;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const HEX = '0123456789ABCDEF';

/** ngx_http_autoindex_cmp_entries: directories first, then by bytes */
export function compareEntries(a: Entry, b: Entry): number {
  if (a.dir && !b.dir) return -1;
  if (!a.dir && b.dir) return 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** ngx_escape_html: < > & " */
export function escapeHtml(s: string): string {
  let out = '';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    const e = c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === '"' ? '&quot;' : undefined;
    if (e === undefined) continue;
    out += s.slice(start, i) + e;
    start = i + 1;
  }
  return start === 0 ? s : out + s.slice(start);
}

/** ngx_escape_uri(NGX_ESCAPE_URI_COMPONENT): all but RFC 3986's unreserved (ALPHA DIGIT - . _ ~) as %XX */
function escapeComponent(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const keep =
      (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
    out += keep ? s[i] : `%${HEX[c >> 4]}${HEX[c & 15]}`;
  }
  return out;
}

/** ngx_escape_json: `"` and `\` backslashed, controls as \n \r \t \b \f or \u00XX */
function escapeJson(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    if (ch > 0x1f) {
      out += ch === 0x5c || ch === 0x22 ? `\\${s[i]}` : s[i];
      continue;
    }
    switch (ch) {
      case 0x0a: out += '\\n'; break;
      case 0x0d: out += '\\r'; break;
      case 0x09: out += '\\t'; break;
      case 0x08: out += '\\b'; break;
      case 0x0c: out += '\\f'; break;
      default: out += `\\u00${ch >> 4}${HEX[ch & 15]}`;
    }
  }
  return out;
}

/** ngx_utf8_length: characters, or the byte length when the name is not valid UTF-8 */
function utf8Length(s: string): number {
  const b = Buffer.from(s, 'latin1');
  let n = 0;
  for (let p = 0; p < b.length; n++) {
    if (b[p]! < 0x80) {
      p++;
      continue;
    }
    if (utf8Decode(b, p, b.length, step) > 0x10ffff) return s.length;
    p = step.next;
  }
  return n;
}

/** ngx_utf8_cpystrn: at most n - 1 characters of s, stopping at invalid UTF-8 */
function utf8Prefix(s: string, n: number): string {
  const b = Buffer.from(s, 'latin1');
  let p = 0;
  while (--n > 0 && p < b.length) {
    if (b[p]! < 0x80) {
      p++;
      continue;
    }
    if (utf8Decode(b, p, b.length, step) > 0x10ffff) break;
    p = step.next;
  }
  return s.slice(0, p);
}

/** where utf8Decode stopped */
const step = { next: 0 };

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));
const padLeft = (s: string, w: number): string => (s.length >= w ? s : ' '.repeat(w - s.length) + s);

/** the size column: exact (%19O) or nginx's rounded K/M/G */
function sizeColumn(e: Entry, exact: boolean): string {
  if (exact) return e.dir ? '                  -' : padLeft(String(e.size), 19);
  if (e.dir) return '      -';
  const length = e.size;
  const G = 1024 * 1024 * 1024;
  const M = 1024 * 1024;
  let size: number;
  let scale = '';
  if (length > G - 1) {
    size = Math.floor(length / G);
    if (length % G > G / 2 - 1) size++;
    scale = 'G';
  } else if (length > M - 1) {
    size = Math.floor(length / M);
    if (length % M > M / 2 - 1) size++;
    scale = 'M';
  } else if (length > 9999) {
    size = Math.floor(length / 1024);
    if (length % 1024 > 511) size++;
    scale = 'K';
  } else size = length;
  return scale ? padLeft(String(size), 6) + scale : ` ${padLeft(String(size), 6)}`;
}

/** ngx_http_autoindex_html; `uri` is r->uri's bytes, `gmtoff` seconds east of UTC (autoindex_localtime) or 0 */
export function htmlListing(uri: string, entries: Entry[], utf8: boolean, exactSize: boolean, gmtoff: number): string {
  const u = escapeHtml(uri);
  let b = `<html>\r\n<head><title>Index of ${u}</title></head>\r\n<body>\r\n<h1>Index of ${u}</h1><hr><pre><a href="../">../</a>\r\n`;
  for (const e of entries) {
    const name = e.name;
    const len = utf8 ? utf8Length(name) : name.length;
    b += `<a href="${escapeComponent(name)}${e.dir ? '/' : ''}">`;
    const hasHtml = escapeHtml(name) !== name;
    let shown: string;
    if (name.length !== len) {
      // multibyte UTF-8: cut by characters, then escape what was kept
      shown = escapeHtml(utf8Prefix(name, len > NAME_LEN ? NAME_LEN - 3 + 1 : NAME_LEN + 1));
    } else if (hasHtml) {
      shown = escapeHtml(name.slice(0, len > NAME_LEN ? NAME_LEN - 3 : len));
    } else {
      // the plain copy keeps 50 bytes; a long name then loses its last 3 to `..&gt;`
      shown = name.slice(0, len > NAME_LEN ? NAME_LEN - 3 : NAME_LEN);
    }
    let shownLen = len;
    if (len > NAME_LEN) b += `${shown}..&gt;</a>`;
    else {
      b += shown;
      if (e.dir && NAME_LEN - len > 0) {
        b += '/';
        shownLen++;
      }
      b += '</a>';
      if (NAME_LEN - shownLen > 0) b += ' '.repeat(NAME_LEN - shownLen);
    }
    const d = new Date((e.mtime + gmtoff) * 1000);
    b += ` ${pad2(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())} `;
    b += `${sizeColumn(e, exactSize)}\r\n`;
  }
  return `${b}</pre><hr></body>\r\n</html>\r\n`;
}

/** ngx_http_autoindex_json (with a JSONP callback, or undefined) */
export function jsonListing(entries: Entry[], callback: string | undefined): string {
  let b = callback !== undefined ? `/* callback */\r\n${callback}(` : '';
  b += '[';
  const items: string[] = [];
  for (const e of entries) {
    let it = `\r\n{ "name":"${escapeJson(e.name)}", "type":"${e.dir ? 'directory' : e.file ? 'file' : 'other'}", "mtime":"${new Date(e.mtime * 1000).toUTCString()}`;
    it += e.file ? `", "size":${e.size}` : '"';
    items.push(`${it} }`);
  }
  b += items.join(',');
  b += '\r\n]';
  if (callback !== undefined) b += ');';
  return b;
}

/** ngx_http_autoindex_xml */
export function xmlListing(entries: Entry[]): string {
  let b = '<?xml version="1.0"?>\r\n<list>\r\n';
  for (const e of entries) {
    const type = e.dir ? 'directory' : e.file ? 'file' : 'other';
    const d = new Date(e.mtime * 1000);
    const year = d.getUTCFullYear();
    b += `<${type} mtime="${year < 1000 ? padLeft(String(year), 4) : year}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}T${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}Z"`;
    if (e.file) b += ` size="${e.size}"`;
    b += `>${escapeHtml(e.name)}</${type}>\r\n`;
  }
  return `${b}</list>\r\n`;
}
