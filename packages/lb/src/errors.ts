/**
 * Thrown by {@link Balancer.endpoint} when the endpointer has no endpoints at that moment (no instances, or every
 * factory call failed). Inside {@link retry} it counts as a failed attempt and is retried like any other error
 * (endpoints may appear before the next attempt).
 */
export class NoEndpointsError extends Error {
  override readonly name = 'NoEndpointsError';

  /** @param message defaults to `'no endpoints available'`. */
  constructor(message = 'no endpoints available') {
    super(message);
  }
}

/**
 * A time limit of {@link retry} ran out.
 * - `scope: 'attempt'`: one attempt took longer than `perAttemptTimeoutMs`; its signal was aborted with this error
 *   and it counts as a failed attempt (retried if attempts remain and `shouldRetry` agrees).
 * - `scope: 'overall'`: the whole call took longer than `timeoutMs`; it is the `cause` of the {@link RetryError}.
 */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
  /** Which limit ran out. */
  readonly scope: 'attempt' | 'overall';
  /** The limit that ran out, in milliseconds. */
  readonly timeoutMs: number;

  constructor(scope: 'attempt' | 'overall', timeoutMs: number, message?: string) {
    super(
      message ??
        (scope === 'attempt'
          ? `attempt timed out after ${timeoutMs} ms`
          : `retry timed out after ${timeoutMs} ms overall`),
    );
    this.scope = scope;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Why {@link retry} gave up:
 * - `exhausted`: every one of `maxAttempts` attempts failed;
 * - `not-retryable`: `shouldRetry` returned false (or threw) for an attempt's error;
 * - `budget-exhausted`: a retry was due (attempts remained and `shouldRetry` agreed) but the `budget` (a shared
 *   {@link RetryBudget}) allowed no more retries at that moment; the cause is the last attempt's error;
 * - `timeout`: the overall `timeoutMs` ran out;
 * - `aborted`: the caller's signal (the `signal` option or the per-call `options.signal`) fired.
 */
export type RetryGiveUpReason = 'exhausted' | 'not-retryable' | 'budget-exhausted' | 'timeout' | 'aborted';

/** What a {@link RetryError} is made of. */
export interface RetryErrorInit {
  /** One error per attempt made, in order. Copied. */
  readonly errors: readonly Error[];
  /** The final reason. */
  readonly cause: Error;
  /** Why retrying stopped. */
  readonly reason: RetryGiveUpReason;
}

/**
 * The only way the endpoint made by {@link retry} rejects: it keeps every attempt's error, unlike go-kit, which
 * returns a bare deadline error on timeout and loses them.
 *
 * - `errors`: one entry per attempt made, in order (`errors.length === attempts`). An attempt cut short by the
 *   overall timeout or an abort has the timeout / abort reason as its error.
 * - `cause`: the final reason: the last attempt's error when attempts are exhausted, the budget is spent or the
 *   error is not retryable;
 *   the {@link TimeoutError} (scope `'overall'`) on timeout; the signal's reason on abort (a non-Error reason is
 *   wrapped in an Error whose `cause` is the raw reason). When the time runs out or the abort comes between two
 *   attempts (during the backoff delay) or before the first one, `cause` is not among `errors`.
 * - `message`: summarises the attempts and the final reason, e.g.
 *   `"gave up after 3 attempts (exhausted): connect ECONNREFUSED 127.0.0.1:1"`.
 */
export class RetryError extends Error {
  override readonly name = 'RetryError';
  /** One error per attempt made, in order. */
  readonly errors: Error[];
  /** The final reason (see the class doc). */
  override readonly cause: Error;
  /** Number of attempts made (started), including one cut short by a timeout or abort. */
  readonly attempts: number;
  /** Why retrying stopped. */
  readonly reason: RetryGiveUpReason;

  constructor(init: RetryErrorInit) {
    const attempts = init.errors.length;
    super(
      `gave up after ${attempts} attempt${attempts === 1 ? '' : 's'} (${init.reason}): ${init.cause.message}`,
      { cause: init.cause },
    );
    this.errors = [...init.errors];
    this.cause = init.cause;
    this.attempts = attempts;
    this.reason = init.reason;
  }
}

/** `value` itself if it is an Error, else an Error describing it (with the raw value as `cause`). */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(`non-Error value: ${describe(value)}`, { cause: value });
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
