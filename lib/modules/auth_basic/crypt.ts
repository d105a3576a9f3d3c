import { createHash } from 'node:crypto';
import { decodeBase64 } from '../../http/auth_user.js';
import { desCrypt } from './des.js';

/*
 * ngx_crypt: the password hashes auth_basic_user_file may hold. nginx does
 * `{PLAIN}`, `{SHA}`, `{SSHA}` and `$apr1$` itself and hands anything else
 * to the C library's crypt(3); Node has no crypt, so glibc's schemes are
 * written here from their published descriptions: MD5-crypt (`$1$`, the
 * same algorithm as apr1 with another magic), SHA-crypt (`$5$`, `$6$`,
 * Ulrich Drepper's specification, with `rounds=`) and traditional DES
 * (des.ts). crypt(key, salt) returns the hash to compare with the stored
 * one, as nginx compares: byte for byte. A salt no scheme understands
 * gives libxcrypt's failure token `*0` (which never equals a stored hash).
 *
 * Keys are C strings: a NUL ends them (nginx passes the password as one).
 */

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** crypt's base-64: the low 6 bits first */
function to64(v: number, n: number): string {
  let s = '';
  while (n--) {
    s += ITOA64[v & 0x3f];
    v >>>= 6;
  }
  return s;
}

function md5(...parts: Buffer[]): Buffer {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** MD5-crypt (`$1$` glibc, `$apr1$` Apache): Poul-Henning Kamp's algorithm */
function md5Crypt(key: Buffer, setting: string, magic: string): string {
  let salt = setting.slice(magic.length);
  const end = salt.indexOf('$');
  if (end !== -1) salt = salt.slice(0, end);
  salt = salt.slice(0, 8);
  const s = Buffer.from(salt, 'latin1');
  const m = Buffer.from(magic, 'latin1');
  const alt = md5(key, s, key);
  const parts: Buffer[] = [key, m, s];
  for (let n = key.length; n > 0; n -= 16) parts.push(alt.subarray(0, n > 16 ? 16 : n));
  const zero = Buffer.alloc(1);
  for (let i = key.length; i; i >>= 1) parts.push(i & 1 ? zero : key.subarray(0, 1));
  let fin = md5(...parts);
  for (let i = 0; i < 1000; i++) {
    const h = createHash('md5');
    h.update(i & 1 ? key : fin);
    if (i % 3) h.update(s);
    if (i % 7) h.update(key);
    h.update(i & 1 ? fin : key);
    fin = h.digest();
  }
  const f = fin;
  return (
    magic +
    salt +
    '$' +
    to64((f[0]! << 16) | (f[6]! << 8) | f[12]!, 4) +
    to64((f[1]! << 16) | (f[7]! << 8) | f[13]!, 4) +
    to64((f[2]! << 16) | (f[8]! << 8) | f[14]!, 4) +
    to64((f[3]! << 16) | (f[9]! << 8) | f[15]!, 4) +
    to64((f[4]! << 16) | (f[10]! << 8) | f[5]!, 4) +
    to64(f[11]!, 2)
  );
}

/** the byte order SHA-crypt writes its digest in (three bytes per group, then the rest) */
const ORDER256 = [
  [0, 10, 20], [21, 1, 11], [12, 22, 2], [3, 13, 23], [24, 4, 14], [15, 25, 5], [6, 16, 26], [27, 7, 17], [18, 28, 8], [9, 19, 29],
];
const ORDER512 = [
  [0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48], [28, 49, 7], [50, 8, 29], [9, 30, 51],
  [31, 52, 10], [53, 11, 32], [12, 33, 54], [34, 55, 13], [56, 14, 35], [15, 36, 57], [37, 58, 16], [59, 17, 38], [18, 39, 60],
  [40, 61, 19], [62, 20, 41],
];

/** a digest of `len` bytes made of whole copies of `d` then its first bytes */
function repeat(d: Buffer, len: number): Buffer {
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i += d.length) d.copy(out, i, 0, Math.min(d.length, len - i));
  return out;
}

/** SHA-crypt (`$5$` SHA-256, `$6$` SHA-512) */
function shaCrypt(key: Buffer, setting: string, alg: 'sha256' | 'sha512'): string {
  const magic = alg === 'sha256' ? '$5$' : '$6$';
  let rest = setting.slice(3);
  let rounds = 5000;
  let custom = false;
  if (rest.startsWith('rounds=')) {
    const end = rest.indexOf('$');
    const num = rest.slice(7, end === -1 ? undefined : end);
    // glibc: strtoul up to the `$`; anything else makes the setting invalid
    if (end === -1 || !/^[0-9]+$/.test(num)) return '*0';
    // libxcrypt (Debian's crypt) refuses a count out of range where glibc clamped it
    rounds = Number(num);
    if (rounds < 1000 || rounds > 999999999) return '*0';
    custom = true;
    rest = rest.slice(end + 1);
  }
  const dollar = rest.indexOf('$');
  const salt = Buffer.from((dollar === -1 ? rest : rest.slice(0, dollar)).slice(0, 16), 'latin1');
  const H = (...p: Buffer[]): Buffer => {
    const h = createHash(alg);
    for (const x of p) h.update(x);
    return h.digest();
  };
  const size = alg === 'sha256' ? 32 : 64;
  const b = H(key, salt, key);
  const aParts: Buffer[] = [key, salt, repeat(b, key.length)];
  for (let i = key.length; i > 0; i >>= 1) aParts.push(i & 1 ? b : key);
  let a = H(...aParts);
  const dp = H(...Array<Buffer>(key.length).fill(key));
  const p = repeat(dp, key.length);
  const ds = H(...Array<Buffer>(16 + a[0]!).fill(salt));
  const s = repeat(ds, salt.length);
  for (let i = 0; i < rounds; i++) {
    const h = createHash(alg);
    h.update(i & 1 ? p : a);
    if (i % 3) h.update(s);
    if (i % 7) h.update(p);
    h.update(i & 1 ? a : p);
    a = h.digest();
  }
  let out = magic + (custom ? `rounds=${rounds}$` : '') + salt.toString('latin1') + '$';
  for (const [x, y, z] of size === 32 ? ORDER256 : ORDER512) out += to64((a[x!]! << 16) | (a[y!]! << 8) | a[z!]!, 4);
  out += size === 32 ? to64((a[31]! << 8) | a[30]!, 3) : to64(a[63]!, 2);
  return out;
}

/** ngx_crypt (and glibc's crypt for the rest) */
export function crypt(key: Buffer, setting: string): string {
  const nul = key.indexOf(0);
  if (nul !== -1) key = key.subarray(0, nul);
  if (setting.startsWith('$apr1$')) return md5Crypt(key, setting, '$apr1$');
  if (setting.startsWith('{PLAIN}')) return `{PLAIN}${key.toString('latin1')}`;
  if (setting.startsWith('{SSHA}')) {
    const dec = decodeBase64(setting.slice(6));
    const salt = dec !== undefined && dec.length >= 20 ? dec.subarray(20) : Buffer.alloc(0);
    const digest = createHash('sha1').update(key).update(salt).digest();
    return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
  }
  if (setting.startsWith('{SHA}')) return `{SHA}${createHash('sha1').update(key).digest('base64')}`;
  if (setting.startsWith('$1$')) return md5Crypt(key, setting, '$1$');
  if (setting.startsWith('$5$')) return shaCrypt(key, setting, 'sha256');
  if (setting.startsWith('$6$')) return shaCrypt(key, setting, 'sha512');
  return desCrypt(key, setting) ?? '*0';
}
