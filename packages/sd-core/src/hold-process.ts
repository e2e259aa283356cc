/**
 * The one place where sdkit keeps a process alive on purpose (see "Process lifetime" in docs/architecture.md).
 *
 * Background upkeep (keep-alives, watch reconnects, TTL sweeps, invalidation timers) runs on unref'd timers and
 * never keeps a process alive. A promise sdkit hands to a caller does, until it settles: otherwise a script that
 * awaits it at top level, with nothing else holding the event loop, would exit in the middle of the `await`
 * (Node's exit code 13), e.g. while that promise waits on an unref'd backoff timer.
 * @module
 */

/** Outstanding holds; the shared timer exists while it is above 0. */
let holds = 0;
let timer: ReturnType<typeof setInterval> | undefined;
const noop = (): void => {};
/** About 12 days: the timer never needs to fire, it only has to exist. */
const HOLD_INTERVAL_MS = 2 ** 30;

/**
 * Keeps the process alive until the returned function is called (idempotent). Holds are counted: one ordinary
 * (ref'd) interval timer exists while any hold is outstanding, none otherwise. Works wherever `setInterval`
 * keeps a runtime alive (Node, Deno, Bun); nothing Node-only.
 */
export function holdProcess(): () => void {
  if (holds++ === 0) timer = setInterval(noop, HOLD_INTERVAL_MS);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holds === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };
}

/**
 * Returns `promise` after arranging that the process stays alive until it settles (see {@link holdProcess}).
 * For every promise an sdkit API hands to its caller that may wait on timers or I/O that do not hold the process.
 */
export function holdUntilSettled<T>(promise: Promise<T>): Promise<T> {
  const release = holdProcess();
  promise.then(release, release);
  return promise;
}

/** Number of holds outstanding (for tests). @internal */
export function processHolds(): number {
  return holds;
}
