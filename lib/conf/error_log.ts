import type { ErrorLogSpec } from '../core/error_log.js';
import type { Conf } from './parser.js';

/*
 * `error_log FILE [LEVEL]` as every context that takes it parses it
 * (ngx_log_set_log / ngx_log_set_levels).
 */

const DEBUG_LEVELS = ['debug_core', 'debug_alloc', 'debug_mutex', 'debug_event', 'debug_http', 'debug_mail', 'debug_stream'];

export const LOG_LEVELS = ['stderr', 'emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info', 'debug'];

/**
 * `error_log FILE [LEVEL]` (ngx_log_set_log): shared by every context that
 * takes error_log; returns the spec or throws nginx's message.
 */
export function parseErrorLog(cf: Conf): ErrorLogSpec {
  const file = cf.args[1]!;
  const path = file === 'stderr' ? 'stderr' : cf.cycle.fullName(file);
  if (file.startsWith('syslog:')) throw cf.error('syslog is not supported by redis2d');
  if (file.startsWith('memory:')) throw cf.error('memory logging is not supported by redis2d');
  // ngx_log_set_levels: one severity, plus any debug_* masks (not after a severity)
  let level = cf.args.length > 2 ? '' : 'error';
  let debugMask = false;
  for (let i = 2; i < cf.args.length; i++) {
    const word = cf.args[i]!;
    if (LOG_LEVELS.includes(word) && word !== 'stderr') {
      if (level !== '' || debugMask) throw cf.error(`duplicate log level "${word}"`);
      level = word;
      continue;
    }
    if (DEBUG_LEVELS.includes(word)) {
      if (level !== '') throw cf.error(`invalid log level "${word}"`);
      debugMask = true;
      continue;
    }
    throw cf.error(`invalid log level "${word}"`);
  }
  if (level === '') level = 'debug';
  return { path, level };
}

