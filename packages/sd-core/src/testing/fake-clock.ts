import type { Clock } from '../types.js';

interface Timer {
  readonly seq: number;
  readonly due: number;
  readonly fn: () => void;
}

/**
 * A {@link Clock} that moves only when told to: `now()` starts at `start` (default 0) and timers run only inside
 * {@link FakeClock.advance}. Deterministic, keeps nothing alive, needs no cleanup.
 *
 * Timers run in order of due time, then of creation. A timer set while `advance` runs (for example a heartbeat that
 * re-arms itself) also runs in that same call if it falls due before the target time. While a timer runs, `now()`
 * is its due time.
 */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  /** Pending timers, sorted by (due, seq). */
  readonly #timers: Timer[] = [];

  /** @throws TypeError if `start` is not a finite number. */
  constructor(start = 0) {
    if (!Number.isFinite(start))
      throw new TypeError(`FakeClock: start must be a finite number (got ${start})`);
    this.#now = start;
  }

  /** The fake time in ms. */
  now(): number {
    return this.#now;
  }

  /**
   * Schedules `fn` at `now() + ms`. A negative or NaN `ms` counts as 0 (due at once, runs on the next
   * `advance`, even `advance(0)`); `Infinity` never runs. Returns an idempotent cancel function.
   */
  setTimeout(fn: () => void, ms: number): () => void {
    const delay = Number.isNaN(ms) || ms < 0 ? 0 : ms;
    const timer: Timer = { seq: this.#seq++, due: this.#now + delay, fn };
    // Insert after every timer due at or before this one (stable order for equal due times).
    let lo = 0;
    let hi = this.#timers.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#timers[mid]!.due <= timer.due) lo = mid + 1;
      else hi = mid;
    }
    this.#timers.splice(lo, 0, timer);
    return () => {
      const i = this.#timers.indexOf(timer);
      if (i >= 0) this.#timers.splice(i, 1);
    };
  }

  /**
   * Moves time forward by `ms`, running every timer that falls due on the way, in order. If a timer throws, the
   * error propagates and time stays at that timer's due time (later timers stay pending).
   * @throws TypeError if `ms` is negative or not finite.
   */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new TypeError(`FakeClock.advance: ms must be a finite number >= 0 (got ${ms})`);
    }
    const target = this.#now + ms;
    for (let next = this.#timers[0]; next !== undefined && next.due <= target; next = this.#timers[0]) {
      this.#timers.shift();
      this.#now = next.due;
      next.fn();
    }
    this.#now = target;
  }

  /** Number of timers set and neither run nor cancelled. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /** When the next pending timer is due, or `undefined` if none is pending. */
  get nextTimerAt(): number | undefined {
    return this.#timers[0]?.due;
  }
}
