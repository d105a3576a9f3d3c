import { statSync, type Stats } from 'node:fs';
import { HTTP_LOC_CONF, HTTP_MAIN_CONF, HTTP_SRV_CONF, TAKE1 } from '../../conf/command.js';
import { enumSlot, mergeValue } from '../../conf/slots.js';
import { UNSET } from '../../conf/values.js';
import { errnoSuffix } from '../../core/errno.js';
import type { HttpRequest } from '../../http/http_request.js';
import { defineHttpModule, locConf } from '../../http/module.js';
import { DECLINED, DONE, OK, type Request } from '../../http/request.js';
import { fileHeaders, mapUriToPath, sendFile } from '../../http/static.js';
import type { GzipLocConf } from '../gzip/conf.js';
import { gzipModule } from '../gzip/module.js';
import { gzipOk } from '../gzip/ok.js';

/*
 * ngx_http_gzip_static_module: `gzip_static on|off|always`. For a GET or
 * HEAD of a file URI, the precompressed FILE.gz next to the file is sent
 * as it is (Content-Encoding: gzip, its own length, mtime and ETag, the
 * type of the URI, no ranges) to a client that passes ngx_http_gzip_ok
 * (`on`) or to anyone (`always`); otherwise the request goes on to the
 * static handler. With gzip_vary on (the gzip module's conf, where
 * nginx's core keeps it) `on` adds Vary: Accept-Encoding whether or not
 * the .gz is sent, once the .gz exists.
 */

const OFF = 0;
const ON = 1;
const ALWAYS = 2;

interface GzipStaticLocConf {
  enable: number;
}

function stat(path: string): Stats | NodeJS.ErrnoException {
  try {
    return statSync(path);
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
}

function gzipStaticHandler(req: Request): number {
  const r = req as HttpRequest;
  if (r.method !== 'GET' && r.method !== 'HEAD') return DECLINED;
  if (r.uri.endsWith('/')) return DECLINED;
  const conf = r.locConf[gzipStaticModule.index] as GzipStaticLocConf | undefined;
  if (conf === undefined || conf.enable === OFF) return DECLINED;
  const gz = r.locConf[gzipModule.index] as GzipLocConf;
  const ok = conf.enable === ON ? gzipOk(r, gz) : true;
  if (gz.vary !== 1 && !ok) return DECLINED;
  const path = `${mapUriToPath(r)}.gz`;
  const st = stat(path);
  if (st instanceof Error) {
    const code = st.code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG') return DECLINED;
    const level = code === 'EACCES' || code === 'EMLINK' || code === 'ELOOP' ? 'error' : 'crit';
    r.log(level, `open() "${path}" failed ${errnoSuffix(st)}`);
    return DECLINED;
  }
  if (conf.enable === ON) {
    r.gzipVary = gz.vary === 1;
    if (!ok) return DECLINED;
  }
  if (st.isDirectory()) return DECLINED;
  if (!st.isFile()) {
    r.log('crit', `"${path}" is not a regular file`);
    return 404;
  }
  const rc = r.discardBody();
  if (rc !== OK) return rc;
  r.action = 'sending response to client';
  // length, mtime and ETag are the .gz file's
  fileHeaders(r, st);
  r.headersOut.push(['Content-Encoding', 'gzip']);
  const replaced = r.filterFinalized;
  r.sendHeader();
  if (r.filterFinalized !== replaced || r.finished) return DONE;
  if (r.headerOnly || st.size === 0) {
    r.finish();
    return DONE;
  }
  sendFile(r, path, [{ start: 0, end: st.size, head: '' }], '');
  return DONE;
}

export const gzipStaticModule = defineHttpModule<unknown, unknown, GzipStaticLocConf>({
  name: 'gzip_static',
  createLocConf: () => ({ enable: UNSET }),
  mergeLocConf(_cf, prev, conf) {
    conf.enable = mergeValue(conf.enable, prev.enable, OFF);
  },
  phases: { content: gzipStaticHandler },
  commands: [
    {
      name: 'gzip_static',
      ctx: HTTP_MAIN_CONF | HTTP_SRV_CONF | HTTP_LOC_CONF,
      args: TAKE1,
      set: enumSlot((cf): GzipStaticLocConf => locConf<GzipStaticLocConf>(cf, gzipStaticModule), 'enable', { off: OFF, on: ON, always: ALWAYS }),
    },
  ],
});
