import { DefaultEndpointer } from './default-endpointer.js';
import { describeArgument } from './describe-argument.js';
import { assertKnownOptions } from './known-options.js';
import type {
  Clock,
  EndpointEntry,
  Endpointer,
  EndpointSnapshot,
  Factory,
  FactoryResult,
  Instancer,
  Logger,
  systemClock,
} from './types.js';

/** Options of {@link endpointer}. */
export interface EndpointerOptions {
  /**
   * What to do while the instancer reports an error. Absent (the default) or `Infinity`: keep serving the last
   * known endpoints for as long as it fails. A number of ms: drop (and close) every endpoint that long after the
   * FIRST error of a failure streak (later errors do not restart the countdown); a good event before then cancels
   * it, and a good event after it builds the endpoints again. `0` drops them at once on error.
   */
  readonly invalidateOnErrorMs?: number;
  /** Where factory and close failures are reported (`warn`/`error`, with the instance `key`). Default: silent. */
  readonly logger?: Logger;
  /**
   * How long `close()` waits, in ms, for factory calls still running and endpoint closes still settling. Past it,
   * `close()` resolves anyway and logs a warning with the keys still pending; what they produce is still closed
   * when they settle (never published). Default 10 000; `Infinity` waits for ever. A factory that never settles
   * (a dial that hangs) would otherwise hold a graceful shutdown for ever.
   */
  readonly closeTimeoutMs?: number;
  /**
   * Time source for `invalidateOnErrorMs` and `closeTimeoutMs`. Default {@link systemClock} (its timers do not
   * keep the process alive).
   */
  readonly clock?: Clock;
}

const ENDPOINTER_OPTIONS = ['invalidateOnErrorMs', 'logger', 'closeTimeoutMs', 'clock'] as const;

/** Default of {@link EndpointerOptions.closeTimeoutMs}. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

/**
 * Follows `instancer` and keeps one endpoint per instance, made by `factory` (go-kit's `sd.NewEndpointer`).
 *
 * - The factory is called exactly once per new instance (by key). An instance whose address or metadata changed is
 *   a replacement: the old endpoint is closed and a new one made. Endpoints of unchanged instances are reused.
 * - A factory that throws, rejects, or returns no `endpoint` function skips that instance (logged as a warning with
 *   its key) and is called again for it on the next instancer event, whatever that event is.
 * - Async factories: results are published as they resolve. A result whose instance was removed or replaced
 *   meanwhile, or that resolves after `close()`, is closed and never published.
 * - Duplicate keys in an event (a source breaking the contract) never give duplicate endpoints: the last wins.
 * - `close` of a {@link FactoryResult} is called exactly once, when its instance goes away, when the endpoints are
 *   invalidated, or on `close()`. Its errors (thrown or rejected) are logged, never thrown.
 * - Errors from the instancer keep the last known endpoints, unless `invalidateOnErrorMs` says otherwise.
 * - `endpoints()` returns a frozen array, ordered by instance key, and the same array until the set changes. A
 *   change is recorded in O(1); the array is rebuilt on the first call after changes (one copy, O(n), at memcpy
 *   speed), or at once while `endpoints$` has subscribers. Events that carry `changes` from the
 *   event processed just before are applied in time proportional to the change; others are diffed against the
 *   current set.
 * - `entries()` lists the same endpoints with their keys and instances, index for index: a frozen array of frozen
 *   {@link EndpointEntry}s, the same array until an entry changes, copied (O(n)) on its first call after a change
 *   and never before. Each entry is made once, when its endpoint is ready, and kept while it is listed.
 * - `snapshot()` shows the same set without building either array: an immutable {@link EndpointSnapshot}
 *   (`endpointAt(i)`, `entryAt(i)` in O(1), `indexOfKey` in O(log n)), the same object until an entry changes.
 *   The set is kept in blocks of at most 1 024 entries that snapshots share: the first read after a change
 *   copies the blocks the change touched and the index of the blocks, not the whole set. Balancers read it.
 * - `endpoints$` is hot, starts with the current snapshot for each subscriber, emits each new snapshot, and
 *   completes after `close()` (having emitted an empty one).
 * - `close()` unsubscribes (it does not stop the instancer, which it does not own), closes every endpoint, waits
 *   for pending factory calls to settle (closing what they return) and for every close to finish — at most
 *   `closeTimeoutMs` (default 10 s; then it resolves and logs what is still pending, which is closed when it
 *   settles). Idempotent.
 *   If the instancer completes, the endpointer keeps its last endpoints until `close()`.
 *
 * @throws TypeError if `instancer` has no `events$`, `factory` is not a function, `invalidateOnErrorMs` or
 *   `closeTimeoutMs` is negative or NaN, or `logger`/`clock` is not one.
 */
export function endpointer<Req = unknown, Res = unknown>(
  instancer: Instancer,
  factory: Factory<Req, Res>,
  options: EndpointerOptions = {},
): Endpointer<Req, Res> {
  if (
    typeof instancer !== 'object' ||
    instancer === null ||
    typeof (instancer as { events$?: { subscribe?: unknown } }).events$?.subscribe !== 'function'
  ) {
    throw new TypeError(
      `endpointer: expected an Instancer (an object with events$), got ${describeArgument(instancer)}`,
    );
  }
  if (typeof factory !== 'function') {
    throw new TypeError(`endpointer: factory must be a function, got ${describeArgument(factory)}`);
  }
  if (typeof options === 'object' && options !== null) {
    assertKnownOptions('endpointer', options, ENDPOINTER_OPTIONS, {
      invalidateOnError: 'invalidateOnErrorMs',
    });
  }
  const { invalidateOnErrorMs, closeTimeoutMs, logger, clock } = options;
  if (logger !== undefined && typeof logger?.warn !== 'function') {
    throw new TypeError(
      `endpointer: logger must be a Logger (debug/info/warn/error), got ${describeArgument(logger)}`,
    );
  }
  if (clock !== undefined && (typeof clock?.setTimeout !== 'function' || typeof clock.now !== 'function')) {
    throw new TypeError(
      `endpointer: clock must be a Clock (now, setTimeout), got ${describeArgument(clock)}`,
    );
  }
  if (
    invalidateOnErrorMs !== undefined &&
    (typeof invalidateOnErrorMs !== 'number' || Number.isNaN(invalidateOnErrorMs) || invalidateOnErrorMs < 0)
  ) {
    throw new TypeError(
      `endpointer: invalidateOnErrorMs must be a number >= 0 (or absent), got ${describeArgument(invalidateOnErrorMs)}`,
    );
  }
  if (
    closeTimeoutMs !== undefined &&
    (typeof closeTimeoutMs !== 'number' || Number.isNaN(closeTimeoutMs) || closeTimeoutMs < 0)
  ) {
    throw new TypeError(
      `endpointer: closeTimeoutMs must be a number >= 0 (or absent), got ${describeArgument(closeTimeoutMs)}`,
    );
  }
  return new DefaultEndpointer(instancer, factory, {
    invalidateOnErrorMs,
    logger,
    clock,
    closeTimeoutMs: closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS,
  });
}
