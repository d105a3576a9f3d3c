import { nextBody, nextLast, type BodyFilter, type HttpRequest } from '../../http/http_request.js';
import type { EchoCmd, EchoLocConf } from './conf.js';
import { evalEchoArgs } from './util.js';

/*
 * echo_before_body / echo_after_body (ngx_http_echo_filter.c): a header
 * filter that, in locations having them, drops Content-Length (the
 * response streams) and puts a body filter on the request. The "before"
 * text goes out ahead of the first body buffer (or of the end, for an
 * empty body); the "after" text right before the end. Whatever produced
 * the body — echo, redis2, a `return`, an error page — is wrapped alike,
 * in subrequests too; HEAD responses get neither.
 */

/** echo / echo_before_body / echo_after_body text: arguments joined by spaces, `\n` unless `-n` */
export function echoText(args: string[], opts: string[]): string {
  const text = args.join(' ');
  return opts.length > 0 && opts[0] === 'n' ? text : text + '\n';
}

class EchoBodyFilter implements BodyFilter {
  private beforeSent = false;
  private skip = false;

  constructor(
    public next: BodyFilter | undefined,
    private readonly conf: EchoLocConf,
  ) {}

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
    if (this.skip) return nextBody(r, this.next, chunk);
    this.before(r);
    if (!this.conf.afterBodyCmds) this.skip = true;
    return nextBody(r, this.next, chunk);
  }

  last(r: HttpRequest): void {
    if (!this.skip) {
      this.skip = true;
      this.before(r);
      if (this.conf.afterBodyCmds) this.run(r, this.conf.afterBodyCmds);
    }
    nextLast(r, this.next);
  }
}

/** the header filter: a location with echo_before_body / echo_after_body wraps the body */
export function echoHeaderFilter(r: HttpRequest, elcf: EchoLocConf | undefined): void {
  if (!elcf || (!elcf.beforeBodyCmds && !elcf.afterBodyCmds)) return;
  r.contentLength = -1;
  r.filter = new EchoBodyFilter(r.filter, elcf);
}
