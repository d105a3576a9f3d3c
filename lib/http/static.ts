import { createReadStream, statSync, type ReadStream, type Stats } from 'node:fs';
import type { CoreLocConf } from './core/module.js';
import { errnoSuffix as errnoText, openFailure } from '../core/errno.js';
import { evalComplexValue } from './eval.js';
import type { HttpRequest } from './http_request.js';
import { internalRedirect, namedLocation } from './phases.js';
import { DECLINED, DONE } from './request.js';
import { hooks } from './hooks.js';
import { escapeUriPath } from './unescape.js';
import type { BodyRange } from './range.js';

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

/**
 * The content phase of a location without a handler of its own: index,
 * then the modules' content handlers (autoindex, gzip_static: hooks.ts),
 * then static, then the core's `directory index ... is forbidden`.
 * Returns DONE or a status to finalize with.
 */
export function staticHandler(r: HttpRequest): number {
  if (r.method !== 'GET' && r.method !== 'HEAD' && r.method !== 'POST') return 405;
  const uri = r.uri;
  if (uri.endsWith('/')) {
    const rc = indexHandler(r);
    if (rc !== DECLINED) return rc;
  }
  const list = hooks.content;
  for (let i = 0; i < list.length; i++) {
    const rc = list[i]!(r);
    if (rc !== DECLINED) return rc;
  }
  if (uri.endsWith('/')) {
    // ngx_http_core_content_phase: no handler took the directory
    r.log('error', `directory index of "${mapUriToPath(r)}" is forbidden`);
    return 403;
  }
  return fileHandler(r);
}

/** ngx_http_static_handler */
function fileHandler(r: HttpRequest): number {
  const uri = r.uri;
  const path = mapUriToPath(r);
  const st = stat(path);
  if (st instanceof Error) {
    const f = openFailure(st.code);
    // a missing file is logged only under `log_not_found on` (the default)
    if (f.status !== 404 || r.loc.logNotFound) r.log(f.level, `open() "${path}" failed ${errnoText(st)}`);
    return f.status;
  }
  if (st.isDirectory()) {
    // the URI escaped as nginx's static module does (NGX_ESCAPE_URI), args kept
    const loc = `${escapeUriPath(uri)}/`;
    r.location = r.args ? `${loc}?${r.args}` : loc;
    return 301;
  }
  if (r.method === 'POST') return 405;
  fileHeaders(r, st);
  r.allowRanges = true;
  // ngx_http_static_handler's log->action from here on
  r.action = 'sending response to client';
  const replaced = r.filterFinalized;
  r.sendHeader();
  // a filter answered instead (412, 416, perhaps through an error_page), or there is nothing to send
  if (r.filterFinalized !== replaced || r.finished) return DONE;
  const ranges = r.rangeBody;
  if (r.headerOnly || st.size === 0) {
    r.finish();
    return DONE;
  }
  sendFile(r, path, ranges ? ranges.parts : [{ start: 0, end: st.size, head: '' }], ranges ? ranges.tail : '');
  return DONE;
}

/** the file's bytes of each part, each after its head (multipart boundaries), then `tail` */
/**
 * A file's answer as ngx_http_static_handler sets it: 200, its length and
 * mtime, the ETag ngx_http_set_etag makes ("mtime-size" in hex, under
 * `etag on`) and the type from the extension. gzip_static sets the same
 * for the .gz it sends.
 */
export function fileHeaders(r: HttpRequest, st: Stats): void {
  r.status = 200;
  r.contentLength = st.size;
  r.lastModifiedTime = Math.floor(st.mtimeMs / 1000);
  if (r.loc.etag) {
    const etag: [string, string] = ['ETag', `"${r.lastModifiedTime.toString(16)}-${st.size.toString(16)}"`];
    r.headersOut.push(etag);
    r.etag = etag;
  }
  r.contentType = r.defaultContentType();
}

export function sendFile(r: HttpRequest, path: string, parts: BodyRange[], tail: string): void {
  let i = 0;
  let stream: ReadStream | undefined;
  r.onAbort(() => stream?.destroy());
  const next = (): void => {
    if (r.aborted) return;
    if (i === parts.length) {
      if (tail) r.send(Buffer.from(tail, 'latin1'));
      r.finish();
      return;
    }
    const part = parts[i++]!;
    if (part.head) r.send(Buffer.from(part.head, 'latin1'));
    if (part.end === part.start) return next();
    const s = createReadStream(path, { start: part.start, end: part.end - 1, highWaterMark: 65536 });
    stream = s;
    s.on('data', (chunk) => {
      if (!r.send(chunk as Buffer)) {
        s.pause();
        r.onDrain(() => s.resume());
      }
    });
    s.on('end', next);
    s.on('error', (e) => {
      r.log('crit', `read() "${path}" failed ${errnoText(e)}`);
      r.finalize(500);
    });
  };
  next();
}

/** ngx_http_index_error: 403 for EACCES, else 404 (logged under log_not_found) */
function indexError(r: HttpRequest, file: string, err: NodeJS.ErrnoException): number {
  if (err.code === 'EACCES') {
    r.log('error', `"${file}" is forbidden ${errnoText(err)}`);
    return 403;
  }
  if (r.loc.logNotFound) r.log('error', `"${file}" is not found ${errnoText(err)}`);
  return 404;
}

/** ngx_http_index_handler, then the core content phase's `directory index ... is forbidden` */
function indexHandler(r: HttpRequest): number {
  const clcf = r.loc;
  const dir = mapUriToPath(r);
  let dirTested = false;
  for (const cv of clcf.index) {
    const name = evalComplexValue(r, cv);
    if (name.startsWith('/')) {
      internalRedirect(r, name, r.args);
      return DONE;
    }
    const path = dir + name;
    const st = stat(path);
    if (!(st instanceof Error)) {
      internalRedirect(r, r.uri + name, r.args);
      return DONE;
    }
    const e = st.code;
    if (e === 'EMLINK' || e === 'ELOOP') return 403;
    if (e === 'ENOTDIR' || e === 'ENAMETOOLONG' || e === 'EACCES') return indexError(r, path, st);
    if (!dirTested) {
      // ngx_http_index_test_dir: a missing directory is reported with the index file's path
      const ds = stat(dir);
      if (ds instanceof Error) {
        if (ds.code === 'ENOENT') return indexError(r, path, ds);
        if (ds.code !== 'EACCES') {
          r.log('crit', `stat() "${dir}" failed ${errnoText(ds)}`);
          return 500;
        }
      } else if (!ds.isDirectory()) {
        r.log('alert', `"${dir}" is not a directory`);
        return 500;
      }
      dirTested = true;
    }
    if (e === 'ENOENT') continue;
    r.log('crit', `stat() "${path}" failed ${errnoText(st)}`);
    return 500;
  }
  // no index file: autoindex may list the directory, else the core forbids it
  return DECLINED;
}
