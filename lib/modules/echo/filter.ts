import { nextBody, nextLast, type BodyFilter, type HttpRequest } from '../../http/http_request.js';
import type { EchoCmd, EchoLocConf } from './conf.js';
import { getOrCreateCtx } from './ctx.js';
import { debugOn, echoDebug, evalEchoArgs } from './util.js';

/*
 * echo_before_body / echo_after_body (ngx_http_echo_filter.c): a header
 * filter that, in locations having them, drops Content-Length (the
 * response streams) and puts a body filter on the request. The "before"
 * text goes out ahead of the first body buffer (or of the end, for an
 * empty body); the "after" text right before the end. Whatever produced
 * the body — echo, redis2, a `return`, an error page — is wrapped alike,
 * in subrequests too; HEAD responses get neither. As in nginx, the filters
 * exist only when some location uses one of the two directives; they then
 * see every request and write their debug lines.
 */

/** echo / echo_before_body / echo_after_body text: arguments joined by spaces, `\n` unless `-n` */
export function echoText(args: string[], opts: string[]): string {
  const text = args.join(' ');
  return opts.length > 0 && opts[0] === 'n' ? text : text + '\n';
}

const where = (r: HttpRequest): string => `uri "${r.uri}?${r.args}"`;

class EchoBodyFilter implements BodyFilter {
  private beforeSent = false;
  private skip: boolean;

  constructor(
    public next: BodyFilter | undefined,
    private readonly conf: EchoLocConf,
  ) {
    // a location without the directives: a filter only for its debug lines
    this.skip = !conf.beforeBodyCmds && !conf.afterBodyCmds;
  }

  private run(r: HttpRequest, cmds: EchoCmd[]): void {
    for (const cmd of cmds) {
      const { args, opts } = evalEchoArgs(r, cmd);
      const text = echoText(args, opts);
      if (text.length) nextBody(r, this.next, Buffer.from(text, 'latin1'));
    }
  }

  private before(r: HttpRequest): void {
    if (this.beforeSent) return;
    this.beforeSent = true;
    if (this.conf.beforeBodyCmds) this.run(r, this.conf.beforeBodyCmds);
  }

  body(r: HttpRequest, chunk: Buffer): boolean {
    echoDebug(r, `echo body filter, ${where(r)}`);
    if (this.skip) return nextBody(r, this.next, chunk);
    this.before(r);
    if (!this.conf.afterBodyCmds) this.skip = true;
    return nextBody(r, this.next, chunk);
  }

  last(r: HttpRequest): void {
    echoDebug(r, `echo body filter, ${where(r)}`);
    if (!this.skip) {
      this.skip = true;
      this.before(r);
      if (this.conf.afterBodyCmds) this.run(r, this.conf.afterBodyCmds);
    }
    nextLast(r, this.next);
  }
}

/** ngx_http_echo_header_filter: a location with echo_before_body / echo_after_body wraps the body */
export function echoHeaderFilter(r: HttpRequest, elcf: EchoLocConf | undefined): void {
  if (!elcf || !elcf.main.requiresFilter) return;
  echoDebug(r, `echo header filter, ${where(r)}`);
  if (!elcf.beforeBodyCmds && !elcf.afterBodyCmds) {
    if (debugOn(r)) r.filter = new EchoBodyFilter(r.filter, elcf);
    return;
  }
  getOrCreateCtx(r);
  r.contentLength = -1;
  r.filter = new EchoBodyFilter(r.filter, elcf);
}
