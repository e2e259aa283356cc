import { compareKeys } from './btree.js';
import type { Endpoint, EndpointEntry, EndpointSnapshot } from './types.js';

/**
 * Most entries a block holds: a block that outgrows it is split in two. A set of up to this many is one block,
 * which a pick reads as it would a flat array.
 */
export const BLOCK_MAX = 1024;
/** Entries per block when blocks are made afresh (half full, so that inserts rarely split at once). */
const BLOCK_FRESH = BLOCK_MAX >> 1;
/**
 * Fewest entries a block holds when there are several (a smaller one is merged into a neighbour), and the span of
 * one granule of a snapshot's table: since no block is shorter than a granule, a granule meets at most two
 * blocks. A power of two.
 */
export const BLOCK_MIN = BLOCK_MAX >> 2;
/** log2({@link BLOCK_MIN}). */
const GRANULE_SHIFT = 31 - Math.clz32(BLOCK_MIN);
/** Slots per granule in a snapshot's table. */
const SLOTS = 5;

let emptySnapshot: ChunkedSnapshot<never, never> | undefined;

/** A recorded change: the key's new entry, or `null` for "no endpoint". */
export type Change<Req, Res> = readonly [key: string, entry: EndpointEntry<Req, Res> | null];

/** What {@link ChunkedSnapshot.apply} made. */
export interface Applied<Req, Res> {
  readonly snapshot: ChunkedSnapshot<Req, Res>;
  /** Whether an endpoint differs (an insertion, a removal, or an entry replaced by one with another endpoint). */
  readonly endpointsChanged: boolean;
}

/**
 * An ordered set of endpoint entries, persistent: a {@link EndpointSnapshot} made of blocks, never changed once
 * made. {@link apply} makes the next one from this one, sharing every block it does not touch.
 *
 * - Entries are held in blocks of 1 … {@link BLOCK_MAX} (at least {@link BLOCK_MIN} each when there are several),
 *   with a parallel block of their endpoints, so a pick loads the endpoint without touching the entry.
 * - A change copies the block it lands in (O(B)) and the short arrays that index the blocks (O(n / B)): the block
 *   lists, `#starts` and `#table`. With B = 1 024 that is ≈ √n-sized work for n up to about a million, where a
 *   flat array copies all n.
 * - `endpointAt(i)` and `entryAt(i)`: O(1), no allocation. One block: an index into it. Several: one granule of
 *   `#table` says which of two blocks holds i, chosen without a branch (for random indexes a branch would be
 *   mispredicted for about a quarter of picks, which cost more than the arithmetic).
 * - Many changes at once (more than there are blocks) are merged in one pass instead, O(n + k).
 */
export class ChunkedSnapshot<Req, Res> implements EndpointSnapshot<Req, Res> {
  readonly length: number;
  readonly #entries: readonly (readonly EndpointEntry<Req, Res>[])[];
  readonly #endpoints: readonly (readonly Endpoint<Req, Res>[])[];
  /** `#starts[b]`: index of block b's first entry; `#starts[blocks]` is `length`. */
  readonly #starts: readonly number[];
  /**
   * {@link SLOTS} slots per granule g of {@link BLOCK_MIN} indexes: block A holding index `g << GRANULE_SHIFT`
   * (no block being shorter than a granule, the granule's other indexes are in A or the block after it, B) —
   * `[first index of A, first index of B, endpoints of A, endpoints of B, A]` (B's are A's when A is the last
   * block). One array, so that a pick loads the block's bounds and the block itself from one place.
   */
  readonly #table: readonly unknown[];
  /** The endpoints, when they are one block (`undefined` otherwise). */
  readonly #only: readonly Endpoint<Req, Res>[] | undefined;

  private constructor(
    entries: readonly (readonly EndpointEntry<Req, Res>[])[],
    endpoints: readonly (readonly Endpoint<Req, Res>[])[],
  ) {
    // Arrays sized up front: cheaper to make than typed arrays (which, past 64 bytes, V8 allocates outside its
    // heap) or arrays grown by push.
    const blocks = entries.length;
    const starts = new Array<number>(blocks + 1);
    let length = 0;
    for (let b = 0; b < blocks; b++) {
      starts[b] = length;
      length += entries[b]!.length;
    }
    starts[blocks] = length;
    const granules = (length + BLOCK_MIN - 1) >>> GRANULE_SHIFT;
    const table = new Array<unknown>(granules * SLOTS);
    for (let g = 0, b = 0; g < granules; g++) {
      const first = g << GRANULE_SHIFT;
      while (b + 1 < blocks && starts[b + 1]! <= first) b++;
      const k = g * SLOTS;
      table[k] = starts[b];
      table[k + 1] = starts[b + 1];
      table[k + 2] = endpoints[b];
      table[k + 3] = endpoints[b + 1 < blocks ? b + 1 : b];
      table[k + 4] = b;
    }
    this.length = length;
    this.#entries = entries;
    this.#endpoints = endpoints;
    this.#starts = starts;
    this.#table = table;
    this.#only = blocks === 1 ? endpoints[0] : undefined;
    Object.freeze(this);
  }

  /** The empty set (one shared object). */
  static empty<Req, Res>(): ChunkedSnapshot<Req, Res> {
    // Made on first use: a static initializer would run before tsc's down-levelled class binding exists.
    emptySnapshot ??= new ChunkedSnapshot<never, never>([], []);
    return emptySnapshot as unknown as ChunkedSnapshot<Req, Res>;
  }

  /** A snapshot of `entries` (sorted by key, no duplicate keys), in fresh half-full blocks. O(n). */
  static of<Req, Res>(entries: readonly EndpointEntry<Req, Res>[]): ChunkedSnapshot<Req, Res> {
    const n = entries.length;
    if (n === 0) return ChunkedSnapshot.empty();
    const count = n <= BLOCK_MAX ? 1 : Math.ceil(n / BLOCK_FRESH);
    const entryBlocks: EndpointEntry<Req, Res>[][] = [];
    const endpointBlocks: Endpoint<Req, Res>[][] = [];
    for (let b = 0; b < count; b++) {
      // Even sizes: every block of several holds ≥ n / ⌈n / FRESH⌉ > FRESH / 2 = BLOCK_MIN entries.
      const from = Math.floor((b * n) / count);
      const to = Math.floor(((b + 1) * n) / count);
      const block = entries.slice(from, to);
      entryBlocks.push(block);
      endpointBlocks.push(endpointsOf(block));
    }
    return new ChunkedSnapshot(entryBlocks, endpointBlocks);
  }

  endpointAt(index: number): Endpoint<Req, Res> | undefined {
    // An integer in range, as the branch-free choice of block below needs.
    if (!(index >>> 0 === index && index < this.length)) return undefined;
    const only = this.#only;
    if (only !== undefined) return only[index];
    const table = this.#table;
    const k = (index >>> GRANULE_SHIFT) * SLOTS;
    const next = table[k + 1] as number;
    // -1 when index is in the granule's first block, else 0: picks the slot and the first index without a branch.
    const first = (index - next) >> 31;
    return (table[k + 3 + first] as readonly Endpoint<Req, Res>[])[
      index - (next + (((table[k] as number) - next) & first))
    ];
  }

  entryAt(index: number): EndpointEntry<Req, Res> | undefined {
    if (!(index >>> 0 === index && index < this.length)) return undefined;
    const table = this.#table;
    const k = (index >>> GRANULE_SHIFT) * SLOTS;
    const next = table[k + 1] as number;
    const first = (index - next) >> 31;
    return this.#entries[(table[k + 4] as number) + 1 + first]![
      index - (next + (((table[k] as number) - next) & first))
    ];
  }

  indexOfKey(key: string): number {
    const blocks = this.#entries;
    if (blocks.length === 0) return -1;
    const b = blockOf(blocks, key);
    const block = blocks[b]!;
    const at = lowerBound(block, key);
    return at < block.length && block[at]!.key === key ? this.#starts[b]! + at : -1;
  }

  /** @internal For tests: the length of each block, in order. */
  blockLengths(): number[] {
    return this.#entries.map((block, b) => {
      if (this.#endpoints[b]!.length !== block.length) throw new Error('block lengths differ');
      return block.length;
    });
  }

  /** The endpoints in order, in a new (unfrozen) array. O(n). */
  endpointArray(): Endpoint<Req, Res>[] {
    return concat(this.#endpoints, this.length);
  }

  /** The entries in order, in a new (unfrozen) array. O(n). */
  entryArray(): EndpointEntry<Req, Res>[] {
    return concat(this.#entries, this.length);
  }

  /**
   * The snapshot with `changes` applied (sorted by key, one per key: the key's new entry, or `null` to remove
   * it), or `undefined` when they change no entry. A few changes copy the blocks they touch; more changes than
   * there are blocks are merged in one pass.
   */
  apply(changes: readonly Change<Req, Res>[]): Applied<Req, Res> | undefined {
    return changes.length > Math.max(16, this.#entries.length) ? this.#merge(changes) : this.#patch(changes);
  }

  /** Copy-on-write of the touched blocks: O(k · (B + log n) + n / B) for k changes. */
  #patch(changes: readonly Change<Req, Res>[]): Applied<Req, Res> | undefined {
    let entryBlocks: EndpointEntry<Req, Res>[][] | undefined;
    let endpointBlocks: Endpoint<Req, Res>[][] | undefined;
    /** Blocks copied during this call (mutable until the snapshot is made). */
    const own = new Set<readonly unknown[]>();
    let endpointsChanged = false;
    for (const [key, entry] of changes) {
      const blocks = entryBlocks ?? this.#entries;
      if (blocks.length === 0) {
        if (entry === null) continue;
        entryBlocks ??= [];
        endpointBlocks ??= [];
        const block = [entry];
        own.add(block);
        entryBlocks.push(block);
        endpointBlocks.push([entry.endpoint]);
        endpointsChanged = true;
        continue;
      }
      const b = blockOf(blocks, key);
      const at = lowerBound(blocks[b]!, key);
      const present = at < blocks[b]!.length && blocks[b]![at]!.key === key;
      if (entry === null ? !present : present && blocks[b]![at] === entry) continue;
      entryBlocks ??= [...(this.#entries as EndpointEntry<Req, Res>[][])];
      endpointBlocks ??= [...(this.#endpoints as Endpoint<Req, Res>[][])];
      const block = entryBlocks[b]!;
      const endpoints = endpointBlocks[b]!;
      // A block of an earlier snapshot is copied with the change made in the same pass (toSpliced, with); one
      // this call already copied is changed in place.
      const mine = own.has(block);
      if (entry === null) {
        if (mine) {
          block.splice(at, 1);
          endpoints.splice(at, 1);
        } else {
          entryBlocks[b] = block.toSpliced(at, 1);
          endpointBlocks[b] = endpoints.toSpliced(at, 1);
        }
        endpointsChanged = true;
      } else if (present) {
        const same = endpoints[at] === entry.endpoint;
        if (mine) {
          block[at] = entry;
          endpoints[at] = entry.endpoint;
        } else {
          entryBlocks[b] = block.with(at, entry);
          endpointBlocks[b] = same ? endpoints.slice() : endpoints.with(at, entry.endpoint);
        }
        if (!same) endpointsChanged = true;
      } else {
        if (mine) {
          block.splice(at, 0, entry);
          endpoints.splice(at, 0, entry.endpoint);
        } else {
          entryBlocks[b] = block.toSpliced(at, 0, entry);
          endpointBlocks[b] = endpoints.toSpliced(at, 0, entry.endpoint);
        }
        endpointsChanged = true;
      }
      own.add(entryBlocks[b]!);
      rebalance(entryBlocks, endpointBlocks, own, b);
    }
    if (entryBlocks === undefined || endpointBlocks === undefined) return undefined;
    const snapshot =
      entryBlocks.length === 0
        ? ChunkedSnapshot.empty<Req, Res>()
        : new ChunkedSnapshot(entryBlocks, endpointBlocks);
    return { snapshot, endpointsChanged };
  }

  /** One merge pass over the whole set, then fresh blocks: O(n + k). */
  #merge(changes: readonly Change<Req, Res>[]): Applied<Req, Res> | undefined {
    const out: EndpointEntry<Req, Res>[] = [];
    let entriesChanged = false;
    let endpointsChanged = false;
    const blocks = this.#entries;
    let b = 0;
    let i = 0;
    /** The next entry of this snapshot not yet passed, or `undefined` at the end. */
    const peek = (): EndpointEntry<Req, Res> | undefined => {
      while (b < blocks.length && i >= blocks[b]!.length) {
        b++;
        i = 0;
      }
      return b < blocks.length ? blocks[b]![i] : undefined;
    };
    for (const [key, change] of changes) {
      let old = peek();
      while (old !== undefined && old.key < key) {
        out.push(old);
        i++;
        old = peek();
      }
      if (old !== undefined && old.key === key) i++;
      else old = undefined;
      const entry = change ?? undefined;
      if (entry !== undefined) out.push(entry);
      if (old !== entry) {
        entriesChanged = true;
        if (old?.endpoint !== entry?.endpoint) endpointsChanged = true;
      }
    }
    if (!entriesChanged) return undefined;
    for (let old = peek(); old !== undefined; old = peek()) {
      out.push(old);
      i++;
    }
    return { snapshot: ChunkedSnapshot.of(out), endpointsChanged };
  }
}

/**
 * Restores the block sizes after block `b` changed: splits it in two halves when it outgrew {@link BLOCK_MAX},
 * drops it when empty, merges it with a neighbour when shorter than {@link BLOCK_MIN} (splitting the result again
 * if too long). Blocks it makes are added to `own`.
 */
function rebalance<Req, Res>(
  entryBlocks: EndpointEntry<Req, Res>[][],
  endpointBlocks: Endpoint<Req, Res>[][],
  own: Set<readonly unknown[]>,
  b: number,
): void {
  const length = entryBlocks[b]!.length;
  if (length > BLOCK_MAX) {
    split(entryBlocks, endpointBlocks, own, b);
  } else if (length === 0) {
    entryBlocks.splice(b, 1);
    endpointBlocks.splice(b, 1);
  } else if (length < BLOCK_MIN && entryBlocks.length > 1) {
    const first = b + 1 < entryBlocks.length ? b : b - 1;
    const block = [...entryBlocks[first]!, ...entryBlocks[first + 1]!];
    own.add(block);
    entryBlocks.splice(first, 2, block);
    endpointBlocks.splice(first, 2, [...endpointBlocks[first]!, ...endpointBlocks[first + 1]!]);
    if (block.length > BLOCK_MAX) split(entryBlocks, endpointBlocks, own, first);
  }
}

/** Splits block `b` (one of `own`) into two halves. */
function split<Req, Res>(
  entryBlocks: EndpointEntry<Req, Res>[][],
  endpointBlocks: Endpoint<Req, Res>[][],
  own: Set<readonly unknown[]>,
  b: number,
): void {
  const half = entryBlocks[b]!.length >>> 1;
  const tail = entryBlocks[b]!.splice(half);
  own.add(tail);
  entryBlocks.splice(b + 1, 0, tail);
  endpointBlocks.splice(b + 1, 0, endpointBlocks[b]!.splice(half));
}

/** The endpoints of `entries`, index for index (an array of the same elements kind as every block, no slack). */
function endpointsOf<Req, Res>(entries: readonly EndpointEntry<Req, Res>[]): Endpoint<Req, Res>[] {
  return entries.map((entry) => entry.endpoint);
}

/** The blocks' elements in one new array. */
function concat<T>(blocks: readonly (readonly T[])[], length: number): T[] {
  if (blocks.length === 1) return [...blocks[0]!];
  const out: T[] = [];
  if (length > 0) for (const block of blocks) for (const item of block) out.push(item);
  return out;
}

/** The block `key` belongs in: the last whose first key is ≤ `key`, or the first. `blocks` is not empty. */
function blockOf(blocks: readonly (readonly { readonly key: string }[])[], key: string): number {
  let lo = 1;
  let hi = blocks.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(blocks[mid]![0]!.key, key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** First index whose key is >= `key` (entries sorted by key). */
function lowerBound(entries: readonly { readonly key: string }[], key: string): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.key < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
