import { holdProcess } from './hold-process.js';

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
  readonly release: () => void;
}

/**
 * A one-way gate for "ready" promises: waiters resolve once it is opened, reject once it failed, or reject with
 * their signal's reason when it aborts (the waiter is dropped then, so an abandoned wait leaves nothing behind).
 * Each pending wait keeps the process alive ({@link holdProcess}). Opening or failing is final.
 */
export class ReadyLatch {
  #state: 'waiting' | 'open' | 'failed' = 'waiting';
  #error: unknown;
  readonly #waiters = new Set<Waiter>();

  /** Whether {@link open} was called (and not {@link fail} before it). */
  get isOpen(): boolean {
    return this.#state === 'open';
  }

  /** Resolves every wait, now and later. No effect once opened or failed. */
  open(): void {
    if (this.#state !== 'waiting') return;
    this.#state = 'open';
    for (const waiter of this.#take()) waiter.resolve();
  }

  /** Rejects every wait with `error`, now and later. No effect once opened or failed. */
  fail(error: unknown): void {
    if (this.#state !== 'waiting') return;
    this.#state = 'failed';
    this.#error = error;
    for (const waiter of this.#take()) waiter.reject(error);
  }

  wait(signal?: AbortSignal): Promise<void> {
    if (this.#state === 'open') return Promise.resolve();
    if (this.#state === 'failed') return Promise.reject(this.#error);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          if (this.#waiters.delete(waiter)) {
            waiter.release();
            reject(signal!.reason);
          }
        },
        release: holdProcess(),
      };
      this.#waiters.add(waiter);
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
    });
  }

  #take(): Waiter[] {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const waiter of waiters) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.release();
    }
    return waiters;
  }
}
