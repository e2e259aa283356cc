import { describe, expect, it } from 'vitest';
import { NoEndpointsError } from './errors.js';
import { mulberry32, random } from './random.js';
import { FakeEndpointer, fakeEndpoint } from './testing-fakes.js';

const make = (n: number) => Array.from({ length: n }, (_, i) => fakeEndpoint(`e${i}`));

function picks(seed: number | undefined, n: number, count: number): number[] {
  const endpoints = make(n);
  const balancer = random(new FakeEndpointer(endpoints), seed === undefined ? {} : { seed });
  return Array.from({ length: count }, () => endpoints.indexOf(balancer.endpoint() as never));
}

describe('random', () => {
  it('is deterministic given a seed: same seed, same sequence', () => {
    const first = picks(42, 7, 500);
    expect(picks(42, 7, 500)).toEqual(first);
    expect(first.every((i) => i >= 0 && i < 7)).toBe(true);
  });

  it('gives different sequences for different seeds', () => {
    const a = picks(1, 7, 200);
    const b = picks(2, 7, 200);
    const c = picks(0, 7, 200);
    expect(a).not.toEqual(b);
    expect(a).not.toEqual(c);
    expect(b).not.toEqual(c);
  });

  it('is roughly uniform (chi-square over 100 000 picks of 10 endpoints, fixed seed)', () => {
    const n = 10;
    const total = 100_000;
    const counts = new Array<number>(n).fill(0);
    for (const i of picks(20240601, n, total)) counts[i]!++;
    const expected = total / n;
    const chiSquare = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
    // 9 degrees of freedom: P(chi² > 40) ≈ 1e-5 for a uniform generator; a biased one (e.g. always one endpoint,
    // or an off-by-one that never picks the last) scores in the thousands.
    expect(chiSquare).toBeLessThan(40);
    expect(Math.min(...counts)).toBeGreaterThan(0);
  });

  it('a seeded balancer picks exactly the mulberry32 sequence for that seed', () => {
    const eps = Array.from({ length: 7 }, (_, i) => fakeEndpoint(`e${i}`));
    const b = random(new FakeEndpointer(eps), { seed: 12345 });
    const next = mulberry32(12345);
    for (let i = 0; i < 1000; i++) expect(b.endpoint()).toBe(eps[Math.floor(next() * eps.length)]);
  });

  it('mulberry32 yields floats in [0, 1)', () => {
    const next = mulberry32(0xffff_ffff);
    for (let i = 0; i < 10_000; i++) {
      const x = next();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });

  it('without a seed still picks only (and eventually all) current endpoints', () => {
    const seen = new Set(picks(undefined, 4, 2000));
    // P(some endpoint never picked in 2000 uniform picks) = 4·(3/4)^2000 ≈ 1e-249.
    expect([...seen].sort()).toEqual([0, 1, 2, 3]);
  });

  it('without a seed, each balancer draws its own seed: two balancers do not pick in lock-step', () => {
    // Two equal 64-pick sequences over 1000 endpoints happen by chance with probability 1000^-64.
    const a = picks(undefined, 1000, 64);
    const b = picks(undefined, 1000, 64);
    expect(a).not.toEqual(b);
  });

  it('reads the live set on every pick and throws NoEndpointsError when it is empty', () => {
    const [a, b] = make(2);
    const source = new FakeEndpointer([a!, b!]);
    const balancer = random(source, { seed: 7 });
    balancer.endpoint();
    source.set([b!]);
    for (let i = 0; i < 20; i++) expect(balancer.endpoint()).toBe(b);
    source.set([]);
    expect(() => balancer.endpoint()).toThrow(NoEndpointsError);
  });

  it('rejects bad input with a TypeError naming it', () => {
    const source = new FakeEndpointer(make(1));
    for (const seed of [-1, 1.5, 2 ** 32, Number.NaN]) {
      expect(() => random(source, { seed })).toThrow(TypeError);
    }
    expect(() => random(source, { seed: '3' as never })).toThrow(/seed.*got string "3"/);
    expect(() => random(undefined as never)).toThrow(/random: expected an Endpointer/);
    expect(() => random(source, { seed: 0 })).not.toThrow();
    expect(() => random(source, { seed: 2 ** 32 - 1 })).not.toThrow();
  });
});
