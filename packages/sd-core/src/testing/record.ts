import type { Observable } from 'rxjs';

/** What {@link record} collected so far. Live: it keeps filling until `unsubscribe()` or completion. */
export interface Recording<T> {
  /** Every value emitted, in order. */
  readonly values: T[];
  /** Whether the stream completed / errored (sdkit streams never error: a test can assert `errored === false`). */
  readonly state: { completed: boolean; errored: boolean };
  /** Stops recording. */
  unsubscribe(): void;
}

/**
 * Subscribes to `source$` and records everything it emits, for assertions on sdkit's stream contracts (hot,
 * replay of the latest value, distinct values only, completion, never an error).
 */
export function record<T>(source$: Observable<T>): Recording<T> {
  const values: T[] = [];
  const state = { completed: false, errored: false };
  const sub = source$.subscribe({
    next: (v) => values.push(v),
    complete: () => {
      state.completed = true;
    },
    error: () => {
      state.errored = true;
    },
  });
  return { values, state, unsubscribe: () => sub.unsubscribe() };
}
