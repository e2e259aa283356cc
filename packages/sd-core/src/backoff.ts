/**
 * Exponential backoff with jitter: the one retry timing of sdkit — lb's `retry`, every backend (etcd's watch, lease
 * keeper, registrar, client probe and host breaker; Kubernetes' list, watch and client probe) and the
 * `MemoryRegistry` — timed by the injected {@link Clock}, and {@link retryWithin} for calls worth retrying until a
 * deadline.
 * @module
 */
import { assertKnownOptions } from './known-options.js';
import type { Clock } from './types.js';

/** A short description of a bad option value for error messages (objects by kind only). */
function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

/**
 * Retry timing, the same shape for every sdkit component that retries (`retry` in @sdkit/lb, `EtcdInstancer`,
 * `EtcdRegistrar`, `EtcdLeasePool`, `KubernetesInstancer`): attempt `n` (0-based) waits
 * `d × (1 − jitter + jitter × random())` where `d = min(maxMs, initialMs × factor^n)` — a random time in
 * `[d × (1 − jitter), d]`. The default jitter, 0.5, is "equal jitter": never zero, never in lock-step with other
 * processes that failed at the same moment. Each component has its own defaults (documented with its `backoff`
 * option); a field left out takes the component's default.
 */
export interface BackoffOptions {
  /** Delay bound of the first retry, in ms. Default 100 (`retry`: 20). Must be > 0. */
  readonly initialMs?: number;
  /**
   * Upper bound of any delay, in ms. Must be >= `initialMs`. Default: each component's (10 000 for watches, 5 000
   * for registrations and leases, 1 000 for `retry`), or `initialMs` if that is larger.
   */
  readonly maxMs?: number;
  /** Growth per failed attempt. Default 2. Must be >= 1. */
  readonly factor?: number;
  /** Share of each delay that is random, 0 … 1. Default 0.5. 0 makes delays exact (tests). */
  readonly jitter?: number;
  /** Source of randomness in `[0, 1)`, injectable for tests. Default `Math.random`. */
  readonly random?: () => number;
}

/** A validated {@link BackoffOptions}: `delay(attempt)` gives the wait before retry number `attempt` (0-based). */
export interface Backoff {
  /**
   * The wait in ms before retry number `attempt` (0-based): `min(maxMs, initialMs · factor^attempt)`, of which
   * the `jitter` share is random.
   */
  delay(attempt: number): number;
}

/** A component's defaults for {@link BackoffOptions} (all but `random`, which defaults to `Math.random`). */
export interface BackoffDefaults {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  readonly jitter: number;
}

/**
 * Defaults used when an option is left out and the component names no default of its own (the registrations'
 * and leases'; watches use `maxMs: 10_000`, lb's `retry` `{ initialMs: 20, maxMs: 1000 }`).
 */
export const DEFAULT_BACKOFF: BackoffDefaults = Object.freeze({
  initialMs: 100,
  maxMs: 5000,
  factor: 2,
  jitter: 0.5,
});

/** The fields of {@link BackoffOptions}. */
const BACKOFF_OPTIONS = ['initialMs', 'maxMs', 'factor', 'jitter', 'random'] as const;
/** Names of other backoffs (lb's before it took this shape, p-retry's) and the field meant. */
const BACKOFF_OPTION_HINTS = {
  minDelayMs: 'initialMs',
  maxDelayMs: 'maxMs',
  randomize: 'jitter',
  minTimeout: 'initialMs',
  maxTimeout: 'maxMs',
};

/**
 * Validates `options` (TypeError naming the bad value or unknown field, prefixed with `where`, e.g.
 * `'EtcdRegistrar'`) and returns the delay function. `defaults` are the component's defaults, over
 * {@link DEFAULT_BACKOFF} for the fields it leaves out; `maxMs` left out of `options` is at least `initialMs`.
 */
export function createBackoff(
  options: BackoffOptions | undefined,
  where: string,
  defaults: Partial<BackoffDefaults> = DEFAULT_BACKOFF,
): Backoff {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError(`${where}: backoff must be an object, got ${describeValue(options)}`);
  }
  if (options && 'multiplier' in options) {
    throw new TypeError(`${where}: backoff.multiplier is now called backoff.factor`);
  }
  if (options) assertKnownOptions(`${where}: backoff`, options, BACKOFF_OPTIONS, BACKOFF_OPTION_HINTS);
  const initialMs = options?.initialMs ?? defaults.initialMs ?? DEFAULT_BACKOFF.initialMs;
  const defaultMaxMs = defaults.maxMs ?? DEFAULT_BACKOFF.maxMs;
  const maxMs = options?.maxMs ?? Math.max(defaultMaxMs, typeof initialMs === 'number' ? initialMs : 0);
  const factor = options?.factor ?? defaults.factor ?? DEFAULT_BACKOFF.factor;
  const jitter = options?.jitter ?? defaults.jitter ?? DEFAULT_BACKOFF.jitter;
  const random = options?.random ?? Math.random;
  if (typeof initialMs !== 'number' || !Number.isFinite(initialMs) || initialMs <= 0) {
    throw new TypeError(
      `${where}: backoff.initialMs must be a finite number > 0, got ${describeValue(initialMs)}`,
    );
  }
  if (typeof maxMs !== 'number' || !Number.isFinite(maxMs) || maxMs < initialMs) {
    throw new TypeError(
      `${where}: backoff.maxMs must be a finite number >= initialMs (${initialMs}), got ${describeValue(maxMs)}`,
    );
  }
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor < 1) {
    throw new TypeError(
      `${where}: backoff.factor must be a finite number >= 1, got ${describeValue(factor)}`,
    );
  }
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new TypeError(`${where}: backoff.jitter must be between 0 and 1, got ${describeValue(jitter)}`);
  }
  if (typeof random !== 'function') {
    throw new TypeError(`${where}: backoff.random must be a function, got ${describeValue(random)}`);
  }
  return {
    delay(attempt: number): number {
      const ceiling = Math.min(maxMs, initialMs * factor ** Math.max(0, attempt));
      const r = Math.min(Math.max(random(), 0), 1);
      return ceiling * (1 - jitter + jitter * r);
    },
  };
}

/** Options of {@link retryWithin}. */
export interface RetryWithinOptions {
  /** Time source for the waits and the budget. */
  readonly clock: Clock;
  /** Wait after the n-th failure (0-based). */
  readonly backoff: Backoff;
  /** No try starts later than this many ms after the first one. */
  readonly budgetMs: number;
  /** Errors not worth another try (permission denied, client closed): rejected with at once. */
  readonly isFinal: (error: unknown) => boolean;
  /** Called before each wait, with the error and the wait in ms (for logging). */
  readonly onRetry?: (error: unknown, waitMs: number) => void;
}

/**
 * Calls `attempt` until it resolves. After a failure it waits `backoff.delay(n)` on `clock` and tries again —
 * unless `isFinal(error)`, or the next try would start more than `budgetMs` after the first; then it rejects with
 * that last error. For calls whose failure is usually passing (etcd's "too many requests" under a burst, a
 * leader election, a dropped connection) and which are pointless after a deadline (a key that has expired by
 * itself needs no delete).
 */
export async function retryWithin<T>(attempt: () => Promise<T>, options: RetryWithinOptions): Promise<T> {
  const { clock, backoff, budgetMs, isFinal, onRetry } = options;
  const started = clock.now();
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      const wait = backoff.delay(n);
      if (isFinal(error) || clock.now() + wait - started > budgetMs) throw error;
      onRetry?.(error, wait);
      await new Promise<void>((resolve) => clock.setTimeout(resolve, wait));
    }
  }
}
