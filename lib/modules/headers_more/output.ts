import { evalComplexValue } from '../../http/eval.js';
import type { HttpRequest } from '../../http/http_request.js';
import { Slot, type HeaderArg, type OutputCmd } from './conf.js';

/*
 * more_set_headers / more_clear_headers at header-filter time
 * (ngx_http_headers_more_filter): each directive of the location level, in
 * order, when its -s / -t conditions hold, sets or clears headers of the
 * response before add_header's filter runs. A header the response has is
 * changed in its place (the first one; the others of that name go), a new
 * one goes after the response's own; Server, Date, Content-Type,
 * Content-Length and Location are the fields nginx prints itself.
 */

/** false: a value nginx refuses (a bad Content-Length): the request ends as nginx's does */
export function applyOutput(r: HttpRequest, cmds: readonly OutputCmd[]): boolean {
  for (const cmd of cmds) {
    if (cmd.types !== undefined && !typeMatches(r, cmd.types)) continue;
    if (cmd.statuses !== undefined && !cmd.statuses.includes(r.status)) continue;
    for (const h of cmd.headers) {
      const value = h.value === undefined ? '' : evalComplexValue(r, h.value);
      if (!setHeader(r, h, value)) return false;
    }
  }
  return true;
}

/** -t: the type part of the Content-Type (before `;`), byte for byte */
function typeMatches(r: HttpRequest, types: readonly string[]): boolean {
  const ct = r.contentType ?? r.defaultContentType();
  const semi = ct.indexOf(';');
  const type = semi === -1 ? ct : ct.slice(0, semi);
  return type.length > 0 && types.includes(type);
}

function setHeader(r: HttpRequest, h: HeaderArg, value: string): boolean {
  switch (h.slot) {
    case Slot.Server:
      r.ownServer = false;
      break;
    case Slot.Date:
      r.ownDate = false;
      break;
    case Slot.ContentType:
      r.contentType = value;
      // the type is the field: any Content-Type line of the list goes
      setInList(r.headersOut, h, '', true);
      return true;
    case Slot.ContentLength:
      if (value.length === 0) {
        r.contentLength = -1;
        break;
      }
      // ngx_atosz: decimal digits only
      if (!/^[0-9]{1,18}$/.test(value)) return false;
      r.contentLength = Number(value);
      r.ownContentLength = false;
      break;
    case Slot.Location:
      if (value.length === 0) r.location = undefined;
      else if (r.location !== undefined || value.charCodeAt(0) === 0x2f) {
        // the response's Location (made absolute when it starts with `/`)
        r.location = value;
        setInList(r.headersOut, h, '', true);
        return true;
      }
      break;
    default:
      // the range filter adds Accept-Ranges below this filter; a cleared one keeps it out (as nginx)
      if (value.length === 0 && keyMatches(h, 'Accept-Ranges', true)) r.allowRanges = false;
      break;
  }
  setInList(r.headersOut, h, value, false);
  return true;
}

/** whether a header name is one the argument names (a wildcard key: by prefix) */
export function keyMatches(h: HeaderArg, name: string, wildcard: boolean): boolean {
  const lower = name.toLowerCase();
  return wildcard && h.prefix !== undefined ? lower.startsWith(h.prefix) : lower === h.lower;
}

/**
 * ngx_http_set_header_helper on a header list: the first header of that
 * name takes the value in its place (its name as it was), the other ones
 * go; an empty value removes them all. Without a match a non-empty value
 * is added, unless `noCreate`.
 */
function setInList(list: Array<[string, string]>, h: HeaderArg, value: string, noCreate: boolean): void {
  let matched = false;
  for (let i = 0; i < list.length; i++) {
    const entry = list[i]!;
    if (!keyMatches(h, entry[0], true)) continue;
    if (value.length === 0 || matched) {
      list.splice(i--, 1);
    } else {
      list[i] = [entry[0], value];
    }
    matched = true;
  }
  if (!matched && value.length && !noCreate) list.push([h.key, value]);
}
