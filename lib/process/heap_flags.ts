/*
 * V8 heap settings a worker is started with (the master adds them to a
 * worker's node flags, lib/process/master.ts; a single process started
 * with `master_process off` can be given the same through NODE_OPTIONS).
 *
 * A worker's old generation is small (~12 MB live) while Node's default
 * young generation grows to 16 MB semi-spaces under load. V8 starts
 * incremental marking as soon as the old generation's room left is not
 * larger than the young generation's capacity, and right after a
 * mark-compact that room (~31 MB) is just under the two semi-spaces: a
 * worker serving 10 KiB pages from Redis ran a mark-compact every ~30 ms,
 * with its incremental steps and array-buffer sweeping (bench/PROFILE.md,
 * "srcache HIT"). 8 MB semi-spaces first stopped that; with the raw client
 * socket the same page cache ran 25 mark-compacts in 5 s again at 8 MB,
 * and a scavenge's pause grows with the semi-space (what survives one is
 * copied): srcache HIT under wrk, 50 connections, alternating runs:
 *   8 MB: 298 scavenges of 0.50 ms (max 1.9), 25 mark-compacts, p99 5.5-6.9 ms
 *   2 MB: 1098 scavenges of 0.35 ms, no mark-compact, p99 2.6-3.5 ms
 *   1 MB: 2702 scavenges of 0.19 ms (max 5.6), p99 3.3-4.0 ms
 * with the same CPU per request (19.9-22.9 µs at 2 MB, 20.4-22.4 at 8;
 * nginx's p99 2.0-3.5 ms in the same runs). So 2 MB.
 *
 * And single-threaded GC: a scavenge has a fixed part (~0.2 ms here with
 * ~100 KB surviving), and V8's parallel scavenge hands part of it to
 * helper threads, which on a host whose cores are all busy (one worker
 * per core, as nginx is deployed; the client and Redis on the other core
 * in the benchmark) wait to be scheduled while the worker waits for them.
 * srcache HIT under wrk, A/B in the same runs (bench/srcache.ts --base .
 * --base-node-flags --single-threaded-gc), 11 alternating rounds: CPU per
 * request lower in 8 (e.g. 22.0/17.5, 21.8/18.2, 20.4/17.0 µs), req/s
 * 1.00-1.04x nginx's against 0.88-1.01x, p99 0.82-0.85x against
 * 0.84-0.93x. The worker's helper threads had done 4.6 % of its CPU.
 */
export const WORKER_HEAP_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--single-threaded-gc'];

/* a V8 flag's name: without its dashes, a `no-` and a value; `_` as `-` */
function flagName(f: string): string {
  const eq = f.indexOf('=');
  return (eq === -1 ? f : f.slice(0, eq)).replace(/_/g, '-').replace(/^--?(no-)?/, '');
}

/** the flags to add to `execArgv` for a worker: those the user did not set already, either way (node flags or NODE_OPTIONS) */
export function workerHeapFlags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = new Set([...execArgv, ...(nodeOptions ?? '').split(/\s+/)].filter((a) => a.startsWith('-')).map(flagName));
  return WORKER_HEAP_FLAGS.filter((f) => !given.has(flagName(f)));
}
