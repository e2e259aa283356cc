import type { Clock, Instancer, InstancerEvent } from '@sdkit/sd-core';

/** What {@link waitForEvent} found. */
export interface WaitResult {
  /** The first event `accept` took; `undefined` when none came within the time. */
  readonly accepted: InstancerEvent | undefined;
  /** The last event seen (the accepted one, or the last before the time ran out), if any. */
  readonly last: InstancerEvent | undefined;
}

/**
 * Waits for the first event of `instancer` (the latest one included: `events$` replays it) that `accept` takes,
 * for at most `timeoutMs` on `clock`, or until `events$` completes. Never rejects. The timer does not hold the
 * process; the caller's promise does (the CLI holds its whole run).
 */
export function waitForEvent(
  instancer: Instancer,
  accept: (event: InstancerEvent) => boolean,
  clock: Clock,
  timeoutMs: number,
): Promise<WaitResult> {
  return new Promise<WaitResult>((resolve) => {
    let last: InstancerEvent | undefined;
    let done = false;
    let cancelTimer = (): void => {};
    const finish = (accepted: InstancerEvent | undefined): void => {
      if (done) return;
      done = true;
      cancelTimer();
      queueMicrotask(() => subscription.unsubscribe());
      resolve({ accepted, last });
    };
    const subscription = instancer.events$.subscribe({
      next(event) {
        last = event;
        if (accept(event)) finish(event);
      },
      complete: () => finish(undefined),
    });
    if (!done) cancelTimer = clock.setTimeout(() => finish(undefined), timeoutMs);
  });
}
