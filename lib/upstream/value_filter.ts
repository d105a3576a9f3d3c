/*
 * The value part of a key-value reply whose length the header gave: N
 * value bytes, then a fixed trailer (ngx_http_redis_filter: CR LF;
 * ngx_http_memc_get_cmd_filter: CR LF END CR LF). The value's bytes go on
 * to a sink, the trailer is checked and dropped. `length` counts what is
 * still expected, trailer included (the modules' u->length), `rest` what
 * is left of the trailer. With a bad trailer (or bytes after it) the
 * client still gets exactly N bytes, the response is complete, and the
 * connection is not kept: the module logs `... sent invalid trailer`.
 */

/**
 * ngx_atoof over b[from, to): the length a key-value reply's header gives
 * (Redis's `$N`, memcached's `VALUE key flags N`): digits only, at least
 * one, else -1; past 2^53 is -1 too (nginx's limit is 2^63, but no value
 * either server holds is that large).
 */
export function atoof(b: Buffer, from: number, to: number): number {
  if (to <= from) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = b[i]!;
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
    if (n > Number.MAX_SAFE_INTEGER) return -1;
  }
  return n;
}

/** What one piece of the value part was. */
export const enum Piece {
  /** value bytes (sent on), more expected */
  More,
  /** the value and its trailer are complete */
  Done,
  /** complete, but the trailer was wrong or more followed */
  BadTrailer,
}

/** where the value's bytes go (an object, not a closure per reply) */
export interface ValueSink {
  /** b[from, to) is value (views are made only where the bytes go out) */
  valueBytes(b: Buffer, from: number, to: number): void;
}

export class ValueFilter {
  private length: number;
  private rest: number;

  constructor(
    valueLength: number,
    private readonly trailer: Buffer,
  ) {
    this.length = valueLength + trailer.length;
    this.rest = trailer.length;
  }

  /** Feed data[at..]; `sink` gets the part of it that is value. Returns what the piece made of the reply. */
  feed(data: Buffer, at: number, sink: ValueSink): Piece {
    const bytes = data.length - at;
    if (bytes <= 0) return this.length === 0 ? Piece.Done : Piece.More;
    const tlen = this.trailer.length;
    if (this.length === this.rest) {
      // only (part of) the trailer is left
      if (!this.trailerAt(data, at, bytes, tlen - this.rest)) return this.bad();
      this.length -= bytes;
      this.rest -= bytes;
      return this.length === 0 ? Piece.Done : Piece.More;
    }
    const value = this.length - tlen;
    if (bytes <= value) {
      this.length -= bytes;
      sink.valueBytes(data, at, data.length);
      return Piece.More;
    }
    if (value > 0) sink.valueBytes(data, at, at + value);
    const tail = bytes - value;
    if (!this.trailerAt(data, at + value, tail, 0)) return this.bad();
    this.rest -= tail;
    this.length = this.rest;
    return this.length === 0 ? Piece.Done : Piece.More;
  }

  /* data[at, at+n) is the trailer from its offset `from` (more than what is left of it: wrong) */
  private trailerAt(data: Buffer, at: number, n: number, from: number): boolean {
    const t = this.trailer;
    if (from + n > t.length) return false;
    for (let i = 0; i < n; i++) if (data[at + i] !== t[from + i]) return false;
    return true;
  }

  private bad(): Piece {
    this.length = 0;
    this.rest = 0;
    return Piece.BadTrailer;
  }
}
