/*
 * A microtask without node's queueMicrotask wrapper. node's queueMicrotask
 * makes an AsyncResource (an async id, the init hooks' check) and a bound
 * function per call, for async_hooks' sake; redis2d uses no async hooks,
 * and the engine posts a microtask or two per request (subrequests to
 * start, their done handlers). A reaction on one resolved promise is V8's
 * own job, nothing more. An exception thrown by fn rejects the derived
 * promise, which node (--unhandled-rejections=throw, its default) raises
 * as an uncaught exception, as it would from queueMicrotask.
 */
const RESOLVED: Promise<void> = Promise.resolve();

export function microtask(fn: () => void): void {
  void RESOLVED.then(fn);
}
