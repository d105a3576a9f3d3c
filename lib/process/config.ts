import type { ConfSnapshot, Cycle } from '../conf/parser.js';
import { loadCycle } from '../conf/load.js';
import { modules } from '../modules/index.js';

/*
 * Loading a config with redis2d's own module list: the conf layer's loader
 * knows no module (it is given the list); this is where the two meet.
 */

export interface LoadOptions {
  /** absolute path of the main config file */
  confFile: string;
  /** absolute prefix, with no trailing slash */
  prefix: string;
  /** `-g` directives */
  globals?: string;
  /** parse these bytes (the master's validated load), not the files on disk */
  snapshot?: ConfSnapshot;
}

/** parse and check a config file (throws ConfError; warnings in cycle.warnings) */
export function loadConfig(opts: LoadOptions): Cycle {
  return loadCycle({ ...opts, modules });
}
