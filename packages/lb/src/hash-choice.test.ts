import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Balancer, PickContext } from './balancer.js';
import { maglev } from './maglev.js';
import { retry } from './retry.js';
import { ringHash } from './ring-hash.js';
import { FakeEntrySource } from './testing-entries.js';

/** Instance keys such as a discovery source gives: `ip:port`, distinct. */
const instanceKeys = (n: number, salt: number) =>
  Array.from({ length: n }, (_, i) => `10.${salt & 255}.${i >> 8}.${i & 255}:${8000 + (salt % 1000)}`);

const hashers = [
  ['ringHash', (source: FakeEntrySource) => ringHash(source, { replicas: 40 })],
  ['maglev', (source: FakeEntrySource) => maglev(source, { tableSize: 1_009 })],
] as const;

describe.each(hashers)('%s: a key’s choices for attempt 1, 2, …', (name, make) => {
  const choices = (
    balancer: Balancer<unknown, string>,
    source: FakeEntrySource,
    hashKey: string,
    count: number,
  ) =>
    Array.from({ length: count }, (_, i) =>
      source.keyOf(balancer.endpoint(i === 0 ? { hashKey } : { hashKey, attempt: i + 1 })),
    );

  it('property: attempts 1 … n of a key reach n different endpoints, then start over; attempt 1 is the plain pick', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.nat(), fc.string(), (n, salt, hashKey) => {
        const source = new FakeEntrySource(instanceKeys(n, salt));
        const balancer = make(source);
        const seen = choices(balancer, source, hashKey, 2 * n);
        expect(new Set(seen.slice(0, n)).size).toBe(n);
        expect(seen.slice(n)).toEqual(seen.slice(0, n));
        expect(source.keyOf(balancer.endpoint({ hashKey, attempt: 1 }))).toBe(seen[0]);
      }),
      { numRuns: 200 },
    );
  });

  it('every client that sees the same set makes the same choices', () => {
    const keys = instanceKeys(9, 7);
    const one = new FakeEntrySource(keys);
    const other = new FakeEntrySource(keys);
    for (const hashKey of ['ann', 'bob', 'cy', 'dee']) {
      expect(choices(make(other), other, hashKey, 9)).toEqual(choices(make(one), one, hashKey, 9));
    }
  });

  it('spreads the retries of one endpoint’s keys over the others', () => {
    const source = new FakeEntrySource(instanceKeys(8, 3));
    const balancer = make(source);
    const first = source.keyOf(balancer.endpoint({ hashKey: 'k0' }));
    const secondChoices = new Map<string, number>();
    for (let i = 0; i < 4_000; i++) {
      const hashKey = `k${i}`;
      if (source.keyOf(balancer.endpoint({ hashKey })) !== first) continue;
      const second = source.keyOf(balancer.endpoint({ hashKey, attempt: 2 }));
      secondChoices.set(second, (secondChoices.get(second) ?? 0) + 1);
    }
    expect(secondChoices.has(first)).toBe(false);
    // 7 other endpoints: each takes some of them, none takes most.
    expect(secondChoices.size).toBe(7);
    const total = [...secondChoices.values()].reduce((a, b) => a + b, 0);
    expect(Math.max(...secondChoices.values())).toBeLessThan(total / 2);
  });

  it('refuses an attempt that is not a positive integer', () => {
    const balancer = make(new FakeEntrySource(['a:1', 'b:1']));
    for (const attempt of [0, -1, 1.5, Number.NaN, '2']) {
      expect(() => balancer.endpoint({ hashKey: 'x', attempt: attempt as never })).toThrow(
        new RegExp(`${name}: context.attempt must be a positive integer`),
      );
    }
  });

  it('retry: a call whose key’s endpoint fails succeeds on the key’s second choice', async () => {
    const source = new FakeEntrySource<{ user: string }, string>(instanceKeys(6, 5));
    const balancer = make(source as FakeEntrySource) as Balancer<{ user: string }, string>;
    const down = source.keyOf(balancer.endpoint({ hashKey: 'ann' }));
    const second = source.keyOf(balancer.endpoint({ hashKey: 'ann', attempt: 2 }));
    const picks: (PickContext | undefined)[] = [];
    const failing: Balancer<{ user: string }, string> = {
      endpoint(context) {
        picks.push(context);
        const endpoint = balancer.endpoint(context);
        return source.keyOf(endpoint) === down
          ? () => Promise.reject(new Error(`${down} is down`))
          : endpoint;
      },
    };
    const call = retry(failing, {
      maxAttempts: 3,
      timeoutMs: 1_000,
      pickContext: (req) => ({ hashKey: req.user }),
    });
    expect(await call({ user: 'ann' })).toBe(second);
    expect(picks).toEqual([{ hashKey: 'ann' }, { hashKey: 'ann', attempt: 2 }]);
  });
});

describe('ringHash: the second choice', () => {
  it('property: is where the key goes when its first choice leaves the set', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 12 }), fc.nat(), fc.string(), (n, salt, hashKey) => {
        const keys = instanceKeys(n, salt);
        const source = new FakeEntrySource(keys);
        const balancer = ringHash(source);
        const first = source.keyOf(balancer.endpoint({ hashKey }));
        const second = source.keyOf(balancer.endpoint({ hashKey, attempt: 2 }));
        source.set(keys.filter((key) => key !== first));
        expect(source.keyOf(balancer.endpoint({ hashKey }))).toBe(second);
      }),
      { numRuns: 200 },
    );
  });
});
