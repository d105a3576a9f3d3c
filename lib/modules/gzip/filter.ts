import type { TransformOptions } from 'node:stream';
import { createGzip, type Gzip, type ZlibOptions } from 'node:zlib';
import type { BodyFilter, HttpRequest } from '../../http/http_request.js';
import { testContentType } from '../../http/types.js';
import type { GzipLocConf } from './conf.js';
import { gzipOk } from './ok.js';

/*
 * ngx_http_gzip_filter_module. The header filter decides (status 200, 403
 * or 404; no Content-Encoding yet; Content-Length, if known, at least
 * gzip_min_length; a gzip_types type; the client passes ngx_http_gzip_ok),
 * adds `Content-Encoding: gzip`, drops Content-Length and Accept-Ranges,
 * makes the ETag weak, and puts the compressor on the request as its
 * encoder: below the postpone point, so a main request's subrequests are
 * compressed as part of its body, as nginx's chain has them.
 *
 * The compressor is node:zlib's gzip stream with nginx's deflateInit2
 * parameters (level, window and memLevel shrunk for a short known length,
 * as ngx_http_gzip_filter_memory does). Backpressure both ways: a full
 * zlib input side holds the producer back (body() returns false, and
 * zlib's drain wakes it through r.filterDrained), a full socket pauses
 * zlib's output until the socket drains.
 */

/** per request: the ratio for $gzip_ratio once compression is done */
const done = new WeakMap<HttpRequest, { zin: number; zout: number }>();

export function gzipRatio(r: HttpRequest): string | undefined {
  const d = done.get(r);
  if (d === undefined || d.zout === 0) return undefined;
  let zint = Math.floor(d.zin / d.zout);
  let zfrac = Math.floor((d.zin * 100) / d.zout) % 100;
  // nginx rounds the third digit: 2.125 → 2.13
  if (Math.floor((d.zin * 1000) / d.zout) % 10 > 4) {
    zfrac++;
    if (zfrac > 99) {
      zint++;
      zfrac = 0;
    }
  }
  return `${zint}.${zfrac < 10 ? '0' : ''}${zfrac}`;
}

function headerValue(r: HttpRequest, name: string): string | undefined {
  for (const [k, v] of r.headersOut) if (k.length === name.length && k.toLowerCase() === name) return v;
  return undefined;
}

/** ngx_http_weak_etag: `"x"` becomes `W/"x"`; anything else not weak goes */
function weakEtag(r: HttpRequest): void {
  let i = -1;
  if (r.etag !== undefined) i = r.headersOut.indexOf(r.etag);
  if (i === -1) i = r.headersOut.findIndex(([k]) => k.length === 4 && k.toLowerCase() === 'etag');
  if (i === -1) return;
  const h = r.headersOut[i]!;
  const v = h[1];
  if (v.length > 2 && v.startsWith('W/')) return;
  if (v.length < 1 || v[0] !== '"') {
    r.headersOut.splice(i, 1);
    r.etag = undefined;
    return;
  }
  const weak: [string, string] = [h[0], `W/${v}`];
  r.headersOut[i] = weak;
  if (r.etag === h) r.etag = weak;
}

export function gzipHeaderFilter(r: HttpRequest, conf: GzipLocConf | undefined): void {
  if (conf === undefined || conf.enable !== 1) return;
  const status = r.status;
  if (status !== 200 && status !== 403 && status !== 404) return;
  const ce = headerValue(r, 'content-encoding');
  if (ce !== undefined && ce.length > 0) return;
  const length = r.contentLength;
  if (length !== -1 && length < conf.minLength) return;
  if (!testContentType(r, conf.types!)) return;
  if (r.headerOnly) return;
  // the Vary line goes out whether or not this client gets gzip (with gzip_vary on)
  r.gzipVary = conf.vary === 1;
  if (!gzipOk(r, conf)) return;

  r.headersOut.push(['Content-Encoding', 'gzip']);
  // ngx_http_clear_content_length
  r.contentLength = -1;
  if (!r.ownContentLength) {
    r.headersOut = r.headersOut.filter(([k]) => k.toLowerCase() !== 'content-length');
    r.ownContentLength = true;
  }
  // ngx_http_clear_accept_ranges
  r.allowRanges = false;
  if (r.acceptRanges !== undefined) {
    const a = r.acceptRanges;
    r.headersOut = r.headersOut.filter((h) => h !== a);
    r.acceptRanges = undefined;
  }
  weakEtag(r);

  // ngx_http_gzip_filter_memory: a smaller window and hash for a short known body
  let wbits = conf.wbits;
  let memlevel = conf.memlevel;
  if (length > 0) {
    while (length < (1 << (wbits - 1)) - 262) {
      wbits--;
      memlevel--;
    }
    if (memlevel < 1) memlevel = 1;
  }
  r.encoder = new GzipFilter(conf, wbits, memlevel);
}

class GzipFilter implements BodyFilter {
  next: BodyFilter | undefined = undefined;
  private z: Gzip | undefined = undefined;
  private zin = 0;
  private zout = 0;

  constructor(
    private readonly conf: GzipLocConf,
    private readonly wbits: number,
    private readonly memlevel: number,
  ) {}

  /** deflateInit2 on the first data (nothing is allocated for a body never sent) */
  private start(r: HttpRequest): Gzip {
    const bufs = this.conf.bufs!;
    // node:zlib passes the stream options on to its Transform (its typings leave them out)
    const opts: ZlibOptions & TransformOptions = {
      level: this.conf.level,
      windowBits: this.wbits,
      memLevel: this.memlevel,
      // zlib's output pieces: at most the gzip_buffers space, as nginx's output bufs
      chunkSize: Math.max(1024, Math.min(bufs.num * bufs.size, 65536)),
      // input held while zlib works: the gzip_buffers space (128K by default), at least 64K,
      // so one upstream read does not already hold the producer back
      writableHighWaterMark: Math.max(65536, bufs.num * bufs.size),
    };
    const z = createGzip(opts);
    this.z = z;
    z.on('data', (out: Buffer) => {
      // the request was cut short (an upstream failed mid-body): nothing more to compress
      if (r.finished) {
        z.destroy();
        return;
      }
      this.zout += out.length;
      if (!r.wireBody(out)) {
        z.pause();
        r.onDrain(() => z.resume());
      }
    });
    z.on('drain', () => r.filterDrained());
    z.on('end', () => {
      done.set(r, { zin: this.zin, zout: this.zout });
      r.wireEnd();
    });
    z.on('error', (e: Error) => {
      r.log('alert', `deflate() failed: ${e.message}`);
      r.terminate();
    });
    r.onAbort(() => z.destroy());
    return z;
  }

  body(r: HttpRequest, chunk: Buffer): boolean {
    if (chunk.length === 0 || r.aborted) return !r.conn.congested();
    const z = this.z ?? this.start(r);
    this.zin += chunk.length;
    const room = z.write(chunk);
    return room && !r.conn.congested();
  }

  last(r: HttpRequest): void {
    if (r.aborted) return;
    // an empty body still gets gzip's header and trailer, as from nginx
    (this.z ?? this.start(r)).end();
  }
}
