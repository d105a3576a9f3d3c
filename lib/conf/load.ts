import { MAIN_CONF, type Module } from './command.js';
import { ConfError } from './errors.js';
import { Conf, Cycle, type ConfSnapshot } from './parser.js';

export interface LoadOptions {
  /** absolute path of the main config file */
  confFile: string;
  /** absolute prefix, with no trailing slash */
  prefix: string;
  /** `-g` directives */
  globals?: string;
  /** the module list, in nginx's order (lib/modules/index.ts) */
  modules: Module[];
  /** replay this load's files instead of reading the disk */
  snapshot?: ConfSnapshot;
}

/**
 * ngx_init_cycle's configuration half: create the core confs, parse `-g`
 * then the file, then let each core module check what it got. Throws
 * ConfError; warnings collect in cycle.warnings.
 */
export function loadCycle(opts: LoadOptions): Cycle {
  const modules = opts.modules;
  const cycle = new Cycle({ prefix: opts.prefix, confFile: opts.confFile, modules, snapshot: opts.snapshot });
  const cf = new Conf(cycle, MAIN_CONF, undefined);
  for (const m of modules) {
    if (m.createCoreConf) cycle.coreConfs[m.index] = m.createCoreConf(cf);
  }
  try {
    if (opts.globals) cf.parseParam(opts.globals);
    cf.parseFile(opts.confFile);
  } catch (e) {
    if (e instanceof ConfError) e.warnings = cycle.warnings;
    throw e;
  }
  try {
    for (const m of modules) {
      if (m.initCoreConf) m.initCoreConf(cf, cycle.coreConfs[m.index]);
    }
  } catch (e) {
    if (e instanceof ConfError) {
      e.afterParse = true;
      e.warnings = cycle.warnings;
    }
    throw e;
  }
  return cycle;
}
