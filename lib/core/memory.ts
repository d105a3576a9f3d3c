import { readFileSync } from 'node:fs';

/*
 * Whether a malloc() of `size` bytes would fail on this machine, for the
 * few places where nginx allocates what the configuration asks at once
 * (upstream `keepalive N` allocates N cache items while the config is
 * read): Linux's overcommit policy decides. Mode 0 (heuristic) refuses a
 * single allocation larger than RAM + swap, mode 1 only what exceeds the
 * address space, mode 2 what exceeds the commit limit still free. Off
 * Linux, nothing is refused.
 */

let cached: { mode: number; limit: bigint } | undefined;

function meminfo(): Map<string, bigint> {
  const m = new Map<string, bigint>();
  for (const line of readFileSync('/proc/meminfo', 'latin1').split('\n')) {
    const r = /^(\w+):\s+(\d+) kB/.exec(line);
    if (r) m.set(r[1]!, BigInt(r[2]!) * 1024n);
  }
  return m;
}

function policy(): { mode: number; limit: bigint } {
  if (cached) return cached;
  try {
    const mode = Number(readFileSync('/proc/sys/vm/overcommit_memory', 'latin1').trim());
    const mi = meminfo();
    let limit: bigint;
    if (mode === 1) limit = 1n << 47n;
    else if (mode === 2) limit = (mi.get('CommitLimit') ?? 0n) - (mi.get('Committed_AS') ?? 0n);
    else limit = (mi.get('MemTotal') ?? 0n) + (mi.get('SwapTotal') ?? 0n);
    cached = { mode, limit };
  } catch {
    cached = { mode: -1, limit: 1n << 64n };
  }
  return cached;
}

/** malloc(size) would fail (size as nginx computes it: modulo 2^64) */
export function mallocFails(size: bigint): boolean {
  return size > policy().limit;
}
