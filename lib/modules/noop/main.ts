import { EVENT_CONF, FLAG, MAIN_CONF, MORE1, TAKE1, TAKE23, defineModule, type Command, type CommandHandler } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { atoi, parseFlag, parseMsec, parseSize } from '../../conf/values.js';
import { existsSync } from 'node:fs';
import { ConfError } from '../../conf/errors.js';
import { ptocidr } from '../access/cidr.js';
import { noteNoEffect } from './module.js';

/*
 * Main- and events-level directives of nginx that only tune its processes
 * (priorities, CPU affinity, core dumps, PCRE JIT, the accept mutex, thread
 * pools, AIO): Node schedules its own threads and has nothing to set for
 * them (docs/behaviour.md §3). Each keeps nginx's context, arity, value
 * checks and messages; the names used log the "no effect" warning.
 */

interface NoopCoreConf {
  /** names set once (nginx's slots refuse a second value) */
  seen: Set<string>;
  /** thread_pool names */
  pools: Set<string>;
  priority: number;
  /** worker_cpu_affinity: number of masks, whether `auto` */
  affinityN: number;
  affinityAuto: boolean;
}

const conf = (cf: Conf): NoopCoreConf => cf.cycle.coreConfs[noopCoreModule.index] as NoopCoreConf;

/** a once-only value: `is duplicate` on the second, as ngx_conf_set_*_slot */
function once(check: (v: string) => boolean, bad: string): CommandHandler {
  return (cf, cmd) => {
    const c = conf(cf);
    if (c.seen.has(cmd.name)) return 'is duplicate';
    if (!check(cf.args[1]!)) return bad;
    c.seen.add(cmd.name);
    noteNoEffect(cf.cycle, cmd.name);
    return undefined;
  };
}

/** ngx_conf_set_flag_slot's own message for a bad value */
const flag: CommandHandler = (cf, cmd) => {
  const c = conf(cf);
  if (c.seen.has(cmd.name)) return 'is duplicate';
  const v = cf.args[1]!;
  if (parseFlag(v) === undefined) throw cf.error(`invalid value "${v}" in "${cmd.name}" directive, it must be "on" or "off"`);
  c.seen.add(cmd.name);
  noteNoEffect(cf.cycle, cmd.name);
  return undefined;
};

/** ngx_set_priority: [-+]N; 0 may be given again (nginx's duplicate test is `priority != 0`) */
const setPriority: CommandHandler = (cf) => {
  const c = conf(cf);
  if (c.priority !== 0) return 'is duplicate';
  const v = cf.args[1]!;
  const sign = v[0] === '-' || v[0] === '+' ? 1 : 0;
  const n = atoi(v.slice(sign));
  if (n === -1) return 'invalid number';
  c.priority = v[0] === '-' ? -n : n;
  noteNoEffect(cf.cycle, 'worker_priority');
  return undefined;
};

/** CPU_SETSIZE of glibc */
const CPU_SETSIZE = 1024;

/** ngx_set_cpu_affinity: `auto [mask]` or one 0/1 mask per worker (spaces inside a mask skipped) */
const setCpuAffinity: CommandHandler = (cf) => {
  const c = conf(cf);
  if (c.affinityN !== 0) return 'is duplicate';
  const args = cf.args;
  c.affinityN = args.length - 1;
  let n = 1;
  if (args[1] === 'auto') {
    if (args.length > 3) throw cf.error('invalid number of arguments in "worker_cpu_affinity" directive');
    c.affinityAuto = true;
    n = 2;
  }
  for (; n < args.length; n++) {
    const mask = args[n]!;
    if (mask.length > CPU_SETSIZE) throw cf.error(`"worker_cpu_affinity" supports up to ${CPU_SETSIZE} CPUs only`);
    for (let i = mask.length - 1; i >= 0; i--) {
      const ch = mask[i]!;
      if (ch !== ' ' && ch !== '0' && ch !== '1') throw cf.error(`invalid character "${ch}" in "worker_cpu_affinity"`);
    }
  }
  noteNoEffect(cf.cycle, 'worker_cpu_affinity');
  return undefined;
};

/** ngx_thread_pool: NAME threads=N [max_queue=N]; other words are skipped, as nginx does */
const setThreadPool: CommandHandler = (cf) => {
  const c = conf(cf);
  const name = cf.args[1]!;
  if (c.pools.has(name)) throw cf.error(`duplicate thread pool "${name}"`);
  let threads = 0;
  for (let i = 2; i < cf.args.length; i++) {
    const v = cf.args[i]!;
    if (v.startsWith('threads=')) {
      threads = atoi(v.slice(8));
      if (threads === -1 || threads === 0) throw cf.error(`invalid threads value "${v}"`);
    } else if (v.startsWith('max_queue=')) {
      if (atoi(v.slice(10)) === -1) throw cf.error(`invalid max_queue value "${v}"`);
    }
  }
  if (threads === 0) throw cf.error('"thread_pool" must have "threads" parameter');
  c.pools.add(name);
  noteNoEffect(cf.cycle, 'thread_pool');
  return undefined;
};

/** ngx_event_debug_connection (Debian's nginx is built --with-debug): unix:, a CIDR, or a host */
const setDebugConnection: CommandHandler = (cf) => {
  const v = cf.args[1]!;
  noteNoEffect(cf.cycle, 'debug_connection');
  if (v === 'unix:') return undefined;
  const res = ptocidr(v);
  if (res !== undefined) {
    if (res.rc === 'done') cf.warn(`low address bits of ${v} are meaningless`);
    return undefined;
  }
  // names are resolved at load by nginx; only the one /etc/hosts always has is known without a resolver here
  if (v === 'localhost') return undefined;
  throw cf.error(`host not found in debug_connection "${v}"`);
};

/** OpenSSL's ENGINESDIR on Debian (`openssl version -e`) */
const ENGINES_DIR = `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/engines-3`;

/**
 * ngx_openssl_engine: ENGINE_by_id must find the engine (built in:
 * `dynamic`; else a shared object in ENGINESDIR), with nginx's error queue
 * when it cannot. An engine only offloads the crypto: no effect here.
 * (An engine whose object loads but fails its init, as afalg without the
 * kernel's AF_ALG, fails under nginx and passes here.)
 */
const setSslEngine: CommandHandler = (cf) => {
  const c = conf(cf);
  if (c.seen.has('ssl_engine')) return 'is duplicate';
  c.seen.add('ssl_engine');
  const id = cf.args[1]!;
  if (id !== 'dynamic' && !(id.length > 0 && !id.includes('/') && existsSync(`${ENGINES_DIR}/${id}.so`))) {
    const so = `${ENGINES_DIR}/${id}.so`;
    throw new ConfError(
      `ENGINE_by_id("${id}") failed (SSL: error:12800067:DSO support routines::could not load the shared library:filename(${so}): ${so}: cannot open shared object file: No such file or directory error:12800067:DSO support routines::could not load the shared library error:13000084:engine routines::dso not found error:13000074:engine routines::no such engine:id=${id})`,
    );
  }
  noteNoEffect(cf.cycle, 'ssl_engine');
  return undefined;
};

const commands: Command[] = [
  { name: 'ssl_engine', ctx: MAIN_CONF, args: TAKE1, set: setSslEngine },
  { name: 'worker_priority', ctx: MAIN_CONF, args: TAKE1, set: setPriority },
  { name: 'worker_cpu_affinity', ctx: MAIN_CONF, args: MORE1, set: setCpuAffinity },
  { name: 'worker_rlimit_core', ctx: MAIN_CONF, args: TAKE1, set: once((v) => parseSize(v) !== -1, 'invalid value') },
  { name: 'lock_file', ctx: MAIN_CONF, args: TAKE1, set: once(() => true, '') },
  { name: 'pcre_jit', ctx: MAIN_CONF, args: FLAG, set: flag },
  { name: 'thread_pool', ctx: MAIN_CONF, args: TAKE23, set: setThreadPool },
  { name: 'accept_mutex_delay', ctx: EVENT_CONF, args: TAKE1, set: once((v) => parseMsec(v) !== -1, 'invalid value') },
  { name: 'worker_aio_requests', ctx: EVENT_CONF, args: TAKE1, set: once((v) => atoi(v) !== -1, 'invalid number') },
  { name: 'debug_connection', ctx: EVENT_CONF, args: TAKE1, set: setDebugConnection },
];

export const noopCoreModule = defineModule<NoopCoreConf>({
  name: 'noop_core',
  createCoreConf: () => ({ seen: new Set(), pools: new Set(), priority: 0, affinityN: 0, affinityAuto: false }),
  commands,
  initCoreConf(cf, c) {
    // ngx_core_module_init_conf's check: one mask per worker, or one for all
    if (c.affinityAuto || c.affinityN <= 1) return;
    const workers = workerCount(cf);
    if (c.affinityN !== workers) {
      cf.cycle.warnings.push({
        level: 'warn',
        text: 'the number of "worker_processes" is not equal to the number of "worker_cpu_affinity" masks, using last mask for remaining worker processes',
      });
    }
  },
});

/** worker_processes as ngx_core_module_init_conf has it: 1 unset, the CPU count for auto */
function workerCount(cf: Conf): number {
  for (const m of cf.cycle.modules) {
    if (m.name !== 'core') continue;
    const wp = (cf.cycle.coreConfs[m.index] as { workerProcesses: number }).workerProcesses;
    if (wp === -1) return 1;
    if (wp === 0) return navigator.hardwareConcurrency;
    return wp;
  }
  return 1;
}
