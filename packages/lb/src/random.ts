import { assertKnownOptions } from '@sdkit/sd-core';
import type { Balancer, EndpointSource } from './balancer.js';
import { assertEndpointSource, noEndpoints, readyOf, typeName } from './balancer.js';

/** Options of {@link random}. */
export interface RandomOptions {
  /**
   * Makes the sequence of picks deterministic: the same seed over the same sequence of sets gives the same
   * endpoints. An unsigned 32-bit integer (0 … 2³²−1). Without it, each balancer draws its seed from
   * `crypto.getRandomValues`, so balancers (and processes) pick independently.
   */
  readonly seed?: number;
}

/**
 * A {@link Balancer} that picks uniformly at random among the current endpoints (go-kit's `lb.NewRandom`).
 *
 * It reads the source's set on every pick — `endpointer.snapshot()` when the source has it (sd-core's Endpointer
 * does), else `endpointer.endpoints()`; the same index picks the same endpoint either way — and allocates nothing
 * per pick. Picks come from a private mulberry32 generator (fast, 32-bit state, statistically fine for
 * balancing, not for cryptography): seeded with `seed`, so tests and simulations are reproducible, or else from
 * `crypto.getRandomValues`. (Not `Math.random()`: its result was boxed at the pick, 16 bytes per pick.)
 *
 * @throws TypeError if `endpointer` has no `endpoints()` method, or `seed` is not an integer in 0 … 2³²−1.
 */
export function random<Req, Res>(
  endpointer: EndpointSource<Req, Res>,
  options: RandomOptions = {},
): Balancer<Req, Res> {
  assertEndpointSource(endpointer, 'random');
  if (typeof options === 'object' && options !== null) assertKnownOptions('random', options, ['seed']);
  const { seed } = options;
  if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0 && seed <= 0xffff_ffff)) {
    throw new TypeError(`random: seed must be an integer in 0 … 2^32-1, got ${typeName(seed)}`);
  }
  // mulberry32 inlined into the pick (same sequence as {@link mulberry32}): a generator returned through a call
  // boxed its double result, 16 bytes per pick; the integer state and the index never leave this function.
  let state = (seed ?? randomSeed()) | 0;
  if (typeof endpointer.snapshot === 'function') {
    const source = endpointer as EndpointSource<Req, Res> &
      Required<Pick<EndpointSource<Req, Res>, 'snapshot'>>;
    return {
      endpoint() {
        const snapshot = source.snapshot();
        const n = snapshot.length;
        if (n === 0) throw noEndpoints(source);
        state = (state + 0x6d2b79f5) | 0;
        let t = Math.imul(state ^ (state >>> 15), 1 | state);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return snapshot.endpointAt(Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n))!;
      },
      ...readyOf(endpointer),
    };
  }
  return {
    endpoint() {
      const endpoints = endpointer.endpoints();
      const n = endpoints.length;
      if (n === 0) throw noEndpoints(endpointer);
      state = (state + 0x6d2b79f5) | 0;
      let t = Math.imul(state ^ (state >>> 15), 1 | state);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return endpoints[Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n)]!;
    },
    ...readyOf(endpointer),
  };
}

/** 32 random bits from the platform's CSPRNG (Node ≥ 19 and browsers have `globalThis.crypto`). */
function randomSeed(): number {
  return globalThis.crypto.getRandomValues(new Uint32Array(1))[0]!;
}

/** @internal mulberry32: a uniform float in [0, 1) per call, from 32 bits of state. */
export function mulberry32(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
