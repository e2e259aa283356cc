import { typeName } from './balancer.js';

/**
 * @internal The initial state of a balancer's private mulberry32 generator: `seed` when given (checked: an integer
 * in 0 … 2³²−1, else a TypeError naming `fn`), else 32 bits from `crypto.getRandomValues`. As a signed 32-bit
 * integer.
 */
export function seedOf(fn: string, seed: unknown): number {
  if (seed === undefined) return globalThis.crypto.getRandomValues(new Uint32Array(1))[0]! | 0;
  if (!(typeof seed === 'number' && Number.isInteger(seed) && seed >= 0 && seed <= 0xffff_ffff)) {
    throw new TypeError(`${fn}: seed must be an integer in 0 … 2^32-1, got ${typeName(seed)}`);
  }
  return seed | 0;
}
