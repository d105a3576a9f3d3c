import type { ComplexValue } from '../../http/script.js';

/*
 * The echo module's conf shapes (openresty/echo-nginx-module), read by the
 * directives (module.ts), the content handler (handler.ts) and the body
 * filter (filter.ts).
 */

export type EchoOpcode =
  | 'echo'
  | 'echo_request_body'
  | 'echo_sleep'
  | 'echo_before_body'
  | 'echo_after_body'
  | 'echo_location_async'
  | 'echo_location'
  | 'echo_subrequest_async'
  | 'echo_subrequest'
  | 'echo_duplicate'
  | 'echo_read_request_body'
  | 'echo_flush'
  | 'echo_blocking_sleep'
  | 'echo_reset_timer'
  | 'echo_foreach_split'
  | 'echo_end'
  | 'echo_abort_parent'
  | 'echo_exec'
  /**
   * inserted before the first echo_location* / echo_subrequest* of a
   * location that has no output yet (the module's echo_opcode_echo_sync)
   */
  | 'echo_sync';

export interface EchoCmd {
  op: EchoOpcode;
  /** the directive's arguments, each compiled once */
  args: ComplexValue[];
}

export interface EchoLocConf {
  /** commands run by the echo content handler, in order (inherited as a whole) */
  handlerCmds: EchoCmd[] | undefined;
  /** echo_before_body / echo_after_body (output filters) */
  beforeBodyCmds: EchoCmd[] | undefined;
  afterBodyCmds: EchoCmd[] | undefined;
  seenLeadingOutput: boolean;
  /** echo_status, default 200 after merge */
  status: number;
  /** the http block's echo main conf (whether the filters exist at all) */
  main: EchoMainConf;
}

export interface EchoMainConf {
  /** some location uses echo_before_body / echo_after_body */
  requiresFilter: boolean;
}

/** the prefix (-p) relative paths resolve against (echo_subrequest -f), from the loaded config */
export const echoPaths = { prefix: '' };
