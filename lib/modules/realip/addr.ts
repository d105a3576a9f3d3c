import { inetAddr, inet6Addr, type Cidr } from '../access/cidr.js';

/*
 * Addresses as realip handles them: ngx_parse_addr_port on a header's
 * value, ngx_cidr_match against set_real_ip_from, and the text nginx
 * prints for an address (ngx_sock_ntop, ngx_inet6_ntop).
 */

export interface Addr {
  family: 4 | 6 | 'unix';
  bytes: Uint8Array;
  port: number;
}

/** ngx_parse_addr: an IPv4 or IPv6 literal */
function parseAddr(s: string): Addr | undefined {
  const v4 = inetAddr(s);
  if (v4 !== undefined) return { family: 4, bytes: v4, port: 0 };
  const v6 = inet6Addr(s);
  if (v6 !== undefined) return { family: 6, bytes: v6, port: 0 };
  return undefined;
}

/** ngx_parse_addr_port: ADDR, ADDR:PORT, [V6]:PORT */
export function parseAddrPort(s: string): Addr | undefined {
  const a = parseAddr(s);
  if (a !== undefined) return a;
  let text = s;
  let p: number;
  if (s.length && s[0] === '[') {
    p = s.indexOf(']');
    if (p === -1 || p === s.length - 1 || s[p + 1] !== ':') return undefined;
    p++;
    text = s.slice(1, p - 1);
  } else {
    p = s.indexOf(':');
    if (p === -1) return undefined;
    text = s.slice(0, p);
  }
  const portText = s.slice(p + 1);
  if (!/^[0-9]{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  const b = parseAddr(text);
  if (b === undefined) return undefined;
  b.port = port;
  return b;
}

/** the connection's address as realip sees it (Node's text → bytes) */
export function connAddr(text: string, port: number): Addr | undefined {
  if (text === 'unix:') return { family: 'unix', bytes: new Uint8Array(0), port: 0 };
  const pct = text.indexOf('%');
  const a = parseAddr(pct === -1 ? text : text.slice(0, pct));
  if (a !== undefined) a.port = port;
  return a;
}

/** ngx_cidr_match (an IPv4-mapped IPv6 address matches IPv4 entries) */
export function cidrMatch(a: Addr, cidrs: Array<Cidr | 'unix'>): boolean {
  let family = a.family;
  let bytes = a.bytes;
  if (family === 6 && isV4Mapped(bytes)) {
    family = 4;
    bytes = bytes.subarray(12);
  }
  next: for (const c of cidrs) {
    if (c === 'unix') {
      if (family === 'unix') return true;
      continue;
    }
    if (c.family !== family) continue;
    for (let i = 0; i < c.addr.length; i++) if ((bytes[i]! & c.mask[i]!) !== c.addr[i]) continue next;
    return true;
  }
  return false;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** ngx_sock_ntop without the port: dotted quad, or ngx_inet6_ntop's compressed form */
export function addrText(a: Addr): string {
  if (a.family === 4) return `${a.bytes[0]}.${a.bytes[1]}.${a.bytes[2]}.${a.bytes[3]}`;
  if (a.family === 'unix') return 'unix:';
  const b = a.bytes;
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((b[i * 2]! << 8) | b[i * 2 + 1]!);
  // the longest run of zero words (at least two) becomes `::`
  let zero = 8;
  let max = 1;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > max) {
      max = j - i;
      zero = i;
    }
  }
  // ::a.b.c.d and ::ffff:a.b.c.d end in a dotted quad
  const dotted = zero === 0 && (max === 6 || (max === 5 && words[5] === 0xffff));
  const last = dotted ? 6 : 8;
  const hex = (from: number, to: number): string => words.slice(from, to).map((w) => w.toString(16)).join(':');
  let out: string;
  if (zero < last) out = `${hex(0, zero)}::${hex(Math.min(zero + max, last), last)}`;
  else out = hex(0, last);
  if (dotted) out += `${out.endsWith(':') ? '' : ':'}${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  return out;
}

/** $binary_remote_addr's bytes for an address text */
export function binaryAddr(text: string): string {
  const a = connAddr(text, 0);
  return a === undefined ? '' : Buffer.from(a.bytes).toString('latin1');
}
