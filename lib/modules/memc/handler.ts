import { resolvePassTarget, type PassTargetMessages } from '../../upstream/pass_target.js';
import { getVariable } from '../../http/eval.js';
import type { Request } from '../../http/request.js';
import type { VarGetter } from '../../http/variables.js';
import { poolOf, type ConnectionPool } from '../../upstream/keepalive.js';
import type { UpstreamSrvConf } from '../../upstream/module.js';
import type { PeerTarget } from '../../upstream/peers.js';
import { UpstreamRun, type UpstreamTryHandle } from '../../upstream/run.js';
import { UINT32_LEN, UINT64_LEN, buildRequest, escapeKey, validDigits } from './command.js';
import { MemcCmd, isStorage, parseCmd, type MemcLocConf, type MemcMainConf } from './conf.js';
import { MemcTry } from './try.js';

/*
 * The memc_pass content handler (ngx_http_memc_handler and its
 * create_request functions, 0.19), checks in the module's order:
 *   - $memc_cmd, or from the method when unset or empty (GET/HEAD get,
 *     POST add, PUT set, DELETE delete; the variable then reads so), else
 *     400 `ngx_memc: $memc_cmd variable not found for HTTP M requests`;
 *     an unknown name 400 `ngx_memc: unknown $memc_cmd "X"`;
 *   - memc_cmds_allowed: 403 `ngx_memc: memcached command "X" not allowed`;
 *   - a variable memc_pass target names an upstream block (500 if none);
 *   - $memc_exptime (storage, delete, flush_all) and $memc_flags (storage)
 *     digits only, at most 10: else 400 `variable "$memc_exptime" takes
 *     invalid value: V`;
 *   - incr / decr need $memc_value, digits only, at most 19: else 400;
 *   - then the request (the body is read by then): no $memc_key is 500
 *     `the "$memc_key" variable is not set`; a storage command without
 *     $memc_value takes the request body, and with neither it is 500;
 *     unset $memc_flags and $memc_exptime are sent (and then read) as 0.
 * A variable is "unset" when nothing `set` it: `set $memc_value ""`
 * stores an empty value.
 */

/** the module's variables' getter: not found until `set` (ngx_http_memc_variable_not_found) */
export const notFound: VarGetter = () => undefined;

/** What a request's run of the module keeps for $memc_flags_as_http_time. */
interface MemcCtx {
  /** $memc_flags' index when the command reads or writes flags (storage, get); -1 else */
  flagsIndex: number;
}

const ctxs = new WeakMap<Request, MemcCtx>();

/** the value of a module variable, undefined when unset */
function lookup(r: Request, index: number): string | undefined {
  const cached = r.vars[index];
  if (cached !== undefined) return cached;
  const def = r.variables.indexed[index]!.def;
  if (def === undefined || def.get === notFound) return undefined;
  return getVariable(r, index);
}

/** $memc_flags_as_http_time: the flags as epoch seconds in HTTP time (not found without flags) */
export const flagsAsHttpTime: VarGetter = (r) => {
  const ctx = ctxs.get(r);
  if (ctx === undefined || ctx.flagsIndex < 0) return undefined;
  const flags = lookup(r, ctx.flagsIndex);
  if (flags === undefined || flags.length === 0) return undefined;
  const t = atotm(flags);
  // ngx_atotm failing makes the variable fail: nothing is written for it
  return t < 0 ? undefined : new Date(t * 1000).toUTCString();
};

/** ngx_atotm: digits only, at least one, else -1 */
export function atotm(s: string): number {
  if (s.length === 0) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n > Number.MAX_SAFE_INTEGER ? -1 : n;
}

const TARGET_MESSAGES: PassTargetMessages = { empty: 'memc: handler: empty "memc_pass" target', notFound: 'memc:' };

/* the command for an unset $memc_cmd */
function fromMethod(method: string): string | undefined {
  switch (method) {
    case 'GET':
    case 'HEAD':
      return 'get';
    case 'POST':
      return 'add';
    case 'PUT':
      return 'set';
    case 'DELETE':
      return 'delete';
    default:
      return undefined;
  }
}

/** the content handler of a memc_pass location */
export function memcContentHandler(r: Request, mlcf: MemcLocConf, mmcf: MemcMainConf): number {
  let name = lookup(r, mmcf.cmdIndex);
  let cmd: MemcCmd | undefined;
  if (name === undefined || name.length === 0) {
    name = fromMethod(r.method);
    if (name === undefined) {
      r.log('error', `ngx_memc: $memc_cmd variable not found for HTTP ${r.method} requests`);
      return 400;
    }
    r.vars[mmcf.cmdIndex] = name;
    cmd = parseCmd(name)!;
  } else {
    cmd = parseCmd(name);
    if (cmd === undefined) {
      r.log('error', `ngx_memc: unknown $memc_cmd "${name}"`);
      return 400;
    }
  }
  if (mlcf.cmdsAllowed !== undefined && !mlcf.cmdsAllowed.includes(cmd)) {
    r.log('error', `ngx_memc: memcached command "${name}" not allowed`);
    return 403;
  }
  const us = resolvePassTarget(r, mlcf.target, TARGET_MESSAGES);
  if (typeof us === 'number') return us;

  const storage = isStorage(cmd);
  let exptime: string | undefined;
  if (storage || cmd === MemcCmd.FlushAll || cmd === MemcCmd.Delete) {
    exptime = lookup(r, mmcf.exptimeIndex);
    if (exptime !== undefined && !validDigits(exptime, UINT32_LEN)) {
      r.log('error', `variable "$memc_exptime" takes invalid value: ${exptime}`);
      return 400;
    }
  }
  let flags: string | undefined;
  if (storage || cmd === MemcCmd.Get) {
    ctxs.set(r, { flagsIndex: mmcf.flagsIndex });
    flags = lookup(r, mmcf.flagsIndex);
    if (storage && flags !== undefined && !validDigits(flags, UINT32_LEN)) {
      r.log('error', `variable "$memc_flags" takes invalid value: ${flags}`);
      return 400;
    }
  }
  let value: string | undefined;
  if (storage || cmd === MemcCmd.Incr || cmd === MemcCmd.Decr) {
    value = lookup(r, mmcf.valueIndex);
    if (!storage) {
      if (value === undefined || value.length === 0) {
        r.log('error', `the "$memc_value" variable is required for command "${name}"`);
        return 400;
      }
      if (!validDigits(value, UINT64_LEN)) {
        r.log('error', `variable "$memc_value" is invalid for incr/decr: ${value}`);
        return 400;
      }
    }
  }

  // create_request
  let key = '';
  if (cmd !== MemcCmd.Stats && cmd !== MemcCmd.Version && cmd !== MemcCmd.FlushAll) {
    const k = lookup(r, mmcf.keyIndex);
    if (k === undefined || k.length === 0) {
      r.log('error', 'the "$memc_key" variable is not set');
      return 500;
    }
    key = escapeKey(k);
  }
  let payload: string | Buffer[] = value ?? '';
  if (storage) {
    if (value === undefined) {
      const body = r.body;
      // nginx has body buffers (maybe one empty one) whenever the request announced a body, none otherwise
      const announced = body !== undefined && (body.length > 0 || r.req.byName.has('content-length') || r.req.byName.has('transfer-encoding'));
      if (!announced) {
        r.log('error', 'neither the "$memc_value" variable nor the request body is available');
        return 500;
      }
      payload = body!;
    }
    // unset or empty: 0 goes out, and the variables read 0 from now on
    if (flags === undefined || flags.length === 0) r.vars[mmcf.flagsIndex] = flags = '0';
    if (exptime === undefined || exptime.length === 0) r.vars[mmcf.exptimeIndex] = exptime = '0';
  }
  const query = buildRequest({ cmd, name, key, flags: flags ?? '', exptime: exptime ?? '', value: payload });
  return new MemcRun(r, mlcf, mmcf, us, cmd, name, key, query).run();
}

/** One request's run through the upstream loop with memc's try. */
export class MemcRun extends UpstreamRun {
  readonly mlcf: MemcLocConf;
  readonly mmcf: MemcMainConf;
  readonly cmd: MemcCmd;
  /** $memc_cmd's value: the log lines name it */
  readonly name: string;
  /** the escaped key */
  readonly key: string;
  readonly query: Buffer;
  readonly pool: ConnectionPool;

  constructor(r: Request, mlcf: MemcLocConf, mmcf: MemcMainConf, us: UpstreamSrvConf, cmd: MemcCmd, name: string, key: string, query: Buffer) {
    super(r, us, 'memcached', mlcf.nextUpstream);
    this.mlcf = mlcf;
    this.mmcf = mmcf;
    this.cmd = cmd;
    this.name = name;
    this.key = key;
    this.query = query;
    this.pool = poolOf(us);
    this.ignoreClientAbort = mlcf.ignoreClientAbort === 1;
  }

  protected startTry(peer: PeerTarget): UpstreamTryHandle {
    return new MemcTry(this, peer);
  }

  started(status: number): void {
    this.replyStarted(status);
  }
}
