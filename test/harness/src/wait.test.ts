import { describe, expect, it } from 'vitest';
import { eventually, type SubscribableLike, waitFor } from './wait.js';

/** A minimal hand-written subject: emit() pushes to current subscribers; counts live subscriptions. */
function subject<T>(initial: T[] = []) {
  const observers = new Set<{ next: (v: T) => void; error: (e: unknown) => void; complete: () => void }>();
  const source: SubscribableLike<T> & {
    emit(v: T): void;
    fail(e: unknown): void;
    end(): void;
    live(): number;
  } = {
    subscribe(observer) {
      observers.add(observer);
      for (const v of initial) observer.next(v);
      return { unsubscribe: () => observers.delete(observer) };
    },
    emit: (v) => {
      for (const o of [...observers]) o.next(v);
    },
    fail: (e) => {
      for (const o of [...observers]) o.error(e);
    },
    end: () => {
      for (const o of [...observers]) o.complete();
    },
    live: () => observers.size,
  };
  return source;
}

describe('waitFor', () => {
  it('resolves with the first matching value and unsubscribes', async () => {
    const s = subject<number>();
    const p = waitFor(s, (v) => v > 1, 'a value above 1', 1000);
    s.emit(1);
    s.emit(2);
    s.emit(3);
    expect(await p).toBe(2);
    expect(s.live()).toBe(0);
  });

  it('sees values emitted synchronously during subscribe', async () => {
    const s = subject([5, 6]);
    expect(await waitFor(s, (v) => v === 5, 'five', 1000)).toBe(5);
    expect(s.live()).toBe(0);
  });

  it('rejects on timeout naming what it waited for and the last value', async () => {
    const s = subject<{ n: number }>();
    const p = waitFor(s, (v) => v.n > 10, 'n above 10', 100);
    s.emit({ n: 1 });
    s.emit({ n: 7 });
    await expect(p).rejects.toThrow(/timed out after 100 ms waiting for n above 10; last value: \{ n: 7 \}/);
    expect(s.live()).toBe(0);
  });

  it('says when nothing was emitted', async () => {
    await expect(waitFor(subject<number>(), () => true, 'anything', 50)).rejects.toThrow(
      /no value was emitted/,
    );
  });

  it('rejects when the source errors or completes first', async () => {
    const a = subject<number>();
    const pa = waitFor(a, () => false, 'never', 1000);
    a.emit(4);
    a.fail(new Error('boom'));
    await expect(pa).rejects.toThrow(/source errored while waiting for never: Error: boom; last value: 4/);
    const b = subject<number>();
    const pb = waitFor(b, () => false, 'never', 1000);
    b.end();
    await expect(pb).rejects.toThrow(/source completed before never/);
  });

  it('rejects bad arguments', () => {
    expect(() => waitFor(subject<number>(), () => true, 'x', 0)).toThrow(TypeError);
  });
});

describe('eventually', () => {
  it('polls until the function returns a truthy value', async () => {
    let calls = 0;
    const value = await eventually(
      async () => (++calls >= 3 ? `done after ${calls}` : undefined),
      'three calls',
      2000,
    );
    expect(value).toBe('done after 3');
  });

  it('treats throws as "not yet" and reports the last error on timeout', async () => {
    await expect(
      eventually(
        async () => {
          throw new Error('still down');
        },
        'etcd up',
        150,
      ),
    ).rejects.toThrow(/timed out after 150 ms waiting for etcd up; last error: still down/);
  });

  it('reports the last falsy result on timeout', async () => {
    await expect(eventually(async () => false, 'truth', 80)).rejects.toThrow(
      /waiting for truth; last result: false/,
    );
  });
});
