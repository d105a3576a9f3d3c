import type { PassTarget } from '../../upstream/pass_target.js';

/* The memc module's (openresty/memc-nginx-module 0.19, `memc_pass`) conf shapes and its command table. */

/** ngx_pagesize on the platforms we run on: memc_buffer_size's default */
export const PAGE_SIZE = 4096;

/** The commands the module knows (ngx_http_memc_cmd_t; cas, gets, verbosity and quit are commented out there). */
export const enum MemcCmd {
  Set,
  Add,
  Replace,
  Append,
  Prepend,
  Get,
  Delete,
  Incr,
  Decr,
  Stats,
  FlushAll,
  Version,
}

/* ngx_http_memc_parse_cmd: exact, case-sensitive names */
const COMMANDS: ReadonlyMap<string, MemcCmd> = new Map([
  ['set', MemcCmd.Set],
  ['add', MemcCmd.Add],
  ['replace', MemcCmd.Replace],
  ['append', MemcCmd.Append],
  ['prepend', MemcCmd.Prepend],
  ['get', MemcCmd.Get],
  ['delete', MemcCmd.Delete],
  ['incr', MemcCmd.Incr],
  ['decr', MemcCmd.Decr],
  ['stats', MemcCmd.Stats],
  ['flush_all', MemcCmd.FlushAll],
  ['version', MemcCmd.Version],
]);

/** the command a name stands for; undefined for anything else (`GET`, `cas`, `verbosity`...) */
export function parseCmd(name: string): MemcCmd | undefined {
  return COMMANDS.get(name);
}

/** set, add, replace, append, prepend: a value goes out and the reply is STORED / NOT_STORED / ... */
export function isStorage(cmd: MemcCmd): boolean {
  return cmd <= MemcCmd.Prepend;
}

/** `memc_pass host:port | NAME | $var` (lib/upstream/pass_target.ts) */
export type MemcTarget = PassTarget;

export interface MemcMainConf {
  /** a memc_pass was seen: the module's variables are defined at postconfiguration */
  used: boolean;
  /** indexes of $memc_key, $memc_cmd, $memc_flags, $memc_exptime, $memc_value (-1 while unused) */
  keyIndex: number;
  cmdIndex: number;
  flagsIndex: number;
  exptimeIndex: number;
  valueIndex: number;
}

export interface MemcLocConf {
  target: MemcTarget | undefined;
  /** memc_cmds_allowed; undefined: every command */
  cmdsAllowed: MemcCmd[] | undefined;
  flagsToLastModified: number;
  /** ms */
  connectTimeout: number;
  sendTimeout: number;
  readTimeout: number;
  /** bytes: the whole reply of a non-get command, the VALUE line of a get */
  bufferSize: number;
  /** NEXT_UPSTREAM_* mask after merge */
  nextUpstream: number;
  ignoreClientAbort: number;
}
