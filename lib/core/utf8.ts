/*
 * ngx_utf8_decode, once for the modules that need it (autoindex's name
 * columns, charset's recoding and charset_map's values). nginx's rules, not
 * the WHATWG decoder's: overlong forms and code points above 0x10ffff are
 * invalid (the caller compares with 0x10ffff), a sequence cut by the end of
 * the input is INCOMPLETE so a streaming caller can wait for the rest.
 */

export const UTF8_INVALID = 0xffffffff;
export const UTF8_INCOMPLETE = 0xfffffffe;

/**
 * Decodes the sequence starting at b[p] (a byte >= 0x80) within b[p..end).
 * Returns the code point (or UTF8_INVALID / UTF8_INCOMPLETE) and stores in
 * step.next where decoding stopped, as nginx advances its pointer: past an
 * invalid lead byte, at the continuation byte that broke the sequence plus
 * one, unmoved when incomplete.
 */
export function utf8Decode(b: Uint8Array, p: number, end: number, step: { next: number }): number {
  let u = b[p]!;
  let len: number;
  let valid: number;
  if (u >= 0xf0) {
    u &= 0x07;
    valid = 0xffff;
    len = 3;
  } else if (u >= 0xe0) {
    u &= 0x0f;
    valid = 0x7ff;
    len = 2;
  } else if (u >= 0xc2) {
    u &= 0x1f;
    valid = 0x7f;
    len = 1;
  } else {
    step.next = p + 1;
    return UTF8_INVALID;
  }
  if (end - p - 1 < len) {
    step.next = p;
    return UTF8_INCOMPLETE;
  }
  let q = p + 1;
  while (len) {
    const i = b[q++]!;
    if (i < 0x80) {
      step.next = q;
      return UTF8_INVALID;
    }
    u = ((u << 6) | (i & 0x3f)) >>> 0;
    len--;
  }
  step.next = q;
  return u > valid ? u : UTF8_INVALID;
}
