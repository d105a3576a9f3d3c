import { BLOCK, ANY_CONF, FLAG, MAIN_CONF, MORE1, NOARGS, TAKE1, TAKE12, defineModule } from '../../conf/command.js';
import type { Conf } from '../../conf/parser.js';
import { flagSlot, msecSlot, strSlot } from '../../conf/slots.js';
import { UNSET, atoi } from '../../conf/values.js';
import type { ErrorLogSpec } from '../../core/error_log.js';
import { parseErrorLog } from '../../conf/error_log.js';
import { ConfError } from '../../conf/errors.js';
import { DEFAULT_GROUP, DEFAULT_USER, getgrnamGid, getpwnamUid } from './users.js';

export type { ErrorLogSpec };

/*
 * ngx_core_module and ngx_conf_module: the main context. Values land in
 * CoreConf; what they do (processes, pid file, logs) is the process layer's.
 */


export interface CoreConf {
  daemon: number;
  masterProcess: number;
  /** -1 unset; 0 = auto until initCoreConf resolves it */
  workerProcesses: number;
  pid: string | undefined;
  timerResolution: number;
  workingDirectory: string | undefined;
  /** `user NAME [GROUP]` as root (or nobody/nogroup by default as root): whom the workers run as */
  user: string | undefined;
  /** its uid and gid; -1 when the workers keep the master's (not root, or `user` ignored) */
  userId: number;
  groupId: number;
  workerRlimitNofile: number;
  env: string[];
  errorLogs: ErrorLogSpec[];
  loadModules: string[];
  /** worker_shutdown_timeout (ms; -1 unset): a graceful shutdown closes what is left after it */
  shutdownTimeout: number;
}

/** Modules redis2d has built in; `load_module` of one of them is accepted and does nothing. */
const BUILTIN_MODULES = [
  'ngx_http_redis2_module',
  'ngx_http_echo_module',
  'ngx_http_set_misc_module',
  'ngx_http_srcache_filter_module',
  'ndk_http_module',
  'ngx_http_headers_more_filter_module',
  'ngx_http_lua_module',
  'ngx_http_memc_module',
];

const core = (cf: Conf): CoreConf => cf.cycle.coreConfs[coreModule.index] as CoreConf;

const isRoot = (): boolean => process.geteuid?.() === 0;

export const coreModule = defineModule<CoreConf>({
  name: 'core',
  initCoreConf(_cf, c) {
    // ngx_core_module_init_conf: a root master's workers default to nobody:nogroup
    if (c.user !== undefined || !isRoot()) return;
    const uid = getpwnamUid(DEFAULT_USER);
    if (uid === undefined) throw new ConfError(`getpwnam("${DEFAULT_USER}") failed`);
    const gid = getgrnamGid(DEFAULT_GROUP);
    if (gid === undefined) throw new ConfError(`getgrnam("${DEFAULT_GROUP}") failed`);
    c.user = DEFAULT_USER;
    c.userId = uid;
    c.groupId = gid;
  },
  createCoreConf: () => ({
    daemon: UNSET,
    masterProcess: UNSET,
    workerProcesses: UNSET,
    pid: undefined,
    timerResolution: UNSET,
    workingDirectory: undefined,
    user: undefined,
    userId: -1,
    groupId: -1,
    workerRlimitNofile: UNSET,
    env: [],
    errorLogs: [],
    loadModules: [],
    shutdownTimeout: UNSET,
  }),
  commands: [
    { name: 'daemon', ctx: MAIN_CONF, args: FLAG, set: flagSlot(core, 'daemon') },
    { name: 'master_process', ctx: MAIN_CONF, args: FLAG, set: flagSlot(core, 'masterProcess') },
    { name: 'timer_resolution', ctx: MAIN_CONF, args: TAKE1, set: msecSlot(core, 'timerResolution') },
    { name: 'worker_shutdown_timeout', ctx: MAIN_CONF, args: TAKE1, set: msecSlot(core, 'shutdownTimeout') },
    { name: 'pid', ctx: MAIN_CONF, args: TAKE1, set: strSlot(core, 'pid') },
    { name: 'working_directory', ctx: MAIN_CONF, args: TAKE1, set: strSlot(core, 'workingDirectory') },
    {
      name: 'worker_processes',
      ctx: MAIN_CONF,
      args: TAKE1,
      set(cf) {
        const c = core(cf);
        if (c.workerProcesses !== UNSET) return 'is duplicate';
        const v = cf.args[1]!;
        if (v === 'auto') {
          c.workerProcesses = 0;
          return;
        }
        const n = atoi(v);
        if (n === -1) return 'invalid value';
        c.workerProcesses = n;
      },
    },
    {
      name: 'user',
      ctx: MAIN_CONF,
      args: TAKE12,
      set(cf) {
        // ngx_set_user: names resolved now, so `-t` judges them; ignored unless root
        const c = core(cf);
        if (c.user !== undefined) return 'is duplicate';
        if (!isRoot()) {
          cf.warn('the "user" directive makes sense only if the master process runs with super-user privileges, ignored');
          return;
        }
        const name = cf.args[1]!;
        c.user = name;
        const uid = getpwnamUid(name);
        if (uid === undefined) throw cf.error(`getpwnam("${name}") failed`);
        const group = cf.args[2] ?? name;
        const gid = getgrnamGid(group);
        if (gid === undefined) throw cf.error(`getgrnam("${group}") failed`);
        c.userId = uid;
        c.groupId = gid;
      },
    },
    {
      name: 'worker_rlimit_nofile',
      ctx: MAIN_CONF,
      args: TAKE1,
      set(cf) {
        const c = core(cf);
        if (c.workerRlimitNofile !== UNSET) return 'is duplicate';
        const n = atoi(cf.args[1]!);
        if (n === -1) return 'invalid number';
        c.workerRlimitNofile = n;
      },
    },
    {
      name: 'env',
      ctx: MAIN_CONF,
      args: TAKE1,
      set(cf) {
        core(cf).env.push(cf.args[1]!);
      },
    },
    {
      name: 'error_log',
      ctx: MAIN_CONF,
      args: MORE1,
      set(cf) {
        core(cf).errorLogs.push(parseErrorLog(cf));
      },
    },
    {
      name: 'load_module',
      ctx: MAIN_CONF,
      args: TAKE1,
      set(cf) {
        const path = cf.args[1]!;
        const base = path.slice(path.lastIndexOf('/') + 1).replace(/\.so$/, '');
        if (!BUILTIN_MODULES.includes(base)) {
          throw cf.error(`module "${base}" is not supported by redis2d (built in: redis2, echo, set_misc, srcache, ndk, headers_more, lua, memc) in load_module "${path}"`);
        }
        core(cf).loadModules.push(path);
      },
    },
    {
      name: 'include',
      ctx: ANY_CONF,
      args: TAKE1,
      set(cf) {
        cf.include(cf.args[1]!);
      },
    },
  ],
});

// kept for the module table: blocks that other modules open
export { BLOCK, NOARGS };
