/*
 * RESP request encoding for redis2_query: every command goes out as an array
 * of bulk strings (`*N\r\n$len\r\narg\r\n...`), so arguments with spaces,
 * CR LF or any byte are safe. All the commands of one location are packed
 * into a single Buffer (one write, pipelined), sized exactly up front so no
 * big value is ever copied through string concatenation.
 */

/** One argument: a byte string (latin1) or raw bytes. */
export type RespArg = string | Buffer;

/* decimal digits of a non-negative integer (ngx_get_num_size) */
export function numSize(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

function argLength(a: RespArg): number {
  // a latin1 byte string has one char per byte
  return a.length;
}

/** The exact encoded size of `cmds`. */
export function encodedSize(cmds: readonly (readonly RespArg[])[]): number {
  let size = 0;
  for (const cmd of cmds) {
    size += 1 + numSize(cmd.length) + 2;
    for (const a of cmd) {
      const len = argLength(a);
      size += 1 + numSize(len) + 2 + len + 2;
    }
  }
  return size;
}

function putHeader(buf: Buffer, off: number, type: number, n: number): number {
  buf[off++] = type;
  off += buf.write(String(n), off, 'latin1');
  buf[off++] = 13;
  buf[off++] = 10;
  return off;
}

/** Encode several commands into one Buffer, ready for a single write. */
export function encodeCommands(cmds: readonly (readonly RespArg[])[]): Buffer {
  const buf = Buffer.allocUnsafe(encodedSize(cmds));
  let off = 0;
  for (const cmd of cmds) {
    off = putHeader(buf, off, 42 /* * */, cmd.length);
    for (const a of cmd) {
      off = putHeader(buf, off, 36 /* $ */, a.length);
      off += typeof a === 'string' ? buf.write(a, off, 'latin1') : a.copy(buf, off);
      buf[off++] = 13;
      buf[off++] = 10;
    }
  }
  if (off !== buf.length) {
    // the module checks the same thing ("redis2_query buffer error")
    throw new Error(`redis2: redis2_query buffer error ${off} != ${buf.length}`);
  }
  return buf;
}
