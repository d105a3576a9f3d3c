import { atoof } from '../../upstream/value_filter.js';

/*
 * Reading ngx_http_redis's reply, as the module's process_header and
 * input filter read it (0.4.2: its source's logic restated here, checked
 * against a build of it through t/httpredis-oracle.test.ts). The header's
 * log lines end `while reading response header from upstream` (the
 * upstream's log action in process_header; try.ts adds it).
 *
 * The header is found by counting lines from the start of the reply: 2
 * (`+OK` of SELECT, then GET's `$N` line) or 3 with AUTH when the reply
 * starts with `+`, 1 when it starts with `-`; any other first byte is
 * invalid at once. The "line" quoted by the log is everything up to that
 * last LF, minus the byte before it (the CR): `+OK\r\n$5` for a hit, the
 * raw CR LF included, as nginx writes it. Then:
 *   - a first line starting `-ERR`: `redis sent error in response "LINE"
 *     for key "KEY"`, then invalid;
 *   - one (or with AUTH two) leading `+OK\r\n` are skipped;
 *   - `$-1...`: not found (404, info `key: "KEY" was not found by redis`);
 *   - `$N`: found, N the value's length (digits only, else `redis sent
 *     invalid length in response "LINE" for key "KEY"`, invalid);
 *   - anything else: `redis sent invalid response: "LINE"`, invalid.
 * A `-WRONGTYPE ...` after `+OK` is "anything else"; a failed SELECT or AUTH
 * (`-ERR ...`, `-NOAUTH ...`) comes first and ends the header at its line.
 * An invalid header is nginx's NGX_HTTP_UPSTREAM_INVALID_HEADER: 502, or
 * the next peer under `redis_next_upstream invalid_response`.
 */

const LF = 0x0a;
const CR = 0x0d;

export type Header =
  | { kind: 'again' }
  /** the header did not fit in redis_buffer_size bytes */
  | { kind: 'too-big' }
  | { kind: 'invalid' }
  /** `$-1`: the value part starts at `body` (nothing should follow) */
  | { kind: 'not-found'; body: number }
  /** `$N`: N value bytes then CR LF start at `body` */
  | { kind: 'found'; length: number; body: number };

export interface HeaderLog {
  (level: 'info' | 'error', msg: string): void;
}

function startsWith(b: Buffer, at: number, s: string): boolean {
  if (b.length - at < s.length) return false;
  for (let i = 0; i < s.length; i++) if (b[at + i] !== s.charCodeAt(i)) return false;
  return true;
}

/* the header's text up to the byte before its last LF (nginx's NUL there ends it) */
function lineBefore(buf: Buffer, lf: number): string {
  return buf.toString('latin1', 0, lf - 1);
}

/**
 * Parse the reply's header from the first `avail` bytes of `buf` (the
 * bytes that fit nginx's header buffer). `auth`: an AUTH went first.
 */
export function parseHeader(buf: Buffer, avail: number, full: boolean, auth: boolean, key: string, log: HeaderLog): Header {
  if (avail === 0) return { kind: 'again' };
  const first = buf[0];
  let lines: number;
  if (first === 0x2b) lines = auth ? 3 : 2;
  else if (first === 0x2d) lines = 1;
  else {
    // **beyond**: the module logs an uninitialized string here; we quote the first line
    let eol = buf.indexOf(LF);
    if (eol < 0 || eol > avail) eol = avail;
    const end = eol > 0 && buf[eol - 1] === CR ? eol - 1 : eol;
    log('error', `redis sent invalid response: "${buf.toString('latin1', 0, end)}"`);
    return { kind: 'invalid' };
  }

  let lf = -1;
  for (let seen = 0, i = 0; i < avail; i++) {
    if (buf[i] === LF && ++seen === lines) {
      lf = i;
      break;
    }
  }
  if (lf < 0) return full ? { kind: 'too-big' } : { kind: 'again' };

  // the log lines quote the header (lineBefore, made only when logged)

  if (startsWith(buf, 0, '-ERR')) {
    log('error', `redis sent error in response "${lineBefore(buf, lf)}" for key "${key}"`);
    log('error', `redis sent invalid response: "${lineBefore(buf, lf)}"`);
    return { kind: 'invalid' };
  }

  let p = 0;
  if (!auth) {
    if (startsWith(buf, 0, '+OK\r\n')) p = 5;
  } else if (startsWith(buf, 0, '+OK\r\n+OK\r\n')) p = 10;

  if (startsWith(buf, p, '$-1')) {
    log('info', `key: "${key}" was not found by redis`);
    return { kind: 'not-found', body: p + 5 };
  }

  if (buf[p] === 0x24) {
    // the length runs to the first CR (the scan also stops at the NUL nginx put over the LF)
    const from = p + 1;
    let q = from;
    let end = -1;
    while (q <= lf) {
      const c = q === lf ? 0 : buf[q]!;
      if (c === 0) break;
      q++;
      if (c === CR) {
        end = q;
        break;
      }
    }
    // no CR: nginx's `p - len - 1` drops the last byte before the NUL
    const length = end < 0 ? atoof(buf, from, q - 1) : atoof(buf, from, end - 1);
    if (length < 0) {
      log('error', `redis sent invalid length in response "${lineBefore(buf, lf)}" for key "${key}"`);
      return { kind: 'invalid' };
    }
    return { kind: 'found', length, body: (end < 0 ? q : end) + 1 };
  }

  log('error', `redis sent invalid response: "${lineBefore(buf, lf)}"`);
  return { kind: 'invalid' };
}

/**
 * ngx_http_redis_filter: the N value bytes go to the client, the CR LF
 * after them is checked and dropped (lib/upstream/value_filter.ts).
 */
export const VALUE_TRAILER = Buffer.from('\r\n', 'latin1');
