import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NoEndpointsError } from './errors.js';
import { FakeEntrySource } from './testing-entries.js';
import { weighted } from './weighted.js';

/** A source of endpoints `e0 … e(n−1)` whose metadata.weight are `weights`. */
const weightedSource = (weights: readonly unknown[]) =>
  new FakeEntrySource(weights.map((weight, i) => ({ key: `e${i}`, metadata: { weight } })));

/** The keys of `count` picks. */
function picks(balancer: { endpoint(): unknown }, source: FakeEntrySource, count: number): string[] {
  return Array.from({ length: count }, () => source.keyOf(balancer.endpoint() as never));
}

function tally(keys: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const key of keys) counts[key] = (counts[key] ?? 0) + 1;
  return counts;
}

/** Whether `sequence` is a rotation of `cycle`. */
const isRotation = (sequence: readonly string[], cycle: readonly string[]): boolean =>
  sequence.length === cycle.length && [...cycle, ...cycle].join(' ').includes(sequence.join(' '));

describe('weighted (EDF weighted round-robin)', () => {
  it('property: any k·W consecutive picks hold each endpoint exactly k·wᵢ times (integer weights, 0 included)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 1, maxLength: 24 }),
        fc.integer({ min: 1, max: 4 }),
        fc.nat(300),
        fc.nat(),
        (weights, k, skip, seed) => {
          const source = weightedSource(weights);
          const balancer = weighted(source, { seed });
          const allZero = weights.every((w) => w === 0);
          const effective = allZero ? weights.map(() => 1) : weights;
          const total = effective.reduce((a, b) => a + b, 0);
          picks(balancer, source, skip); // start anywhere: every window of k·W picks is exact
          const counts = tally(picks(balancer, source, k * total));
          effective.forEach((w, i) => {
            expect(counts[`e${i}`] ?? 0).toBe(k * w);
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('every round is alike, ties included: weights 3 and 9 tie at 1/6 = 3/18 in every round, not only the first', () => {
    const source = weightedSource([3, 9, 0]);
    const sequence = picks(weighted(source, { seed: 528003031 }), source, 12 * 6);
    for (let from = 12; from + 12 <= sequence.length; from++) {
      expect(sequence.slice(from, from + 12)).toEqual(sequence.slice(from - 12, from));
    }
  });

  it('spreads picks over the round (no bursts): weights 5, 1, 1 make a rotation of e0 e0 e0 e1 e2 e0 e0', () => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7]) {
      const source = weightedSource([5, 1, 1]);
      const balancer = weighted(source, { seed });
      const sequence = picks(balancer, source, 21);
      for (let from = 0; from + 7 <= 21; from++) {
        expect(isRotation(sequence.slice(from, from + 7), ['e0', 'e0', 'e0', 'e1', 'e2', 'e0', 'e0'])).toBe(
          true,
        );
      }
    }
    // Weights 4, 1: e1 comes once in every 5, between two pairs of e0.
    const source = weightedSource([4, 1]);
    const sequence = picks(weighted(source, { seed: 9 }), source, 10);
    expect(isRotation(sequence.slice(0, 5), ['e0', 'e0', 'e1', 'e0', 'e0'])).toBe(true);
  });

  it('property: between two picks of an endpoint come at most W/wᵢ + n other picks (EDF keeps each on its pace)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 16 }),
        fc.nat(),
        (weights, seed) => {
          const source = weightedSource(weights);
          const total = weights.reduce((a, b) => a + b, 0);
          const sequence = picks(weighted(source, { seed }), source, 3 * total);
          weights.forEach((w, i) => {
            let last = -1;
            sequence.forEach((key, at) => {
              if (key !== `e${i}`) return;
              if (last >= 0) expect(at - last).toBeLessThanOrEqual(Math.ceil(total / w) + weights.length);
              last = at;
            });
          });
        },
      ),
    );
  });

  it('non-integer weights: the shares converge to wᵢ / W', () => {
    const source = weightedSource([0.5, 1.5, 2.25]);
    const counts = tally(picks(weighted(source, { seed: 3 }), source, 42_500));
    expect(Math.abs(counts.e0! - 5_000)).toBeLessThanOrEqual(2);
    expect(Math.abs(counts.e1! - 15_000)).toBeLessThanOrEqual(2);
    expect(Math.abs(counts.e2! - 22_500)).toBeLessThanOrEqual(2);
  });

  it('weight 0 is never picked; when every weight is 0, all are picked equally (round-robin)', () => {
    const source = weightedSource([0, 3, 0, 1]);
    const counts = tally(picks(weighted(source, { seed: 1 }), source, 400));
    expect(counts).toEqual({ e1: 300, e3: 100 });
    const zeros = weightedSource([0, 0, 0]);
    const sequence = picks(weighted(zeros, { seed: 1 }), zeros, 9);
    expect(tally(sequence)).toEqual({ e0: 3, e1: 3, e2: 3 });
    expect(isRotation(sequence.slice(0, 3), ['e0', 'e1', 'e2'])).toBe(true);
  });

  it('default weight: metadata.weight when a finite number ≥ 0, else 1', () => {
    const source = new FakeEntrySource([
      { key: 'a', metadata: { weight: 3 } },
      { key: 'b', metadata: { weight: '7' } }, // a string: 1
      { key: 'c', metadata: { weight: -2 } }, // negative: 1
      { key: 'd' }, // no metadata: 1
      { key: 'e', metadata: { weight: 0 } },
    ]);
    expect(tally(picks(weighted(source, { seed: 5 }), source, 60))).toEqual({ a: 30, b: 10, c: 10, d: 10 });
  });

  it('weightOf: called once per entry when the set changes, never per pick; bad results count as 1', () => {
    const source = new FakeEntrySource(['a', 'b', 'c']);
    const calls: string[] = [];
    const byKey: Record<string, number> = { a: 2, b: Number.NaN, c: 5 };
    const balancer = weighted(source, {
      seed: 1,
      weightOf: (instance) => {
        calls.push(instance.key);
        return byKey[instance.key]!;
      },
    });
    expect(tally(picks(balancer, source, 80))).toEqual({ a: 20, b: 10, c: 50 });
    expect(calls).toEqual(['a', 'b', 'c']);
    source.set(['a', 'c']);
    expect(tally(picks(balancer, source, 70))).toEqual({ a: 20, c: 50 });
    expect(calls).toEqual(['a', 'b', 'c', 'a', 'c']);
  });

  it('a weightOf that throws fails the pick; the next pick tries the set again', () => {
    const source = weightedSource([1, 3]);
    let fail = true;
    const balancer = weighted(source, {
      seed: 1,
      weightOf: (instance) => {
        if (fail) throw new Error('no weights yet');
        return instance.key === 'e0' ? 1 : 3;
      },
    });
    expect(() => balancer.endpoint()).toThrow('no weights yet');
    fail = false;
    expect(tally(picks(balancer, source, 40))).toEqual({ e0: 10, e1: 30 });
  });

  it('follows the set: a new endpoint gets its share, a removed one none', () => {
    const source = weightedSource([1, 2]);
    const balancer = weighted(source, { seed: 1 });
    picks(balancer, source, 5);
    source.set([
      { key: 'e0', metadata: { weight: 1 } },
      { key: 'e2', metadata: { weight: 3 } },
    ]);
    expect(tally(picks(balancer, source, 40))).toEqual({ e0: 10, e2: 30 });
  });

  it('the same seed gives the same picks; different seeds start at different points', () => {
    const weights = [1, 2, 3, 4, 5, 6, 7, 8];
    const run = (seed: number) => {
      const source = weightedSource(weights);
      return picks(weighted(source, { seed }), source, 36).join(' ');
    };
    expect(run(11)).toBe(run(11));
    const starts = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((seed) => run(seed).split(' ')[0]));
    expect(starts.size).toBeGreaterThan(2);
  });

  it('throws NoEndpointsError when the set is empty, and recovers', () => {
    const source = new FakeEntrySource([]);
    const balancer = weighted(source);
    expect(() => balancer.endpoint()).toThrow(NoEndpointsError);
    source.set(['a']);
    expect(source.keyOf(balancer.endpoint())).toBe('a');
    source.set([]);
    expect(() => balancer.endpoint()).toThrow(NoEndpointsError);
  });

  it('refuses a source without entries(), unknown options and bad values, naming them', () => {
    const source = new FakeEntrySource(['a']);
    expect(() => weighted({ endpoints: () => [] } as never)).toThrow(
      /weighted: the source must have entries\(\)/,
    );
    expect(() => weighted(null as never)).toThrow(/weighted: expected an Endpointer.*got null/);
    expect(() => weighted(source, { weight: () => 1 } as never)).toThrow(
      /"weight" \(did you mean "weightOf"\?\)/,
    );
    expect(() => weighted(source, { weightOf: 3 } as never)).toThrow(
      /weightOf must be a function, got number 3/,
    );
    expect(() => weighted(source, { seed: 1.5 })).toThrow(/weighted: seed must be an integer/);
    expect(() => weighted(source, 'x' as never)).toThrow(/options must be an object/);
  });
});
