import { ReplyScanner, ScanResult } from '../../upstream/resp_scanner.js';

/*
 * A request of several commands redirected by -ASK: ASKING covers only the
 * command right after it, so each command is sent after one of its own
 * (ASKING c1 ASKING c2 ...). This drops their +OK replies from the reply
 * stream (after `lead` leading replies, every other reply, the first one
 * first), framing replies with the reply scanner, before anything else
 * sees the bytes (handler.ts).
 */
export class AskingFilter {
  private scanner = new ReplyScanner(1);
  private index = 0;

  constructor(private readonly lead: number) {}

  private keeps(): boolean {
    return this.index >= this.lead && ((this.index - this.lead) & 1) === 1;
  }

  /** the bytes of `chunk` that belong to the request's own replies */
  apply(chunk: Buffer): Buffer {
    const keep: Buffer[] = [];
    let off = 0;
    while (off < chunk.length) {
      const r = this.scanner.feed(chunk, off);
      if (r === ScanResult.Done) {
        const end = this.scanner.end;
        if (this.keeps()) keep.push(chunk.subarray(off, end));
        this.index++;
        this.scanner = new ReplyScanner(1);
        off = end;
        continue;
      }
      // a reply goes on in the next chunk (or is malformed: passed on, the reader reports it)
      if (this.keeps() || r === ScanResult.Invalid) keep.push(chunk.subarray(off));
      break;
    }
    return keep.length === 1 ? keep[0]! : Buffer.concat(keep);
  }
}
