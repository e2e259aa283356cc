import type { Clock, Logger } from './types.js';

/** What {@link ErrorInvalidation} needs. */
export interface ErrorInvalidationOptions {
  /** `undefined`: never invalidate; `0`: at once on the first error; else that many ms after it. */
  readonly invalidateOnErrorMs: number | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Drops every endpoint. Called at most once per failure streak, from {@link ErrorInvalidation.observe} or a timer. */
  readonly invalidate: () => void;
}

/**
 * The endpointer's `invalidateOnErrorMs` policy over the instancer's error state.
 *
 * - The first error of a failure streak logs a warning and starts the countdown (later errors do not restart
 *   it); at `0` the endpoints are dropped at once.
 * - A good event ends the streak: it cancels a pending countdown, and after an invalidation lets the set be built
 *   again.
 * - While invalidated, events that still carry an error are not applied.
 */
export class ErrorInvalidation {
  readonly #options: ErrorInvalidationOptions;
  #inError = false;
  #invalidated = false;
  #cancel: (() => void) | undefined;

  constructor(options: ErrorInvalidationOptions) {
    this.#options = options;
  }

  /** The countdown after the first error, in ms; `undefined`: endpoints are never dropped. */
  get invalidateOnErrorMs(): number | undefined {
    return this.#options.invalidateOnErrorMs;
  }

  /** Whether the endpoints were dropped and no good event came since. */
  get invalidated(): boolean {
    return this.#invalidated;
  }

  /** Takes one event's error state; returns whether its set is to be applied (not while invalidated). */
  observe(error: Error | undefined): boolean {
    if (error === undefined) {
      if (this.#inError) {
        this.#inError = false;
        this.stop();
      }
      this.#invalidated = false;
      return true;
    }
    if (!this.#inError) {
      this.#inError = true;
      const ms = this.#options.invalidateOnErrorMs;
      this.#options.logger.warn(
        { err: error, invalidateOnErrorMs: ms },
        'sdkit endpointer: the instancer reports an error; keeping the last known endpoints',
      );
      if (ms === 0) this.#invalidate();
      else if (ms !== undefined) {
        this.#cancel = this.#options.clock.setTimeout(() => {
          this.#cancel = undefined;
          if (this.#inError) this.#invalidate();
        }, ms);
      }
    }
    return !this.#invalidated;
  }

  /** Cancels a pending countdown (on close, or when the streak ends). Idempotent. */
  stop(): void {
    this.#cancel?.();
    this.#cancel = undefined;
  }

  #invalidate(): void {
    this.#invalidated = true;
    this.#options.invalidate();
  }
}
