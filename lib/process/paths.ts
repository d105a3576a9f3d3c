import { isAbsolute, join } from 'node:path';

/** ngx_get_full_name before a configuration exists: relative names are under the prefix */
export function prefixed(prefix: string, name: string): string {
  return isAbsolute(name) ? name : join(prefix, name);
}
