import { FakeClock } from '@sdkit/sd-core/testing';
import { describe, expect, it } from 'vitest';
import { type RetryBudgetOptions, retryBudget } from './retry-budget.js';

function times(n: number, fn: () => void): void {
  for (let i = 0; i < n; i++) fn();
}

/** How many retries `budget` allows now, found by drawing them all (so it checks `balance` against the truth). */
function drain(budget: { tryWithdraw(): boolean }): number {
  let n = 0;
  while (budget.tryWithdraw()) n++;
  return n;
}

describe('retryBudget', () => {
  it('starts with the reserve: minRetriesPerSecond × the window, in seconds', () => {
    const clock = new FakeClock();
    expect(retryBudget({ clock }).balance).toBe(100); // defaults: 10 / s over 10 s
    expect(retryBudget({ minRetriesPerSecond: 2, ttlMs: 5_000, clock }).balance).toBe(10);
    expect(retryBudget({ minRetriesPerSecond: 0, clock }).balance).toBe(0);
    const budget = retryBudget({ minRetriesPerSecond: 3, ttlMs: 2_000, clock });
    expect(drain(budget)).toBe(6);
    expect(budget.balance).toBe(0);
  });

  it('the balance follows ratio × calls in the window plus the reserve, in exact steps', () => {
    const clock = new FakeClock();
    const budget = retryBudget({ ratio: 0.2, clock }); // 10 / s, 10 s
    times(49, () => budget.deposit());
    expect(budget.balance).toBe(109); // 100 + 9.8, rounded down
    budget.deposit();
    expect(budget.balance).toBe(110);
    const byDefault = retryBudget({ clock }); // ratio 0.1
    times(59, () => byDefault.deposit());
    expect(byDefault.balance).toBe(105); // 100 + 5.9, rounded down
    // Tenths add up exactly (a float sum of 0.1s would fall just short of 100 and allow 99).
    const tenth = retryBudget({ ratio: 0.1, minRetriesPerSecond: 0, clock });
    times(1_000, () => tenth.deposit());
    expect(tenth.balance).toBe(100);
    expect(drain(tenth)).toBe(100);
  });

  it('tryWithdraw takes one retry at a time and, once the balance is spent, says no and changes nothing', () => {
    const clock = new FakeClock();
    const budget = retryBudget({ ratio: 0.25, minRetriesPerSecond: 1, clock }); // reserve 10
    times(10, () => expect(budget.tryWithdraw()).toBe(true));
    expect(budget.balance).toBe(0);
    times(5, () => expect(budget.tryWithdraw()).toBe(false));
    times(3, () => budget.deposit());
    expect(budget.tryWithdraw()).toBe(false); // 0.75 of a retry
    budget.deposit(); // the refusals took nothing: four deposits make one retry
    expect(budget.balance).toBe(1);
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('a fractional reserve adds to the deposits', () => {
    const clock = new FakeClock();
    const budget = retryBudget({ ratio: 0.5, minRetriesPerSecond: 0.15, clock }); // reserve 1.5
    expect(budget.balance).toBe(1);
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false); // 0.5 left
    budget.deposit();
    expect(budget.tryWithdraw()).toBe(true);
  });

  it('deposits expire after the window: they count for between 0.9 × ttlMs and ttlMs', () => {
    const clock = new FakeClock();
    const budget = retryBudget({ ratio: 1, minRetriesPerSecond: 0, ttlMs: 10_000, clock });
    clock.advance(500);
    times(3, () => budget.deposit()); // in the slice [0, 1000)
    clock.advance(999);
    budget.deposit(); // t = 1499, in the slice [1000, 2000)
    clock.advance(10_000 - 1_499 - 1); // t = 9 999
    expect(budget.balance).toBe(4);
    clock.advance(1); // t = 10 000: the first slice leaves the window, 9 500 ms after its deposits
    expect(budget.balance).toBe(1);
    clock.advance(999); // t = 10 999
    expect(budget.balance).toBe(1);
    clock.advance(1); // t = 11 000
    expect(budget.balance).toBe(0);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('withdrawals expire too: the reserve is a rate, minRetriesPerSecond, not a one-off allowance', () => {
    const clock = new FakeClock();
    const budget = retryBudget({ ratio: 0, minRetriesPerSecond: 1, ttlMs: 10_000, clock }); // reserve 10
    expect(drain(budget)).toBe(10);
    clock.advance(9_999);
    expect(budget.balance).toBe(0);
    clock.advance(1);
    expect(budget.balance).toBe(10);
    // Retries drawn one a second: after the first window, one comes back each second.
    let granted = 0;
    for (let s = 0; s < 30; s++) {
      if (budget.tryWithdraw()) granted++;
      clock.advance(1_000);
    }
    expect(granted).toBe(30);
    times(10, () => budget.tryWithdraw());
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('a sliding window: the balance counts the calls of the last ttlMs only', () => {
    const clock = new FakeClock();
    const budget = retryBudget({ ratio: 1, minRetriesPerSecond: 0, ttlMs: 10_000, clock });
    const seen: number[] = [];
    for (let s = 0; s < 25; s++) {
      budget.deposit();
      seen.push(budget.balance);
      clock.advance(1_000);
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, ...Array<number>(16).fill(10)]);
  });

  it('retries drawn late keep counting after the calls that paid for them expired', () => {
    // So that over any window, retries ≤ ratio × calls + the reserve.
    const clock = new FakeClock();
    const budget = retryBudget({ ratio: 1, minRetriesPerSecond: 0, ttlMs: 10_000, clock });
    budget.deposit(); // t = 0
    clock.advance(5_000);
    expect(budget.tryWithdraw()).toBe(true); // t = 5 000
    clock.advance(5_000); // t = 10 000: the deposit is gone, the withdrawal is not
    expect(budget.balance).toBe(0);
    budget.deposit();
    expect(budget.tryWithdraw()).toBe(false); // this deposit pays off the retry still in the window
    clock.advance(5_000); // t = 15 000: the withdrawal is gone
    expect(budget.tryWithdraw()).toBe(true);
  });

  it('a pause longer than the window empties it', () => {
    const clock = new FakeClock();
    const budget = retryBudget({ ratio: 0.2, clock });
    times(1_000, () => budget.deposit());
    expect(budget.balance).toBe(300);
    clock.advance(3_600_000);
    expect(budget.balance).toBe(100);
  });

  it('follows the injected clock from any origin', () => {
    for (const start of [-25_000, 1e12 + 123]) {
      const clock = new FakeClock(start);
      const budget = retryBudget({ ratio: 1, minRetriesPerSecond: 0, ttlMs: 10_000, clock });
      const sliceEnd = (Math.floor(start / 1_000) + 1) * 1_000;
      budget.deposit();
      clock.advance(sliceEnd + 9_000 - start - 1); // the last moment of the window
      expect(budget.balance).toBe(1);
      clock.advance(1);
      expect(budget.balance).toBe(0);
    }
  });

  it('ratio 0 and minRetriesPerSecond 0: never a retry', () => {
    const clock = new FakeClock();
    const budget = retryBudget({ ratio: 0, minRetriesPerSecond: 0, clock });
    times(1_000, () => budget.deposit());
    expect(budget.balance).toBe(0);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('uses the real clock by default', () => {
    const budget = retryBudget({ minRetriesPerSecond: 1 });
    budget.deposit();
    expect(budget.balance).toBe(10);
    expect(drain(budget)).toBe(10);
  });
});

describe('retryBudget option validation', () => {
  it.each<[unknown, RegExp]>([
    [{ ratio: -0.1 }, /ratio must be a number in \[0, 1000\], got number -0\.1/],
    [{ ratio: Number.NaN }, /ratio.*NaN/],
    [{ ratio: 1001 }, /ratio.*1001/],
    [{ ratio: '0.2' }, /ratio.*string "0\.2"/],
    [{ minRetriesPerSecond: -1 }, /minRetriesPerSecond must be a finite number >= 0, got number -1/],
    [{ minRetriesPerSecond: Number.POSITIVE_INFINITY }, /minRetriesPerSecond.*Infinity/],
    [{ ttlMs: 0 }, /ttlMs must be a finite number > 0, got number 0/],
    [{ ttlMs: Number.NaN }, /ttlMs.*NaN/],
    [{ ttlMs: Number.POSITIVE_INFINITY }, /ttlMs.*Infinity/],
    [{ clock: {} }, /clock must be a Clock, got object/],
    [{ clock: null }, /clock must be a Clock, got null/],
    [{ percentCanRetry: 0.2 }, /unknown option "percentCanRetry" \(did you mean "ratio"\?\)/],
    [
      { minRetriesPerSec: 5, ttl: 1 },
      /unknown options "minRetriesPerSec" .*"minRetriesPerSecond".*"ttl" .*"ttlMs"/,
    ],
    [null, /expected an options object, got null/],
    [5, /expected an options object, got number 5/],
  ])('rejects %o', (options, message) => {
    expect(() => retryBudget(options as RetryBudgetOptions)).toThrow(TypeError);
    expect(() => retryBudget(options as RetryBudgetOptions)).toThrow(message);
  });

  it('accepts the bounds', () => {
    const clock = new FakeClock();
    expect(() => retryBudget({ ratio: 0, minRetriesPerSecond: 0, ttlMs: 0.5, clock })).not.toThrow();
    expect(() => retryBudget({ ratio: 1000, clock })).not.toThrow();
    expect(() => retryBudget(undefined)).not.toThrow();
  });
});
