import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NoEndpointsError } from './errors.js';
import { roundRobin } from './round-robin.js';
import { FakeEndpointer, fakeEndpoint } from './testing-fakes.js';

const make = (n: number, prefix = 'e') => Array.from({ length: n }, (_, i) => fakeEndpoint(`${prefix}${i}`));

describe('roundRobin', () => {
  it('cycles through the endpoints in order and wraps around', () => {
    const endpoints = make(3);
    const source = new FakeEndpointer(endpoints);
    const balancer = roundRobin(source);
    const picked = Array.from({ length: 8 }, () => endpoints.indexOf(balancer.endpoint() as never));
    expect(picked).toEqual([0, 1, 2, 0, 1, 2, 0, 1]);
    // It reads the live set on every pick (never caches it).
    expect(source.reads).toBe(8);
  });

  it('follows a set that grows mid-stream', () => {
    const [a, b, c, d] = make(4);
    const source = new FakeEndpointer([a!, b!, c!]);
    const balancer = roundRobin(source);
    expect([balancer.endpoint(), balancer.endpoint()]).toEqual([a, b]);
    source.set([a!, b!, c!, d!]);
    expect([balancer.endpoint(), balancer.endpoint(), balancer.endpoint()]).toEqual([c, d, a]);
  });

  it('follows a set that shrinks mid-stream (position taken modulo the new size)', () => {
    const [a, b, c, d] = make(4);
    const source = new FakeEndpointer([a!, b!, c!, d!]);
    const balancer = roundRobin(source);
    expect([balancer.endpoint(), balancer.endpoint(), balancer.endpoint()]).toEqual([a, b, c]);
    source.set([a!, b!]);
    // Position 3 in a set of 2 is 1.
    expect([balancer.endpoint(), balancer.endpoint(), balancer.endpoint()]).toEqual([b, a, b]);
    source.set([c!]);
    expect([balancer.endpoint(), balancer.endpoint()]).toEqual([c, c]);
  });

  it('throws NoEndpointsError when the set is empty, and recovers when endpoints appear', () => {
    const [a, b] = make(2);
    const source = new FakeEndpointer<unknown, string>([]);
    const balancer = roundRobin(source);
    expect(() => balancer.endpoint()).toThrow(NoEndpointsError);
    try {
      balancer.endpoint();
    } catch (error) {
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).name).toBe('NoEndpointsError');
      expect((error as Error).message).toMatch(/no endpoints/);
    }
    source.set([a!, b!]);
    expect(balancer.endpoint()).toBe(a);
    source.set([]);
    expect(() => balancer.endpoint()).toThrow(NoEndpointsError);
    source.set([a!, b!]);
    expect(balancer.endpoint()).toBe(b);
  });

  it('keeps independent positions per balancer', () => {
    const endpoints = make(3);
    const source = new FakeEndpointer(endpoints);
    const one = roundRobin(source);
    const two = roundRobin(source);
    expect(one.endpoint()).toBe(endpoints[0]);
    expect(one.endpoint()).toBe(endpoints[1]);
    expect(two.endpoint()).toBe(endpoints[0]);
  });

  it('rejects a value that is not an endpointer with a TypeError naming it', () => {
    expect(() => roundRobin(null as never)).toThrow(/roundRobin: expected an Endpointer.*got null/);
    expect(() => roundRobin({} as never)).toThrow(TypeError);
    expect(() => roundRobin(42 as never)).toThrow(/got number 42/);
  });

  it('property: over k·n picks of n endpoints, each is picked exactly k times', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.nat(100),
        (n, k, skip) => {
          const endpoints = make(n);
          const balancer = roundRobin(new FakeEndpointer(endpoints));
          // Start anywhere in the cycle: any k·n consecutive picks are fair.
          for (let i = 0; i < skip; i++) balancer.endpoint();
          const counts = new Map<unknown, number>();
          for (let i = 0; i < k * n; i++) {
            const e = balancer.endpoint();
            counts.set(e, (counts.get(e) ?? 0) + 1);
          }
          expect(counts.size).toBe(n);
          for (const e of endpoints) expect(counts.get(e)).toBe(k);
        },
      ),
    );
  });

  it('property: whatever the set changes, a pick is always a member of the current set', () => {
    const op = fc.oneof(fc.record({ setSize: fc.integer({ min: 0, max: 8 }) }), fc.constant('pick' as const));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const all = make(8);
        const source = new FakeEndpointer(all.slice(0, 3));
        const balancer = roundRobin(source);
        let current = all.slice(0, 3);
        for (const o of ops) {
          if (o === 'pick') {
            if (current.length === 0) expect(() => balancer.endpoint()).toThrow(NoEndpointsError);
            else expect(current).toContain(balancer.endpoint());
          } else {
            current = all.slice(0, o.setSize);
            source.set(current);
          }
        }
      }),
    );
  });
});
