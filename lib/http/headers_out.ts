import { headersModule, type HeadersLocConf } from '../modules/headers.js';
import type { CoreLocConf } from '../modules/http_core.js';
import { evalComplexValue } from './eval.js';
import type { Request } from './request.js';
import { addHeaderApplies } from './status.js';

const NONE: Array<[string, string]> = [];

/** the add_header lines of `clcf` that apply to `status` (empty values are skipped, as nginx) */
export function addHeadersFor(r: Request, clcf: CoreLocConf, status: number): Array<[string, string]> {
  const conf = clcf.locConf[headersModule.index] as HeadersLocConf | undefined;
  const list = conf?.headers;
  if (!list) return NONE;
  const applies = addHeaderApplies(status);
  const out: Array<[string, string]> = [];
  for (const h of list) {
    if (!applies && !h.always) continue;
    if (h.value === undefined) continue;
    const v = evalComplexValue(r, h.value);
    if (v.length) out.push([h.name, v]);
  }
  return out;
}
