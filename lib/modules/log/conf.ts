import type { ComplexValue, Part } from '../../http/script.js';

/* The log module's conf shapes, read by the directives (module.ts) and the writer (access_log.ts). */

/** Variables the log module computes itself (ngx_http_log_vars): parts with index -1. */
export const LOG_BUILTIN_VARS = [
  'pipe',
  'time_local',
  'time_iso8601',
  'msec',
  'request_time',
  'status',
  'bytes_sent',
  'body_bytes_sent',
  'request_length',
];

export interface LogFormat {
  name: string;
  escape: 'default' | 'json' | 'none';
  /** literals and variables; a Var part with index -1 is a LOG_BUILTIN_VARS one */
  parts: Part[];
}

export interface AccessLog {
  /** full path (constant) */
  path: string;
  /** the path when it holds variables (opened per request, as nginx) */
  pathValue: ComplexValue | undefined;
  format: LogFormat;
  /** buffer= bytes (0: unbuffered); flush= ms; gzip level (0: none) */
  buffer: number;
  flush: number;
  gzip: number;
  /** if=: skip the line when it evaluates to "" or "0" */
  filter: ComplexValue | undefined;
}

export interface LogMainConf {
  formats: LogFormat[];
}

export interface LogLocConf {
  /** `access_log off` at this level */
  off: boolean;
  logs: AccessLog[] | undefined;
}

