import { HttpRequest, firstName, nextBody, runHeaderFilters, type BodyFilter } from './http_request.js';
import { hooks } from './hooks.js';
import { runPhases } from './phases.js';
import { ERROR, type RequestHead } from './request.js';
import { microtask } from '../core/microtask.js';

/*
 * Subrequests (ngx_http_subrequest + the postpone filter). A subrequest is
 * a child HttpRequest on the parent's connection: it shares the client's
 * head and request body, runs the phases from server rewrite for its own
 * URI and args (the access phase is skipped, as ngx_http_core_access_phase
 * does for r != r->main), and its status line and headers never reach the
 * client. Its body takes the place the parent gave it in the parent's
 * output: every request's output is a list of data chunks and child slots
 * (nginx's r->postponed), and only what precedes the first unfinished slot
 * goes to the wire. Content handlers need nothing special: sendHeader,
 * send, onDrain, finish and finalize of a child write into that list,
 * with the client socket's backpressure.
 */

/** NGX_HTTP_MAX_SUBREQUESTS + 1: how deep subrequests may nest */
const MAX_SUBREQUESTS = 51;

/** one request's postponed output (r->postponed) */
interface Postponed {
  items: Array<Buffer | SubRequest>;
  /** the request's own output has ended (last_buf / finalized) */
  ended: boolean;
}

/** the main request's list, created with its first subrequest */
const mainLists = new WeakMap<HttpRequest, Postponed>();

export interface SubrequestOptions {
  /** the method (GET when not given, as ngx_http_subrequest sets) */
  method?: string;
  /** a request body replacing the parent's (echo_subrequest -b / -f) */
  body?: Buffer;
  /**
   * the body is a file's (echo_subrequest -f): nginx keeps it as an
   * in-file buffer, which $request_body and $echo_request_body read as
   * empty; only echo_request_body sends it
   */
  bodyInFile?: boolean;
  /**
   * true: the subrequest gets fresh variables (echo's adjust_subrequest);
   * false: it shares the parent's, as plain ngx_http_subrequest does
   */
  ownVariables?: boolean;
  /** the post-subrequest handler: runs (asynchronously) once the child has finalized */
  done?: (sr: SubRequest) => void;
  /**
   * nginx's NGX_HTTP_SUBREQUEST_IN_MEMORY: the child's body is kept in
   * memory, read with capturedBody() (at most `captureLimit` bytes; past
   * it `capturedOver` is set and nothing more is kept) instead of taking
   * a place in the parent's output, and its end does not hold the
   * parent's output back.
   */
  inMemory?: boolean;
  captureLimit?: number;
  /**
   * the capture ends where the child is first finalized with a special
   * status (ngx_lua's post-subrequest handler copies the body then): an
   * error page made after that is not captured
   */
  captureUntilFinalize?: boolean;
  /**
   * started as the main request ends (srcache's store): it outlives the
   * client connection (nginx's main request waits for it; here it runs on
   * alone), so the client leaving does not abort it
   */
  detached?: boolean;
}

/*
 * nginx's posted requests (ngx_http_post_request, run after the current
 * handler returns): subrequests to start and their done handlers run in
 * the order posted, all that was posted until then in one microtask. Not
 * a process.nextTick each: node's nextTick makes a symbol-keyed object per
 * call (a runtime call), and a callback that leaves ticks queued runs
 * node's tick loop after it, which in Node 20 allocates a Map per run; the
 * client read that starts a srcache fetch now ends with a microtask
 * checkpoint only. What is posted while they run waits for the next batch.
 */
type PostedFn = (sr: SubRequest) => void;
/*
 * Two queues, swapped per run: one takes posts while the other runs. Their
 * arrays keep their size (entries cleared, lengths counted apart): setting
 * an array's length to 0 drops its storage, and growing it again per batch
 * would allocate on every request.
 */
interface PostQueue {
  fns: Array<PostedFn | undefined>;
  args: Array<SubRequest | undefined>;
  n: number;
}
let posting: PostQueue = { fns: [], args: [], n: 0 };
let spare: PostQueue = { fns: [], args: [], n: 0 };
let postedScheduled = false;

function post(fn: PostedFn, sr: SubRequest): void {
  const q = posting;
  const i = q.n++;
  if (i < q.fns.length) {
    q.fns[i] = fn;
    q.args[i] = sr;
  } else {
    q.fns.push(fn);
    q.args.push(sr);
  }
  if (!postedScheduled) {
    postedScheduled = true;
    microtask(runPosted);
  }
}

function runPosted(): void {
  postedScheduled = false;
  const q = posting;
  posting = spare;
  const { fns, args, n } = q;
  let i = 0;
  try {
    for (; i < n; i++) {
      const fn = fns[i]!;
      const sr = args[i]!;
      fns[i] = undefined;
      args[i] = undefined;
      fn(sr);
    }
  } finally {
    // one that threw: the others still run (each had its own tick before), the error goes on to node
    for (i++; i < n; i++) {
      post(fns[i]!, args[i]!);
      fns[i] = undefined;
      args[i] = undefined;
    }
    q.n = 0;
    spare = q;
  }
}

/* an in-memory subrequest's output list: never in the parent's, never read (its end is marked and nothing else) */
const NOWHERE: Postponed = { items: [], ended: false };
/** an in-memory subrequest's body when nothing came */
const EMPTY = Buffer.alloc(0);

export class SubRequest extends HttpRequest {
  readonly out: Postponed;
  /** how many more levels of subrequests this one may start */
  readonly subrequests: number;
  /** echo_subrequest -f: the file's bytes (r.body stays empty, as an in-file buffer reads) */
  readonly fileBody: Buffer | undefined;
  private readonly onDone: ((sr: SubRequest) => void) | undefined;
  /** SubrequestOptions.inMemory: the body is kept (capturedBody()), not output */
  readonly inMemory: boolean;
  /*
   * The kept body: its first chunk, and an array for the others only when
   * there are more (the usual capture is one chunk; an array made by a
   * push holds 17 slots)
   */
  private cap0: Buffer | undefined = undefined;
  private capMore: Buffer[] | undefined = undefined;
  capturedLength = 0;
  capturedOver = false;
  private readonly captureLimit: number;
  private readonly captureUntilFinalize: boolean;
  /** the capture was closed by a special-status finalize (captureUntilFinalize) */
  private captureClosed = false;
  /**
   * the first error the child was finalized with (NGX_ERROR as -1, or a
   * special status) and its status then: what nginx's post-subrequest
   * handler is given (srcache's store logs it)
   */
  failRc: number | undefined = undefined;
  failStatus = 0;
  /** a body filter dropped the end of the child's output (ngx_lua's ngx.arg[2] = false): nginx never saw its last buffer */
  noEof = false;

  constructor(parent: HttpRequest, uri: string, args: string, opts: SubrequestOptions, depth: number) {
    let head: RequestHead = parent.req;
    if (opts.body !== undefined) {
      // the child's own Content-Length (echo_set_content_length_header)
      const p = parent.req;
      const byName = new Map(p.byName);
      byName.set('content-length', String(opts.body.length));
      head = { method: p.method, rawUri: p.rawUri, protocol: p.protocol, version: p.version, headers: p.headers, byName };
    }
    super(parent.conn, head, parent.requestLine, Date.now(), parent.host);
    this.main = parent.main;
    this.parent = parent;
    this.subrequests = depth;
    this.onDone = opts.done;
    this.inMemory = opts.inMemory === true;
    this.out = opts.inMemory ? NOWHERE : { items: [], ended: false };
    this.captureLimit = opts.captureLimit ?? Number.MAX_SAFE_INTEGER;
    this.captureUntilFinalize = opts.captureUntilFinalize === true;
    this.requestUri = parent.requestUri;
    this.method = opts.method ?? 'GET';
    this.serverName = parent.serverName;
    this.srv = parent.srv;
    this.loc = parent.loc;
    this.locConf = parent.locConf;
    this.uri = uri;
    this.args = args;
    this.internal = true;
    this.expectTested = true;
    this.headerLength = parent.headerLength;
    this.keepalive = parent.main.keepalive;
    this.vars = opts.ownVariables ? [] : parent.vars;
    this.fileBody = opts.bodyInFile ? opts.body : undefined;
    if (opts.body !== undefined) {
      this.body = opts.bodyInFile ? [] : [opts.body];
      this.contentLengthIn = opts.body.length;
    } else {
      this.body = parent.body;
      this.contentLengthIn = parent.contentLengthIn;
      this.chunkedIn = parent.chunkedIn;
    }
    // the client body was read (or discarded) for the main request already; a body of its own is read
    this.bodyState = opts.body === undefined && parent.bodyState === 'discard' ? 'discard' : 'read';
  }

  // ------------------------------------------------------------ output

  /** the header filter stops subrequests: nothing reaches the client */
  override sendHeader(): void {
    if (this.headerSent) return;
    this.headerSent = true;
    if (this.errStatus) {
      this.status = this.errStatus;
      this.statusLine = undefined;
    }
    if (this.status === 0) this.status = 200;
    runHeaderFilters(this);
    if (this.method === 'HEAD' || this.status === 204 || this.status === 304) this.headerOnly = true;
    if (this.contentType === undefined) this.contentType = this.defaultContentType();
  }

  /** an in-memory subrequest's body so far, in one Buffer (the chunk itself when there is one) */
  capturedBody(): Buffer {
    const first = this.cap0;
    if (first === undefined) return EMPTY;
    const more = this.capMore;
    if (more === undefined) return first;
    return Buffer.concat([first, ...more], this.capturedLength);
  }

  override writeBody(chunk: Buffer): boolean {
    const main = this.main;
    if (this.inMemory) {
      if (this.capturedOver || this.captureClosed || chunk.length === 0) return true;
      if (this.capturedLength + chunk.length > this.captureLimit) {
        this.capturedOver = true;
        return true;
      }
      if (this.cap0 === undefined) this.cap0 = chunk;
      else (this.capMore ??= []).push(chunk);
      this.capturedLength += chunk.length;
      this.bodyBytesSent += chunk.length;
      return true;
    }
    if (chunk.length === 0 || this.aborted) return !main.conn.congested();
    this.bodyBytesSent += chunk.length;
    this.out.items.push(chunk);
    flush(main);
    return !main.conn.congested();
  }

  override endBody(): void {
    if (this.finished) return;
    this.finished = true;
    this.out.ended = true;
    // `log_subrequest on`: the log phase runs for the subrequest as it is done
    if (this.loc.logSubrequest) for (const log of hooks.log) log(this);
    flush(this.main);
    const done = this.onDone;
    if (done) post(done, this);
  }

  override finalize(rc: number): void {
    if (this.failRc === undefined && (rc === ERROR || rc >= 300) && !this.finished) {
      this.failRc = rc;
      this.failStatus = this.status;
    }
    if (this.captureUntilFinalize && rc >= 300 && !this.headerSent && !this.finished) this.captureClosed = true;
    super.finalize(rc);
  }

  /** an error after the child's output started: nginx terminates the whole request */
  override terminate(): void {
    if (this.finished) return;
    if (this.inMemory) {
      // an in-memory child ends alone: its parent decides what its failure means
      if (this.failRc === undefined) {
        this.failRc = ERROR;
        this.failStatus = this.status;
      }
      this.finished = true;
      this.out.ended = true;
      this.capturedOver = true;
      const done = this.onDone;
      if (done) post(done, this);
      return;
    }
    this.finished = true;
    this.out.ended = true;
    this.main.terminate();
  }

  override onDrain(cb: () => void): void {
    // an in-memory child never waits for the client
    if (this.inMemory) {
      process.nextTick(cb);
      return;
    }
    this.main.onDrain(cb);
  }

  // ------------------------------------------------------------ logging

  /** ngx_http_log_error_handler: the main request's context plus `subrequest: "URI"` */
  override logContext(): string {
    const main = this.main;
    let s = `, client: ${this.conn.remoteAddr}, server: ${firstName(main.srv)}`;
    if (this.requestLine) s += `, request: "${this.requestLine}"`;
    s += `, subrequest: "${this.uri}"`;
    if (this.upstreamAddr !== undefined) s += `, upstream: "${this.upstreamAddr}"`;
    const host = this.req.byName.get('host');
    if (host !== undefined) s += `, host: "${host}"`;
    const ref = this.req.byName.get('referer');
    if (ref !== undefined) s += `, referrer: "${ref}"`;
    return s;
  }
}

/** the postpone filter at the bottom of the main request's chain */
const postponeFilter: BodyFilter = {
  next: undefined,
  body(r: HttpRequest, chunk: Buffer): boolean {
    const list = mainLists.get(r);
    if (!list || list.items.length === 0) return nextBody(r, undefined, chunk);
    if (chunk.length) list.items.push(chunk);
    return !r.conn.congested();
  },
  last(r: HttpRequest): void {
    const list = mainLists.get(r);
    if (!list) {
      r.endBody();
      return;
    }
    list.ended = true;
    flush(r);
  },
};

/**
 * Put a body filter at the bottom of r's chain, above the postpone filter
 * if r has one: where nginx's charset filter sits (it sees r's own output,
 * not its subrequests').
 */
export function insertBottomFilter(r: HttpRequest, make: (next: BodyFilter | undefined) => BodyFilter): void {
  if (r.filter === undefined || r.filter === postponeFilter) {
    r.filter = make(r.filter);
    return;
  }
  let f = r.filter;
  while (f.next !== undefined && f.next !== postponeFilter) f = f.next;
  f.next = make(f.next);
}

function mainList(main: HttpRequest): Postponed {
  let list = mainLists.get(main);
  if (list) return list;
  list = { items: [], ended: false };
  mainLists.set(main, list);
  // at the bottom of the chain: filters above (echo_after_body) see only the main request's own output
  if (!main.filter) main.filter = postponeFilter;
  else {
    let f = main.filter;
    while (f.next) f = f.next;
    f.next = postponeFilter;
  }
  return list;
}

/**
 * Write out everything not held back by an unfinished subrequest. Data a
 * request produced while held back went out in one piece in nginx (the
 * postpone filter appends it to one chain), so a run of chunks is joined:
 * one write, one HTTP/1.1 chunk.
 */
function drain(main: HttpRequest, list: Postponed): boolean {
  const items = list.items;
  let i = 0;
  let complete = true;
  let run: Buffer[] = [];
  const flushRun = (): void => {
    if (run.length) main.writeBody(run.length === 1 ? run[0]! : Buffer.concat(run));
    run = [];
  };
  for (; i < items.length; i++) {
    const it = items[i]!;
    if (it instanceof SubRequest) {
      flushRun();
      if (!drain(main, it.out) || !it.out.ended) {
        complete = false;
        break;
      }
    } else run.push(it);
  }
  flushRun();
  if (i) items.splice(0, i);
  return complete;
}

function flush(main: HttpRequest): void {
  const list = mainLists.get(main);
  if (!list) return;
  if (drain(main, list) && list.ended) {
    mainLists.delete(main);
    main.endBody();
  }
}

/**
 * ngx_http_subrequest: a child of `parent` for `uri` (already split from
 * its args), queued after the parent's output so far and started once the
 * caller returns (nginx posts it). Returns undefined when subrequests nest
 * too deep ("subrequests cycle").
 */
export function createSubrequest(parent: HttpRequest, uri: string, args: string, opts: SubrequestOptions = {}): SubRequest | undefined {
  const left = parent instanceof SubRequest ? parent.subrequests : MAX_SUBREQUESTS;
  if (left === 0) {
    parent.log('error', `subrequests cycle while processing "${uri}"`);
    return undefined;
  }
  const sr = new SubRequest(parent, uri, args, opts, left - 1);
  if (!opts.inMemory) {
    if (parent instanceof SubRequest) parent.out.items.push(sr);
    else mainList(parent).items.push(sr);
  }
  const main = parent.main;
  if (!opts.detached) main.onAbort(() => sr.abort());
  post(opts.detached === true ? startDetached : startSubrequest, sr);
  return sr;
}

/* nginx's posted subrequest runs: unless it, or its main request, was aborted meanwhile */
function startSubrequest(sr: SubRequest): void {
  if (!sr.aborted && !sr.main.aborted) runPhases(sr);
}

/* a detached one (srcache's store) runs unless it was aborted itself */
function startDetached(sr: SubRequest): void {
  if (!sr.aborted) runPhases(sr);
}
