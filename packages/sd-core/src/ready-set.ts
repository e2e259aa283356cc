import { compareKeys } from './btree.js';
import { type Change, ChunkedSnapshot } from './chunked-snapshot.js';
import type { Endpoint, EndpointEntry, EndpointSnapshot } from './types.js';

const EMPTY: readonly never[] = Object.freeze([]);

/**
 * The ready endpoints of an endpointer, in key order, and what it hands out of them: the {@link snapshot} (an
 * immutable {@link ChunkedSnapshot}, what balancers read) and the frozen arrays `endpoints()` and `entries()`.
 *
 * - {@link put} and {@link delete} record a change in O(1); nothing is built until something is read (or
 *   {@link compact} folds a backlog that outgrew the set).
 * - The first read after changes applies them all at once to the snapshot: a few changes copy only the blocks they
 *   touch (O(√n)-sized work, see {@link ChunkedSnapshot}), many are merged in one pass, O(n + k log k).
 * - The snapshot is a new object only when an entry differs. `endpoints()` is a new frozen array only when an
 *   endpoint in it differs, otherwise the same one; `entries()` likewise when an entry differs (a replaced
 *   instance whose factory returned the same function changes only `entries()`). Each array is copied from the
 *   snapshot (O(n)) on its first read after such a change, so a caller that reads only the snapshot never pays
 *   for them. Their invariant: `entries()[i].endpoint === endpoints()[i]`, and both match the snapshot.
 */
export class ReadySet<Req, Res> {
  /** Changes not yet applied: key → its new entry, or `null` for "no endpoint". */
  readonly #dirty = new Map<string, EndpointEntry<Req, Res> | null>();
  /** The applied set. */
  #snapshot: ChunkedSnapshot<Req, Res> = ChunkedSnapshot.empty();
  /** What `endpoints()` returns; `undefined` once an endpoint changed, until the next `endpoints()`. */
  #endpoints: readonly Endpoint<Req, Res>[] | undefined = EMPTY;
  /** What `entries()` returns; `undefined` once an entry changed, until the next `entries()`. */
  #entries: readonly EndpointEntry<Req, Res>[] | undefined = EMPTY;

  /** Whether changes are recorded that no snapshot shows yet. */
  get changed(): boolean {
    return this.#dirty.size > 0;
  }

  /** Records that `entry.key` now has this entry (new, or replacing the key's previous one). O(1). */
  put(entry: EndpointEntry<Req, Res>): void {
    this.#dirty.set(entry.key, entry);
  }

  /** Records that `key` has no endpoint any more (nothing if it had none). O(1). */
  delete(key: string): void {
    this.#dirty.set(key, null);
  }

  /** The ready endpoints as an immutable snapshot: the same object until an entry changes. */
  snapshot(): EndpointSnapshot<Req, Res> {
    if (this.#dirty.size > 0) this.#apply();
    return this.#snapshot;
  }

  /** The ready endpoints in key order: frozen, the same array until an endpoint in it changes. */
  endpoints(): readonly Endpoint<Req, Res>[] {
    if (this.#dirty.size > 0) this.#apply();
    // A copy, made once per change that is read here.
    this.#endpoints ??= this.#snapshot.length === 0 ? EMPTY : Object.freeze(this.#snapshot.endpointArray());
    return this.#endpoints;
  }

  /** The entries of {@link endpoints}, index for index: frozen, the same array until an entry changes. */
  entries(): readonly EndpointEntry<Req, Res>[] {
    if (this.#dirty.size > 0) this.#apply();
    this.#entries ??= this.#snapshot.length === 0 ? EMPTY : Object.freeze(this.#snapshot.entryArray());
    return this.#entries;
  }

  /** Applies the recorded changes once they outnumber the endpoints, so that unread changes stay bounded. */
  compact(): void {
    if (this.#dirty.size > Math.max(16, this.#snapshot.length)) this.#apply();
  }

  /** Empties the set and its snapshots at once, dropping recorded changes. */
  clear(): void {
    this.#dirty.clear();
    this.#snapshot = ChunkedSnapshot.empty();
    this.#endpoints = EMPTY;
    this.#entries = EMPTY;
  }

  /** Applies `#dirty` to the snapshot, in key order. */
  #apply(): void {
    const changes: Change<Req, Res>[] = [...this.#dirty].sort((a, b) => compareKeys(a[0], b[0]));
    this.#dirty.clear();
    const applied = this.#snapshot.apply(changes);
    if (applied === undefined) return;
    this.#snapshot = applied.snapshot;
    this.#entries = undefined;
    if (applied.endpointsChanged) this.#endpoints = undefined;
  }
}
