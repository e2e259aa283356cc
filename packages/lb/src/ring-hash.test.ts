import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Balancer } from './balancer.js';
import { NoEndpointsError } from './errors.js';
import { retry } from './retry.js';
import { ringHash } from './ring-hash.js';
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

describe('ringHash', () => {
  it('maps a key to the same endpoint while the set is unchanged, in every client (seed and order do not matter)', () => {
    const keys = instanceKeys(12, 1);
    const source = new FakeEntrySource(keys);
    const contexts = hashKeys(2_000);
    const one = route(ringHash(source, { seed: 1 }), source, contexts);
    const again = route(ringHash(source, { seed: 1 }), source, contexts);
    expect(again).toEqual(one);
    const other = new FakeEntrySource([...keys].reverse());
    expect(route(ringHash(other, { seed: 99 }), other, contexts)).toEqual(one);
    const balancer = ringHash(source);
    expect(route(balancer, source, contexts)).toEqual(one);
    expect(route(balancer, source, contexts)).toEqual(one);
  });

  it('pins the hashing scheme (MurmurHash3 of the instance keys; a change here remaps every client)', () => {
    const source = new FakeEntrySource(['a:80', 'b:80', 'c:80']);
    const balancer = ringHash(source);
    const routed = ['user-1', 'user-2', 'user-3', 'user-4', 'user-5', 'user-6', 'Zürich', '東京', ''].map(
      (hashKey) => source.keyOf(balancer.endpoint({ hashKey })),
    );
    expect(routed).toEqual(['b:80', 'c:80', 'c:80', 'c:80', 'c:80', 'c:80', 'a:80', 'a:80', 'b:80']);
  });

  it('property: removing one of n endpoints moves only its keys (about 1/n of them); adding one moves keys only to it', () => {
    const contexts = hashKeys(5_000);
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 24 }), fc.nat(), fc.nat(), (n, salt, pick) => {
        const keys = instanceKeys(n + 1, salt);
        const source = new FakeEntrySource(keys.slice(0, n));
        const balancer = ringHash(source, { seed: 1 });
        const before = route(balancer, source, contexts);
        const removed = keys[pick % n]!;
        source.set(keys.slice(0, n).filter((k) => k !== removed));
        const after = route(balancer, source, contexts);
        let moved = 0;
        let movedOthers = 0;
        before.forEach((key, i) => {
          if (key === removed) moved++;
          else if (after[i] !== key) movedOthers++;
        });
        expect(movedOthers).toBe(0);
        expect(moved / contexts.length).toBeLessThanOrEqual(1.5 / n + 0.02);

        source.set(keys); // n + 1 endpoints: the n first and a new one
        const grown = route(balancer, source, contexts);
        let joined = 0;
        let elsewhere = 0;
        grown.forEach((key, i) => {
          if (key !== before[i]) {
            joined++;
            if (key !== keys[n]) elsewhere++;
          }
        });
        expect(elsewhere).toBe(0);
        expect(joined / contexts.length).toBeLessThanOrEqual(1.5 / (n + 1) + 0.02);
      }),
      { numRuns: 60, seed: 0x5eed }, // statistical bounds: a fixed seed keeps the run deterministic
    );
  });

  it('property: balance — with 160 points each, every endpoint gets 0.6 … 1.4 of the mean share', () => {
    const contexts = hashKeys(20_000, 'b');
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 16 }), fc.nat(), (n, salt) => {
        const source = new FakeEntrySource(instanceKeys(n, salt));
        const counts = new Map<string, number>();
        for (const key of route(ringHash(source), source, contexts))
          counts.set(key, (counts.get(key) ?? 0) + 1);
        const mean = contexts.length / n;
        expect(counts.size).toBe(n);
        for (const count of counts.values()) {
          expect(count / mean).toBeGreaterThan(0.6);
          expect(count / mean).toBeLessThan(1.4);
        }
      }),
      { numRuns: 40, seed: 0x5eed }, // statistical bounds: a fixed seed keeps the run deterministic
    );
  });

  it('more points per endpoint, a more even balance', () => {
    const contexts = hashKeys(20_000, 'r');
    const spread = (replicas: number) => {
      const source = new FakeEntrySource(instanceKeys(10, 7));
      const counts = new Map<string, number>();
      for (const key of route(ringHash(source, { replicas }), source, contexts)) {
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      return Math.max(...counts.values()) / Math.min(...counts.values());
    };
    expect(spread(1_000)).toBeLessThan(spread(4));
    expect(spread(1_000)).toBeLessThan(1.25);
  });

  it('without a hash key, picks uniformly at random (reproducibly with a seed)', () => {
    const source = new FakeEntrySource(['a', 'b', 'c', 'd']);
    const run = (seed: number) => {
      const balancer = ringHash(source, { seed });
      return Array.from({ length: 4_000 }, () => source.keyOf(balancer.endpoint()));
    };
    const picks = run(5);
    expect(run(5)).toEqual(picks);
    for (const key of ['a', 'b', 'c', 'd']) {
      const count = picks.filter((k) => k === key).length;
      expect(count).toBeGreaterThan(850);
      expect(count).toBeLessThan(1_150);
    }
    const balancer = ringHash(source, { seed: 5 });
    expect(source.keyOf(balancer.endpoint({}))).toBe(picks[0]);
  });

  it('builds the ring only when the entries array changes', () => {
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
    const balancer = ringHash({ endpoints: () => current.map((e) => e.endpoint), entries: () => current });
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
    const balancer = ringHash(source, { seed: 1 });
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
    const balancer = ringHash(source);
    expect(() => balancer.endpoint({ hashKey: 'x' })).toThrow(NoEndpointsError);
    expect(() => balancer.endpoint()).toThrow(NoEndpointsError);
    source.set(['a']);
    expect(source.keyOf(balancer.endpoint({ hashKey: 'x' }))).toBe('a');
    expect(() => balancer.endpoint({ hashKey: 42 as never })).toThrow(
      /ringHash: context.hashKey must be a string, got number 42/,
    );
  });

  it('refuses a source without entries(), unknown options and bad values, naming them', () => {
    const source = new FakeEntrySource(['a']);
    expect(() => ringHash({ endpoints: () => [] } as never)).toThrow(
      /ringHash: the source must have entries\(\)/,
    );
    expect(() => ringHash(source, { vnodes: 10 } as never)).toThrow(/"vnodes" \(did you mean "replicas"\?\)/);
    for (const replicas of [0, 1.5, 10_001, Number.NaN, '160']) {
      expect(() => ringHash(source, { replicas: replicas as never })).toThrow(
        /replicas must be an integer in 1 … 10000/,
      );
    }
    expect(() => ringHash(source, { seed: -1 })).toThrow(/ringHash: seed must be an integer/);
  });
});
