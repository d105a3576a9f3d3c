import type { Conf } from '../conf/parser.js';
import { mergeValue } from '../conf/slots.js';
import { UNSET, atoi, parseFlag } from '../conf/values.js';

/*
 * **extension** `redis2d_pipeline on | off [N]` (http, server, location;
 * default on, N = 1): whether the Redis modules' requests may share
 * connections (pipelined_conn.ts). It lives with the upstream module so
 * redis2_pass and redis_pass locations read the same setting. Tests run
 * the conformance suites both ways by starting redis2d with
 * REDIS2D_PIPELINE_DEFAULT=off (read once).
 */

const PIPELINE_DEFAULT = process.env.REDIS2D_PIPELINE_DEFAULT === 'off' ? 0 : 1;
/** shared connections per peer when redis2d_pipeline names no N */
export const PIPELINE_CONNS_DEFAULT = 1;

/** The upstream module's location conf. */
export interface UpstreamLocConf {
  /** redis2d_pipeline: 1 on, 0 off */
  pipeline: number;
  /** redis2d_pipeline's optional N: shared connections per peer */
  pipelineConns: number;
  /**
   * Run state, not config: requests of this location still to run on
   * exclusive connections because one of its shared replies was a large
   * value (the Redis handlers)
   */
  pipelineSkip: number;
}

export function createUpstreamLocConf(): UpstreamLocConf {
  return { pipeline: UNSET, pipelineConns: UNSET, pipelineSkip: 0 };
}

export function mergeUpstreamLocConf(prev: UpstreamLocConf, c: UpstreamLocConf): void {
  if (c.pipeline === UNSET) {
    c.pipeline = mergeValue(c.pipeline, prev.pipeline, PIPELINE_DEFAULT);
    c.pipelineConns = mergeValue(c.pipelineConns, prev.pipelineConns, PIPELINE_CONNS_DEFAULT);
  } else c.pipelineConns = mergeValue(c.pipelineConns, UNSET, PIPELINE_CONNS_DEFAULT);
}

/** `redis2d_pipeline on|off [N]` (our own directive, not a module's) */
export function pipelineDirective(c: UpstreamLocConf, cf: Conf, cmd: { name: string }): string | undefined {
  if (c.pipeline !== UNSET) return 'is duplicate';
  const v = parseFlag(cf.args[1]!);
  if (v === undefined) throw cf.error(`invalid value "${cf.args[1]}" in "${cmd.name}" directive, it must be "on" or "off"`);
  c.pipeline = v ? 1 : 0;
  if (cf.args.length > 2) {
    const n = atoi(cf.args[2]!);
    if (n <= 0) throw cf.error(`invalid number of connections "${cf.args[2]}" in "${cmd.name}" directive`);
    c.pipelineConns = n;
  }
  return undefined;
}
