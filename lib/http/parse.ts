/*
 * Request line and header line parsing with nginx's rules
 * (ngx_http_parse_request_line / ngx_http_parse_header_line): which bytes
 * are accepted, which give 400 and which 505, which headers are silently
 * ignored. Lines arrive without their LF; a final CR is stripped here.
 */

import { knownHeader, knownName, type Head } from './head.js';

export const enum LineError {
  InvalidMethod = 1,
  InvalidRequest,
  InvalidVersion,
  Invalid09Method,
}

/** nginx's ngx_http_client_errors[], indexed by LineError - 1 */
export const LINE_ERROR_TEXT = [
  'client sent invalid method',
  'client sent invalid request',
  'client sent invalid version',
  'client sent invalid method in HTTP/0.9 request',
];

const isUpper = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x2d;
const isAlpha = (c: number): boolean => {
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x7a;
};
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/** bytes nginx refuses inside a URI */
const isCtl = (c: number): boolean => c < 0x20 || c === 0x7f;

/**
 * The request line `raw` (its LF removed; a final CR is stripped here) into
 * h's request line fields; 0, or the error. h is written only on success.
 */
export function parseRequestLine(raw: string, h: Head): 0 | LineError {
  const len = raw.charCodeAt(raw.length - 1) === 0x0d ? raw.length - 1 : raw.length;
  const line = raw;
  let i = 0;
  // method
  while (i < len && isUpper(line.charCodeAt(i))) i++;
  if (i === 0 || i === len || line.charCodeAt(i) !== 0x20) return LineError.InvalidMethod;
  const method = i === 3 && line.charCodeAt(0) === 0x47 && line.charCodeAt(1) === 0x45 && line.charCodeAt(2) === 0x54 ? 'GET' : line.slice(0, i);
  while (i < len && line.charCodeAt(i) === 0x20) i++;
  if (i === len) return LineError.InvalidRequest;
  const uriStart = i;
  let uriHost: string | undefined;
  let pathStart = i;
  let c = line.charCodeAt(i);
  if (c !== 0x2f) {
    if (!isAlpha(c)) return LineError.InvalidRequest;
    // absolute URI: schema "://" host [":" port]
    while (i < len && (isAlpha(line.charCodeAt(i)) || isDigit(line.charCodeAt(i)) || '+-.'.includes(line[i]!))) i++;
    if (line.charCodeAt(i) !== 0x3a || line.charCodeAt(i + 1) !== 0x2f || line.charCodeAt(i + 2) !== 0x2f) {
      return LineError.InvalidRequest;
    }
    i += 3;
    const hostStart = i;
    if (line.charCodeAt(i) === 0x5b) {
      const close = line.indexOf(']', i);
      if (close === -1 || close >= len) return LineError.InvalidRequest;
      i = close + 1;
    } else {
      while (i < len && /[A-Za-z0-9.\-_~!$&'()*+,;=%]/.test(line[i]!)) i++;
    }
    if (i < len && line.charCodeAt(i) === 0x3a) {
      i++;
      while (i < len && isDigit(line.charCodeAt(i))) i++;
    }
    uriHost = line.slice(hostStart, i);
    if (uriHost.length === 0) return LineError.InvalidRequest;
    pathStart = i;
    c = line.charCodeAt(i);
    if (i < len && c !== 0x2f && c !== 0x3f && c !== 0x20) return LineError.InvalidRequest;
  }
  // the rest of the URI runs to the next space
  while (i < len) {
    c = line.charCodeAt(i);
    if (c === 0x20) break;
    if (isCtl(c)) return LineError.InvalidRequest;
    i++;
  }
  const uriEnd = i;
  while (i < len && line.charCodeAt(i) === 0x20) i++;
  if (i === len) {
    // HTTP/0.9: no version
    if (method !== 'GET') return LineError.Invalid09Method;
    setLine(h, method, line, uriStart, pathStart, uriEnd, uriHost, len === raw.length ? line : line.slice(0, len), 9, '');
    return 0;
  }
  if (
    len - i < 5 ||
    line.charCodeAt(i) !== 0x48 || line.charCodeAt(i + 1) !== 0x54 || line.charCodeAt(i + 2) !== 0x54 ||
    line.charCodeAt(i + 3) !== 0x50 || line.charCodeAt(i + 4) !== 0x2f
  ) {
    return LineError.InvalidRequest;
  }
  const protoStart = i;
  i += 5;
  c = line.charCodeAt(i);
  if (!(i < len && c >= 0x31 && c <= 0x39)) return LineError.InvalidRequest;
  let major = 0;
  while (i < len && isDigit(line.charCodeAt(i))) {
    major = major * 10 + line.charCodeAt(i) - 0x30;
    if (major > 1) return LineError.InvalidVersion;
    i++;
  }
  if (i >= len || line.charCodeAt(i) !== 0x2e) return LineError.InvalidRequest;
  i++;
  if (i >= len || !isDigit(line.charCodeAt(i))) return LineError.InvalidRequest;
  let minor = 0;
  while (i < len && isDigit(line.charCodeAt(i))) {
    if (minor > 99) return LineError.InvalidRequest;
    minor = minor * 10 + line.charCodeAt(i) - 0x30;
    i++;
  }
  const protoEnd = i;
  while (i < len && line.charCodeAt(i) === 0x20) i++;
  if (i !== len) return LineError.InvalidRequest;
  const version = major * 1000 + minor;
  // the usual protocols are shared strings, not slices of every line
  const protocol =
    protoEnd - protoStart === 8 && version === 1001 ? 'HTTP/1.1' : protoEnd - protoStart === 8 && version === 1000 ? 'HTTP/1.0' : line.slice(protoStart, protoEnd);
  setLine(h, method, line, uriStart, pathStart, uriEnd, uriHost, protoEnd === raw.length ? line : line.slice(0, protoEnd), version, protocol);
  return 0;
}

function setLine(
  h: Head, method: string, line: string, uriStart: number, pathStart: number, uriEnd: number,
  uriHost: string | undefined, text: string, version: number, protocol: string,
): void {
  h.method = method;
  h.rawUri = line.slice(uriStart, uriEnd);
  h.pathQuery = pathStart === uriStart ? h.rawUri : line.slice(pathStart, uriEnd);
  h.uriHost = uriHost;
  h.line = text;
  h.version = version;
  h.protocol = protocol;
}

/** lowcase[] of ngx_http_parse_header_line: the bytes a header name may hold */
function nameChar(c: number): boolean {
  return c === 0x2d || isDigit(c) || isAlpha(c);
}

export const enum HeaderLine {
  Invalid = -1,
  /** nginx ignores the line (invalid character or `_` in the name) */
  Ignored = 0,
  Added = 1,
}

/**
 * The header line in buf[s, e) (e at its LF; a final CR is stripped here),
 * added to h when valid. Invalid = NGX_HTTP_PARSE_INVALID_HEADER (400).
 */
export function parseHeaderLine(buf: Buffer, s: number, e: number, h: Head): HeaderLine {
  const len = e > s && buf[e - 1] === 0x0d ? e - 1 : e;
  let invalid = false;
  let i = s;
  const first = buf[s]!;
  if (first <= 0x20 || first === 0x7f || first === 0x3a) return HeaderLine.Invalid;
  for (; i < len; i++) {
    const c = buf[i]!;
    if (c === 0x3a) break;
    if (nameChar(c)) continue;
    if (c <= 0x20 || c === 0x7f) return HeaderLine.Invalid;
    invalid = true;
  }
  const nameEnd = i;
  let vs = len;
  let ve = len;
  if (i < len) {
    i++;
    while (i < len && buf[i] === 0x20) i++;
    let end = len;
    while (end > i && buf[end - 1] === 0x20) end--;
    for (let j = i; j < end; j++) {
      const c = buf[j]!;
      if (c === 0 || c === 0x0d) return HeaderLine.Invalid;
    }
    vs = i;
    ve = end;
  }
  if (invalid) return HeaderLine.Ignored;
  const known = knownHeader(buf, s, nameEnd);
  h.addHeader(known === 0 ? buf.toString('latin1', s, nameEnd) : knownName(buf, s, nameEnd, known), vs === ve ? '' : buf.toString('latin1', vs, ve), known);
  return HeaderLine.Added;
}

/** ngx_http_validate_host: lowercased host without port or trailing dot, or undefined (400) */
export function validateHost(host: string): string | undefined {
  let dotPos = host.length;
  let hostLen = host.length;
  let state = 0; // 0 usual, 1 literal, 2 rest
  for (let i = 0; i < host.length; i++) {
    const ch = host.charCodeAt(i);
    if (ch === 0x2e) {
      if (dotPos === i - 1) return undefined;
      dotPos = i;
    } else if (ch === 0x3a) {
      if (state === 0) {
        hostLen = i;
        state = 2;
      }
    } else if (ch === 0x5b) {
      if (i === 0) state = 1;
    } else if (ch === 0x5d) {
      if (state === 1) {
        hostLen = i + 1;
        state = 2;
      }
    } else if (ch === 0x2f || ch <= 0x20 || ch === 0x7f) {
      return undefined;
    }
  }
  if (dotPos === hostLen - 1) hostLen--;
  if (hostLen <= 0) return undefined;
  return host.slice(0, hostLen).toLowerCase();
}
