import { compareKeys } from './btree.js';
import type { Endpoint, EndpointEntry } from './types.js';

const EMPTY: readonly never[] = Object.freeze([]);

/** Changes applied by splicing in place rather than by a merge pass (see `#rebuild`). */
const SPLICE_MAX = 16;

/**
 * The ready endpoints of an endpointer, in key order, and the frozen snapshots it hands out: `endpoints()` and
 * `entries()`.
 *
 * - {@link put} and {@link delete} record a change in O(1); nothing is built until a snapshot is read (or
 *   {@link compact} folds a backlog that outgrew the set).
 * - The first read after changes applies them all at once, to both the endpoints array and the key order behind
 *   `entries()`, in one pass: O(n + k log k) for k changes.
 * - `endpoints()` is a new frozen array only when an endpoint in it differs, otherwise the same one; `entries()`
 *   likewise when an entry differs (a replaced instance whose factory returned the same function changes only
 *   `entries()`). Their invariant: `entries()[i].endpoint === endpoints()[i]`.
 * - The `entries()` array is copied from the key order on its first read after a change, so a caller that never
 *   reads it pays nothing for it.
 */
export class ReadySet<Req, Res> {
  /** Changes not yet applied: key → its new entry, or `null` for "no endpoint". */
  readonly #dirty = new Map<string, EndpointEntry<Req, Res> | null>();
  /** The entries of `#endpoints`, index for index (private, so updated in place). */
  #order: EndpointEntry<Req, Res>[] = [];
  /** What `endpoints()` returns. */
  #endpoints: readonly Endpoint<Req, Res>[] = EMPTY;
  /** What `entries()` returns; `undefined` once `#order` changed, until the next `entries()`. */
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

  /** The ready endpoints in key order: frozen, the same array until an endpoint in it changes. */
  endpoints(): readonly Endpoint<Req, Res>[] {
    if (this.#dirty.size > 0) this.#rebuild();
    return this.#endpoints;
  }

  /** The entries of {@link endpoints}, index for index: frozen, the same array until an entry changes. */
  entries(): readonly EndpointEntry<Req, Res>[] {
    if (this.#dirty.size > 0) this.#rebuild();
    // A copy, made once per change that is read here: `#order` itself changes in place.
    this.#entries ??= this.#order.length === 0 ? EMPTY : Object.freeze([...this.#order]);
    return this.#entries;
  }

  /** Applies the recorded changes once they outnumber the endpoints, so that unread changes stay bounded. */
  compact(): void {
    if (this.#dirty.size > Math.max(SPLICE_MAX, this.#order.length)) this.#rebuild();
  }

  /** Empties the set and both snapshots at once, dropping recorded changes. */
  clear(): void {
    this.#dirty.clear();
    this.#order = [];
    this.#endpoints = EMPTY;
    this.#entries = EMPTY;
  }

  /** Applies `#dirty`: a few changes are spliced in (memmove speed), many are merged in one pass. */
  #rebuild(): void {
    const changes = [...this.#dirty].sort((a, b) => compareKeys(a[0], b[0]));
    this.#dirty.clear();
    if (changes.length <= SPLICE_MAX) this.#splice(changes);
    else this.#merge(changes);
  }

  #splice(changes: readonly (readonly [string, EndpointEntry<Req, Res> | null])[]): void {
    const order = this.#order;
    const prev = this.#endpoints;
    // `#endpoints` is frozen: copied on the first change that touches it, with a spread (a frozen array's `slice()`
    // takes a slow path in V8, see docs/benchmarks.md).
    let out: Endpoint<Req, Res>[] | undefined;
    let entriesChanged = false;
    for (const [key, entry] of changes) {
      const at = lowerBound(order, key);
      const present = at < order.length && order[at]!.key === key;
      if (entry !== null) {
        if (present) {
          if (order[at] === entry) continue;
          order[at] = entry;
          entriesChanged = true;
          // No insertion or removal happened while `out` is undefined, so `prev` is still aligned with `order`.
          if ((out ?? prev)[at] === entry.endpoint) continue;
          out ??= [...prev];
          out[at] = entry.endpoint;
        } else {
          out ??= [...prev];
          order.splice(at, 0, entry);
          out.splice(at, 0, entry.endpoint);
          entriesChanged = true;
        }
      } else if (present) {
        out ??= [...prev];
        order.splice(at, 1);
        out.splice(at, 1);
        entriesChanged = true;
      }
    }
    if (out !== undefined) this.#endpoints = Object.freeze(out);
    if (entriesChanged) this.#entries = undefined;
  }

  #merge(changes: readonly (readonly [string, EndpointEntry<Req, Res> | null])[]): void {
    const prevOrder = this.#order;
    const prev = this.#endpoints;
    const order: EndpointEntry<Req, Res>[] = [];
    const out: Endpoint<Req, Res>[] = [];
    let entriesChanged = false;
    let endpointsChanged = false;
    let i = 0;
    for (const [key, change] of changes) {
      while (i < prevOrder.length && prevOrder[i]!.key < key) {
        order.push(prevOrder[i]!);
        out.push(prev[i++]!);
      }
      const old = i < prevOrder.length && prevOrder[i]!.key === key ? prevOrder[i++] : undefined;
      const entry = change ?? undefined;
      if (entry !== undefined) {
        order.push(entry);
        out.push(entry.endpoint);
      }
      if (old !== entry) {
        entriesChanged = true;
        if (old?.endpoint !== entry?.endpoint) endpointsChanged = true;
      }
    }
    if (!entriesChanged) return;
    while (i < prevOrder.length) {
      order.push(prevOrder[i]!);
      out.push(prev[i++]!);
    }
    this.#order = order;
    this.#entries = undefined;
    if (endpointsChanged) this.#endpoints = Object.freeze(out);
  }
}

/** First index whose key is >= `key` (entries sorted by key). */
function lowerBound(order: readonly { readonly key: string }[], key: string): number {
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (order[mid]!.key < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
