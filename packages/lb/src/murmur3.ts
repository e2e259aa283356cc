/**
 * MurmurHash3 (x86, 32-bit) of a string's UTF-8 bytes, for the hashing balancers: portable (no `node:crypto`, no
 * `TextEncoder`), allocation-free, and the same value as any other MurmurHash3_x86_32 of the same bytes.
 * @module
 * @internal
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/**
 * @internal MurmurHash3_x86_32 of the UTF-8 encoding of `text` (lone surrogates encoded as U+FFFD, as
 * `TextEncoder` does), with `seed` (a 32-bit integer). O(length), allocates nothing.
 *
 * Returns the hash's 32 bits as a signed integer (`>>> 0` gives the usual unsigned value): V8 keeps a signed
 * 32-bit result unboxed across a call, where an unsigned one of 2³¹ or more became a 16-byte heap number.
 */
export function murmur3(text: string, seed: number): number {
  let h = seed | 0;
  const n = text.length;
  let i = 0;
  // Fast path: while the text is ASCII, four characters are one block.
  for (; i + 4 <= n; i += 4) {
    const a = text.charCodeAt(i);
    const b = text.charCodeAt(i + 1);
    const c = text.charCodeAt(i + 2);
    const d = text.charCodeAt(i + 3);
    if ((a | b | c | d) >= 0x80) break;
    h = mixBlock(h, a | (b << 8) | (c << 16) | (d << 24));
  }
  /** Pending bytes of the current 4-byte block, little-endian, and how many bits of it are filled. */
  let block = 0;
  let filled = 0;
  let length = i;
  for (; i < n; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      block |= c << filled;
      length++;
      filled += 8;
      if (filled === 32) {
        h = mixBlock(h, block);
        block = 0;
        filled = 0;
      }
      continue;
    }
    // The code point's UTF-8 bytes, first byte lowest, and their count.
    let bytes: number;
    let count: number;
    if (c < 0x800) {
      bytes = 0xc0 | (c >>> 6) | ((0x80 | (c & 0x3f)) << 8);
      count = 2;
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const low = i + 1 < n ? text.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) {
          i++;
          const cp = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
          bytes =
            0xf0 |
            (cp >>> 18) |
            ((0x80 | ((cp >>> 12) & 0x3f)) << 8) |
            ((0x80 | ((cp >>> 6) & 0x3f)) << 16) |
            ((0x80 | (cp & 0x3f)) << 24);
          count = 4;
        } else {
          c = 0xfffd; // a lone surrogate
          bytes = 0xe0 | (c >>> 12) | ((0x80 | ((c >>> 6) & 0x3f)) << 8) | ((0x80 | (c & 0x3f)) << 16);
          count = 3;
        }
      } else {
        bytes = 0xe0 | (c >>> 12) | ((0x80 | ((c >>> 6) & 0x3f)) << 8) | ((0x80 | (c & 0x3f)) << 16);
        count = 3;
      }
    }
    for (let j = 0; j < count; j++) {
      block |= ((bytes >>> (j * 8)) & 0xff) << filled;
      length++;
      filled += 8;
      if (filled === 32) {
        h = mixBlock(h, block);
        block = 0;
        filled = 0;
      }
    }
  }
  if (filled > 0) h ^= mixK(block);
  return finish(h, length);
}

/**
 * @internal MurmurHash3_x86_32, with `seed`, of the 8 bytes `first` then `second` (32-bit integers, each
 * little-endian), signed like {@link murmur3}'s. Constant time: for deriving many hashes from one (a ring's points
 * from its key's hash).
 */
export function murmur3Pair(first: number, second: number, seed: number): number {
  return finish(mixBlock(mixBlock(seed | 0, first | 0), second | 0), 8);
}

/** Murmur3's finalisation: the length, then the avalanche (fmix32). A signed 32-bit integer (see murmur3). */
function finish(h: number, length: number): number {
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

function mixK(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function mixBlock(h: number, k: number): number {
  h ^= mixK(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}
