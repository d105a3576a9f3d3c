import { evalComplexValue } from '../http/eval.js';
import type { Request } from '../http/request.js';
import type { ComplexValue } from '../http/script.js';
import { findUpstream, upstreamModule, type UpstreamMainConf, type UpstreamSrvConf } from './module.js';

/**
 * The target of a `*_pass` directive of the Redis and memcached modules
 * (redis2_pass, redis_pass, memc_pass): an upstream known when the
 * configuration loads, or a value naming an upstream block per request.
 */
export type PassTarget =
  /** `X_pass host:port`, `X_pass NAME`, `X_pass unix:...` */
  | { kind: 'upstream'; upstream: UpstreamSrvConf }
  /** `X_pass $var`: evaluated per request, then looked up by name */
  | { kind: 'complex'; value: ComplexValue };

/** the log lines of one module's target resolution, as that module writes them */
export interface PassTargetMessages {
  /** no target at all (undefined: no line) */
  none?: string;
  /** the value evaluated to the empty string */
  empty: string;
  /** before ` upstream "NAME" not found` (e.g. `redis2:`) */
  notFound: string;
}

/** the upstream a request goes to, or 500 with the module's log line */
export function resolvePassTarget(r: Request, t: PassTarget | undefined, msg: PassTargetMessages): UpstreamSrvConf | number {
  if (t === undefined) {
    if (msg.none !== undefined) r.log('error', msg.none);
    return 500;
  }
  if (t.kind === 'upstream') return t.upstream;
  const name = evalComplexValue(r, t.value);
  if (name.length === 0) {
    r.log('error', msg.empty);
    return 500;
  }
  const umcf = r.srv.ctx.main[upstreamModule.index] as UpstreamMainConf | undefined;
  const us = umcf ? findUpstream(umcf, name) : undefined;
  if (us === undefined) {
    r.log('error', `${msg.notFound} upstream "${name}" not found`);
    return 500;
  }
  return us;
}
