import { assertKnownOptions, type EndpointEntry } from '@sdkit/sd-core';
import type { Balancer, PickContext } from './balancer.js';
import { noEndpoints, readyOf, typeName } from './balancer.js';
import { assertEntrySource, type EntrySource } from './entry-source.js';
import { choiceOf, nthDistinct } from './hash-choice.js';
import { murmur3, murmur3Pair } from './murmur3.js';
import { seedOf } from './seed-of.js';

/** Options of {@link ringHash}. */
export interface RingHashOptions {
  /**
   * Points on the ring per endpoint ("virtual nodes"): more points, a more even share of the keys per endpoint
   * (the spread of the shares shrinks as 1/√replicas), more memory (8 bytes per point) and a longer rebuild. An
   * integer in 1 … 10 000. Default 160 (ketama's). The ring holds at most 1 048 576 points (8 MiB): beyond 6 553
   * endpoints at the default, each gets ⌊1 048 576 / n⌋ — then point number r of a key stays where it was, so a
   * change of that count moves only the keys of the points dropped or added. For thousands of endpoints, prefer
   * {@link maglev} (constant memory, even balance, faster rebuilds).
   */
  readonly replicas?: number;
  /**
   * Makes the picks without a hash key reproducible, as `random`'s seed does: an integer in 0 … 2³²−1. The ring
   * itself never depends on it.
   */
  readonly seed?: number;
}

const OPTIONS = ['replicas', 'seed'] as const;
const HINTS = {
  virtualNodes: 'replicas',
  vnodes: 'replicas',
  pointsPerEndpoint: 'replicas',
  minimumRingSize: 'replicas',
};
const DEFAULT_REPLICAS = 160;
const MAX_REPLICAS = 10_000;
const MAX_POINTS = 1_048_576;
/** The seed of a key's second hash (see {@link buildRing}). */
const KEY_SEED = 0x9747_b28c;

/**
 * Consistent hashing on a ring (ketama; Envoy's `RING_HASH`): each endpoint is hashed to `replicas` points of a
 * 32-bit ring, and a pick with a hash key (`endpoint({ hashKey })`, e.g. from `retry`'s `pickContext`) returns the
 * endpoint of the first point at or after the key's hash, wrapping around.
 *
 * - The same key maps to the same endpoint while the set is unchanged — and in every client that sees the same set:
 *   the ring depends only on the instance keys (not their addresses, order of arrival, the process or `seed`).
 * - When an endpoint leaves the set, only the keys it held move (each to the next point on the ring); when one
 *   joins, only the keys it takes move (to it). With n endpoints, about 1/n of the keys each time.
 * - Balance: each endpoint holds about 1/n of the key space, within a few times 1/√replicas of it.
 * - A pick without a hash key takes an endpoint uniformly at random (from a private mulberry32, seeded by `seed`).
 *
 * Points are MurmurHash3 (x86, 32-bit) of each instance key's UTF-8 bytes followed by the point's number; keys
 * are hashed the same way, without the number. Portable: no `node:crypto`. The ring is built when the source's
 * `entries()` array changes: O(n × replicas), by radix sort. A pick hashes the key (O(its length)) and
 * binary-searches the ring (O(log(n × replicas))); it allocates nothing.
 *
 * A retry (`context.attempt` k > 1, which `retry` sets) goes to the key's k-th choice: the k-th distinct endpoint
 * met walking the ring clockwise from the key's hash — the endpoint that would take the key over if those before
 * it left the set. Attempts 1 … n of one key reach n different endpoints, the retries of a failing endpoint's keys
 * spread over the endpoints that follow its points, and every client that sees the same set chooses alike.
 *
 * @throws TypeError if `endpointer` lacks `endpoints()` or `entries()`, or an option is unknown or invalid. A
 *   pick throws TypeError if `context.hashKey` is present but not a string, NoEndpointsError if the set is empty.
 */
export function ringHash<Req, Res>(
  endpointer: EntrySource<Req, Res>,
  options: RingHashOptions = {},
): Balancer<Req, Res> {
  assertEntrySource(endpointer, 'ringHash');
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`ringHash: options must be an object, got ${typeName(options)}`);
  }
  assertKnownOptions('ringHash', options, OPTIONS, HINTS);
  const { replicas = DEFAULT_REPLICAS } = options;
  if (!(Number.isInteger(replicas) && replicas >= 1 && replicas <= MAX_REPLICAS)) {
    throw new TypeError(
      `ringHash: replicas must be an integer in 1 … ${MAX_REPLICAS}, got ${typeName(replicas)}`,
    );
  }
  let state = seedOf('ringHash', options.seed);

  let current: readonly EndpointEntry<Req, Res>[] | undefined;
  let ring: Ring = EMPTY_RING;

  return {
    endpoint(context?: PickContext) {
      const entries = endpointer.entries();
      if (entries !== current) {
        current = entries;
        ring = buildRing(entries, Math.max(1, Math.min(replicas, Math.floor(MAX_POINTS / entries.length))));
      }
      const n = entries.length;
      if (n === 0) throw noEndpoints(endpointer);
      const key = context?.hashKey;
      if (key === undefined) {
        // mulberry32 inlined (see random.ts): no hash key, a uniform pick.
        state = (state + 0x6d2b79f5) | 0;
        let t = Math.imul(state ^ (state >>> 15), 1 | state);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return entries[Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n)]!.endpoint;
      }
      if (typeof key !== 'string') {
        throw new TypeError(`ringHash: context.hashKey must be a string, got ${typeName(key)}`);
      }
      const hash = murmur3(key, 0) >>> 0;
      // The first point at or after the hash (past the last one, the first): a binary search of the hash's bucket;
      // when no point there is at or after the hash, the search ends on the first point of the buckets after it.
      const { points, buckets } = ring;
      const bucket = hash >>> ring.shift;
      let lo = buckets[bucket]!;
      let hi = buckets[bucket + 1]!;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (points[mid]! < hash) lo = mid + 1;
        else hi = mid;
      }
      const start = lo === points.length ? 0 : lo;
      const attempt = context?.attempt;
      if (attempt === undefined || attempt === 1) return entries[ring.owners[start]!]!.endpoint;
      return entries[nthDistinct(ring.owners, start, choiceOf(attempt, n, 'ringHash'))]!.endpoint;
    },
    ...readyOf(endpointer),
  };
}

/** A ring: its points in ascending order with their owners, and where each bucket of the 32-bit space starts. */
interface Ring {
  /** Point hashes, ascending. */
  readonly points: Uint32Array;
  /** The entry index each point belongs to. */
  readonly owners: Int32Array;
  /** Bucket b holds the hashes h with `h >>> shift === b`: its points are `points[buckets[b] … buckets[b + 1])`. */
  readonly buckets: Int32Array;
  readonly shift: number;
}

const EMPTY_RING: Ring = {
  points: new Uint32Array(0),
  owners: new Int32Array(0),
  buckets: new Int32Array(2),
  shift: 31,
};

/**
 * The ring of `entries` with `replicas` points each: hashes ascending, ties in entry order (a stable radix sort of
 * points made in entry order), so that the ring depends on nothing but the keys and their order. Point r of a key
 * is MurmurHash3 of (the key's hash, r) seeded with a second hash of the key: two 32-bit hashes of the key, so
 * that two keys' points coincide only if both do.
 */
function buildRing(entries: readonly { readonly key: string }[], replicas: number): Ring {
  const n = entries.length;
  const total = n * replicas;
  let points = new Uint32Array(total);
  let owners = new Int32Array(total);
  for (let i = 0, p = 0; i < n; i++) {
    const key = entries[i]!.key;
    const first = murmur3(key, 0);
    const second = murmur3(key, KEY_SEED);
    for (let r = 0; r < replicas; r++, p++) {
      points[p] = murmur3Pair(first, r, second);
      owners[p] = i;
    }
  }
  // LSD radix sort by 16-bit digits: two stable counting passes.
  let pointsOut = new Uint32Array(total);
  let ownersOut = new Int32Array(total);
  const counts = new Int32Array(65_537);
  for (let shift = 0; shift <= 16; shift += 16) {
    counts.fill(0);
    for (let p = 0; p < total; p++) counts[((points[p]! >>> shift) & 0xffff) + 1]!++;
    for (let d = 1; d <= 65_536; d++) counts[d]! += counts[d - 1]!;
    for (let p = 0; p < total; p++) {
      const at = counts[(points[p]! >>> shift) & 0xffff]!++;
      pointsOut[at] = points[p]!;
      ownersOut[at] = owners[p]!;
    }
    [points, pointsOut] = [pointsOut, points];
    [owners, ownersOut] = [ownersOut, owners];
  }
  // About one bucket per point (at most 2^16), so that a lookup searches a handful of points.
  const bits = Math.min(16, Math.max(1, Math.floor(Math.log2(Math.max(total, 1)))));
  const shift = 32 - bits;
  const buckets = new Int32Array((1 << bits) + 1);
  for (let b = 0, p = 0; b <= 1 << bits; b++) {
    while (p < total && points[p]! >>> shift < b) p++;
    buckets[b] = p;
  }
  return { points, owners, buckets, shift };
}
