import { lstatSync, readdirSync, statSync, type Stats } from 'node:fs';
import { FLAG, HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SRV_CONF, TAKE1 } from '../../conf/command.js';
import { enumSlot, flagSlot, mergeValue } from '../../conf/slots.js';
import { UNSET } from '../../conf/values.js';
import { errnoSuffix } from '../../core/errno.js';
import type { HttpRequest } from '../../http/http_request.js';
import { defineHttpModule, locConf } from '../../http/module.js';
import { DECLINED, DONE, OK, type Request } from '../../http/request.js';
import { mapUriToPath } from '../../http/static.js';
import { compareEntries, htmlListing, jsonListing, xmlListing, type Entry } from './format.js';

/*
 * ngx_http_autoindex_module: `autoindex on` lists a directory URI that no
 * index file answered (a content handler tried after index, before the
 * core's "directory index ... is forbidden"), for GET and HEAD, in
 * autoindex_format html | xml | json | jsonp (`?callback=NAME`, checked
 * as nginx does), names starting with `.` left out, directories first.
 * The listing is built in memory like nginx's one buffer, bounded by the
 * directory's size.
 */

const HTML = 0;
const JSON_ = 1;
const XML = 2;
const JSONP = 3;

interface AutoindexLocConf {
  enable: number;
  format: number;
  localtime: number;
  exactSize: number;
}

function statOf(path: Buffer, follow: boolean): Stats | NodeJS.ErrnoException {
  try {
    return follow ? statSync(path) : lstatSync(path);
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
}

/** the `callback` argument: absent → json; too long or not [A-Za-z0-9_.] → 400 */
function jsonpCallback(r: HttpRequest): string | undefined | false {
  const m = /(?:^|&)callback=([^&]*)/i.exec(r.args);
  if (m === null || m[1] === '') return undefined;
  const cb = m[1]!;
  if (cb.length > 128) {
    r.log('info', `client sent too long callback name: "${cb}"`);
    return false;
  }
  if (!/^[A-Za-z0-9_.]*$/.test(cb)) {
    r.log('info', `client sent invalid callback name: "${cb}"`);
    return false;
  }
  return cb;
}

function autoindexHandler(req: Request): number {
  const r = req as HttpRequest;
  if (!r.uri.endsWith('/')) return DECLINED;
  if (r.method !== 'GET' && r.method !== 'HEAD') return DECLINED;
  const conf = r.locConf[autoindexModule.index] as AutoindexLocConf | undefined;
  if (conf === undefined || !conf.enable) return DECLINED;
  const rc = r.discardBody();
  if (rc !== OK) return rc;
  let path = mapUriToPath(r);
  if (path.length > 1) path = path.slice(0, -1);
  let format = conf.format;
  let callback: string | undefined;
  if (format === JSONP) {
    const cb = jsonpCallback(r);
    if (cb === false) return 400;
    callback = cb;
    if (cb === undefined) format = JSON_;
  }
  let names: Buffer[];
  try {
    names = readdirSync(Buffer.from(path, 'latin1'), { encoding: 'buffer' });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const code = err.code;
    const missing = code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG';
    r.log(missing || code === 'EACCES' ? 'error' : 'crit', `opendir() "${path}" failed ${errnoSuffix(err)}`);
    return missing ? 404 : code === 'EACCES' ? 403 : 500;
  }
  r.status = 200;
  r.contentType = format === JSON_ ? 'application/json' : format === JSONP ? 'application/javascript' : format === XML ? 'text/xml; charset=utf-8' : 'text/html';
  const replaced = r.filterFinalized;
  r.sendHeader();
  if (r.filterFinalized !== replaced || r.finished) return DONE;
  if (r.headerOnly) {
    r.finish();
    return DONE;
  }
  const entries: Entry[] = [];
  const dirBytes = Buffer.from(`${path}/`, 'latin1');
  for (const raw of names) {
    if (raw[0] === 0x2e) continue;
    const name = raw.toString('latin1');
    // the name's own bytes (not UTF-8 decoded): any name the directory holds
    const fullBytes = Buffer.concat([dirBytes, raw]);
    const full = fullBytes.toString('latin1');
    let st = statOf(fullBytes, true);
    if (st instanceof Error) {
      if (st.code !== 'ENOENT' && st.code !== 'ELOOP') {
        r.log('crit', `stat() "${full}" failed ${errnoSuffix(st)}`);
        continue;
      }
      // a dangling or looping symlink: its own entry
      st = statOf(fullBytes, false);
      if (st instanceof Error) {
        r.log('crit', `lstat() "${full}" failed ${errnoSuffix(st)}`);
        continue;
      }
    }
    entries.push({ name, dir: st.isDirectory(), file: st.isFile(), mtime: Math.floor(st.mtimeMs / 1000), size: st.size });
  }
  entries.sort(compareEntries);
  let body: string;
  if (format === JSON_ || format === JSONP) body = jsonListing(entries, callback);
  else if (format === XML) body = xmlListing(entries);
  else {
    // names are counted in characters when the charset filter made the response UTF-8
    const utf8 = r.charset.length === 5 && r.charset.toLowerCase() === 'utf-8';
    const gmtoff = conf.localtime ? -new Date().getTimezoneOffset() * 60 : 0;
    body = htmlListing(r.uri, entries, utf8, conf.exactSize === 1, gmtoff);
  }
  r.send(Buffer.from(body, 'latin1'));
  r.finish();
  return DONE;
}

const MSL = HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF;
const conf = (cf: Parameters<typeof locConf>[0]): AutoindexLocConf => locConf<AutoindexLocConf>(cf, autoindexModule);

export const autoindexModule = defineHttpModule<unknown, unknown, AutoindexLocConf>({
  name: 'autoindex',
  createLocConf: () => ({ enable: UNSET, format: UNSET, localtime: UNSET, exactSize: UNSET }),
  mergeLocConf(_cf, prev, c) {
    c.enable = mergeValue(c.enable, prev.enable, 0);
    c.format = mergeValue(c.format, prev.format, HTML);
    c.localtime = mergeValue(c.localtime, prev.localtime, 0);
    c.exactSize = mergeValue(c.exactSize, prev.exactSize, 1);
  },
  phases: { content: autoindexHandler },
  commands: [
    { name: 'autoindex', ctx: MSL, args: FLAG, set: flagSlot(conf, 'enable') },
    { name: 'autoindex_format', ctx: MSL, args: TAKE1, set: enumSlot(conf, 'format', { html: HTML, json: JSON_, xml: XML, jsonp: JSONP }) },
    { name: 'autoindex_localtime', ctx: MSL, args: FLAG, set: flagSlot(conf, 'localtime') },
    { name: 'autoindex_exact_size', ctx: MSL, args: FLAG, set: flagSlot(conf, 'exactSize') },
  ],
});
