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
 * "srcache HIT"). With 8 MB semi-spaces it runs none, and 30 MB less RSS;
 * scavenges are twice as many and each as cheap (what survives one is the
 * requests in flight).
 */
export const WORKER_HEAP_FLAGS: readonly string[] = ['--max-semi-space-size=8'];

/** the flags to add to `execArgv` for a worker: those the user did not set already (node flags or NODE_OPTIONS) */
export function workerHeapFlags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = `${execArgv.join(' ')} ${nodeOptions ?? ''}`.replace(/_/g, '-');
  return WORKER_HEAP_FLAGS.filter((f) => !given.includes(f.slice(0, f.indexOf('='))));
}
