/*
 * A small whole-value RESP2/RESP3 parser for the cluster's control
 * connection (CLUSTER SHARDS / CLUSTER SLOTS / COMMAND replies): those
 * replies are read whole before they are used, unlike client replies which
 * are only framed and streamed (lib/upstream/resp_scanner.ts).
 */

export class RespError {
  constructor(readonly message: string) {}
}

export type RespValue = string | number | null | RespError | RespValue[];

/** the value at `pos` and where it ends; undefined when more bytes are needed */
export function parseResp(b: Buffer, pos: number): [RespValue, number] | undefined {
  if (pos >= b.length) return undefined;
  const eol = b.indexOf('\r\n', pos, 'latin1');
  if (eol < 0) return undefined;
  const type = b[pos]!;
  const line = b.toString('latin1', pos + 1, eol);
  let p = eol + 2;
  switch (type) {
    case 0x2b: // +
    case 0x28: // ( big number
    case 0x2c: // , double
      return [line, p];
    case 0x23: // # boolean
      return [line === 't' ? 1 : 0, p];
    case 0x2d: // -
      return [new RespError(line), p];
    case 0x3a: // :
      return [Number(line), p];
    case 0x5f: // _ null
      return [null, p];
    case 0x24: // $
    case 0x3d: {
      // = verbatim
      const n = Number(line);
      if (n < 0) return [null, p];
      if (p + n + 2 > b.length) return undefined;
      return [b.toString('latin1', p, p + n), p + n + 2];
    }
    case 0x2a: // *
    case 0x7e: // ~ set
    case 0x3e: // > push
    case 0x25: {
      // % map: flattened into key, value pairs
      let n = Number(line);
      if (n < 0) return [null, p];
      if (type === 0x25) n *= 2;
      const out: RespValue[] = [];
      for (let i = 0; i < n; i++) {
        const v = parseResp(b, p);
        if (v === undefined) return undefined;
        out.push(v[0]);
        p = v[1];
      }
      return [out, p];
    }
    default:
      throw new Error(`bad RESP type byte ${type}`);
  }
}
