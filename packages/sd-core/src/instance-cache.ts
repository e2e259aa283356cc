import type { Observable } from 'rxjs';
import { LatestSubject } from './latest-subject.js';
import type { Instance, InstanceChanges, InstancerEvent } from './types.js';

/** A batch of incremental changes for {@link InstanceCache.update}. */
export interface InstanceUpdate {
  /** Instances to add or replace (by key). A later entry for the same key wins. */
  readonly put?: Iterable<Instance>;
  /** Keys to remove. Unknown keys are ignored. A key both put and deleted in one batch ends up deleted. */
  readonly delete?: Iterable<string>;
}

/**
 * The state machine every sdkit Instancer is built on: it holds the current set of instances by key and turns
 * updates into {@link InstancerEvent}s with the Instancer contract already applied — sorted, no duplicate keys,
 * frozen, emitted only when something changed, errors as data, hot with the latest event replayed, complete on
 * {@link InstanceCache.close}. Backend authors feed it; they never build events by hand.
 *
 * Cost: an update of k changes to a set of n instances costs O(k log n) to compute plus one O(n) array copy to
 * publish the new frozen snapshot (a memcpy-like pass, no per-instance work); events carry
 * {@link InstancerEvent.changes} so consumers can stay O(k).
 */
export class InstanceCache {
  readonly #byKey = new Map<string, Instance>();
  readonly #subject = new LatestSubject<InstancerEvent>();
  #current: InstancerEvent | undefined;
  #closed = false;
  // Events (and the completion, as `null`) waiting to be delivered: an update made by a subscriber while an event
  // is being delivered is queued, so every subscriber sees every event in order and ends on the latest.

  /** Hot; replays the latest event; never errors; completes after {@link InstanceCache.close}. */
  readonly events$: Observable<InstancerEvent> = this.#subject.asObservable();

  /** The latest event, or `undefined` before the first {@link replace}, {@link update} or {@link fail}. */
  current(): InstancerEvent | undefined {
    return this.#current;
  }

  /** Whether {@link close} was called. Updates after close are ignored. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The instance under `key` now, if any. */
  get(key: string): Instance | undefined {
    return this.#byKey.get(key);
  }

  /** Number of instances held now. */
  get size(): number {
    return this.#byKey.size;
  }

  /**
   * Replaces the whole set (a fresh read). Emits the difference as one event if anything changed, if an error is
   * cleared by it, or if this is the first event (an empty first read still produces an event).
   * @throws TypeError if an instance has an empty key or address; nothing is applied then.
   */
  replace(instances: Iterable<Instance>): void {
    if (this.#closed) return;
    const next = new Map<string, Instance>();
    for (const instance of instances) {
      assertInstance(instance);
      next.set(instance.key, instance);
    }
    const put: Instance[] = [];
    for (const instance of next.values()) put.push(instance);
    const del: string[] = [];
    for (const key of this.#byKey.keys()) if (!next.has(key)) del.push(key);
    this.#apply(put, del);
  }

  /**
   * Applies a batch of incremental changes and emits one event if anything changed (or an error is cleared, or it
   * is the first event).
   * @throws TypeError if an instance has an empty key or address; nothing is applied then.
   */
  update(batch: InstanceUpdate): void {
    if (this.#closed) return;
    const put = batch.put ? Array.from(batch.put) : [];
    for (const instance of put) assertInstance(instance);
    this.#apply(put, batch.delete ? Array.from(batch.delete) : []);
  }

  /**
   * Records that the source is failing. Emits `{ instances: lastKnownGood, error }` when the source was healthy
   * before, or when the error's message differs from the previous one; the set is kept as it was.
   */
  fail(error: Error): void {
    if (this.#closed) return;
    const prev = this.#current;
    if (prev?.error && prev.error.message === error.message) return;
    this.#emit({ instances: prev ? prev.instances : EMPTY, error });
  }

  /** Completes `events$`. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#subject.complete();
  }

  #apply(put: readonly Instance[], del: readonly string[]): void {
    const added: Instance[] = [];
    const removed: Instance[] = [];
    const deleted = new Set(del);
    // Last put for a key wins; a key both put and deleted in one batch ends up deleted.
    const puts = new Map<string, Instance>();
    for (const instance of put) if (!deleted.has(instance.key)) puts.set(instance.key, instance);
    for (const [key, instance] of puts) {
      const old = this.#byKey.get(key);
      if (old && sameInstance(old, instance)) continue;
      if (old) removed.push(old);
      added.push(instance);
      this.#byKey.set(key, instance);
    }
    for (const key of deleted) {
      const old = this.#byKey.get(key);
      if (!old) continue;
      removed.push(old);
      this.#byKey.delete(key);
    }
    const prev = this.#current;
    if (prev && !prev.error && added.length === 0 && removed.length === 0) return;
    added.sort(byKey);
    removed.sort(byKey);
    const instances =
      added.length === 0 && removed.length === 0 && prev
        ? prev.instances
        : merge(prev?.instances ?? EMPTY, added, removed);
    // Not frozen: #emit clears `since` when the next event goes out (see there).
    const changes: InstanceChanges | undefined = prev
      ? { since: prev, added: Object.freeze(added), removed: Object.freeze(removed) }
      : undefined;
    this.#emit(changes ? { instances, changes } : { instances });
  }

  #emit(event: InstancerEvent): void {
    // The previous event stops pointing at its own predecessor, or every event would keep all earlier ones (and
    // their full instance arrays) alive: a long-running instancer would leak its whole history.
    const previous = this.#current?.changes as { since?: InstancerEvent | undefined } | undefined;
    if (previous) previous.since = undefined;
    const frozen = Object.freeze(event);
    this.#current = frozen;
    this.#subject.next(frozen);
  }
}

const EMPTY: readonly Instance[] = Object.freeze([]);

/** Orders instances by key in code-unit order, the order of every `InstancerEvent.instances`. */
export function byKey(a: Instance, b: Instance): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** New frozen sorted array: `prev` minus the keys of `removed`, plus `added` (both sorted by key). */
function merge(
  prev: readonly Instance[],
  added: readonly Instance[],
  removed: readonly Instance[],
): readonly Instance[] {
  const out: Instance[] = new Array(prev.length - removed.length + added.length);
  let i = 0;
  let r = 0;
  let a = 0;
  let o = 0;
  while (i < prev.length) {
    const cur = prev[i]!;
    // Skip removed entries (removed is a sorted subset of prev by key).
    if (r < removed.length && removed[r]!.key === cur.key) {
      r++;
      i++;
      continue;
    }
    if (a < added.length && added[a]!.key < cur.key) {
      out[o++] = added[a++]!;
      continue;
    }
    out[o++] = cur;
    i++;
  }
  while (a < added.length) out[o++] = added[a++]!;
  out.length = o;
  return Object.freeze(out);
}

/** Whether two instances are the same for consumers: same key, address and (structurally) metadata. */
export function sameInstance(a: Instance, b: Instance): boolean {
  return a === b || (a.key === b.key && a.address === b.address && deepEqual(a.metadata, b.metadata));
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k)) return false;
    if (!deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

function assertInstance(instance: Instance): void {
  if (typeof instance?.key !== 'string' || instance.key === '') {
    throw new TypeError(
      `sdkit: an instance needs a non-empty string key (got ${JSON.stringify(instance?.key)})`,
    );
  }
  if (typeof instance.address !== 'string' || instance.address === '') {
    throw new TypeError(`sdkit: instance ${JSON.stringify(instance.key)} needs a non-empty string address`);
  }
}
