import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Balancer } from './balancer.js';
import { NoEndpointsError } from './errors.js';
import { maglev } from './maglev.js';
import { retry } from './retry.js';
import { FakeEntrySource } from './testing-entries.js';

/** `count` hash keys, spread like request ids. */
const hashKeys = (count: number, salt = '') =>
  Array.from({ length: count }, (_, i) => ({ hashKey: `req-${salt}${i}-${(i * 2654435761) >>> 0}` }));

/** The key of the endpoint each context maps to. */
const route = (
  balancer: Balancer<unknown, string>,
  source: FakeEntrySource,
  contexts: { hashKey: string }[],
) => contexts.map((context) => source.keyOf(balancer.endpoint(context)));

/** Instance keys such as a discovery source gives: `ip:port`, distinct. */
const instanceKeys = (n: number, salt: number) =>
  Array.from({ length: n }, (_, i) => `10.${salt & 255}.${i >> 8}.${i & 255}:${8000 + (salt % 1000)}`);

describe('maglev', () => {
  it('maps a key to the same endpoint while the set is unchanged, in every client with the same set (seed does not matter)', () => {
    const keys = instanceKeys(12, 1);
    const source = new FakeEntrySource(keys);
    const contexts = hashKeys(2_000);
    const one = route(maglev(source, { seed: 1 }), source, contexts);
    const again = route(maglev(source, { seed: 1 }), source, contexts);
    expect(again).toEqual(one);
    const other = new FakeEntrySource(keys);
    expect(route(maglev(other, { seed: 99 }), other, contexts)).toEqual(one);
    const balancer = maglev(source);
    expect(route(balancer, source, contexts)).toEqual(one);
    expect(route(balancer, source, contexts)).toEqual(one);
  });

  it('pins the hashing scheme (MurmurHash3 of the instance keys and hash keys; a change here remaps every client)', () => {
    const source = new FakeEntrySource(['a:80', 'b:80', 'c:80']);
    const balancer = maglev(source);
    const routed = ['user-1', 'user-2', 'user-3', 'user-4', 'user-5', 'user-6', 'Zürich', '東京', ''].map(
      (hashKey) => source.keyOf(balancer.endpoint({ hashKey })),
    );
    expect(routed).toEqual(['b:80', 'a:80', 'c:80', 'b:80', 'c:80', 'c:80', 'b:80', 'b:80', 'a:80']);
  });

  it('property: removing or adding one of n endpoints moves about 1/n of the keys (≤ 1.5/n + 2 %)', () => {
    const contexts = hashKeys(5_000);
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 24 }), fc.nat(), fc.nat(), (n, salt, pick) => {
        const keys = instanceKeys(n + 1, salt);
        const source = new FakeEntrySource(keys.slice(0, n));
        const balancer = maglev(source, { seed: 1 });
        const before = route(balancer, source, contexts);
        const removed = keys[pick % n]!;
        source.set(keys.slice(0, n).filter((k) => k !== removed));
        const after = route(balancer, source, contexts);
        let moved = 0;
        before.forEach((key, i) => {
          if (after[i] !== key) moved++;
        });
        expect(after).not.toContain(removed);
        expect(moved / contexts.length).toBeLessThanOrEqual(1.5 / n + 0.02);

        source.set(keys); // n + 1 endpoints: the n first and a new one
        const grown = route(balancer, source, contexts);
        let joined = 0;
        let toNew = 0;
        grown.forEach((key, i) => {
          if (key !== before[i]) joined++;
          if (key === keys[n]) toNew++;
        });
        expect(joined / contexts.length).toBeLessThanOrEqual(1.5 / (n + 1) + 0.02);
        expect(toNew / contexts.length).toBeGreaterThan(0.6 / (n + 1));
      }),
      { numRuns: 60, seed: 0x5eed }, // statistical bounds: a fixed seed keeps the run deterministic
    );
  });

  it('property: balance — every endpoint gets 0.85 … 1.15 of the mean share (its slots differ by one at most)', () => {
    const contexts = hashKeys(20_000, 'b');
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 16 }), fc.nat(), (n, salt) => {
        const source = new FakeEntrySource(instanceKeys(n, salt));
        const counts = new Map<string, number>();
        for (const key of route(maglev(source), source, contexts))
          counts.set(key, (counts.get(key) ?? 0) + 1);
        const mean = contexts.length / n;
        expect(counts.size).toBe(n);
        for (const count of counts.values()) {
          expect(count / mean).toBeGreaterThan(0.85);
          expect(count / mean).toBeLessThan(1.15);
        }
      }),
      { numRuns: 40, seed: 0x5eed }, // statistical bounds: a fixed seed keeps the run deterministic
    );
  });

  it('a smaller table works too, with coarser shares (each endpoint ⌊M/n⌋ or ⌈M/n⌉ slots)', () => {
    const contexts = hashKeys(20_000, 't');
    const source = new FakeEntrySource(instanceKeys(10, 7));
    const counts = new Map<string, number>();
    for (const key of route(maglev(source, { tableSize: 101 }), source, contexts)) {
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(10);
    // 10 or 11 slots of 101 each: 9.9 % … 10.9 % of the keys, give or take sampling.
    for (const count of counts.values()) {
      expect(count / contexts.length).toBeGreaterThan(0.085);
      expect(count / contexts.length).toBeLessThan(0.125);
    }
  });

  it('more endpoints than slots: only tableSize of them hold keys, the set still serves', () => {
    const source = new FakeEntrySource(instanceKeys(20, 9));
    const balancer = maglev(source, { tableSize: 7 });
    const held = new Set(route(balancer, source, hashKeys(2_000)));
    expect(held.size).toBe(7);
    const unkeyed = new Set(Array.from({ length: 2_000 }, () => source.keyOf(balancer.endpoint())));
    expect(unkeyed.size).toBe(20);
  });

  it('without a hash key, picks uniformly at random (reproducibly with a seed)', () => {
    const source = new FakeEntrySource(['a', 'b', 'c', 'd']);
    const run = (seed: number) => {
      const balancer = maglev(source, { seed });
      return Array.from({ length: 4_000 }, () => source.keyOf(balancer.endpoint()));
    };
    const picks = run(5);
    expect(run(5)).toEqual(picks);
    for (const key of ['a', 'b', 'c', 'd']) {
      const count = picks.filter((k) => k === key).length;
      expect(count).toBeGreaterThan(850);
      expect(count).toBeLessThan(1_150);
    }
    const balancer = maglev(source, { seed: 5 });
    expect(source.keyOf(balancer.endpoint({}))).toBe(picks[0]);
  });

  it('builds the table only when the entries array changes', () => {
    let keyReads = 0;
    const entries = Object.freeze(
      ['a', 'b', 'c'].map((key) =>
        Object.freeze({
          get key() {
            keyReads++;
            return key;
          },
          instance: { key, address: key },
          endpoint: async () => key,
        }),
      ),
    );
    let current: readonly (typeof entries)[number][] = entries;
    const balancer = maglev({ endpoints: () => current.map((e) => e.endpoint), entries: () => current });
    for (const context of hashKeys(100)) balancer.endpoint(context);
    const perBuild = keyReads;
    expect(perBuild).toBeGreaterThan(0);
    for (const context of hashKeys(100)) balancer.endpoint(context);
    expect(keyReads).toBe(perBuild);
    current = Object.freeze([...entries]);
    balancer.endpoint({ hashKey: 'x' });
    expect(keyReads).toBe(2 * perBuild);
  });

  it('routes the calls of retry by its pickContext', async () => {
    const source = new FakeEntrySource<{ user: string }, string>(instanceKeys(5, 3));
    const balancer = maglev(source, { seed: 1 });
    const call = retry(balancer, {
      maxAttempts: 2,
      timeoutMs: 1_000,
      pickContext: (req) => ({ hashKey: req.user }),
    });
    for (const user of ['ann', 'bob', 'cy']) {
      const expected = source.keyOf(balancer.endpoint({ hashKey: user }));
      const endpoint = source.endpoint(expected);
      const before = endpoint.calls.length;
      expect(await call({ user })).toBe(expected);
      expect(endpoint.calls.length).toBe(before + 1);
    }
  });

  it('throws NoEndpointsError on an empty set; a TypeError for a hash key that is not a string', () => {
    const source = new FakeEntrySource([]);
    const balancer = maglev(source);
    expect(() => balancer.endpoint({ hashKey: 'x' })).toThrow(NoEndpointsError);
    expect(() => balancer.endpoint()).toThrow(NoEndpointsError);
    source.set(['a']);
    expect(source.keyOf(balancer.endpoint({ hashKey: 'x' }))).toBe('a');
    expect(() => balancer.endpoint({ hashKey: 42 as never })).toThrow(
      /maglev: context.hashKey must be a string, got number 42/,
    );
  });

  it('refuses a source without entries(), unknown options and bad values, naming them', () => {
    const source = new FakeEntrySource(['a']);
    expect(() => maglev({ endpoints: () => [] } as never)).toThrow(
      /maglev: the source must have entries\(\)/,
    );
    expect(() => maglev(source, { size: 101 } as never)).toThrow(/"size" \(did you mean "tableSize"\?\)/);
    for (const tableSize of [65_536, 5, 1.5, 16_777_259, Number.NaN, '65537', 9]) {
      expect(() => maglev(source, { tableSize: tableSize as never })).toThrow(
        /tableSize must be a prime in 7 … 16777213/,
      );
    }
    expect(() => maglev(source, { tableSize: 7 })).not.toThrow();
    expect(() => maglev(source, { tableSize: 655_373 })).not.toThrow();
    expect(() => maglev(source, { seed: -1 })).toThrow(/maglev: seed must be an integer/);
  });
});
