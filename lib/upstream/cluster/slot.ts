/*
 * Redis Cluster's key → slot function: CRC16 (XMODEM: poly 0x1021, init 0)
 * of the key, or of the part between the first `{` and the next `}` when
 * that part is non-empty (a hash tag), modulo 16384.
 */

export const SLOTS = 16384;

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

export function crc16(b: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ b[i]!) & 0xff]!;
  return crc;
}

/** the slot of the key b[start, end) */
export function keySlot(b: Uint8Array, start = 0, end = b.length): number {
  let open = -1;
  for (let i = start; i < end; i++) {
    if (b[i] === 0x7b) {
      open = i;
      break;
    }
  }
  if (open >= 0) {
    for (let j = open + 1; j < end; j++) {
      if (b[j] === 0x7d) {
        // `{}` (nothing inside) hashes the whole key
        if (j > open + 1) return crc16(b, open + 1, j) & (SLOTS - 1);
        break;
      }
    }
  }
  return crc16(b, start, end) & (SLOTS - 1);
}
