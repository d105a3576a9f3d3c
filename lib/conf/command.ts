import type { Conf, Cycle } from './parser.js';

/*
 * The directive table, as nginx's ngx_command_t: a name, the contexts it may
 * stand in, its arity, and a handler that validates and stores the value.
 */

// Arity bits (nginx's NGX_CONF_NOARGS ... NGX_CONF_2MORE).
export const NOARGS = 0x1;
export const TAKE1 = 0x2;
export const TAKE2 = 0x4;
export const TAKE3 = 0x8;
export const TAKE4 = 0x10;
export const TAKE5 = 0x20;
export const TAKE6 = 0x40;
export const TAKE7 = 0x80;
export const BLOCK = 0x100;
export const FLAG = 0x200;
export const ANY = 0x400;
export const MORE1 = 0x800;
export const MORE2 = 0x1000;

export const TAKE12 = TAKE1 | TAKE2;
export const TAKE23 = TAKE2 | TAKE3;
export const TAKE1234 = TAKE1 | TAKE2 | TAKE3 | TAKE4;

/** argument_number[] of ngx_conf_file.c: bit for (nargs - 1) */
export const ARGUMENT_NUMBER = [NOARGS, TAKE1, TAKE2, TAKE3, TAKE4, TAKE5, TAKE6, TAKE7];
export const CONF_MAX_ARGS = 8;

// Context bits (where a directive may stand).
export const MAIN_CONF = 0x1;
export const EVENT_CONF = 0x2;
export const HTTP_MAIN_CONF = 0x4;
export const HTTP_SRV_CONF = 0x8;
export const HTTP_LOC_CONF = 0x10;
export const HTTP_UPS_CONF = 0x20;
export const HTTP_SIF_CONF = 0x40;
export const HTTP_LIF_CONF = 0x80;
export const HTTP_LMT_CONF = 0x100;
/** `include` and friends: anywhere */
export const ANY_CONF = 0xffff;

export const HTTP_ALL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;

/**
 * A handler returns nothing on success, or a string that nginx appends to
 * `"NAME" directive ` (for example `is duplicate`). For any other wording it
 * throws through cf.error().
 */
export type CommandHandler = (cf: Conf, cmd: Command) => string | undefined | void;

export interface Command {
  name: string;
  /** context bits */
  ctx: number;
  /** arity bits */
  args: number;
  set: CommandHandler;
}

/**
 * A module (nginx's ngx_module_t): a name, its directive table, and the
 * core-level hooks. The http layer extends it with the per-level confs and
 * the request-time hooks (lib/http/module.ts: HttpModule); the module list
 * itself is lib/modules/index.ts, handed to the loader (load.ts).
 */
export interface Module<M = unknown> {
  name: string;
  commands: Command[];
  /** index into per-level conf arrays; set by the registry */
  index: number;
  /** core modules keep one conf in the cycle (main context) */
  createCoreConf?(cf: Conf): M;
  initCoreConf?(cf: Conf, conf: M): void;
  /** once in each process that serves (nginx's init_process): open files, install timers */
  initProcess?(cycle: Cycle): void;
  /** as a serving process exits, fast or graceful (nginx's exit_process): flush buffers */
  exitProcess?(): void;
}

/** Declare a core module; the registry fills in its index. */
export function defineModule<M = unknown>(m: Omit<Module<M>, 'index'>): Module<M> {
  return { ...m, index: -1 };
}
