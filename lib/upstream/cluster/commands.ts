import { RespError, type RespValue } from './resp_value.js';
import { keySlot } from './slot.js';

/*
 * Where a request's keys are, for routing it over a Redis Cluster: the
 * query bytes (RESP arrays as redis2_query sends them, or inline commands
 * as raw queries often are) split into commands, and each command's keys
 * found with the key positions Redis itself reports in COMMAND (first key,
 * last key, step; `name|sub` for container commands such as OBJECT or
 * XINFO). Commands whose keys move (EVAL's numkeys, XREAD's STREAMS...)
 * are read by their documented syntax. Until the table is loaded, the
 * first argument is taken as the key: a wrong guess costs one -MOVED.
 */

export interface CmdInfo {
  first: number;
  /** negative: counted from the end (-1: the last argument) */
  last: number;
  step: number;
  readonly: boolean;
  /** container commands: the subcommand's own entry, by `name|sub` */
  subs: Map<string, CmdInfo> | undefined;
}

export type CommandTable = Map<string, CmdInfo>;

/** no slot: the request names no key (any primary may answer it) */
export const NO_SLOT = -1;
/** the keys span slots */
export const CROSS_SLOT = -2;

export interface Route {
  /** a slot, NO_SLOT or CROSS_SLOT */
  slot: number;
  /** every command is read-only (may go to a replica) */
  readonly: boolean;
}

function entryOf(v: RespValue): [string, CmdInfo] | undefined {
  if (!Array.isArray(v) || typeof v[0] !== 'string') return undefined;
  const flags = Array.isArray(v[2]) ? (v[2] as RespValue[]) : [];
  const info: CmdInfo = {
    first: typeof v[3] === 'number' ? v[3] : 0,
    last: typeof v[4] === 'number' ? v[4] : 0,
    step: typeof v[5] === 'number' ? v[5] : 0,
    readonly: flags.includes('readonly'),
    subs: undefined,
  };
  // Redis 7: the 10th element lists subcommands in the same shape
  const subs = v[9];
  if (Array.isArray(subs) && subs.length > 0) {
    info.subs = new Map();
    for (const s of subs) {
      const e = entryOf(s);
      if (e) info.subs.set(e[0].toLowerCase(), e[1]);
    }
  }
  return [v[0].toLowerCase(), info];
}

/** the reply of COMMAND as a table, or undefined if it is not one */
export function commandTable(v: RespValue): CommandTable | undefined {
  if (!Array.isArray(v) || v instanceof RespError) return undefined;
  const t: CommandTable = new Map();
  for (const c of v) {
    const e = entryOf(c);
    if (e) t.set(e[0], e[1]);
  }
  return t.size > 0 ? t : undefined;
}

/** the arguments of each command in `q` (subarrays, no copies); undefined if the bytes are not commands */
export function splitCommands(q: Buffer, ends?: number[]): Buffer[][] | undefined {
  const out: Buffer[][] = [];
  let pos = 0;
  while (pos < q.length) {
    if (q[pos] === 0x2a) {
      const eol = q.indexOf(0x0d, pos);
      if (eol < 0 || q[eol + 1] !== 0x0a) return undefined;
      const n = Number(q.toString('latin1', pos + 1, eol));
      if (!Number.isInteger(n)) return undefined;
      let p = eol + 2;
      const args: Buffer[] = [];
      for (let k = 0; k < n; k++) {
        if (q[p] !== 0x24) return undefined;
        const e = q.indexOf(0x0d, p);
        if (e < 0) return undefined;
        const len = Number(q.toString('latin1', p + 1, e));
        if (!Number.isInteger(len) || len < 0 || e + 2 + len + 2 > q.length) return undefined;
        args.push(q.subarray(e + 2, e + 2 + len));
        p = e + 2 + len + 2;
      }
      if (n > 0) out.push(args);
      pos = p;
      ends?.push(pos);
      continue;
    }
    // an inline command: words up to the line end, quotes kept together
    let eol = q.indexOf(0x0a, pos);
    if (eol < 0) eol = q.length;
    const args: Buffer[] = [];
    let i = pos;
    while (i < eol) {
      const c = q[i]!;
      if (c === 0x20 || c === 0x09 || c === 0x0d) {
        i++;
        continue;
      }
      if (c === 0x22 || c === 0x27) {
        const close = q.indexOf(c, i + 1);
        const end = close < 0 || close > eol ? eol : close;
        args.push(q.subarray(i + 1, end));
        i = end + 1;
        continue;
      }
      let e = i;
      while (e < eol && q[e] !== 0x20 && q[e] !== 0x09 && q[e] !== 0x0d) e++;
      args.push(q.subarray(i, e));
      i = e;
    }
    if (args.length > 0) out.push(args);
    pos = eol + 1;
    if (args.length > 0) ends?.push(Math.min(pos, q.length));
  }
  return out;
}

/** `q` with `before` written before each of its commands; undefined if the bytes are not commands */
export function interleave(q: Buffer, before: Buffer): Buffer | undefined {
  const ends: number[] = [];
  if (splitCommands(q, ends) === undefined) return undefined;
  const parts: Buffer[] = [];
  let from = 0;
  for (const e of ends) {
    parts.push(before, q.subarray(from, e));
    from = e;
  }
  return Buffer.concat(parts);
}

function intArg(b: Buffer | undefined): number {
  if (b === undefined || b.length === 0 || b.length > 10) return -1;
  const n = Number(b.toString('latin1'));
  return Number.isInteger(n) && n >= 0 ? n : -1;
}

/* commands whose key count is an argument: where that count is */
const NUMKEYS_AT = new Map<string, number>([
  ['eval', 2],
  ['evalsha', 2],
  ['eval_ro', 2],
  ['evalsha_ro', 2],
  ['fcall', 2],
  ['fcall_ro', 2],
  ['zunion', 1],
  ['zinter', 1],
  ['zdiff', 1],
  ['sintercard', 1],
  ['zintercard', 1],
  ['lmpop', 1],
  ['zmpop', 1],
  ['blmpop', 2],
  ['bzmpop', 2],
]);
/* the same, with a destination key first */
const STORE_NUMKEYS = new Set(['zunionstore', 'zinterstore', 'zdiffstore']);

const CONNECTION_LEVEL = new Set(['select', 'auth', 'asking', 'readonly', 'readwrite', 'ping', 'echo']);

const GUESS: CmdInfo = { first: 1, last: 1, step: 1, readonly: false, subs: undefined };

class Acc {
  slot = NO_SLOT;
  add(k: Buffer): void {
    if (this.slot === CROSS_SLOT) return;
    const s = keySlot(k);
    if (this.slot === NO_SLOT) this.slot = s;
    else if (this.slot !== s) this.slot = CROSS_SLOT;
  }
}

function addKeys(args: Buffer[], name: string, info: CmdInfo, acc: Acc): void {
  const nk = NUMKEYS_AT.get(name);
  if (nk !== undefined) {
    const n = intArg(args[nk]);
    for (let i = 0; i < n && nk + 1 + i < args.length; i++) acc.add(args[nk + 1 + i]!);
    return;
  }
  if (STORE_NUMKEYS.has(name)) {
    if (args[1]) acc.add(args[1]);
    const n = intArg(args[2]);
    for (let i = 0; i < n && 3 + i < args.length; i++) acc.add(args[3 + i]!);
    return;
  }
  if (name === 'xread' || name === 'xreadgroup') {
    let s = -1;
    for (let i = 1; i < args.length; i++) {
      if (args[i]!.length === 7 && args[i]!.toString('latin1').toLowerCase() === 'streams') {
        s = i;
        break;
      }
    }
    if (s < 0) return;
    const n = (args.length - s - 1) >> 1;
    for (let i = 0; i < n; i++) acc.add(args[s + 1 + i]!);
    return;
  }
  if (info.first <= 0 || info.step <= 0) return;
  const last = info.last < 0 ? args.length + info.last : Math.min(info.last, args.length - 1);
  for (let i = info.first; i <= last; i += info.step) acc.add(args[i]!);
}

/** the slot and read-only-ness of the commands in `query` */
export function routeOf(query: Buffer, table: CommandTable | undefined): Route {
  const cmds = splitCommands(query);
  const acc = new Acc();
  let readonly = true;
  if (cmds === undefined) return { slot: NO_SLOT, readonly: false };
  for (const args of cmds) {
    const name = args[0]!.toString('latin1').toLowerCase();
    // connection-level commands (redis_pass always sends SELECT) have no keys and write nothing
    if (CONNECTION_LEVEL.has(name)) continue;
    let info = table === undefined ? (args.length > 1 ? GUESS : undefined) : table.get(name);
    if (info?.subs !== undefined && args.length > 1) info = info.subs.get(`${name}|${args[1]!.toString('latin1').toLowerCase()}`);
    if (info === undefined) {
      readonly = false;
      continue;
    }
    if (!info.readonly) readonly = false;
    addKeys(args, name, info, acc);
  }
  return { slot: acc.slot, readonly };
}
