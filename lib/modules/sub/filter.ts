import { evalComplexValue } from '../../http/eval.js';
import { nextBody, nextLast, type BodyFilter, type HttpRequest } from '../../http/http_request.js';
import { insertBottomFilter } from '../../http/subrequest.js';
import { testContentType } from '../../http/types.js';
import type { SubLocConf } from './conf.js';
import { buildTables, type Pattern, type Tables } from './tables.js';

/*
 * sub_filter's header and body filters (ngx_http_sub_filter_module). The
 * body is scanned as one stream: a position whose window may still match
 * is held back until the next piece (at most the longest pattern's length
 * - 1 bytes), everything before it goes on at once. Replacements are
 * evaluated on first use; with sub_filter_once each pattern is replaced
 * once.
 */

const lower = (c: number): number => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c);

const enum Rc {
  Ok,
  Declined,
  Again,
}

function matchAt(buf: Buffer, start: number, m: string): Rc {
  let p = start;
  let k = 0;
  for (; p < buf.length && k < m.length; p++, k++) if (lower(buf[p]!) !== m.charCodeAt(k)) return Rc.Declined;
  return k === m.length ? Rc.Ok : Rc.Again;
}

class SubFilter implements BodyFilter {
  next: BodyFilter | undefined;
  private pending = Buffer.alloc(0);
  /** offset of the window's last character, relative to pending */
  private off: number;
  private cur = 0;
  private readonly subs: Array<string | undefined>;
  private applied = 0;
  private done = false;

  constructor(
    next: BodyFilter | undefined,
    private readonly conf: SubLocConf,
    private readonly t: Tables,
  ) {
    this.next = next;
    this.off = t.min - 1;
    this.subs = new Array<string | undefined>(t.patterns.length);
  }

  body(r: HttpRequest, chunk: Buffer): boolean {
    if (this.done) {
      if (this.pending.length) {
        const p = this.pending;
        this.pending = Buffer.alloc(0);
        nextBody(r, this.next, p);
      }
      return nextBody(r, this.next, chunk);
    }
    const out = this.scan(r, chunk.length ? Buffer.concat([this.pending, chunk]) : this.pending, false);
    if (out.length === 0) return !r.conn.congested();
    return nextBody(r, this.next, out);
  }

  last(r: HttpRequest): void {
    const out = this.done ? this.pending : this.scan(r, this.pending, true);
    this.pending = Buffer.alloc(0);
    if (out.length) nextBody(r, this.next, out);
    nextLast(r, this.next);
  }

  /** ngx_http_sub_parse over the held bytes and the new piece; returns what may go on */
  private scan(r: HttpRequest, buf: Buffer, final: boolean): Buffer {
    const t = this.t;
    const once = this.conf.once === 1;
    const parts: Buffer[] = [];
    let emitted = 0;
    let off = this.off;
    let hold = -1;
    while (off < buf.length) {
      const c = lower(buf[off]!);
      const s = t.shift[c]!;
      if (s > 0) {
        off += s;
        continue;
      }
      const start = off - t.min + 1;
      let i = Math.max(t.index[c]!, this.cur);
      const j = t.index[c + 1]!;
      let matched = false;
      for (; i < j; i++) {
        if (once && this.subs[i] !== undefined) continue;
        const m = t.patterns[i]!.match;
        const rc = matchAt(buf, start, m);
        if (rc === Rc.Declined) continue;
        this.cur = i;
        if (rc === Rc.Again) {
          hold = start;
          break;
        }
        if (start > emitted) parts.push(buf.subarray(emitted, start));
        parts.push(Buffer.from(this.replacement(r, i), 'latin1'));
        emitted = start + m.length;
        off += m.length;
        matched = true;
        // the next position tries every pattern again
        this.cur = 0;
        if (once && ++this.applied === t.patterns.length) this.done = true;
        break;
      }
      if (hold !== -1 || this.done) break;
      if (matched) continue;
      off++;
      this.cur = 0;
    }
    if (final || this.done) {
      if (emitted < buf.length) parts.push(buf.subarray(emitted));
      this.pending = Buffer.alloc(0);
      this.off = 0;
      return Buffer.concat(parts);
    }
    // positions whose window runs past the data so far wait for the next piece
    const keep = Math.max(emitted, hold !== -1 ? hold : Math.min(off - t.min + 1, buf.length));
    if (keep > emitted) parts.push(buf.subarray(emitted, keep));
    this.pending = Buffer.from(buf.subarray(keep));
    this.off = off - keep;
    return Buffer.concat(parts);
  }

  private replacement(r: HttpRequest, i: number): string {
    let v = this.subs[i];
    if (v === undefined) {
      v = evalComplexValue(r, this.conf.pairs![this.t.patterns[i]!.pair]!.value);
      this.subs[i] = v;
    }
    return v;
  }
}

export function subHeaderFilter(r: HttpRequest, conf: SubLocConf | undefined): void {
  if (conf === undefined || conf.pairs === undefined || r.contentLength === 0 || !testContentType(r, conf.types!)) return;
  let tables = conf.tables;
  if (tables === undefined) {
    // patterns with variables: this request's values, lowercased; empty ones left out
    const list: Pattern[] = [];
    conf.pairs.forEach((p, i) => {
      const m = p.match.constant ?? evalComplexValue(r, p.match);
      if (m.length) list.push({ match: m.replace(/[A-Z]+/g, (x) => x.toLowerCase()), pair: i });
    });
    if (list.length === 0) return;
    tables = buildTables(list);
  }
  if (r === r.main) {
    r.contentLength = -1;
    if (!r.ownContentLength) {
      r.headersOut = r.headersOut.filter(([k]) => k.toLowerCase() !== 'content-length');
      r.ownContentLength = true;
    }
    if (!conf.lastModified) {
      // ngx_http_clear_last_modified, ngx_http_clear_etag
      const lm = r.lastModified;
      const et = r.etag;
      r.lastModifiedTime = -1;
      r.lastModified = undefined;
      if (lm !== undefined || et !== undefined) r.headersOut = r.headersOut.filter((h) => h !== lm && h !== et);
      r.etag = undefined;
    } else weakEtag(r);
  }
  const t = tables;
  insertBottomFilter(r, (next) => new SubFilter(next, conf, t));
}

/** ngx_http_weak_etag */
function weakEtag(r: HttpRequest): void {
  const e = r.etag;
  if (e === undefined) return;
  const v = e[1];
  if (v.length > 2 && v.startsWith('W/')) return;
  const i = r.headersOut.indexOf(e);
  if (v.length < 1 || v[0] !== '"') {
    if (i !== -1) r.headersOut.splice(i, 1);
    r.etag = undefined;
    return;
  }
  const weak: [string, string] = [e[0], `W/${v}`];
  if (i !== -1) r.headersOut[i] = weak;
  r.etag = weak;
}
