/*
 * Address parsing as nginx's ngx_inet.c: ngx_inet_addr (dotted quad, lax
 * about empty octets as nginx is), ngx_inet6_addr, ngx_ptocidr.
 */

export interface Cidr {
  family: 4 | 6;
  /** 4 bytes or 16 bytes, network order */
  addr: Uint8Array;
  mask: Uint8Array;
}

/** ngx_inet_addr: the address bytes, or undefined (INADDR_NONE). */
export function inetAddr(s: string): Uint8Array | undefined {
  const out = new Uint8Array(4);
  let octet = 0;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      octet = octet * 10 + (c - 0x30);
      if (octet > 255) return undefined;
      continue;
    }
    if (c === 0x2e) {
      if (n >= 3) return undefined;
      out[n++] = octet;
      octet = 0;
      continue;
    }
    return undefined;
  }
  if (n !== 3) return undefined;
  out[3] = octet;
  // nginx's INADDR_NONE is 255.255.255.255: that address reads as "none"
  if (out[0] === 255 && out[1] === 255 && out[2] === 255 && out[3] === 255) return undefined;
  return out;
}

/** ngx_inet6_addr: 16 bytes, or undefined. */
export function inet6Addr(text: string): Uint8Array | undefined {
  let p = 0;
  let len = text.length;
  if (len === 0) return undefined;
  const addr = new Uint8Array(16);
  let a = 0;
  let zero = -1;
  let digit = -1;
  let len4 = 0;
  let nibbles = 0;
  let word = 0;
  let n = 8;
  if (text[0] === ':') {
    p++;
    len--;
  }
  for (; len; len--) {
    const c = text.charCodeAt(p++);
    if (c === 0x3a) {
      if (nibbles) {
        digit = p;
        len4 = len;
        addr[a++] = word >> 8;
        addr[a++] = word & 0xff;
        if (--n) {
          nibbles = 0;
          word = 0;
          continue;
        }
      } else if (zero === -1) {
        digit = p;
        len4 = len;
        zero = a;
        continue;
      }
      return undefined;
    }
    if (c === 0x2e && nibbles) {
      if (n < 2 || digit === -1) return undefined;
      const v4 = inetAddr(text.slice(digit, digit + len4 - 1));
      if (v4 === undefined) return undefined;
      addr[a++] = v4[0]!;
      addr[a++] = v4[1]!;
      word = (v4[2]! << 8) | v4[3]!;
      n--;
      nibbles = 1;
      break;
    }
    if (++nibbles > 4) return undefined;
    if (c >= 0x30 && c <= 0x39) {
      word = word * 16 + (c - 0x30);
      continue;
    }
    const l = c | 0x20;
    if (l >= 0x61 && l <= 0x66) {
      word = word * 16 + (l - 0x61) + 10;
      continue;
    }
    return undefined;
  }
  if (nibbles === 0 && zero === -1) return undefined;
  addr[a++] = word >> 8;
  addr[a++] = word & 0xff;
  if (--n) {
    if (zero !== -1) {
      const move = a - zero;
      const shift = n * 2;
      for (let i = move - 1; i >= 0; i--) addr[zero + shift + i] = addr[zero + i]!;
      for (let i = 0; i < shift; i++) addr[zero + i] = 0;
      return addr;
    }
  } else if (zero === -1) {
    return addr;
  }
  return undefined;
}

/** ngx_ptocidr: 'ok', 'done' (host bits were set and are cleared), or undefined on error. */
export function ptocidr(text: string): { cidr: Cidr; rc: 'ok' | 'done' } | undefined {
  const slash = text.indexOf('/');
  const host = slash === -1 ? text : text.slice(0, slash);
  let family: 4 | 6;
  let addr = inetAddr(host);
  if (addr !== undefined) {
    family = 4;
  } else {
    addr = inet6Addr(host);
    if (addr === undefined) return undefined;
    family = 6;
  }
  const size = addr.length;
  const mask = new Uint8Array(size).fill(0xff);
  if (slash === -1) return { cidr: { family, addr, mask }, rc: 'ok' };

  const bits = maskBits(text.slice(slash + 1));
  if (bits === -1 || bits > size * 8) return undefined;
  let rc: 'ok' | 'done' = 'ok';
  let shift = bits;
  for (let i = 0; i < size; i++) {
    const s = shift > 8 ? 8 : shift;
    shift -= s;
    mask[i] = (0xff << (8 - s)) & 0xff;
    if (addr[i] !== (addr[i]! & mask[i]!)) {
      rc = 'done';
      addr[i] = addr[i]! & mask[i]!;
    }
  }
  return { cidr: { family, addr, mask }, rc };
}

/** ngx_atoi for the mask length */
function maskBits(s: string): number {
  if (s.length === 0) return -1;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
    if (v > 1e9) return -1;
  }
  return v;
}
