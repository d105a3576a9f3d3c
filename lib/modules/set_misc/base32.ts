/*
 * set_encode_base32 / set_decode_base32: base32 over latin1 byte strings
 * with a configurable 32-byte alphabet ("base32hex", [0-9a-v], by
 * default) and optional `=` padding, as the module codes it (5 input bytes
 * → 8 digits; a tail of 1/2/3/4 bytes gives 2/4/5/7 digits).
 */

export const DEFAULT_BASE32_ALPHABET = '0123456789abcdefghijklmnopqrstuv';

/**
 * The decoding table the module builds as a location's conf is merged:
 * each alphabet byte maps to its position. The module's table is
 * allocated without zeroing and only the alphabet's 32 entries are
 * written, so its check for an "invalid" marker (77) never fires on a
 * fresh nginx: every byte outside the alphabet decodes as 0 (seen on Debian's
 * nginx: "!!!!!!!!" decodes to five NUL bytes). This table does the same.
 */
export function decodeTable(alphabet: string): Uint8Array {
  const t = new Uint8Array(256);
  for (let i = 0; i < 32; i++) t[alphabet.charCodeAt(i) & 255] = i;
  return t;
}

export function encodeBase32(s: string, padding: boolean, alphabet: string): string {
  const a = (i: number): string => alphabet[i]!;
  const b = (i: number): number => s.charCodeAt(i);
  let out = '';
  let i = 0;
  let len = s.length;
  for (; len > 4; len -= 5, i += 5) {
    out +=
      a(b(i) >> 3) +
      a(((b(i) & 7) << 2) | (b(i + 1) >> 6)) +
      a((b(i + 1) >> 1) & 31) +
      a(((b(i + 1) & 1) << 4) | (b(i + 2) >> 4)) +
      a(((b(i + 2) & 15) << 1) | (b(i + 3) >> 7)) +
      a((b(i + 3) >> 2) & 31) +
      a(((b(i + 3) & 3) << 3) | (b(i + 4) >> 5)) +
      a(b(i + 4) & 31);
  }
  if (len === 0) return out;
  out += a(b(i) >> 3);
  // the padding each tail length leaves: 1 byte → 6 '=', 2 → 4, 3 → 3, 4 → 1
  let pad: number;
  if (len === 1) {
    out += a((b(i) & 7) << 2);
    pad = 6;
  } else {
    out += a(((b(i) & 7) << 2) | (b(i + 1) >> 6)) + a((b(i + 1) >> 1) & 31);
    if (len === 2) {
      out += a((b(i + 1) & 1) << 4);
      pad = 4;
    } else {
      out += a(((b(i + 1) & 1) << 4) | (b(i + 2) >> 4));
      if (len === 3) {
        out += a((b(i + 2) & 15) << 1);
        pad = 3;
      } else {
        out += a(((b(i + 2) & 15) << 1) | (b(i + 3) >> 7)) + a((b(i + 3) >> 2) & 31) + a((b(i + 3) & 3) << 3);
        pad = 1;
      }
    }
  }
  return padding ? out + '='.repeat(pad) : out;
}

/**
 * The digits up to the first `=` are decoded; a digit count of 1, 3 or 6
 * modulo 8 cannot come from whole bytes: undefined (the module then sets
 * the variable to the empty string, without an error).
 */
export function decodeBase32(s: string, table: Uint8Array): string | undefined {
  // no byte is refused: see decodeTable
  let len = s.indexOf('=');
  if (len === -1) len = s.length;
  const mod = len % 8;
  if (mod === 1 || mod === 3 || mod === 6) return undefined;
  const d = (k: number): number => table[s.charCodeAt(k)]!;
  const bytes: number[] = [];
  let i = 0;
  for (; len > 7; len -= 8, i += 8) {
    bytes.push(
      (d(i) << 3) | ((d(i + 1) >> 2) & 7),
      ((d(i + 1) & 3) << 6) | (d(i + 2) << 1) | ((d(i + 3) >> 4) & 1),
      ((d(i + 3) & 15) << 4) | ((d(i + 4) >> 1) & 15),
      ((d(i + 4) & 1) << 7) | ((d(i + 5) & 31) << 2) | ((d(i + 6) >> 3) & 3),
      ((d(i + 6) & 7) << 5) | (d(i + 7) & 31),
    );
  }
  if (len) {
    bytes.push((d(i) << 3) | ((d(i + 1) >> 2) & 7));
    if (len > 2) {
      bytes.push(((d(i + 1) & 3) << 6) | ((d(i + 2) & 31) << 1) | ((d(i + 3) >> 4) & 1));
      if (len > 4) {
        bytes.push(((d(i + 3) & 15) << 4) | ((d(i + 4) >> 1) & 15));
        if (len > 5) bytes.push(((d(i + 4) & 1) << 7) | ((d(i + 5) & 31) << 2) | ((d(i + 6) >> 3) & 3));
      }
    }
  }
  let out = '';
  for (const x of bytes) out += String.fromCharCode(x & 255);
  return out;
}
