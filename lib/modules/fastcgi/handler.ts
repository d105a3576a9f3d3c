import { evalComplexValue } from '../../http/eval.js';
import type { Request } from '../../http/request.js';
import { findUpstream, upstreamModule, type UpstreamMainConf, type UpstreamSrvConf } from '../../upstream/module.js';
import type { PeerTarget } from '../../upstream/peers.js';
import type { HeaderPolicy } from '../../upstream/response.js';
import { localAddress, type LocalAddress } from '../../upstream/bind.js';
import { UpstreamRun, type UpstreamTryHandle } from '../../upstream/run.js';
import type { FastcgiLocConf } from './conf.js';
import { encodeBeginRequest, encodeParams, encodeParamsEnd, encodeStdin, encodeStdinEnd, type ParamPair } from './record.js';
import { FastcgiTry, type FastcgiRun as FastcgiTryOwner } from './try.js';

/*
 * The fastcgi content handler (ngx_http_fastcgi_handler + create_request):
 * the request as FastCGI records, built once per request (BEGIN_REQUEST,
 * the fastcgi_param values then the client's headers as HTTP_*, the body
 * as STDIN), run through the generic upstream loop with a FastcgiTry per
 * peer tried.
 */

/** the request's $fastcgi_script_name / $fastcgi_path_info */
interface Split {
  /** the URI it was made from (an internal redirect splits again) */
  uri: string;
  script: string;
  pathInfo: string;
}

const splits = new WeakMap<Request, Split>();

/** ngx_http_fastcgi_split: fastcgi_split_path_info's two captures, else the URI (plus fastcgi_index after a `/`) */
export function scriptName(r: Request, flcf: FastcgiLocConf | undefined): Split | undefined {
  if (flcf === undefined) return undefined;
  let s = splits.get(r);
  if (s !== undefined && s.uri === r.uri) return s;
  let script = r.uri;
  let pathInfo = '';
  const re = flcf.splitPathInfo;
  if (re !== undefined) {
    const m = re.re.exec(r.uri);
    if (m !== null) {
      script = m[1] ?? '';
      pathInfo = m[2] ?? '';
    }
  }
  if (script.endsWith('/') && flcf.index !== undefined) script += evalComplexValue(r, flcf.index);
  s = { uri: r.uri, script, pathInfo };
  splits.set(r, s);
  return s;
}

/** `HTTP_` + the header name uppercased, `-` as `_` (ngx_http_fastcgi_create_request) */
function cgiName(name: string): string {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    out += c === 0x2d ? '_' : c >= 0x61 && c <= 0x7a ? String.fromCharCode(c - 32) : name[i];
  }
  return out;
}

/** the request's records, in nginx's order */
function buildRequest(r: Request, flcf: FastcgiLocConf): Buffer[] {
  const pairs: ParamPair[] = [];
  for (const p of flcf.params ?? []) {
    const v = evalComplexValue(r, p.value);
    if (p.ifNotEmpty && v.length === 0) continue;
    pairs.push([p.name, v]);
  }
  if (flcf.passRequestHeaders) {
    for (const [name, value] of r.req.headers) {
      const key = cgiName(name);
      if (flcf.httpParams.has(key)) continue;
      pairs.push([`HTTP_${key}`, value]);
    }
  }
  const out: Buffer[] = [encodeBeginRequest(1, flcf.keepConn === 1), encodeParams(1, pairs), encodeParamsEnd(1)];
  if (flcf.passRequestBody && r.body !== undefined) {
    for (const chunk of r.body) if (chunk.length) out.push(...encodeStdin(1, chunk));
  }
  out.push(encodeStdinEnd(1));
  return out;
}

/** the content handler of a fastcgi_pass location */
export function fastcgiContentHandler(r: Request, flcf: FastcgiLocConf): number {
  const t = flcf.target;
  if (t === undefined) return 500;
  let us: UpstreamSrvConf;
  if (t.kind === 'upstream') us = t.upstream;
  else {
    const name = evalComplexValue(r, t.value);
    const umcf = r.srv.ctx.main[upstreamModule.index] as UpstreamMainConf | undefined;
    const found = umcf ? findUpstream(umcf, name) : undefined;
    if (found === undefined) {
      r.log('error', `no resolver defined to resolve ${name}`);
      return 502;
    }
    us = found;
  }
  return new FastcgiRun(r, flcf, us, buildRequest(r, flcf)).run();
}

export class FastcgiRun extends UpstreamRun implements FastcgiTryOwner {
  readonly flcf: FastcgiLocConf;
  readonly records: Buffer[];
  readonly upstream: UpstreamSrvConf;
  readonly policy: HeaderPolicy;
  /** fastcgi_bind for this request */
  readonly bind: LocalAddress | undefined;

  constructor(r: Request, flcf: FastcgiLocConf, us: UpstreamSrvConf, records: Buffer[]) {
    super(r, us, 'fastcgi', { mask: flcf.nextUpstream, tries: flcf.nextUpstreamTries, timeout: flcf.nextUpstreamTimeout });
    this.ignoreClientAbort = flcf.ignoreClientAbort === 1;
    this.flcf = flcf;
    this.records = records;
    this.upstream = us;
    this.policy = { hide: flcf.hidden };
    this.bind = localAddress(r, flcf.bind);
  }

  protected startTry(peer: PeerTarget): UpstreamTryHandle {
    return new FastcgiTry(this, peer);
  }

  started(status: number): void {
    this.replyStarted(status);
  }
}
