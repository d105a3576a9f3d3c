import { createReadStream, statSync, type Stats } from 'node:fs';
import type { CoreLocConf } from './core/module.js';
import { errnoSuffix as errnoText, openFailure } from '../core/errno.js';
import { evalComplexValue } from './eval.js';
import type { HttpRequest } from './http_request.js';
import { internalRedirect, namedLocation } from './phases.js';
import { DONE } from './request.js';

/*
 * The static content handlers nginx runs when a location has no handler:
 * try_files (precontent), index and static (ngx_http_index_module,
 * ngx_http_static_module), enough for `location / { root html; index
 * index.html; }` and `try_files $uri $uri/ =404;`.
 */

/** ngx_http_map_uri_to_path: root + uri, or alias in place of the location name */
export function mapUriToPath(r: HttpRequest, uri = r.uri): string {
  const clcf: CoreLocConf = r.loc;
  const root = clcf.rootValue ? evalComplexValue(r, clcf.rootValue) : clcf.root;
  if (clcf.alias) {
    if (clcf.rootValue && clcf.regex) return root;
    return root + uri.slice(clcf.name.length);
  }
  return root + uri;
}

function stat(path: string): Stats | NodeJS.ErrnoException {
  try {
    return statSync(path);
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
}

/** ngx_http_try_files_handler; false when it finalized or redirected the request */
export function tryFiles(r: HttpRequest): boolean {
  const list = r.loc.tryFiles!;
  for (let i = 0; i < list.length; i++) {
    const tf = list[i]!;
    const name = evalComplexValue(r, tf.value);
    if (i === list.length - 1) {
      if (tf.code) {
        r.finalize(tf.code);
        return false;
      }
      if (name.startsWith('@')) {
        namedLocation(r, name);
        return false;
      }
      const q = name.indexOf('?');
      internalRedirect(r, q === -1 ? name : name.slice(0, q), q === -1 ? r.args : name.slice(q + 1));
      return false;
    }
    const path = mapUriToPath(r, name);
    const st = stat(path);
    if (st instanceof Error) {
      // ngx_http_try_files_handler: what is not merely missing is logged, and the next one tried
      if (st.code !== 'ENOENT' && st.code !== 'ENOTDIR' && st.code !== 'ENAMETOOLONG') r.log('crit', `open() "${path}" failed ${errnoText(st)}`);
      continue;
    }
    if (tf.testDir ? !st.isDirectory() : !st.isFile()) continue;
    // as nginx: the URI is the tested name without the slash `$uri/` had, so a
    // directory reached without one is redirected to it by the static handler
    r.uri = name;
    return true;
  }
  return true;
}

/** index + static; returns DONE or a status to finalize with */
export function staticHandler(r: HttpRequest): number {
  if (r.method !== 'GET' && r.method !== 'HEAD' && r.method !== 'POST') return 405;
  const uri = r.uri;
  if (uri.endsWith('/')) return indexHandler(r);
  const path = mapUriToPath(r);
  const st = stat(path);
  if (st instanceof Error) {
    const f = openFailure(st.code);
    r.log(f.level, `open() "${path}" failed ${errnoText(st)}`);
    return f.status;
  }
  if (st.isDirectory()) {
    r.location = r.args ? `${uri}/?${r.args}` : `${uri}/`;
    return 301;
  }
  if (r.method === 'POST') return 405;
  r.status = 200;
  r.contentLength = st.size;
  r.headersOut.push(['Last-Modified', new Date(Math.floor(st.mtimeMs / 1000) * 1000).toUTCString()]);
  r.headersOut.push(['ETag', `"${Math.floor(st.mtimeMs / 1000).toString(16)}-${st.size.toString(16)}"`]);
  r.headersOut.push(['Accept-Ranges', 'bytes']);
  r.sendHeader();
  if (r.headerOnly || st.size === 0) {
    r.finish();
    return DONE;
  }
  const stream = createReadStream(path, { highWaterMark: 65536 });
  stream.on('data', (chunk) => {
    if (!r.send(chunk as Buffer)) {
      stream.pause();
      r.onDrain(() => stream.resume());
    }
  });
  stream.on('end', () => r.finish());
  stream.on('error', (e) => {
    r.log('crit', `read() "${path}" failed ${errnoText(e)}`);
    r.finalize(500);
  });
  r.onAbort(() => stream.destroy());
  return DONE;
}

function indexHandler(r: HttpRequest): number {
  const clcf = r.loc;
  const dir = mapUriToPath(r);
  // nginx names the first missing index file when the directory itself is missing
  let missing: string | undefined;
  for (const cv of clcf.index) {
    const name = evalComplexValue(r, cv);
    if (name.startsWith('/')) {
      internalRedirect(r, name, r.args);
      return DONE;
    }
    const st = stat(dir + name);
    if (st instanceof Error) {
      if (st.code === 'ENOENT') {
        missing ??= name;
        continue;
      }
      // ngx_http_index_error: forbidden, or not found for a name too long / not a directory
      if (st.code === 'EACCES') {
        r.log('error', `"${dir}${name}" is forbidden ${errnoText(st)}`);
        return 403;
      }
      if (st.code === 'ENOTDIR' || st.code === 'ENAMETOOLONG') {
        r.log('error', `"${dir}${name}" is not found ${errnoText(st)}`);
        return 404;
      }
      r.log('crit', `open() "${dir}${name}" failed ${errnoText(st)}`);
      return 500;
    }
    internalRedirect(r, r.uri + name, r.args);
    return DONE;
  }
  const st = stat(dir);
  if (st instanceof Error || !st.isDirectory()) {
    r.log('error', `"${dir}${missing ?? ''}" is not found ${st instanceof Error ? errnoText(st) : '(20: Not a directory)'}`);
    return 404;
  }
  r.log('error', `directory index of "${dir}" is forbidden`);
  return 403;
}
