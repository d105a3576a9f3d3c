import { zoneName } from './tz.js';

/*
 * strftime(3) in the C locale, for set_formatted_gmt_time and
 * set_formatted_local_time (the module calls libc strftime on a 256-byte
 * buffer with gmtime / localtime fields). For gmtime glibc prints %Z as
 * "GMT" and %z as "+0000"; for localtime the zone's abbreviation and
 * offset.
 */

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

const pad = (n: number, w: number, c = '0'): string => String(n).padStart(w, c);

/** struct tm, as gmtime_r / localtime_r fill it (month 0-based, year full) */
export interface Tm {
  year: number;
  mon: number;
  mday: number;
  hour: number;
  min: number;
  sec: number;
  wday: number;
  /** day of the year, 0-based */
  yday: number;
  /** seconds east of UTC */
  gmtoff: number;
  /** %Z: the zone's abbreviation (computed only when the format asks) */
  zone: () => string;
  /** %s: seconds since the epoch */
  epoch: number;
}

function ydayOf(y: number, m: number, d: number): number {
  return Math.round((Date.UTC(y, m, d) - Date.UTC(y, 0, 1)) / 86400000);
}

/** gmtime_r */
export function gmTm(d: Date): Tm {
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const day = d.getUTCDate();
  return {
    year: y, mon: m, mday: day,
    hour: d.getUTCHours(), min: d.getUTCMinutes(), sec: d.getUTCSeconds(),
    wday: d.getUTCDay(), yday: ydayOf(y, m, day),
    gmtoff: 0, zone: () => 'GMT', epoch: Math.floor(d.getTime() / 1000),
  };
}

/** localtime_r, in the process's time zone (TZ, as nginx keeps it) */
export function localTm(d: Date): Tm {
  const y = d.getFullYear();
  const m = d.getMonth();
  const day = d.getDate();
  return {
    year: y, mon: m, mday: day,
    hour: d.getHours(), min: d.getMinutes(), sec: d.getSeconds(),
    wday: d.getDay(), yday: ydayOf(y, m, day),
    gmtoff: -d.getTimezoneOffset() * 60, zone: () => zoneName(d, -d.getTimezoneOffset() * 60), epoch: Math.floor(d.getTime() / 1000),
  };
}

/** ISO 8601 week-based year and week number */
function isoWeek(tm: Tm): { year: number; week: number } {
  const wday = (tm.wday + 6) % 7; // Monday = 0
  // the Thursday of this week decides the year
  const thursday = new Date(Date.UTC(tm.year, tm.mon, tm.mday - wday + 3));
  const year = thursday.getUTCFullYear();
  const week = Math.floor(ydayOf(year, thursday.getUTCMonth(), thursday.getUTCDate()) / 7) + 1;
  return { year, week };
}

function offset(gmtoff: number): string {
  const a = Math.abs(gmtoff);
  return (gmtoff < 0 ? '-' : '+') + pad(Math.floor(a / 3600), 2) + pad(Math.floor((a % 3600) / 60), 2);
}

function conv(c: string, tm: Tm): string | undefined {
  const Y = tm.year;
  const m = tm.mon;
  const day = tm.mday;
  const H = tm.hour;
  const M = tm.min;
  const S = tm.sec;
  const w = tm.wday;
  const yday = tm.yday;
  const h12 = H % 12 === 0 ? 12 : H % 12;
  switch (c) {
    case 'a': return DAYS[w]!.slice(0, 3);
    case 'A': return DAYS[w]!;
    case 'b':
    case 'h': return MONTHS[m]!.slice(0, 3);
    case 'B': return MONTHS[m]!;
    case 'c': return `${DAYS[w]!.slice(0, 3)} ${MONTHS[m]!.slice(0, 3)} ${pad(day, 2, ' ')} ${pad(H, 2)}:${pad(M, 2)}:${pad(S, 2)} ${Y}`;
    case 'C': return pad(Math.floor(Y / 100), 2);
    case 'd': return pad(day, 2);
    case 'D':
    case 'x': return `${pad(m + 1, 2)}/${pad(day, 2)}/${pad(Y % 100, 2)}`;
    case 'e': return pad(day, 2, ' ');
    case 'F': return `${Y}-${pad(m + 1, 2)}-${pad(day, 2)}`;
    case 'g': return pad(isoWeek(tm).year % 100, 2);
    case 'G': return String(isoWeek(tm).year);
    case 'H': return pad(H, 2);
    case 'I': return pad(h12, 2);
    case 'j': return pad(yday + 1, 3);
    case 'k': return pad(H, 2, ' ');
    case 'l': return pad(h12, 2, ' ');
    case 'm': return pad(m + 1, 2);
    case 'M': return pad(M, 2);
    case 'n': return '\n';
    case 'p': return H < 12 ? 'AM' : 'PM';
    case 'P': return H < 12 ? 'am' : 'pm';
    case 'r': return `${pad(h12, 2)}:${pad(M, 2)}:${pad(S, 2)} ${H < 12 ? 'AM' : 'PM'}`;
    case 'R': return `${pad(H, 2)}:${pad(M, 2)}`;
    case 's': return String(tm.epoch);
    case 'S': return pad(S, 2);
    case 't': return '\t';
    case 'T':
    case 'X': return `${pad(H, 2)}:${pad(M, 2)}:${pad(S, 2)}`;
    case 'u': return String(w === 0 ? 7 : w);
    case 'U': return pad(Math.floor((yday + 7 - w) / 7), 2);
    case 'V': return pad(isoWeek(tm).week, 2);
    case 'w': return String(w);
    case 'W': return pad(Math.floor((yday + 7 - ((w + 6) % 7)) / 7), 2);
    case 'y': return pad(Y % 100, 2);
    case 'Y': return String(Y);
    case 'z': return offset(tm.gmtoff);
    case 'Z': return tm.zone();
    case '%': return '%';
    default: return undefined;
  }
}

/** the conversions that print numbers (padded with 0, or with spaces for %e %k %l) */
const NUMERIC = 'CdegGHIjklmMsSuUVwWyY';

function applyFlags(v: string, conv: string, flag: string, width: number): string {
  const numeric = NUMERIC.includes(conv);
  if (flag === '^') v = v.toUpperCase();
  else if (flag === '#') v = /[a-z]/.test(v) ? v.toUpperCase() : v.toLowerCase();
  if (numeric && (flag === '-' || flag === '_')) {
    // strip the conversion's own padding
    const stripped = v.replace(/^[0 ]+(?=\d)/, '');
    if (flag === '-') return stripped;
    const w = Math.max(width, v.length);
    return stripped.padStart(w, ' ');
  }
  if (width > v.length) {
    const padChar = flag === '_' ? ' ' : flag === '0' || (numeric && flag !== '_' && !'ekl'.includes(conv)) ? '0' : ' ';
    if (padChar === '0' && numeric) return v.replace(/^ +/, (m) => '0'.repeat(m.length)).padStart(width, '0');
    return v.padStart(width, padChar);
  }
  return v;
}

/**
 * strftime(buf, 256, fmt, tm): undefined when the result does not fit
 * (strftime returns 0; the module then fails the request). An unknown
 * conversion is copied as is, as glibc does.
 */
export function strftime(fmt: string, tm: Tm): string | undefined {
  // a C string: the format ends at the first NUL byte
  const nul = fmt.indexOf('\0');
  if (nul !== -1) fmt = fmt.slice(0, nul);
  let out = '';
  for (let i = 0; i < fmt.length; i++) {
    const ch = fmt[i]!;
    if (ch !== '%' || i + 1 >= fmt.length) {
      out += ch;
      continue;
    }
    // glibc: flags (_ - 0 ^ #), a field width, then the E/O modifiers
    let j = i + 1;
    let flag = '';
    while (j < fmt.length && '_-0^#'.includes(fmt[j]!)) flag = fmt[j++]!;
    let width = 0;
    while (j < fmt.length && fmt[j]! >= '0' && fmt[j]! <= '9') width = width * 10 + Number(fmt[j++]);
    while (j < fmt.length && (fmt[j] === 'E' || fmt[j] === 'O')) j++;
    let v = j < fmt.length ? conv(fmt[j]!, tm) : undefined;
    if (v === undefined) {
      out += fmt.slice(i, j + 1);
      i = j;
      continue;
    }
    v = applyFlags(v, fmt[j]!, flag, width);
    out += v;
    i = j;
  }
  if (out.length >= 256) return undefined;
  return out;
}

/** strftime on gmtime(now) */
export function strftimeGmt(fmt: string, now: Date): string | undefined {
  return strftime(fmt, gmTm(now));
}

/** strftime on localtime(now) */
export function strftimeLocal(fmt: string, now: Date): string | undefined {
  return strftime(fmt, localTm(now));
}

/** set_local_today: `yyyy-mm-dd` of the local time zone */
export function localToday(now: Date): string {
  return `${now.getFullYear()}-${pad(now.getMonth() + 1, 2)}-${pad(now.getDate(), 2)}`;
}
