import { assertKnownOptions, type EndpointEntry } from '@sdkit/sd-core';
import type { Balancer, PickContext } from './balancer.js';
import { noEndpoints, readyOf, typeName } from './balancer.js';
import { assertEntrySource, type EntrySource } from './entry-source.js';
import { choiceOf, nthDistinct } from './hash-choice.js';
import { murmur3 } from './murmur3.js';
import { seedOf } from './seed-of.js';

/** Options of {@link maglev}. */
export interface MaglevOptions {
  /**
   * Slots of the lookup table: a prime in 7 … 16 777 213. Each endpoint gets ⌊M/n⌋ or ⌈M/n⌉ of them; keep it above
   * 100 × the number of endpoints (Maglev's advice) so that a change of the set moves few keys beyond those it
   * must. Beyond M endpoints, only M of them can hold keys. Default 65 537 (Envoy's): 256 KiB per balancer.
   */
  readonly tableSize?: number;
  /**
   * Makes the picks without a hash key reproducible, as `random`'s seed does: an integer in 0 … 2³²−1. The table
   * itself never depends on it.
   */
  readonly seed?: number;
}

const OPTIONS = ['tableSize', 'seed'] as const;
const HINTS = {
  size: 'tableSize',
  table_size: 'tableSize',
};
const DEFAULT_TABLE_SIZE = 65_537;
const MAX_TABLE_SIZE = 16_777_213; // the largest prime below 2^24
/** Seeds of the two hashes of an instance key: its first slot (offset) and its step (skip). */
const OFFSET_SEED = 0x2f0f_7c35;
const SKIP_SEED = 0x5bd1_e995;

/**
 * Consistent hashing by Maglev (Google's Maglev, Envoy's `MAGLEV`): a lookup table of `tableSize` slots is filled
 * with the endpoints, each taking in turn its next free slot along its own permutation of the table, so each
 * endpoint ends up with ⌊M/n⌋ or ⌈M/n⌉ slots. A pick with a hash key (`endpoint({ hashKey })`, e.g. from
 * `retry`'s `pickContext`) returns the endpoint of slot `hash(key) mod M`.
 *
 * - The same key maps to the same endpoint while the set is unchanged — and in every client that sees the same set
 *   in the same order (sd-core's Endpointer orders by key): the table depends only on the instance keys and their
 *   order, not on addresses, the process or `seed`.
 * - Balance: the shares of the key space differ by at most one slot (1/M).
 * - When one of n endpoints leaves or joins the set, its keys move plus a few more (Maglev trades a little more
 *   disruption than a ring for perfect balance): about 1/n of the keys in all when M ≫ n.
 * - A pick without a hash key takes an endpoint uniformly at random (from a private mulberry32, seeded by `seed`).
 *
 * Hashes are MurmurHash3 (x86, 32-bit) of the UTF-8 bytes of instance keys (two seeds: offset and skip) and of
 * hash keys; portable (no `node:crypto`). The table is rebuilt when the source's `entries()` array changes: O(M log M)
 * at worst, a few milliseconds at the default size. A pick hashes the key (O(its length)) and reads one slot; it
 * allocates nothing.
 *
 * A retry (`context.attempt` k > 1, which `retry` sets) goes to the key's k-th choice: the k-th distinct endpoint
 * met reading the table onwards from the key's slot. The table's order is the endpoints' permutations interleaved,
 * so the retries of a failing endpoint's keys spread over the others; attempts 1 … n of one key reach n different
 * endpoints, and every client that sees the same set chooses alike.
 *
 * @throws TypeError if `endpointer` lacks `endpoints()` or `entries()`, or an option is unknown or invalid. A
 *   pick throws TypeError if `context.hashKey` is present but not a string, NoEndpointsError if the set is empty.
 */
export function maglev<Req, Res>(
  endpointer: EntrySource<Req, Res>,
  options: MaglevOptions = {},
): Balancer<Req, Res> {
  assertEntrySource(endpointer, 'maglev');
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`maglev: options must be an object, got ${typeName(options)}`);
  }
  assertKnownOptions('maglev', options, OPTIONS, HINTS);
  const { tableSize = DEFAULT_TABLE_SIZE } = options;
  if (!(Number.isInteger(tableSize) && tableSize >= 7 && tableSize <= MAX_TABLE_SIZE && isPrime(tableSize))) {
    throw new TypeError(
      `maglev: tableSize must be a prime in 7 … ${MAX_TABLE_SIZE} (e.g. 65537, 655373), got ${typeName(tableSize)}`,
    );
  }
  let state = seedOf('maglev', options.seed);

  let current: readonly EndpointEntry<Req, Res>[] | undefined;
  /** Slot → entry index. */
  let table: Int32Array = new Int32Array(0);

  return {
    endpoint(context?: PickContext) {
      const entries = endpointer.entries();
      if (entries !== current) {
        current = entries;
        table = populate(entries, tableSize);
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
        throw new TypeError(`maglev: context.hashKey must be a string, got ${typeName(key)}`);
      }
      const slot = (murmur3(key, 0) >>> 0) % tableSize;
      const attempt = context?.attempt;
      if (attempt === undefined || attempt === 1) return entries[table[slot]!]!.endpoint;
      return entries[nthDistinct(table, slot, choiceOf(attempt, Math.min(n, tableSize), 'maglev'))]!.endpoint;
    },
    ...readyOf(endpointer),
  };
}

/**
 * Maglev's table population: the endpoints take turns, in entry order, each claiming the next slot of its
 * permutation (`offset + j × skip mod M`) that is still free, until every slot is taken.
 */
function populate(entries: readonly { readonly key: string }[], size: number): Int32Array {
  const table = new Int32Array(size).fill(-1);
  const n = entries.length;
  if (n === 0) return table;
  const next = new Int32Array(n);
  const skip = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const key = entries[i]!.key;
    next[i] = (murmur3(key, OFFSET_SEED) >>> 0) % size;
    skip[i] = ((murmur3(key, SKIP_SEED) >>> 0) % (size - 1)) + 1;
  }
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      const step = skip[i]!;
      let slot = next[i]!;
      while (table[slot]! >= 0) {
        slot += step;
        if (slot >= size) slot -= size;
      }
      table[slot] = i;
      slot += step;
      if (slot >= size) slot -= size;
      next[i] = slot;
      if (++filled === size) return table;
    }
  }
}

function isPrime(value: number): boolean {
  if (value % 2 === 0) return value === 2;
  for (let d = 3; d * d <= value; d += 2) if (value % d === 0) return false;
  return value > 1;
}
