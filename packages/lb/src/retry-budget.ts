import { assertKnownOptions, type Clock, systemClock } from '@sdkit/sd-core';
import { typeName } from './balancer.js';

/**
 * A pool of retries shared by the calls to one downstream service (Finagle's `RetryBudget`): every call puts a
 * little in, every retry takes one out, and a retry that finds the pool empty is not made. Pass the same one as
 * the `budget` option of every `retry` endpoint that calls that service, so that when it fails as a whole the
 * retries add a bounded share to its load instead of multiplying it by `maxAttempts`.
 *
 * {@link retryBudget} makes the standard one; any object with these members fits (`retry` only calls `deposit`
 * and `tryWithdraw`). Its methods must be cheap and synchronous: `retry` calls them on every call.
 */
export interface RetryBudget {
  /** Records one call: `retry` calls it once per call, before the first attempt. */
  deposit(): void;
  /**
   * Asks for one retry: true (and the retry is taken out of the budget) if the budget allows it now; false (and
   * nothing changes) if not. `retry` calls it before each retry it would otherwise make.
   */
  tryWithdraw(): boolean;
  /** How many retries `tryWithdraw` would allow now if no call came in meanwhile; an integer ≥ 0. Diagnostics. */
  readonly balance: number;
}

/** Options of {@link retryBudget}. */
export interface RetryBudgetOptions {
  /**
   * Retries allowed per call, on average over the window: 0.1 lets one call in ten be retried once (Finagle's
   * `percentCanRetry`, whose default is 0.2; gRPC's retry throttling examples use a token ratio of 0.1). Finite, in
   * [0, 1000]; counted in millionths. Default 0.1, so that with the default minimum rate a full outage stays under
   * 1.2 attempts per call from 100 calls/s up.
   */
  readonly ratio?: number;
  /**
   * Retries allowed per second on top of the `ratio`'s share, whatever the traffic, so that a client that has
   * just started or makes few calls can still retry (Finagle's `minRetriesPerSec`): the budget holds a reserve of
   * `minRetriesPerSecond × ttlMs / 1000` retries that refills as the retries drawn from it age out of the
   * window. Finite, ≥ 0. Default 10.
   */
  readonly minRetriesPerSecond?: number;
  /**
   * The window, ms: a deposit or a withdrawal counts for between 0.9 × `ttlMs` and `ttlMs` after it was made
   * (the window is kept as ten slices of `ttlMs / 10`), then expires. Finite, > 0. Default 10 000.
   */
  readonly ttlMs?: number;
  /** Time source of the window. Default: the real clock. */
  readonly clock?: Clock;
}

/** Units of one retry: deposits are `ratio × UNIT`, rounded, so that the accounting is in exact integers. */
const UNIT = 1_000_000;
/** Slices of the window. */
const SLICES = 10;
const MAX_RATIO = 1000;

const OPTIONS = ['ratio', 'minRetriesPerSecond', 'ttlMs', 'clock'] as const;
const HINTS = {
  percentCanRetry: 'ratio',
  percent: 'ratio',
  minRetriesPerSec: 'minRetriesPerSecond',
  minRetries: 'minRetriesPerSecond',
  ttl: 'ttlMs',
  ttlSeconds: 'ttlMs',
  windowMs: 'ttlMs',
};

/**
 * Makes a {@link RetryBudget} over a sliding window of `ttlMs` (Finagle's `RetryBudget(ttl, minRetriesPerSec,
 * percentCanRetry)`, gRPC's retry throttling in spirit). At any moment
 *
 *     retries allowed = reserve + ratio × (calls in the window) − (retries in the window)
 *
 * where `reserve = minRetriesPerSecond × ttlMs / 1000`, and `balance` is that, rounded down (never below 0). So
 * over any window the retries drawn are at most `ratio × calls + minRetriesPerSecond × ttlMs / 1000`: under a
 * full outage with `retry`, attempts per call tend to `1 + ratio + minRetriesPerSecond / callsPerSecond` instead
 * of `maxAttempts`. Deposits left unused in the window build up (a burst of failures after a quiet, healthy spell
 * may use them all) and expire with it.
 *
 * No timer: the window moves on when the budget is used, computed from `clock.now()`. Each call is O(1) and
 * allocates nothing.
 *
 * `ratio: 0` with `minRetriesPerSecond: 0` makes a budget that never allows a retry.
 *
 * @throws TypeError for a bad or unknown option, naming it.
 */
export function retryBudget(options: RetryBudgetOptions = {}): RetryBudget {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`retryBudget: expected an options object, got ${typeName(options)}`);
  }
  assertKnownOptions('retryBudget', options, OPTIONS, HINTS);
  const { ratio = 0.1, minRetriesPerSecond = 10, ttlMs = 10_000, clock = systemClock } = options;
  if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= MAX_RATIO)) {
    throw new TypeError(`retryBudget: ratio must be a number in [0, ${MAX_RATIO}], got ${typeName(ratio)}`);
  }
  if (
    typeof minRetriesPerSecond !== 'number' ||
    !(minRetriesPerSecond >= 0 && Number.isFinite(minRetriesPerSecond))
  ) {
    throw new TypeError(
      `retryBudget: minRetriesPerSecond must be a finite number >= 0, got ${typeName(minRetriesPerSecond)}`,
    );
  }
  if (typeof ttlMs !== 'number' || !(ttlMs > 0 && Number.isFinite(ttlMs))) {
    throw new TypeError(`retryBudget: ttlMs must be a finite number > 0, got ${typeName(ttlMs)}`);
  }
  if (typeof clock !== 'object' || clock === null || typeof clock.now !== 'function') {
    throw new TypeError(`retryBudget: clock must be a Clock, got ${typeName(clock)}`);
  }
  return new WindowedRetryBudget(
    Math.round(ratio * UNIT),
    Math.round(((minRetriesPerSecond * ttlMs) / 1000) * UNIT),
    ttlMs / SLICES,
    clock,
  );
}

/**
 * The budget of {@link retryBudget}: a ring of {@link SLICES} slices, each the net units (deposits minus
 * withdrawals) of one `sliceMs` of time, and their running sum. The slice of time t is `floor(t / sliceMs)`; the
 * window is the current slice and the nine before it.
 */
class WindowedRetryBudget implements RetryBudget {
  readonly #deposit: number;
  readonly #reserve: number;
  readonly #sliceMs: number;
  readonly #clock: Clock;
  readonly #slices = new Float64Array(SLICES);
  /** Sum of `#slices`. */
  #sum = 0;
  /** The number of the current slice of time. */
  #slice: number;
  /** Where the current slice is in the ring. */
  #index = 0;

  constructor(deposit: number, reserve: number, sliceMs: number, clock: Clock) {
    this.#deposit = deposit;
    this.#reserve = reserve;
    this.#sliceMs = sliceMs;
    this.#clock = clock;
    this.#slice = Math.floor(clock.now() / sliceMs);
  }

  deposit(): void {
    this.#roll();
    this.#slices[this.#index]! += this.#deposit;
    this.#sum += this.#deposit;
  }

  tryWithdraw(): boolean {
    this.#roll();
    if (this.#reserve + this.#sum < UNIT) return false;
    this.#slices[this.#index]! -= UNIT;
    this.#sum -= UNIT;
    return true;
  }

  get balance(): number {
    this.#roll();
    return Math.max(0, Math.floor((this.#reserve + this.#sum) / UNIT));
  }

  /** Moves the window to the current time, emptying the slices that fell out of it. */
  #roll(): void {
    const slice = Math.floor(this.#clock.now() / this.#sliceMs);
    const steps = slice - this.#slice;
    if (!(steps > 0)) return; // the same slice (or a clock that went back: stay)
    this.#slice = slice;
    if (steps >= SLICES) {
      this.#slices.fill(0);
      this.#sum = 0;
      return;
    }
    let index = this.#index;
    for (let i = 0; i < steps; i++) {
      index = index === SLICES - 1 ? 0 : index + 1;
      this.#sum -= this.#slices[index]!;
      this.#slices[index] = 0;
    }
    this.#index = index;
  }
}
