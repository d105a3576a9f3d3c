import { writeSync } from 'node:fs';
import type { AccessLog, LogFormat, LogLocConf } from './conf.js';
import { evalComplexValue } from '../../http/eval.js';
import type { HttpRequest } from '../../http/http_request.js';
import { getMainLog, onBeforeReopen, openLogFile, errnoSuffix, type LogFile } from '../../core/error_log.js';
import { PartKind } from '../../http/script.js';

/*
 * ngx_http_log_module's run-time half: the log phase. Runs when a request
 * is done, so $status, $body_bytes_sent and $request_time have their final
 * values. Unbuffered logs write each line at once (Test::Nginx reads the
 * file right after a response); `buffer=` logs collect lines per file and
 * write when the buffer would overflow, when `flush=` expires, before a
 * reopen and at exit.
 */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

function tzOffset(d: Date, colon: boolean): string {
  const off = -d.getTimezoneOffset();
  const a = Math.abs(off);
  return `${off < 0 ? '-' : '+'}${p2(Math.floor(a / 60))}${colon ? ':' : ''}${p2(a % 60)}`;
}

/** nginx's cached log times, recomputed once per second */
let timeSec = -1;
let timeLocal = '';
let timeIso = '';
function refreshTimes(now: number): void {
  const sec = Math.floor(now / 1000);
  if (sec === timeSec) return;
  timeSec = sec;
  const d = new Date(sec * 1000);
  timeLocal = `${p2(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${tzOffset(d, false)}`;
  timeIso = `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}${tzOffset(d, true)}`;
}

const secMs = (ms: number): string => `${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}`;

/** the log module's own variables (ngx_http_log_vars) */
function builtin(r: HttpRequest, name: string, now: number): string {
  switch (name) {
    case 'status': {
      const s = r.errStatus || r.status || (r.version === 9 ? 9 : 0);
      return String(s).padStart(3, '0');
    }
    case 'body_bytes_sent':
      return String(r.bodyBytesSent);
    case 'bytes_sent':
      return String(r.bytesSent);
    case 'request_time':
      return secMs(Math.max(now - r.startTime, 0));
    case 'msec':
      return secMs(now);
    case 'time_local':
      return timeLocal;
    case 'time_iso8601':
      return timeIso;
    case 'request_length':
      return String(r.headerLength + (r.bodyRaw >= 0 ? r.bodyRaw : r.body ? r.body.reduce((n, b) => n + b.length, 0) : 0));
    default: // pipe: redis2d does not track whether a request arrived pipelined
      return '.';
  }
}

/** the value of a variable, undefined when not found (nginx writes `-` then) */
function variable(r: HttpRequest, index: number): string | undefined {
  const cached = r.vars[index];
  if (cached !== undefined) return cached;
  const vars = r.variables;
  const iv = vars.indexed[index];
  if (!iv || !iv.def) return undefined;
  const get = iv.def.get;
  const v = get ? get(r, iv.name) : undefined;
  // nginx's getters for these report `not found` (no data) rather than an empty value
  return v === '' && EMPTY_IS_NOT_FOUND.has(iv.name) ? undefined : v;
}

const EMPTY_IS_NOT_FOUND = new Set(['args', 'query_string', 'request_method']);

/** ngx_http_log_escape: `"`, `\`, control bytes, DEL and bytes >= 0x80 as \xHH */
// eslint-disable-next-line no-control-regex
const NEEDS_DEFAULT = /[\x00-\x1f"\\\x7f-\xff]/;
// eslint-disable-next-line no-control-regex
const NEEDS_DEFAULT_G = /[\x00-\x1f"\\\x7f-\xff]/g;
export function escapeDefault(v: string): string {
  if (!NEEDS_DEFAULT.test(v)) return v;
  return v.replace(NEEDS_DEFAULT_G, (c) => `\\x${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

// eslint-disable-next-line no-control-regex
const NEEDS_JSON = /[\x00-\x1f"\\]/;
// eslint-disable-next-line no-control-regex
const NEEDS_JSON_G = /[\x00-\x1f"\\]/g;
const JSON_SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f', '"': '\\"', '\\': '\\\\' };
/** ngx_escape_json: bytes >= 0x80 pass through unchanged */
export function escapeJson(v: string): string {
  if (!NEEDS_JSON.test(v)) return v;
  return v.replace(NEEDS_JSON_G, (c) => JSON_SHORT[c] ?? `\\u00${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** one line of a format, with its trailing newline */
export function formatLine(r: HttpRequest, fmt: LogFormat, now: number): string {
  refreshTimes(now);
  let out = '';
  for (const p of fmt.parts) {
    if (p.kind === PartKind.Literal) {
      out += p.text;
      continue;
    }
    if (p.kind !== PartKind.Var) continue;
    if (p.index === -1) {
      out += builtin(r, p.name, now);
      continue;
    }
    const v = variable(r, p.index);
    // not found: `-` with default escaping, nothing with json or none
    if (v === undefined) out += fmt.escape === 'default' ? '-' : '';
    else if (fmt.escape === 'default') out += escapeDefault(v);
    else out += fmt.escape === 'json' ? escapeJson(v) : v;
  }
  return out + '\n';
}

// ------------------------------------------------------------ writing

interface Buffered {
  file: LogFile;
  chunks: Buffer[];
  size: number;
  cap: number;
  flushMs: number;
  timer: NodeJS.Timeout | undefined;
}

const buffers = new Map<string, Buffered>();

function writeOut(file: LogFile, data: Buffer, r: HttpRequest | undefined): void {
  try {
    writeSync(file.fd, data);
  } catch (e) {
    const msg = `write() to "${file.path}" failed ${errnoSuffix(e)}`;
    if (r) r.log('alert', msg);
    else getMainLog().write('alert', 0, msg);
  }
}

function flushBuffer(b: Buffered): void {
  if (b.timer) {
    clearTimeout(b.timer);
    b.timer = undefined;
  }
  if (b.size === 0) return;
  const data = b.chunks.length === 1 ? b.chunks[0]! : Buffer.concat(b.chunks, b.size);
  b.chunks = [];
  b.size = 0;
  writeOut(b.file, data, undefined);
}

/** write every buffered line now (exit, reopen) */
export function flushAccessLogs(): void {
  for (const b of buffers.values()) flushBuffer(b);
}

function writeLine(r: HttpRequest, log: AccessLog, line: Buffer): void {
  let file: LogFile;
  const path = log.pathValue ? evalComplexValue(r, log.pathValue) : log.path;
  try {
    file = openLogFile(path);
  } catch (e) {
    r.log('crit', `open() "${path}" failed ${errnoSuffix(e)}`);
    return;
  }
  if (log.buffer === 0) {
    writeOut(file, line, r);
    return;
  }
  let b = buffers.get(path);
  if (!b) {
    b = { file, chunks: [], size: 0, cap: log.buffer, flushMs: log.flush, timer: undefined };
    buffers.set(path, b);
  }
  if (b.size + line.length > b.cap) flushBuffer(b);
  if (line.length > b.cap) {
    writeOut(file, line, r);
    return;
  }
  b.chunks.push(line);
  b.size += line.length;
  if (b.flushMs && !b.timer) {
    const held = b;
    held.timer = setTimeout(() => {
      held.timer = undefined;
      flushBuffer(held);
    }, held.flushMs);
    held.timer.unref();
  }
}

/** the log phase: one line per access_log of the request's location level */
export function logRequest(r: HttpRequest, llcf: LogLocConf | undefined): void {
  if (!llcf || llcf.off || !llcf.logs) return;
  const now = Date.now();
  for (const log of llcf.logs) {
    if (log.filter) {
      const v = evalComplexValue(r, log.filter);
      if (v === '' || v === '0') continue;
    }
    writeLine(r, log, Buffer.from(formatLine(r, log.format, now), 'latin1'));
  }
}

let installed = false;
/** buffered lines reach the old file before USR1 reopens it, and the file at exit (once per process) */
export function installFlushHooks(): void {
  if (installed) return;
  installed = true;
  onBeforeReopen(flushAccessLogs);
  process.on('exit', flushAccessLogs);
}
