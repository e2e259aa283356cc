import {
  assertKnownOptions,
  type Backoff,
  type BackoffDefaults,
  type BackoffOptions,
  type Clock,
  createBackoff,
  type Endpoint,
  type EndpointOptions,
  holdProcess,
  systemClock,
} from '@sdkit/sd-core';
import pRetry from 'p-retry';
import type { Balancer, PickContext } from './balancer.js';
import { typeName } from './balancer.js';
import {
  NoEndpointsError,
  RetryError,
  type RetryErrorInit,
  type RetryGiveUpReason,
  TimeoutError,
  toError,
} from './errors.js';
import type { RetryBudget } from './retry-budget.js';
import { type RetryTelemetry, type RetryTelemetryOptions, retryTelemetryOf } from './retry-telemetry.js';

/** sd-core's one backoff shape (`initialMs`, `maxMs`, `factor`, `jitter`, `random`), re-exported under its name. */
export type { BackoffOptions } from '@sdkit/sd-core';

/**
 * `retry`'s backoff defaults: the delay before retry r (r = 1 for the first retry) is a random time in
 * `[d/2, d]`, `d = min(1000, 20 · 2^(r−1))`, i.e. 10–20 ms, 20–40 ms, 40–80 ms, …, 320–640 ms, then 500–1000 ms.
 */
const RETRY_BACKOFF: BackoffDefaults = Object.freeze({ initialMs: 20, maxMs: 1000, factor: 2, jitter: 0.5 });

/** What {@link RetryOptions.onRetry} is told before a retry. */
export interface RetryInfo {
  /** The error of the attempt that just failed. */
  readonly error: Error;
  /** The number of the attempt that just failed, from 1. The next attempt is `attempt + 1`. */
  readonly attempt: number;
  /** Attempts still allowed, including the one about to be made (≥ 1). */
  readonly attemptsLeft: number;
}

/** Options of {@link retry}; `Req` is the request type of the endpoint it makes. */
export interface RetryOptions<Req = unknown> {
  /** Attempts in all, the first included (go-kit's `max`). An integer ≥ 1; 1 means no retry. */
  readonly maxAttempts: number;
  /**
   * Time limit of the whole call, attempts and backoff delays included (go-kit's `timeout`), ms. When it runs out
   * the call rejects at once with a {@link RetryError} whose cause is a {@link TimeoutError} (scope `'overall'`),
   * and the in-flight attempt's signal is aborted with that error. Finite, > 0, ≤ 2³¹−1.
   */
  readonly timeoutMs: number;
  /**
   * Time limit of each attempt, ms. When it runs out the attempt's signal is aborted with a {@link TimeoutError}
   * (scope `'attempt'`), the attempt fails at once with it (without waiting for the endpoint to notice) and is
   * retried like any failure. Finite, > 0, ≤ 2³¹−1. Default: none (only `timeoutMs` applies).
   */
  readonly perAttemptTimeoutMs?: number;
  /**
   * Delays between attempts, timed by `clock`; `false` for none. Default `{ initialMs: 20, maxMs: 1000, factor: 2,
   * jitter: 0.5 }`: 10–20 ms before the first retry, 20–40 ms before the second, … at most 1 s (see
   * {@link BackoffOptions}). The overall `timeoutMs` still applies: a pending delay is cut short when it runs out.
   */
  readonly backoff?: BackoffOptions | false;
  /**
   * Whether to retry after `error`, the error of attempt number `attempt` (from 1). Returning false (or throwing)
   * stops at once: the call rejects with a {@link RetryError} (reason `'not-retryable'`; if it threw, the thrown
   * error is the cause). Not called after the last allowed attempt. Default: retry every error (including
   * {@link NoEndpointsError}, since endpoints may appear, and TypeErrors, which p-retry alone would not retry).
   */
  readonly shouldRetry?: (error: Error, attempt: number) => boolean;
  /**
   * Called before each retry (after `shouldRetry` and the `budget` agreed, before the backoff delay), e.g. to log
   * or count. If it throws, retrying stops as if `shouldRetry` had thrown. Its return value is ignored.
   */
  readonly onRetry?: (info: RetryInfo) => void;
  /**
   * Ends every call made through this endpoint at once when it fires (e.g. a shutdown signal), like the per-call
   * `options.signal`: the call rejects with a {@link RetryError} whose cause is the signal's reason, and the
   * in-flight attempt's signal is aborted with it. Calls made after it fired reject at once without an attempt.
   */
  readonly signal?: AbortSignal;
  /** Time source of `timeoutMs`, `perAttemptTimeoutMs` and the backoff delays. Default {@link systemClock}. */
  readonly clock?: Clock;
  /**
   * What each call tells the balancer (see {@link PickContext}), computed once per call from its request and
   * passed to every pick of that call (from the second attempt on with `attempt` set to the attempt's number), e.g.
   * `(req) => ({ hashKey: req.userId })` for a hashing balancer. If it throws, the call rejects with a {@link RetryError} (reason `'not-retryable'`) without an attempt.
   */
  readonly pickContext?: (request: Req) => PickContext | undefined;
  /**
   * Limits retries to a share of calls (see {@link RetryBudget}), usually one budget shared by every `retry`
   * endpoint that calls the same service. Each call deposits once, before its first attempt; each retry that
   * would otherwise be made (`shouldRetry` agreed and attempts remain) first withdraws, and if the budget says
   * no, the call stops there and rejects with a {@link RetryError} (reason `'budget-exhausted'`, cause = the
   * last attempt's error) without calling `onRetry`. If `deposit` or `tryWithdraw` throws, the call rejects as
   * if `shouldRetry` had thrown (reason `'not-retryable'`; a throwing `deposit` means no attempt is made).
   * Default: none (every retry allowed).
   */
  readonly budget?: RetryBudget;
  /**
   * OpenTelemetry, through `@opentelemetry/api` (docs/telemetry.md): each call is an `sdkit.retry` span in the
   * caller's context, active during its attempts, with an event per attempt; retries and give-ups are counted.
   * `{ name }` names this endpoint in them; `false` turns it off for this endpoint. Default: on, unnamed — which
   * costs one check per call while no SDK is registered.
   */
  readonly telemetry?: false | RetryTelemetryOptions;
}

const MAX_TIMER_MS = 2_147_483_647;

const RETRY_OPTIONS = [
  'maxAttempts',
  'timeoutMs',
  'perAttemptTimeoutMs',
  'backoff',
  'shouldRetry',
  'onRetry',
  'signal',
  'clock',
  'pickContext',
  'budget',
  'telemetry',
] as const;
const RETRY_OPTION_HINTS = {
  max: 'maxAttempts',
  attempts: 'maxAttempts',
  retries: 'maxAttempts',
  timeout: 'timeoutMs',
  perAttemptTimeout: 'perAttemptTimeoutMs',
  attemptTimeoutMs: 'perAttemptTimeoutMs',
  retryBudget: 'budget',
};

/** How many more times an attempt asks the balancer when it offers an endpoint that already failed in this call. */
const REPICKS = 4;

/**
 * The options an attempt's endpoint gets. Its AbortSignal is made only if the endpoint reads `signal`; aborting
 * goes through {@link AttemptOptions.abort}, never through an 'abort' listener (adding and removing one costs
 * microseconds in Node). A class rather than an object literal with a getter, which V8 makes ~6× slower.
 */
class AttemptOptions implements EndpointOptions {
  #controller: AbortController | undefined;
  #reason: Error | undefined;

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#reason !== undefined) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** Aborts `options`' signal (now, or when it is first read) with `reason`; false if it was aborted already. */
  static abort(options: AttemptOptions, reason: Error): boolean {
    if (options.#reason !== undefined) return false;
    options.#reason = reason;
    options.#controller?.abort(reason);
    return true;
  }
}

/**
 * One endpoint from `balancer`, preferring one not in `failed` (the endpoints that failed earlier in the same
 * call): asks again up to {@link REPICKS} times, then takes what it gets. Costs nothing before a failure.
 */
function pickAvoiding<Req, Res>(
  balancer: Balancer<Req, Res>,
  failed: readonly Endpoint<Req, Res>[] | undefined,
  context: PickContext | undefined,
): Endpoint<Req, Res> {
  let endpoint = balancer.endpoint(context);
  if (failed === undefined) return endpoint;
  for (let i = 0; i < REPICKS && failed.includes(endpoint); i++) endpoint = balancer.endpoint(context);
  return endpoint;
}

/**
 * Carries an attempt's error through p-retry, so that p-retry treats every failure alike (on its own it would not
 * retry TypeErrors, and would replace non-Error values): our `shouldRetry` alone decides.
 */
class AttemptFailure extends Error {
  readonly error: Error;
  constructor(error: Error) {
    super(error.message);
    this.error = error;
  }
}

/**
 * Wraps a {@link Balancer} into one {@link Endpoint} that retries failed calls (go-kit's `lb.Retry`, on p-retry).
 *
 * Each attempt picks a fresh endpoint from the balancer, so a retry goes to another instance when the balancer
 * offers one; a {@link NoEndpointsError} from the balancer counts as a failed attempt — except that the first time
 * in a call, when the balancer has `ready()` (roundRobin and random over an Endpointer do), the attempt first waits
 * for the source's first set and picks again, so a call made before discovery has answered waits for it (bounded
 * by the timeouts) instead of failing. A retry avoids endpoints that
 * already failed in the same call: when the balancer offers one, it is asked again (up to 4 more times) before the
 * attempt settles for it — with concurrent callers sharing a round-robin, one caller could otherwise land on the
 * same dead instance every time. Each attempt gets its own
 * `options.signal`, aborted on a per-attempt timeout, on the overall timeout and on the caller's abort. Between
 * attempts the call waits the `backoff` delay (sd-core's one backoff) on `clock`; p-retry runs the attempts.
 *
 * The returned endpoint resolves with the first successful attempt's result. Otherwise it rejects — always with a
 * {@link RetryError} holding every attempt's error in order and the final reason as `cause` — when:
 * - `maxAttempts` attempts failed (reason `'exhausted'`, cause = last error);
 * - `shouldRetry` returned false or threw (reason `'not-retryable'`);
 * - the `budget` allowed no more retries (reason `'budget-exhausted'`, cause = last error);
 * - `timeoutMs` ran out (reason `'timeout'`, cause = {@link TimeoutError});
 * - the `signal` option or the call's `options.signal` fired (reason `'aborted'`, cause = the signal's reason).
 *
 * Timeouts and aborts end the call at once: it does not wait for the in-flight attempt (whose signal is aborted)
 * or for a backoff delay. While it waits on a backoff delay or for the first set, the pending call keeps the
 * process alive (a script awaiting it at top level sees its outcome); the first attempt alone adds no timer.
 * Once a call has settled it leaves no timer and no listener behind, and the endpoints are
 * never called again for it.
 *
 * @throws TypeError (synchronously, from `retry` itself) for a bad balancer or option, naming the bad value. The
 *   returned endpoint rejects with a TypeError if `options.signal` is not an AbortSignal.
 */
export function retry<Req, Res>(
  balancer: Balancer<Req, Res>,
  options: RetryOptions<Req>,
): Endpoint<Req, Res> {
  if (typeof balancer !== 'object' || balancer === null || typeof balancer.endpoint !== 'function') {
    throw new TypeError(`retry: expected a Balancer (an object with endpoint()), got ${typeName(balancer)}`);
  }
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`retry: expected an options object, got ${typeName(options)}`);
  }
  assertKnownOptions('retry', options, RETRY_OPTIONS, RETRY_OPTION_HINTS);
  const { maxAttempts, timeoutMs, perAttemptTimeoutMs, shouldRetry, onRetry, signal, pickContext, budget } =
    options;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
    throw new TypeError(`retry: maxAttempts must be an integer >= 1, got ${typeName(maxAttempts)}`);
  }
  assertTimerMs('timeoutMs', timeoutMs);
  if (perAttemptTimeoutMs !== undefined) assertTimerMs('perAttemptTimeoutMs', perAttemptTimeoutMs);
  if (shouldRetry !== undefined && typeof shouldRetry !== 'function') {
    throw new TypeError(`retry: shouldRetry must be a function, got ${typeName(shouldRetry)}`);
  }
  if (onRetry !== undefined && typeof onRetry !== 'function') {
    throw new TypeError(`retry: onRetry must be a function, got ${typeName(onRetry)}`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`retry: signal must be an AbortSignal, got ${typeName(signal)}`);
  }
  if (pickContext !== undefined && typeof pickContext !== 'function') {
    throw new TypeError(`retry: pickContext must be a function, got ${typeName(pickContext)}`);
  }
  if (
    budget !== undefined &&
    (typeof budget !== 'object' ||
      budget === null ||
      typeof budget.deposit !== 'function' ||
      typeof budget.tryWithdraw !== 'function')
  ) {
    throw new TypeError(
      `retry: budget must be a RetryBudget (an object with deposit() and tryWithdraw()), got ${typeName(budget)}`,
    );
  }
  const clock = options.clock ?? systemClock;
  if (typeof clock !== 'object' || clock === null || typeof clock.setTimeout !== 'function') {
    throw new TypeError(`retry: clock must be a Clock, got ${typeName(clock)}`);
  }
  const backoff = backoffOf(options.backoff);
  const telemetry = retryTelemetryOf(options.telemetry);

  return (request: Req, callOptions?: EndpointOptions): Promise<Res> => {
    const callSignal = callOptions?.signal;
    if (callSignal !== undefined && !(callSignal instanceof AbortSignal)) {
      return Promise.reject(
        new TypeError(`retry: options.signal must be an AbortSignal, got ${typeName(callSignal)}`),
      );
    }
    const alreadyAborted = signal?.aborted ? signal : callSignal?.aborted ? callSignal : undefined;
    if (alreadyAborted) {
      return rejectEarly(telemetry, { errors: [], cause: toError(alreadyAborted.reason), reason: 'aborted' });
    }
    let context: PickContext | undefined;
    if (pickContext !== undefined) {
      try {
        context = pickContext(request);
      } catch (thrown) {
        return rejectEarly(telemetry, { errors: [], cause: toError(thrown), reason: 'not-retryable' });
      }
    }
    if (budget !== undefined) {
      try {
        budget.deposit();
      } catch (thrown) {
        return rejectEarly(telemetry, { errors: [], cause: toError(thrown), reason: 'not-retryable' });
      }
    }

    const span = telemetry?.startSpan();
    return new Promise<Res>((resolve, reject) => {
      /** One error per attempt made, in order. */
      const errors: Error[] = [];
      /** Made when p-retry takes over (after a first failure); aborted when we give up: p-retry stops there. */
      let stop: AbortController | undefined;
      /** Why the call gave up early (timeout or abort), once it did. */
      let stopReason: Error | undefined;
      let settled = false;
      /** Aborts the in-flight attempt (its signal, if the endpoint read it) and fails it; undefined if none. */
      let abortInFlight: ((reason: Error) => void) | undefined;
      let cancelAttemptTimer: (() => void) | undefined;
      /** Cuts the pending backoff delay short (its wait then says "do not retry"); undefined if none. */
      let cancelDelay: (() => void) | undefined;
      /** Set when shouldRetry said no, or a callback threw (then the thrown error is the cause). */
      let notRetryable = false;
      /** Set when the budget refused a retry. */
      let budgetExhausted = false;
      let failedEndpoints: Endpoint<Req, Res>[] | undefined;
      let callbackError: Error | undefined;
      /** Whether a pick that found no endpoint already waited for the balancer's `ready()` in this call. */
      let waitedForReady = false;
      /**
       * Keeps the process alive from the first time the call waits on sdkit's own timers (the backoff delays, the
       * wait for the first set; those timers are unref'd) until it settles. The fast path never takes it.
       */
      let release: (() => void) | undefined;

      // Closures are made only where they are needed: a call's garbage is most of its cost (see docs/benchmarks.md).
      const onAbort =
        signal === undefined && callSignal === undefined
          ? undefined
          : (event: Event): void => {
              giveUp(toError((event.target as AbortSignal).reason), 'aborted');
            };
      if (onAbort !== undefined) {
        signal?.addEventListener('abort', onAbort);
        callSignal?.addEventListener('abort', onAbort);
      }
      const cancelOverallTimer = clock.setTimeout(
        () => giveUp(new TimeoutError('overall', timeoutMs), 'timeout'),
        timeoutMs,
      );

      function settle(): void {
        settled = true;
        release?.();
        cancelOverallTimer();
        cancelAttemptTimer?.();
        cancelAttemptTimer = undefined;
        cancelDelay?.();
        if (onAbort !== undefined) {
          signal?.removeEventListener('abort', onAbort);
          callSignal?.removeEventListener('abort', onAbort);
        }
      }

      /** Ends the call now (timeout or abort), aborting the in-flight attempt with `cause`. */
      function giveUp(cause: Error, reason: RetryGiveUpReason): void {
        if (settled) return;
        settle();
        stopReason = cause;
        const inFlight = abortInFlight;
        abortInFlight = undefined;
        if (inFlight) errors.push(cause);
        const error = new RetryError({ errors, cause, reason });
        telemetry?.gaveUp(error, span);
        inFlight?.(cause);
        stop?.abort(cause);
        reject(error);
      }

      /**
       * Makes attempt `attemptNumber`, then calls `onValue` with its result or `onFailure` with its
       * {@link AttemptFailure} (recorded in `errors` unless the call settled). The first attempt reports straight to
       * the call; the later ones, through p-retry, to a promise each (`attempt` in {@link afterFirstFailure}).
       */
      function runAttempt(
        attemptNumber: number,
        onValue: (value: Res) => void,
        onFailure: (failure: AttemptFailure) => void,
      ): void {
        if (settled) {
          onFailure(new AttemptFailure(toError(stopReason)));
          return;
        }
        span?.attemptStarted();
        if (attemptNumber > 1) telemetry?.retried(errors[errors.length - 1]);
        let picked: Endpoint<Req, Res> | undefined;
        const attemptOptions = new AttemptOptions();
        // From the second attempt on, the balancer learns which attempt it picks for (a hashing balancer then
        // moves to the key's next choice); the first attempt passes the call's context as it is.
        const attemptContext: PickContext | undefined =
          attemptNumber === 1 ? context : { ...context, attempt: attemptNumber };
        let done = false;
        /** Records the attempt's failure and reports it as an {@link AttemptFailure} (what p-retry sees). */
        const fail = (error: unknown): void => {
          const failure = toError(error);
          span?.attemptEnded(attemptNumber, picked, failure);
          if (picked) {
            failedEndpoints ??= [];
            failedEndpoints.push(picked);
          }
          if (!settled) errors.push(failure);
          onFailure(new AttemptFailure(failure));
        };
        const finish = (): boolean => {
          if (done) return false;
          done = true;
          if (abortInFlight === abortThis) abortInFlight = undefined;
          cancelAttemptTimer?.();
          cancelAttemptTimer = undefined;
          return true;
        };
        const abortThis = (reason: Error): void => {
          if (!AttemptOptions.abort(attemptOptions, reason)) return;
          if (finish()) fail(reason);
        };
        abortInFlight = abortThis;
        let pending: PromiseLike<Res> | Res;
        try {
          if (perAttemptTimeoutMs !== undefined) {
            cancelAttemptTimer = clock.setTimeout(
              () =>
                abortThis(
                  new TimeoutError(
                    'attempt',
                    perAttemptTimeoutMs,
                    `attempt ${attemptNumber} timed out after ${perAttemptTimeoutMs} ms`,
                  ),
                ),
              perAttemptTimeoutMs,
            );
          }
          picked = pickAvoiding(balancer, failedEndpoints, attemptContext);
          pending =
            span === undefined ? picked(request, attemptOptions) : span.run(picked, request, attemptOptions);
        } catch (error) {
          if (error instanceof NoEndpointsError && balancer.ready && !waitedForReady) {
            // Right after start-up the source may not have reported yet: wait for its first set (bounded by
            // the timeouts, which abort this attempt's signal), then pick once more within this attempt.
            waitedForReady = true;
            release ??= holdProcess();
            pending = balancer.ready({ signal: attemptOptions.signal }).then(() => {
              if (done) throw error;
              picked = pickAvoiding(balancer, failedEndpoints, attemptContext);
              return span === undefined
                ? picked(request, attemptOptions)
                : span.run(picked, request, attemptOptions);
            });
          } else pending = Promise.reject(error);
        }
        Promise.resolve(pending).then(
          (value) => {
            if (!finish()) return;
            span?.attemptEnded(attemptNumber, picked);
            onValue(value);
          },
          (error: unknown) => {
            if (finish()) fail(error);
          },
        );
      }

      const succeed = (value: Res): void => {
        if (settled) return;
        settle();
        span?.succeeded(errors.length + 1);
        resolve(value);
      };
      // Fast path: the first attempt runs directly; p-retry (about 9 µs a call on its own) only takes over after a
      // failure. Its first input replays that failure, so its attempt numbering, shouldRetry, onRetry and backoff
      // delays are exactly as if it had made the first attempt itself.
      runAttempt(1, succeed, afterFirstFailure);

      /** The slow path, from a failed first attempt on (its closures are made only then). */
      function afterFirstFailure(firstFailure: unknown): void {
        if (settled) return;
        const giveUpAfter = (error: unknown): void => {
          if (settled) return;
          settle();
          const cause = callbackError ?? (error instanceof AttemptFailure ? error.error : toError(error));
          const reason =
            callbackError || notRetryable
              ? 'not-retryable'
              : budgetExhausted
                ? 'budget-exhausted'
                : 'exhausted';
          const gaveUp = new RetryError({ errors, cause, reason });
          telemetry?.gaveUp(gaveUp, span);
          reject(gaveUp);
        };
        if (maxAttempts === 1) {
          giveUpAfter(firstFailure);
          return;
        }
        /**
         * Waits `ms` on the clock; resolves true then, or false at once if the call settles first (p-retry then
         * stops, and the call has already been answered).
         */
        const waitDelay = (ms: number): Promise<boolean> =>
          new Promise<boolean>((resolveWait) => {
            const cancelTimer = clock.setTimeout(() => {
              cancelDelay = undefined;
              resolveWait(!settled);
            }, ms);
            cancelDelay = () => {
              cancelDelay = undefined;
              cancelTimer();
              resolveWait(false);
            };
          });
        const attempt = (n: number): Promise<Res> =>
          new Promise<Res>((resolveAttempt, rejectAttempt) => runAttempt(n, resolveAttempt, rejectAttempt));
        release ??= holdProcess();
        stop = new AbortController();
        // p-retry decides and counts; the delays are sd-core's backoff on our clock, waited at the end of
        // shouldRetry (which p-retry awaits right before its own delay, here 0: no timer of its own).
        pRetry((n) => (n === 1 ? Promise.reject(firstFailure) : attempt(n)), {
          retries: maxAttempts - 1,
          minTimeout: 0,
          factor: 1,
          randomize: false,
          signal: stop.signal,
          shouldRetry: ({ error, attemptNumber, retriesLeft }) => {
            if (settled) return false;
            const failure = error instanceof AttemptFailure ? error.error : error;
            try {
              if (shouldRetry !== undefined && !shouldRetry(failure, attemptNumber)) {
                notRetryable = true;
                return false;
              }
              if (budget !== undefined && !settled && !budget.tryWithdraw()) {
                budgetExhausted = true;
                return false;
              }
              onRetry?.({ error: failure, attempt: attemptNumber, attemptsLeft: retriesLeft });
            } catch (thrown) {
              callbackError = toError(thrown);
              return false;
            }
            if (settled) return false; // a callback may have aborted the call
            return backoff === undefined ? true : waitDelay(backoff.delay(attemptNumber - 1));
          },
        }).then(succeed, giveUpAfter);
      }
    });
  };
}

/** A call rejected before any attempt: counted as a give-up like the others. */
function rejectEarly(telemetry: RetryTelemetry | undefined, init: RetryErrorInit): Promise<never> {
  const error = new RetryError(init);
  telemetry?.gaveUp(error, undefined);
  return Promise.reject(error);
}

function assertTimerMs(name: string, value: unknown): void {
  if (typeof value !== 'number' || !(value > 0 && value <= MAX_TIMER_MS)) {
    throw new TypeError(`retry: ${name} must be a number of ms in (0, 2^31-1], got ${typeName(value)}`);
  }
}

/** The validated `backoff` option; undefined for `false` (no delays). */
function backoffOf(backoff: BackoffOptions | false | undefined): Backoff | undefined {
  if (backoff === false) return undefined;
  if (backoff !== undefined && (typeof backoff !== 'object' || backoff === null)) {
    throw new TypeError(`retry: backoff must be an object or false, got ${typeName(backoff)}`);
  }
  return createBackoff(backoff, 'retry', RETRY_BACKOFF);
}
