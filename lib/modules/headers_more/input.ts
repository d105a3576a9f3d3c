import { evalComplexValue } from '../../http/eval.js';
import type { HttpRequest } from '../../http/http_request.js';
import { validateHost } from '../../http/parse.js';
import { Slot, type HeaderArg, type InputCmd } from './conf.js';
import { keyMatches } from './output.js';

/*
 * more_set_input_headers / more_clear_input_headers at the end of the
 * rewrite phase (ngx_http_headers_more_handler, which moves itself behind
 * the rewrite module's handler): the request's header list changes, and
 * with it what $http_*, $cookie_*, $content_type, $host and the proxied
 * request see. A variable read before (by `set`) keeps the value it had.
 */

/** false: a value nginx refuses (an invalid Host, a bad Content-Length): the request ends as nginx's does */
export function applyInput(r: HttpRequest, cmds: readonly InputCmd[]): boolean {
  for (const cmd of cmds) {
    if (cmd.types !== undefined) {
      // -t: the request's Content-Type value, whole and byte for byte
      const ct = r.req.byName.get('content-type');
      if (ct === undefined || !cmd.types.includes(ct)) continue;
    }
    for (const h of cmd.headers) {
      const value = h.value === undefined ? '' : evalComplexValue(r, h.value);
      if (!setInput(r, h, value, cmd.replace)) return false;
    }
  }
  return true;
}

function setInput(r: HttpRequest, h: HeaderArg, value: string, replace: boolean): boolean {
  if (h.slot === Slot.Host) {
    // ngx_http_validate_host: $host follows, even when -r leaves the list alone
    if (value.length === 0) r.host = '';
    else {
      const host = validateHost(value);
      if (host === undefined) return false;
      r.host = host;
    }
  } else if (h.slot === Slot.ContentLength && value.length && !/^[0-9]{1,18}$/.test(value)) {
    return false;
  }
  const list = r.req.headers;
  const changed = new Set<string>();
  let matched = false;
  // the wildcard applies to clearing only on this side
  const wildcard = value.length === 0;
  for (let i = 0; i < list.length; i++) {
    const [name] = list[i]!;
    if (!keyMatches(h, name, wildcard)) continue;
    changed.add(name.toLowerCase());
    if (value.length === 0 || matched) list.splice(i--, 1);
    else list[i] = [name, value];
    matched = true;
  }
  if (!matched && value.length && !replace) {
    list.push([h.key, value]);
    changed.add(h.lower);
  }
  if (changed.size) {
    const byName = r.req.byName;
    for (const key of changed) refresh(byName, list, key);
  }
  return true;
}

/** the lookup map's entry for one lowercased name, from the list (head.ts's rules) */
function refresh(byName: Map<string, string>, list: ReadonlyArray<[string, string]>, key: string): void {
  let v: string | undefined;
  for (const [name, value] of list) {
    if (name.toLowerCase() !== key) continue;
    if (v === undefined) v = value;
    else if (key === 'cookie') v = `${v}; ${value}`;
    else if (key === 'x-forwarded-for') v = `${v}, ${value}`;
    else break;
  }
  if (v === undefined) byName.delete(key);
  else byName.set(key, v);
}
