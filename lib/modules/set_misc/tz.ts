import { readFileSync } from 'node:fs';

/*
 * The local time zone's abbreviation, as the C library's localtime_r
 * gives it to strftime's %Z ("UTC", "CET"/"CEST", "+04"): read from the
 * zone's tz database file, whose last line is a POSIX TZ rule naming the
 * standard and the daylight-saving abbreviations of today's rules. Node's
 * Intl names zones by locale ("GMT+1" for Berlin in en-US), so it is only
 * the fallback when no such file or rule is found.
 */

interface ZoneNames {
  std: string;
  /** seconds east of UTC */
  stdOff: number;
  dst: string | undefined;
}

let cached: ZoneNames | null | undefined;

/** `<+04>` or letters, then an offset west of UTC ([+-]hh[:mm[:ss]]) */
const PART = /^(<[^>]*>|[A-Za-z]{3,})([+-]?\d{1,2}(?::\d{1,2}){0,2})?/;

function parseOffset(s: string): number {
  const sign = s[0] === '-' ? -1 : 1;
  const [h = 0, m = 0, sec = 0] = s.replace(/^[+-]/, '').split(':').map(Number);
  return sign * (h * 3600 + m * 60 + sec);
}

/** the names of a POSIX TZ rule ("CET-1CEST,M3.5.0,M10.5.0/3", "<+04>-4", "UTC0") */
export function parsePosixTz(rule: string): ZoneNames | null {
  const std = PART.exec(rule);
  if (!std || std[2] === undefined) return null;
  const rest = rule.slice(std[0].length);
  const dst = /^(<[^>]*>|[A-Za-z]{3,})/.exec(rest);
  const name = (s: string): string => (s[0] === '<' ? s.slice(1, -1) : s);
  return { std: name(std[1]!), stdOff: -parseOffset(std[2]), dst: dst ? name(dst[1]!) : undefined };
}

/** the rule of the zone the process runs in: TZ's file, else /etc/localtime; else TZ as a rule itself */
function localRule(): string | undefined {
  let tz = process.env.TZ;
  if (tz !== undefined && tz.startsWith(':')) tz = tz.slice(1);
  const file = tz === undefined || tz === '' ? '/etc/localtime' : tz.startsWith('/') ? tz : `/usr/share/zoneinfo/${tz}`;
  try {
    const buf = readFileSync(file);
    // TZif version 2 and later end with "\n<rule>\n"
    if (buf.toString('latin1', 0, 4) === 'TZif' && buf[4]! >= 0x32 && buf[buf.length - 1] === 10) {
      const start = buf.lastIndexOf(10, buf.length - 2);
      return buf.toString('latin1', start + 1, buf.length - 1);
    }
  } catch {
    // not a zone file: a POSIX rule in TZ, or nothing
  }
  return tz;
}

function intlName(d: Date): string {
  const part = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName');
  return part === undefined ? '' : part.value;
}

/** %Z for localtime(d): the standard name at the standard offset, else the daylight-saving one */
export function zoneName(d: Date, gmtoff: number): string {
  if (cached === undefined) {
    const rule = localRule();
    cached = rule === undefined ? null : parsePosixTz(rule);
  }
  if (cached === null) return intlName(d);
  if (gmtoff === cached.stdOff || cached.dst === undefined) return cached.std;
  return cached.dst;
}
