import type { Attributes } from '@opentelemetry/api';
import type { Observable } from 'rxjs';
import { BTree, compareKeys } from './btree.js';
import { errorType } from './error-type.js';
import { assertKnownOptions } from './known-options.js';
import { LatestSubject } from './latest-subject.js';
import { type CountedSet, countInstances, ERROR_TYPE, sourceInstruments } from './source-instruments.js';
import { type SourceTelemetryOptions, telemetryAttributes } from './source-telemetry.js';
import type { Instance, InstanceChanges, InstancerEvent } from './types.js';

/** A batch of incremental changes for {@link InstanceCache.update}. */
export interface InstanceUpdate {
  /** Instances to add or replace (by key). A later entry for the same key wins. */
  readonly put?: Iterable<Instance>;
  /** Keys to remove. Unknown keys are ignored. A key both put and deleted in one batch ends up deleted. */
  readonly delete?: Iterable<string>;
}

/**
 * Options of {@link InstanceCache}: the names its telemetry goes under (see {@link SourceTelemetryOptions}).
 * Without `source` the cache reports nothing.
 */
export type InstanceCacheOptions = Partial<SourceTelemetryOptions>;

/**
 * The state machine every sdkit Instancer is built on: it holds the current set of instances by key and turns
 * updates into {@link InstancerEvent}s with the Instancer contract already applied — sorted, no duplicate keys,
 * frozen, emitted only when something changed, errors as data, hot with the latest event replayed, complete on
 * {@link InstanceCache.close}. Backend authors feed it; they never build events by hand.
 *
 * Cost: an update of k changes to a set of n instances costs O(k log n), whatever n is. The set lives in a
 * copy-on-write B+ tree; each event holds an O(1) snapshot of it, and its `instances` array is built from that
 * snapshot the first time it is read (O(n), once per event; later reads return the same frozen array). Consumers
 * that follow {@link InstancerEvent.changes} (the Endpointer does) never pay the O(n).
 */
export class InstanceCache {
  readonly #tree: BTree<string, Instance> = new BTree<string, Instance>(undefined, compareKeys);
  readonly #subject = new LatestSubject<InstancerEvent>();
  #current: InstancerEvent | undefined;
  /** The snapshot behind `#current.instances`. */
  #snapshot: Snapshot | undefined;
  #closed = false;
  /** `sdkit.source.name` and `.target`, when the cache was given a source name. */
  readonly #attributes: Attributes | undefined;
  /** What the instance-count observable reads; held here so that the registry's weak reference lives with us. */
  readonly #counted: CountedSet | undefined;
  readonly #uncount: (() => void) | undefined;

  /**
   * @throws TypeError if `options.source` is not a non-empty string, `options.target` not a string, or an option
   *   is unknown.
   */
  constructor(options: InstanceCacheOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`InstanceCache: options must be an object ({ source?, target? }), got ${options}`);
    }
    assertKnownOptions('InstanceCache', options, ['source', 'target'], { name: 'source', prefix: 'target' });
    if (options.source !== undefined || options.target !== undefined) {
      const attributes = telemetryAttributes('InstanceCache', options as SourceTelemetryOptions);
      const tree = this.#tree;
      this.#attributes = attributes;
      this.#counted = {
        attributes,
        get size() {
          return tree.size;
        },
      };
      this.#uncount = countInstances(this.#counted);
    }
  }

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

  /** The instance under `key` now, if any. O(log n). */
  get(key: string): Instance | undefined {
    return this.#tree.get(key);
  }

  /** Number of instances held now. O(1). */
  get size(): number {
    return this.#tree.size;
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
    this.#tree.forEachPair((key) => {
      if (!next.has(key)) del.push(key);
    });
    this.#apply(put, del);
  }

  /**
   * Applies a batch of incremental changes and emits one event if anything changed (or an error is cleared, or it
   * is the first event). O(k log n) for k changes.
   * @throws TypeError if an instance has an empty key or address; nothing is applied then.
   */
  update(batch: InstanceUpdate): void {
    if (this.#closed) return;
    const put =
      batch.put === undefined ? EMPTY : Array.isArray(batch.put) ? batch.put : Array.from(batch.put);
    for (const instance of put) assertInstance(instance);
    const del =
      batch.delete === undefined
        ? NO_KEYS
        : Array.isArray(batch.delete)
          ? batch.delete
          : Array.from(batch.delete);
    this.#apply(put, del);
  }

  /**
   * Records that the source is failing. Emits `{ instances: lastKnownGood, error }` when the source was healthy
   * before, or when the error's message differs from the previous one; the set is kept as it was (the event's
   * `instances` is the very array of the event before, and its `changes` are empty).
   */
  fail(error: Error): void {
    if (this.#closed) return;
    const prev = this.#current;
    if (prev?.error && prev.error.message === error.message) return;
    const snapshot = this.#snapshot ?? EMPTY_SNAPSHOT;
    this.#emit(snapshot, prev ? { since: prev, added: EMPTY, removed: EMPTY } : undefined, error);
    if (this.#attributes !== undefined) {
      sourceInstruments.current()?.errors.add(1, { ...this.#attributes, [ERROR_TYPE]: errorType(error) });
    }
  }

  /** Completes `events$` (and stops reporting the size). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#uncount?.();
    this.#subject.complete();
  }

  #apply(put: readonly Instance[], del: readonly string[]): void {
    const added: Instance[] = [];
    const removed: Instance[] = [];
    if (put.length + del.length === 1) {
      // One change, what a watch mostly delivers: nothing to coalesce.
      if (put.length === 1) this.#put(put[0]!, added, removed);
      else this.#delete(del[0]!, removed);
    } else {
      const deleted = new Set(del);
      // Last put for a key wins; a key both put and deleted in one batch ends up deleted.
      const puts = new Map<string, Instance>();
      for (const instance of put) if (!deleted.has(instance.key)) puts.set(instance.key, instance);
      for (const instance of puts.values()) this.#put(instance, added, removed);
      for (const key of deleted) this.#delete(key, removed);
    }
    const prev = this.#current;
    const changed = added.length > 0 || removed.length > 0;
    if (prev && !prev.error && !changed) return;
    added.sort(byKey);
    removed.sort(byKey);
    // An O(1) copy-on-write clone: later updates copy only the tree nodes they touch.
    const snapshot = changed || !this.#snapshot ? new Snapshot(this.#tree.clone()) : this.#snapshot;
    const changes: InstanceChanges | undefined = prev
      ? { since: prev, added: Object.freeze(added), removed: Object.freeze(removed) }
      : undefined;
    this.#emit(snapshot, changes, undefined);
  }

  /** Puts `instance` in the set, recording what it adds and replaces (nothing if the same is there). */
  #put(instance: Instance, added: Instance[], removed: Instance[]): void {
    const old = this.#tree.get(instance.key);
    if (old !== undefined && sameInstance(old, instance)) return;
    if (old !== undefined) removed.push(old);
    added.push(instance);
    this.#tree.set(instance.key, instance);
  }

  /** Removes `key` from the set, recording what it removes. */
  #delete(key: string, removed: Instance[]): void {
    const old = this.#tree.get(key);
    if (old === undefined) return;
    removed.push(old);
    this.#tree.delete(key);
  }

  #emit(snapshot: Snapshot, changes: InstanceChanges | undefined, error: Error | undefined): void {
    // The previous event stops pointing at its own predecessor, or every event would keep all earlier ones (and
    // their snapshots) alive: a long-running instancer would leak its whole history.
    const previous = this.#current?.changes as { since?: InstancerEvent | undefined } | undefined;
    if (previous) previous.since = undefined;
    const event = lazyEvent(snapshot, changes, error);
    this.#snapshot = snapshot;
    this.#current = event;
    // Registers the size observable with an SDK registered since the last event.
    if (this.#attributes !== undefined) sourceInstruments.current();
    this.#subject.next(event);
  }
}

const EMPTY: readonly Instance[] = Object.freeze([]);
const NO_KEYS: readonly string[] = Object.freeze([]);

/** An immutable version of the set; its sorted array is built on first use and then kept. */
class Snapshot {
  readonly #tree: BTree<string, Instance> | undefined;
  #array: readonly Instance[] | undefined;
  constructor(tree: BTree<string, Instance> | undefined, array?: readonly Instance[]) {
    this.#tree = tree;
    this.#array = array;
  }
  get array(): readonly Instance[] {
    if (this.#array === undefined) this.#array = Object.freeze(this.#tree?.valuesArray() ?? []);
    return this.#array;
  }
}

const EMPTY_SNAPSHOT = new Snapshot(undefined, EMPTY);

/**
 * A frozen event whose `instances` is an own, enumerable getter over `snapshot` (so spreading, `toEqual` and
 * `JSON.stringify` see it like a plain property). `changes` is left unfrozen: `#emit` clears `since` later.
 */
function lazyEvent(
  snapshot: Snapshot,
  changes: InstanceChanges | undefined,
  error: Error | undefined,
): InstancerEvent {
  const event: { readonly instances: readonly Instance[]; error?: Error; changes?: InstanceChanges } = {
    get instances() {
      return snapshot.array;
    },
  };
  if (error !== undefined) event.error = error;
  if (changes !== undefined) event.changes = changes;
  return Object.freeze(event);
}

/** Orders instances by key in code-unit order, the order of every `InstancerEvent.instances`. */
export function byKey(a: Instance, b: Instance): number {
  return compareKeys(a.key, b.key);
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
