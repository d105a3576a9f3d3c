import type { HttpRequest } from '../http/http_request.js';
import type { Request } from '../http/request.js';
import { ConnPhase, ConnTry, type ConnTryHost, type UpstreamTimeouts } from './conn_try.js';
import type { UpstreamSrvConf } from './module.js';
import type { PeerAddress } from './peers.js';
import { copyResponseHeaders, type HeaderPolicy } from './response.js';
import { STATUS_FAILURE, type Failure, type TryOwner } from './run.js';

/*
 * A try whose peer answers with an HTTP response head (proxy_pass: a status
 * line and header lines; fastcgi_pass: a CGI header): the generic half of
 * ngx_http_upstream_process_header once the protocol has parsed the head —
 * a status that *_next_upstream names goes to the next peer, an error_page
 * for it under *_intercept_errors takes over, else the head becomes the
 * client's (response.ts) and goes out.
 */

/** What an HTTP protocol's try needs from its run: the request, the upstream, the loop's callbacks. */
export interface HttpTryRun extends TryOwner, ConnTryHost {
  readonly r: Request;
  readonly policy: HeaderPolicy;
  readonly upstream: UpstreamSrvConf;
  wouldRetry(failure: Failure, sent: boolean): boolean;
  /** the response header is about to go out with the peer's status */
  started(status: number): void;
}

export abstract class HttpConnTry<R extends HttpTryRun> extends ConnTry {
  /** PREFIX_force_ranges: byte ranges served from the streamed response (set by the protocol) */
  protected forceRanges = false;
  protected readonly run: R;

  constructor(run: R, peer: PeerAddress, timeouts: UpstreamTimeouts) {
    super(run, run, peer, timeouts);
    this.run = run;
  }

  /** the backend's status went to the client */
  protected override startedStatus(): number {
    return this.run.r.status;
  }

  /**
   * The head is complete with `status`: true when the try ended here, for
   * the next peer (a status *_next_upstream names, a try being left) or
   * for the location's error_page (*_intercept_errors).
   */
  protected diverted(status: number, interceptErrors: boolean): boolean {
    const run = this.run;
    const failure = STATUS_FAILURE.get(status);
    if (failure !== undefined && run.wouldRetry(failure, true)) {
      this.settle(status, false, false, failure, false);
      return true;
    }
    if (interceptErrors && status >= 300 && run.r.loc.errorPages?.some((p) => p.status === status)) {
      this.settle(status, false, false, undefined, false);
      return true;
    }
    return false;
  }

  /** the head becomes the client's and goes out; false when that ended the try (a HEAD answer, a client already gone) */
  protected passHead(status: number, reason: string | undefined, headers: ReadonlyArray<readonly [string, string]>): boolean {
    const run = this.run;
    const r = run.r;
    if (this.forceRanges) {
      // PREFIX_force_ranges: the backend's Accept-Ranges is not copied; the range filter answers for it
      headers = headers.filter(([n]) => n.length !== 13 || n.toLowerCase() !== 'accept-ranges');
      const h = r as HttpRequest;
      h.allowRanges = true;
      h.singleRange = true;
      h.rangeStream = true;
    }
    copyResponseHeaders(r, status, reason, headers, run.policy);
    this.started = true;
    this.phase = ConnPhase.Body;
    run.started(status);
    r.sendHeader();
    return !this.isDone();
  }
}
