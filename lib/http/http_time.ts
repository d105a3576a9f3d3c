/*
 * ngx_parse_http_time: the three date formats of HTTP (RFC 822/1123
 * `Tue, 10 Nov 2002 23:50:13 GMT`, RFC 850 `Tuesday, 10-Nov-02 23:50:13`,
 * asctime `Tue Nov 10 23:50:13 2002`), with nginx's leniency (what follows
 * the time is not looked at) and strictness (day of month checked, no
 * other zone than the implied GMT). Returns seconds since the epoch, or -1.
 */

const MDAY = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

const enum Fmt {
  No,
  Rfc822,
  Rfc850,
  Isoc,
}

const digit = (s: string, i: number): number => {
  const c = s.charCodeAt(i);
  return c >= 0x30 && c <= 0x39 ? c - 0x30 : -1;
};

/** `n` digits at i as a number, or -1 */
function digits(s: string, i: number, n: number): number {
  let v = 0;
  for (let k = 0; k < n; k++) {
    const d = digit(s, i + k);
    if (d < 0) return -1;
    v = v * 10 + d;
  }
  return v;
}

export function parseHttpTime(value: string): number {
  const end = value.length;
  let fmt = Fmt.No;
  let p = 0;
  for (; p < end; p++) {
    const c = value.charCodeAt(p);
    if (c === 0x2c) break;
    if (c === 0x20) {
      fmt = Fmt.Isoc;
      break;
    }
  }
  for (p++; p < end; p++) if (value.charCodeAt(p) !== 0x20) break;
  if (end - p < 18) return -1;

  let day = 32;
  let year = 2038;
  if (fmt !== Fmt.Isoc) {
    day = digits(value, p, 2);
    if (day < 0) return -1;
    p += 2;
    const c = value.charCodeAt(p);
    if (c === 0x20) {
      if (end - p < 18) return -1;
      fmt = Fmt.Rfc822;
    } else if (c === 0x2d) fmt = Fmt.Rfc850;
    else return -1;
    p++;
  }

  let month: number;
  switch (value[p]) {
    case 'J':
      month = value[p + 1] === 'a' ? 0 : value[p + 2] === 'n' ? 5 : 6;
      break;
    case 'F':
      month = 1;
      break;
    case 'M':
      month = value[p + 2] === 'r' ? 2 : 4;
      break;
    case 'A':
      month = value[p + 1] === 'p' ? 3 : 7;
      break;
    case 'S':
      month = 8;
      break;
    case 'O':
      month = 9;
      break;
    case 'N':
      month = 10;
      break;
    case 'D':
      month = 11;
      break;
    default:
      return -1;
  }
  p += 3;
  if ((fmt === Fmt.Rfc822 && value[p] !== ' ') || (fmt === Fmt.Rfc850 && value[p] !== '-')) return -1;
  p++;

  if (fmt === Fmt.Rfc822) {
    year = digits(value, p, 4);
    if (year < 0) return -1;
    p += 4;
  } else if (fmt === Fmt.Rfc850) {
    year = digits(value, p, 2);
    if (year < 0) return -1;
    year += year < 70 ? 2000 : 1900;
    p += 2;
  }

  if (fmt === Fmt.Isoc) {
    if (value[p] === ' ') p++;
    day = digit(value, p++);
    if (day < 0) return -1;
    if (value[p] !== ' ') {
      const d = digit(value, p++);
      if (d < 0) return -1;
      day = day * 10 + d;
    }
    if (end - p < 14) return -1;
  }

  if (value[p++] !== ' ') return -1;
  const hour = digits(value, p, 2);
  if (hour < 0) return -1;
  p += 2;
  if (value[p++] !== ':') return -1;
  const min = digits(value, p, 2);
  if (min < 0) return -1;
  p += 2;
  if (value[p++] !== ':') return -1;
  const sec = digits(value, p, 2);
  if (sec < 0) return -1;

  if (fmt === Fmt.Isoc) {
    p += 2;
    if (value[p++] !== ' ') return -1;
    year = digits(value, p, 4);
    if (year < 0) return -1;
  }

  if (hour > 23 || min > 59 || sec > 59) return -1;
  if (day === 29 && month === 1) {
    if (year & 3 || (year % 100 === 0 && year % 400 !== 0)) return -1;
  } else if (day > MDAY[month]!) return -1;

  // Gauss' formula, the year shifted to start on March 1 (as nginx computes it)
  let m = month;
  let y = year;
  if (--m <= 0) {
    m += 12;
    y -= 1;
  }
  const days =
    365 * y + Math.floor(y / 4) - Math.floor(y / 100) + Math.floor(y / 400) + Math.floor((367 * m) / 12) - 30 + day - 1 - 719527 + 31 + 28;
  return days * 86400 + hour * 3600 + min * 60 + sec;
}
