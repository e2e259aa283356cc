import { inspect } from 'node:util';

/**
 * The part of an RxJS `Observable` that {@link waitFor} uses; any rxjs `Observable<T>` (or other Subscribable)
 * fits, so this package needs no runtime dependency on rxjs.
 */
export interface SubscribableLike<T> {
  subscribe(observer: { next: (value: T) => void; error: (err: unknown) => void; complete: () => void }): {
    unsubscribe(): void;
  };
}

/** Default bound for {@link waitFor} and {@link eventually}, in milliseconds. */
export const DEFAULT_WAIT_MS = 10_000;

/** A short, one-line rendering of a value for failure messages. */
export function describeValue(value: unknown): string {
  const text = inspect(value, { depth: 4, breakLength: Number.POSITIVE_INFINITY, maxArrayLength: 20 });
  return text.length > 800 ? `${text.slice(0, 800)}…` : text;
}

function checkArgs(what: string, timeoutMs: number, fn: string): void {
  if (typeof what !== 'string')
    throw new TypeError(`${fn}: 'what' must be a string, got ${describeValue(what)}`);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new TypeError(`${fn}: timeoutMs must be a positive finite number, got ${describeValue(timeoutMs)}`);
  }
}

/**
 * Subscribes to `source$` and resolves with the first value for which `predicate` returns true, then
 * unsubscribes. Rejects (and unsubscribes) when `timeoutMs` passes first, when the source errors, when it
 * completes without a match, or when `predicate` throws; every rejection message names `what` and the last value
 * seen (or says none was seen). Values emitted synchronously during subscribe are seen. The timer is cleared on
 * settle, so nothing is left behind.
 */
export function waitFor<T>(
  source$: SubscribableLike<T>,
  predicate: (v: T) => boolean,
  what: string,
  timeoutMs: number = DEFAULT_WAIT_MS,
): Promise<T> {
  checkArgs(what, timeoutMs, 'waitFor');
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let seen = false;
    let last: T | undefined;
    let subscription: { unsubscribe(): void } | undefined;
    const lastSeen = (): string => (seen ? `last value: ${describeValue(last)}` : 'no value was emitted');
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      subscription?.unsubscribe();
      fn();
    };
    const timer = setTimeout(() => {
      finish(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${lastSeen()}`)));
    }, timeoutMs);
    subscription = source$.subscribe({
      next: (value) => {
        if (settled) return;
        seen = true;
        last = value;
        let matched: boolean;
        try {
          matched = predicate(value);
        } catch (err) {
          finish(() =>
            reject(
              new Error(`predicate threw while waiting for ${what}: ${String(err)}; ${lastSeen()}`, {
                cause: err,
              }),
            ),
          );
          return;
        }
        if (matched) finish(() => resolve(value));
      },
      error: (err) => {
        finish(() =>
          reject(
            new Error(`source errored while waiting for ${what}: ${String(err)}; ${lastSeen()}`, {
              cause: err,
            }),
          ),
        );
      },
      complete: () => {
        finish(() => reject(new Error(`source completed before ${what}; ${lastSeen()}`)));
      },
    });
    // Settled synchronously during subscribe: the subscription exists only now.
    if (settled) subscription.unsubscribe();
  });
}

/**
 * Calls `fn` repeatedly (first at once, then every 25 ms growing to 250 ms) until it resolves with a truthy value,
 * and resolves with that value. A throw or rejection from `fn` counts as "not yet". Rejects after `timeoutMs` with
 * a message naming `what` and the last result or error. For states that have no event to wait on (e.g. etcd
 * state); prefer {@link waitFor} when there is an observable.
 */
export async function eventually<T>(
  fn: () => Promise<T | undefined | false>,
  what: string,
  timeoutMs: number = DEFAULT_WAIT_MS,
): Promise<T> {
  checkArgs(what, timeoutMs, 'eventually');
  const deadline = Date.now() + timeoutMs;
  let interval = 25;
  let last = 'no attempt finished';
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      last = `last result: ${describeValue(value)}`;
    } catch (err) {
      last = `last error: ${err instanceof Error ? err.message : String(err)}`;
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${last}`);
    await new Promise((r) => setTimeout(r, Math.min(interval, left)));
    interval = Math.min(interval * 2, 250);
  }
}
