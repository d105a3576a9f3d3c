import { atoof } from '../../upstream/value_filter.js';
import { MemcCmd, isStorage } from './conf.js';

/*
 * Reading memcached's replies as the memc module does (0.19). Two shapes:
 *
 * A "simple" reply (every command but get) is matched whole inside the
 * header buffer (memc_buffer_size) by the module's Ragel machines, restated
 * here as alternatives run side by side:
 *   storage    STORED 201 | NOT_STORED 200 | EXISTS 200 | NOT_FOUND 404
 *   delete     DELETED 200 | NOT_FOUND 404
 *   incr/decr  DIGITS SPACES* 201 | NOT_FOUND 404
 *   flush_all  OK 200
 *   version    VERSION <text> 200
 *   stats      (STAT <text>)* END 200
 * each line ending CR LF, and for all of them ERROR | CLIENT_ERROR <msg> |
 * SERVER_ERROR <msg>, 502. The machine is "done" as soon as one
 * alternative matched; it keeps consuming while some alternative can go
 * on (the <text> of VERSION and STAT may contain CR LF, so those never
 * stop), and the response body is everything from the reply's start to
 * where it stopped. When every alternative failed before a match, the
 * reply is invalid at that byte: `memcached sent invalid response for
 * command "CMD" at pos N: TEXT`, N counted from the start of this read's
 * bytes, TEXT the reply up to there.
 *
 * A get reply's header is its first line (parseGetHeader).
 */

const CR = 0x0d;
const LF = 0x0a;

/** One alternative's fate over the bytes so far. */
interface AltResult {
  /** end of its match, -1 none */
  accept: number;
  /** first byte it cannot take, -1 while it can take them all */
  die: number;
}

const ALIVE: AltResult = { accept: -1, die: -1 };

/** a fixed line: matched, failed at a byte, or still a prefix */
function literal(buf: Buffer, s: string): AltResult {
  const n = Math.min(buf.length, s.length);
  for (let i = 0; i < n; i++) if (buf[i] !== s.charCodeAt(i)) return { accept: -1, die: i };
  if (buf.length < s.length) return ALIVE;
  return { accept: s.length, die: buf.length > s.length ? s.length : -1 };
}

/** PREFIX <msg without CR LF> CR LF: done at the first CR LF, nothing after it */
function prefixedLine(buf: Buffer, prefix: string): AltResult {
  const head = literal(buf, prefix);
  if (head.accept < 0) return head;
  const at = crlf(buf, prefix.length);
  if (at < 0) return ALIVE;
  const end = at + 2;
  return { accept: end, die: buf.length > end ? end : -1 };
}

/** DIGITS+ SPACE* CR LF (incr / decr's new value) */
function number(buf: Buffer): AltResult {
  let i = 0;
  while (i < buf.length && buf[i]! >= 0x30 && buf[i]! <= 0x39) i++;
  if (i === buf.length) return ALIVE;
  if (i === 0) return { accept: -1, die: 0 };
  while (i < buf.length && buf[i] === 0x20) i++;
  if (i === buf.length) return ALIVE;
  if (buf[i] !== CR) return { accept: -1, die: i };
  if (++i === buf.length) return ALIVE;
  if (buf[i] !== LF) return { accept: -1, die: i };
  const end = i + 1;
  return { accept: end, die: buf.length > end ? end : -1 };
}

/**
 * PREFIX <text> ... where the text may hold anything: matched at the first
 * `tail` at or after `min`; never fails once the prefix is in
 */
function absorbing(buf: Buffer, prefix: string, tail: string, min: number): AltResult {
  const head = literal(buf, prefix);
  if (head.accept < 0) return head;
  const at = buf.indexOf(tail, min, 'latin1');
  return { accept: at < 0 ? -1 : at + tail.length, die: -1 };
}

function crlf(buf: Buffer, from: number): number {
  for (let i = from; i + 1 < buf.length; i++) if (buf[i] === CR && buf[i + 1] === LF) return i;
  return -1;
}

export type SimpleReply =
  | { kind: 'again' }
  /** the response: status and its body, buf[0, end) */
  | { kind: 'done'; status: number; end: number }
  /** no alternative matches: the machine stopped at `at` */
  | { kind: 'invalid'; at: number };

type Alt = [(buf: Buffer) => AltResult, number];

const ERRORS: Alt[] = [
  [(b) => literal(b, 'ERROR\r\n'), 502],
  [(b) => prefixedLine(b, 'CLIENT_ERROR '), 502],
  [(b) => prefixedLine(b, 'SERVER_ERROR '), 502],
];

const NOT_FOUND: Alt = [(b) => literal(b, 'NOT_FOUND\r\n'), 404];

const STORAGE: Alt[] = [
  [(b) => literal(b, 'STORED\r\n'), 201],
  [(b) => literal(b, 'NOT_STORED\r\n'), 200],
  [(b) => literal(b, 'EXISTS\r\n'), 200],
  NOT_FOUND,
  ...ERRORS,
];
const DELETE: Alt[] = [[(b) => literal(b, 'DELETED\r\n'), 200], NOT_FOUND, ...ERRORS];
const INCR_DECR: Alt[] = [[number, 201], NOT_FOUND, ...ERRORS];
const FLUSH_ALL: Alt[] = [[(b) => literal(b, 'OK\r\n'), 200], ...ERRORS];
// VERSION <at least one byte> CR LF; STAT <at least one byte> CR LF ... END CR LF
const VERSION: Alt[] = [[(b) => absorbing(b, 'VERSION ', '\r\n', 9), 200], ...ERRORS];
const STATS: Alt[] = [[(b) => literal(b, 'END\r\n'), 200], [(b) => absorbing(b, 'STAT ', '\r\nEND\r\n', 6), 200], ...ERRORS];

function altsOf(cmd: MemcCmd): Alt[] {
  if (isStorage(cmd)) return STORAGE;
  switch (cmd) {
    case MemcCmd.Delete:
      return DELETE;
    case MemcCmd.Incr:
    case MemcCmd.Decr:
      return INCR_DECR;
    case MemcCmd.FlushAll:
      return FLUSH_ALL;
    case MemcCmd.Version:
      return VERSION;
    default:
      return STATS;
  }
}

/** match the reply so far (`buf`: every byte read, from its start) */
export function parseSimple(cmd: MemcCmd, buf: Buffer): SimpleReply {
  let accept = -1;
  let status = 200;
  let stop = 0;
  let alive = false;
  for (const [alt, st] of altsOf(cmd)) {
    const res = alt(buf);
    if (res.accept >= 0 && (accept < 0 || res.accept < accept)) {
      accept = res.accept;
      status = st;
    }
    if (res.die < 0) alive = true;
    else if (res.die > stop) stop = res.die;
  }
  const end = alive ? buf.length : stop;
  if (accept >= 0) return { kind: 'done', status, end };
  if (alive) return { kind: 'again' };
  return { kind: 'invalid', at: end };
}

export type GetHeader =
  | { kind: 'again' }
  | { kind: 'too-big' }
  | { kind: 'invalid' }
  /** END: not found; nothing should follow at `body` */
  | { kind: 'not-found'; body: number }
  /** VALUE: `length` bytes of value, then CR LF END CR LF, from `body` */
  | { kind: 'found'; flags: string; length: number; body: number };

export interface HeaderLog {
  (level: 'info' | 'error', msg: string): void;
}

/**
 * ngx_http_memc_process_get_cmd_header: the first line (up to LF, within
 * `avail` bytes) is `VALUE KEY FLAGS BYTES` or `END`. nginx puts a NUL over
 * the LF and quotes the line without the byte before it (the CR). The key
 * must be the escaped key sent; the flags run to the next space; the length
 * to the first CR (without one, its last byte is dropped, as nginx's
 * arithmetic does).
 */
export function parseGetHeader(buf: Buffer, avail: number, full: boolean, key: string, log: HeaderLog): GetHeader {
  let lf = -1;
  for (let i = 0; i < avail; i++) {
    if (buf[i] === LF) {
      lf = i;
      break;
    }
  }
  if (lf < 0) return full ? { kind: 'too-big' } : { kind: 'again' };
  const line = (): string => buf.toString('latin1', 0, Math.max(0, lf - 1));
  // the bytes nginx's C string functions see: up to the NUL put over the LF (or a NUL of the reply's own)
  let end = buf.indexOf(0, 0);
  if (end < 0 || end > lf) end = lf;
  const has = (at: number, s: string): boolean => {
    if (at + s.length > end) return false;
    for (let i = 0; i < s.length; i++) if (buf[at + i] !== s.charCodeAt(i)) return false;
    return true;
  };

  if (has(0, 'VALUE ')) {
    let p = 6;
    if (!has(p, key)) {
      log('error', `memcached sent invalid key in response "${line()}" for key "${key}"`);
      return { kind: 'invalid' };
    }
    p += key.length;
    if (p >= end || buf[p++] !== 0x20) return noValid(log, line());
    const flagsAt = p;
    let flagsEnd = -1;
    while (p < end) {
      if (buf[p++] === 0x20) {
        flagsEnd = p - 1;
        break;
      }
    }
    if (flagsEnd < 0) return noValid(log, line());
    const len = p;
    while (p < end) {
      if (buf[p++] === CR) break;
    }
    const length = atoof(buf, len, p - 1);
    if (length < 0) {
      log('error', `memcached sent invalid length in response "${line()}" for key "${key}"`);
      return { kind: 'invalid' };
    }
    return { kind: 'found', flags: buf.toString('latin1', flagsAt, flagsEnd), length, body: p + 1 };
  }

  if (end === 4 && has(0, 'END\r')) {
    log('info', `key: "${key}" was not found by memcached`);
    return { kind: 'not-found', body: lf + 1 };
  }
  return noValid(log, line());
}

function noValid(log: HeaderLog, line: string): GetHeader {
  log('error', `memcached sent invalid response: "${line}"`);
  return { kind: 'invalid' };
}

/**
 * ngx_http_memc_get_cmd_filter: the value's bytes go on, the 7 trailer
 * bytes after them are checked and dropped (lib/upstream/value_filter.ts).
 */
export const GET_TRAILER = Buffer.from('\r\nEND\r\n', 'latin1');
