/*
 * Value parsers of nginx's ngx_parse.c and the ngx_conf_set_*_slot family.
 * Each returns the parsed value, or ERROR (-1) / undefined where nginx's does.
 */

export const UNSET = -1;

/** NGX_MAX_INT_T_VALUE (and size_t's, off_t's) on 64-bit: 2^63 - 1 */
const MAX_INT_T_BIG = 9223372036854775807n;

/**
 * ngx_atoi: digits only, no sign, at most 2^63 - 1; -1 on error. Values
 * past 2^53 come back rounded (they only ever mean "practically no limit").
 */
export function atoi(s: string): number {
  if (s.length === 0) return -1;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  if (v > Number.MAX_SAFE_INTEGER && BigInt(s) > MAX_INT_T_BIG) return -1;
  return v;
}

/** ngx_parse_size: `N`, `Nk`/`NK`, `Nm`/`NM`, `Ng`/`NG`; -1 on error. */
export function parseSize(s: string): number {
  if (s.length === 0) return -1;
  const last = s[s.length - 1]!;
  let scale = 1;
  let body = s;
  switch (last) {
    case 'K':
    case 'k':
      scale = 1024;
      body = s.slice(0, -1);
      break;
    case 'M':
    case 'm':
      scale = 1024 * 1024;
      body = s.slice(0, -1);
      break;
    case 'G':
    case 'g':
      scale = 1024 * 1024 * 1024;
      body = s.slice(0, -1);
      break;
  }
  const n = atoi(body);
  if (n === -1) return -1;
  // size > NGX_MAX_SIZE_T_VALUE / scale is an error (ngx_parse_size, ngx_parse_offset)
  if (n * scale > Number.MAX_SAFE_INTEGER && BigInt(body) > MAX_INT_T_BIG / BigInt(scale)) return -1;
  return n * scale;
}

/** ngx_parse_offset: as size, plus nothing else (no units beyond g). */

const MAX_INT_T = 9223372036854775807; // NGX_MAX_INT_T_VALUE on 64-bit

/**
 * ngx_parse_time: groups of `N[unit]`, units y M w d h m s (and ms unless
 * isSec), each at most once, in descending order, optionally separated by
 * spaces. A bare trailing number is seconds. Result in seconds (isSec) or
 * milliseconds; -1 on error.
 */
export function parseTime(line: string, isSec: boolean): number {
  const enum St { Start, Year, Month, Week, Day, Hour, Min, Sec, Msec, Last }
  let step: St = isSec ? St.Start : St.Month;
  let value = 0;
  let total = 0;
  let valid = false;
  let i = 0;
  const len = line.length;

  while (i < len) {
    const c = line.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48);
      if (value > MAX_INT_T) return -1;
      i++;
      valid = true;
      continue;
    }
    let scale: number;
    let max = MAX_INT_T;
    switch (line[i++]) {
      case 'y':
        if (step > St.Start) return -1;
        step = St.Year;
        scale = 60 * 60 * 24 * 365;
        break;
      case 'M':
        if (step >= St.Month) return -1;
        step = St.Month;
        scale = 60 * 60 * 24 * 30;
        break;
      case 'w':
        if (step >= St.Week) return -1;
        step = St.Week;
        scale = 60 * 60 * 24 * 7;
        break;
      case 'd':
        if (step >= St.Day) return -1;
        step = St.Day;
        scale = 60 * 60 * 24;
        break;
      case 'h':
        if (step >= St.Hour) return -1;
        step = St.Hour;
        scale = 60 * 60;
        break;
      case 'm':
        if (i < len && line[i] === 's') {
          if (isSec || step >= St.Msec) return -1;
          i++;
          step = St.Msec;
          scale = 1;
          break;
        }
        if (step >= St.Min) return -1;
        step = St.Min;
        scale = 60;
        break;
      case 's':
        if (step >= St.Sec) return -1;
        step = St.Sec;
        scale = 1;
        break;
      case ' ':
        if (step >= St.Sec) return -1;
        step = St.Last;
        scale = 1;
        break;
      default:
        return -1;
    }
    max = Math.floor(MAX_INT_T / scale);
    if (step !== St.Msec && !isSec) {
      scale *= 1000;
      max = Math.floor(max / 1000);
    }
    if (value > max) return -1;
    value *= scale;
    if (total > MAX_INT_T - value) return -1;
    total += value;
    value = 0;
    while (i < len && line[i] === ' ') i++;
  }

  if (!valid) return -1;
  if (!isSec) {
    if (value > MAX_INT_T / 1000) return -1;
    value *= 1000;
  }
  if (total > MAX_INT_T - value) return -1;
  return total + value;
}

/** ngx_conf_set_msec_slot's parser: milliseconds */
export function parseMsec(s: string): number {
  return parseTime(s, false);
}

/** ngx_conf_set_sec_slot's parser: seconds */
export function parseSec(s: string): number {
  return parseTime(s, true);
}

/** `on`/`off` (case-insensitive, as ngx_strcasecmp). */
export function parseFlag(s: string): boolean | undefined {
  const l = s.toLowerCase();
  if (l === 'on') return true;
  if (l === 'off') return false;
  return undefined;
}
