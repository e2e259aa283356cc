import { ReplaySubject } from 'rxjs';

const COMPLETE: unique symbol = Symbol('complete');

/**
 * A `ReplaySubject(1)` (hot; replays the latest value to each new subscriber) that delivers values and completion
 * strictly in order even when a subscriber calls `next` or `complete` from inside its own callback: the re-entrant
 * call is queued and delivered after the current value has reached every subscriber. Without this, a later
 * subscriber could see the newer value first and the older one last, and end on a stale state.
 * @internal shared by sd-core's sources; not part of the public API.
 */
export class LatestSubject<T> extends ReplaySubject<T> {
  readonly #outbox: (T | typeof COMPLETE)[] = [];
  #delivering = false;

  constructor() {
    super(1);
  }

  override next(value: T): void {
    this.#enqueue(value);
  }

  override complete(): void {
    this.#enqueue(COMPLETE);
  }

  #enqueue(item: T | typeof COMPLETE): void {
    this.#outbox.push(item);
    if (this.#delivering) return;
    this.#delivering = true;
    try {
      while (this.#outbox.length > 0) {
        const next = this.#outbox.shift() as T | typeof COMPLETE;
        if (next === COMPLETE) super.complete();
        else super.next(next);
      }
    } finally {
      this.#delivering = false;
    }
  }
}
