import type { ComplexValue } from '../../http/script.js';
import type { HttpRegex } from '../../http/regex_exec.js';
import type { Request } from '../../http/request.js';

/*
 * The rewrite module's compiled program (nginx's script codes): each level
 * (server, location) owns one flat list; the statements inside an `if` are
 * compiled into the same list, and the If op jumps over them when false.
 * Conditions work on a small value stack, as ngx_http_script_engine_t does.
 */

export const OP_VALUE = 0;
export const OP_COMPLEX = 1;
export const OP_VAR = 2;
export const OP_SET_VAR = 3;
export const OP_EQUAL = 4;
export const OP_NOT_EQUAL = 5;
export const OP_REGEX_TEST = 6;
export const OP_FILE = 7;
export const OP_IF = 8;
export const OP_RETURN = 9;
export const OP_BREAK = 10;
export const OP_REWRITE = 11;
export const OP_HANDLER = 12;

/** -f -d -e -x and their negations */
export const FILE_PLAIN = 0;
export const FILE_DIR = 1;
export const FILE_EXISTS = 2;
export const FILE_EXEC = 3;

/** The running script: the stack conditions use, and the final status. */
export interface ScriptEngine {
  stack: string[];
  /** DECLINED unless a statement finalized the request */
  status: number;
  /** set by an op to stop the script */
  stop: boolean;
  /** rewrite_log of the level the script started in */
  log: boolean;
}

/**
 * A statement another module compiles into the rewrite list, in directive
 * order (as NDK's set_var does for set_misc): it may pop/push the stack,
 * set variables, or stop the script with a status.
 */
export type ScriptHandler = (r: Request, e: ScriptEngine) => void;

export type Op =
  | { kind: typeof OP_VALUE; text: string }
  | { kind: typeof OP_COMPLEX; cv: ComplexValue }
  | { kind: typeof OP_VAR; index: number }
  | { kind: typeof OP_SET_VAR; index: number }
  | { kind: typeof OP_EQUAL }
  | { kind: typeof OP_NOT_EQUAL }
  | { kind: typeof OP_REGEX_TEST; regex: HttpRegex; negative: boolean; name: string }
  | { kind: typeof OP_FILE; test: number; negative: boolean }
  /** pop the condition; false → jump to `next`; true → enter the if level */
  | { kind: typeof OP_IF; next: number; locConf: unknown[] | undefined }
  | { kind: typeof OP_RETURN; status: number; text: ComplexValue | undefined }
  | { kind: typeof OP_BREAK }
  | { kind: typeof OP_REWRITE; rw: RewriteOp }
  | { kind: typeof OP_HANDLER; run: ScriptHandler };

export interface RewriteOp {
  regex: HttpRegex;
  /** the pattern as written, for rewrite_log */
  name: string;
  /** replacement before `?` (or all of it for redirects) */
  uri: ComplexValue;
  /** replacement after the first `?` (non-redirects), when there is one */
  args: ComplexValue | undefined;
  /** the replacement holds a `?` (a redirect then appends `&args`) */
  hasArgs: boolean;
  /** keep the request's arguments (no trailing `?`) */
  addArgs: boolean;
  /** 301/302, or 0 */
  status: number;
  redirect: boolean;
  breakCycle: boolean;
  /** last|break|redirect|permanent, or an absolute URL: stop the script on a match */
  last: boolean;
}

export interface RewriteLocConf {
  /** this level's program; undefined when the level has no rewrite statements */
  codes: Op[] | undefined;
  log: number;
  uninitWarn: number;
}
