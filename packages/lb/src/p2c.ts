import { assertKnownOptions, type Endpoint } from '@sdkit/sd-core';
import type { Balancer, EndpointSource } from './balancer.js';
import { assertEndpointSource, noEndpoints, readyOf, typeName } from './balancer.js';
import { CallMeter, statsOf } from './call-meter.js';

/** Options of {@link p2c}. */
export interface P2cOptions {
  /**
   * The meter whose `measure(factory)` made the endpoints (their in-flight counts are read from it). An endpoint
   * it did not measure counts as idle.
   */
  readonly meter: CallMeter;
  /** Makes the random draws reproducible, as `random`'s seed does: an integer in 0 … 2³²−1. */
  readonly seed?: number;
}

/**
 * "Power of two choices", least in flight: each pick draws two distinct endpoints at random and takes the one with
 * fewer calls in flight (the first drawn on a tie). Far better than random under uneven load, at the cost of two
 * draws: a slow or stuck endpoint accumulates calls in flight and stops being chosen, while no endpoint is ever
 * starved (any endpoint is one of the two draws often enough to be picked when it is the less busy).
 *
 * The in-flight counts come from the `meter` that measured the endpoints (`endpointer(instancer,
 * meter.measure(factory))`). Allocates nothing per pick. With one endpoint, that one.
 *
 * @throws TypeError if `endpointer` has no `endpoints()`, `meter` is not a CallMeter, or `seed` is invalid.
 */
export function p2c<Req, Res>(endpointer: EndpointSource<Req, Res>, options: P2cOptions): Balancer<Req, Res> {
  const draw = checkedDraw('p2c', endpointer, options);
  return twoChoices(endpointer, draw, fewerInFlight);
}

/** Whether `b` has fewer calls in flight than `a` (an endpoint no meter measured counts as idle). */
function fewerInFlight(a: Endpoint<never, unknown>, b: Endpoint<never, unknown>): boolean {
  return (statsOf(b)?.inFlight ?? 0) < (statsOf(a)?.inFlight ?? 0);
}

/**
 * @internal Validates a two-choices balancer's arguments; returns its random draw: an integer in [0, n) per call,
 * from a private mulberry32 seeded with `seed` or from `crypto.getRandomValues`.
 */
export function checkedDraw(
  fn: string,
  endpointer: unknown,
  options: { readonly meter?: unknown; readonly seed?: unknown },
): (n: number) => number {
  assertEndpointSource(endpointer, fn);
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${fn}: options must be an object with a meter, got ${typeName(options)}`);
  }
  assertKnownOptions(fn, options, ['meter', 'seed', 'clock']);
  if (!(options.meter instanceof CallMeter)) {
    throw new TypeError(
      `${fn}: options.meter must be the CallMeter that measured the endpoints (endpointer(instancer, meter.measure(factory))), got ${typeName(options.meter)}`,
    );
  }
  const { seed } = options;
  if (
    seed !== undefined &&
    !(Number.isInteger(seed) && (seed as number) >= 0 && (seed as number) <= 0xffff_ffff)
  ) {
    throw new TypeError(`${fn}: seed must be an integer in 0 … 2^32-1, got ${typeName(seed)}`);
  }
  let state = ((seed as number | undefined) ?? globalThis.crypto.getRandomValues(new Uint32Array(1))[0]!) | 0;
  return (n) => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/**
 * @internal A balancer that draws two distinct endpoints `a` then `b` and picks `b` when `prefers(a, b)`, else `a`
 * (so the first drawn on a tie). Reads the source's `snapshot()` when it has one, else `endpoints()` (the same
 * draws pick the same endpoints either way).
 */
export function twoChoices<Req, Res>(
  endpointer: EndpointSource<Req, Res>,
  draw: (n: number) => number,
  prefers: (a: Endpoint<Req, Res>, b: Endpoint<Req, Res>) => boolean,
): Balancer<Req, Res> {
  if (typeof endpointer.snapshot === 'function') {
    const source = endpointer as EndpointSource<Req, Res> &
      Required<Pick<EndpointSource<Req, Res>, 'snapshot'>>;
    return {
      endpoint() {
        const snapshot = source.snapshot();
        const n = snapshot.length;
        if (n === 0) throw noEndpoints(source);
        if (n === 1) return snapshot.endpointAt(0)!;
        const i = draw(n);
        let j = draw(n - 1);
        if (j >= i) j++;
        const a = snapshot.endpointAt(i)!;
        const b = snapshot.endpointAt(j)!;
        return prefers(a, b) ? b : a;
      },
      ...readyOf(endpointer),
    };
  }
  return {
    endpoint() {
      const endpoints = endpointer.endpoints();
      const n = endpoints.length;
      if (n === 0) throw noEndpoints(endpointer);
      if (n === 1) return endpoints[0]!;
      const i = draw(n);
      let j = draw(n - 1);
      if (j >= i) j++;
      const a = endpoints[i]!;
      const b = endpoints[j]!;
      return prefers(a, b) ? b : a;
    },
    ...readyOf(endpointer),
  };
}
