import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { murmur3, murmur3Pair } from './murmur3.js';

/** A plain MurmurHash3_x86_32 over bytes, written from the reference, to check the streaming UTF-8 one against. */
function reference(bytes: Uint8Array, seed: number): number {
  let h = seed | 0;
  const blocks = bytes.length >>> 2;
  const k1 = (k: number) => {
    const m = Math.imul(k, 0xcc9e2d51);
    return Math.imul((m << 15) | (m >>> 17), 0x1b873593);
  };
  for (let b = 0; b < blocks; b++) {
    const i = b * 4;
    const k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    h ^= k1(k);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let tail = 0;
  const rest = bytes.length & 3;
  for (let j = rest - 1; j >= 0; j--) tail = (tail << 8) | bytes[blocks * 4 + j]!;
  if (rest > 0) h ^= k1(tail);
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const utf8 = new TextEncoder();

describe('murmur3 (MurmurHash3_x86_32 over UTF-8)', () => {
  it('gives the published values', () => {
    expect(murmur3('', 0) >>> 0).toBe(0);
    expect(murmur3('', 1) >>> 0).toBe(0x514e28b7);
    expect(murmur3('', 0xffffffff) >>> 0).toBe(0x81f16f39);
    expect(murmur3('\0\0\0\0', 0) >>> 0).toBe(0x2362f9de);
    expect(murmur3('aaaa', 0x9747b28c) >>> 0).toBe(0x5a97808a);
    expect(murmur3('abc', 0) >>> 0).toBe(0xb3dd93fa);
    expect(murmur3('abcd', 0x9747b28c) >>> 0).toBe(0xf0478627);
    expect(murmur3('hello', 0) >>> 0).toBe(0x248bfa47);
    expect(murmur3('Hello, world!', 0x9747b28c) >>> 0).toBe(0x24884cba);
    expect(murmur3('The quick brown fox jumps over the lazy dog', 0x9747b28c) >>> 0).toBe(0x2fa826cd);
    expect(murmur3('ππππππππ', 0x9747b28c) >>> 0).toBe(0xd58063c1);
  });

  it('property: equals the hash of the TextEncoder bytes, for any string (lone surrogates included)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.nat(), (text, seed) => {
        expect(murmur3(text, seed) >>> 0).toBe(reference(utf8.encode(text), seed));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 20 }), fc.nat(), (text, seed) => {
        expect(murmur3(text, seed) >>> 0).toBe(reference(utf8.encode(text), seed));
      }),
    );
  });

  it('property: murmur3Pair is the hash of the two numbers as 8 little-endian bytes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.nat(),
        (first, second, seed) => {
          const bytes = new Uint8Array(8);
          const view = new DataView(bytes.buffer);
          view.setUint32(0, first, true);
          view.setUint32(4, second, true);
          expect(murmur3Pair(first, second, seed) >>> 0).toBe(reference(bytes, seed));
        },
      ),
      { numRuns: 300 },
    );
  });
});
