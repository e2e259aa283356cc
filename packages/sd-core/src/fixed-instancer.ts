import type { Observable } from 'rxjs';
import { InstanceCache } from './instance-cache.js';
import type { Instance, Instancer, InstancerEvent } from './types.js';

/**
 * An {@link Instancer} over a set of instances that never changes (go-kit's `sd.FixedInstancer`).
 *
 * Each item is an {@link Instance} or a `"host:port"` (or URL) string, which becomes `{ key: s, address: s }`.
 * Instances are copied and frozen; duplicate keys collapse (the last wins); the event is sorted by key. The one
 * event exists from construction on: `current()` returns it and every subscriber to `events$` gets it at once.
 * An empty list is allowed (one event with no instances). `events$` completes after `stop()`.
 */
export class FixedInstancer implements Instancer {
  readonly #cache = new InstanceCache({ source: 'fixed' });

  /** Hot; replays the one event; never errors; completes after {@link FixedInstancer.stop}. */
  readonly events$: Observable<InstancerEvent> = this.#cache.events$;

  /**
   * @throws TypeError if `instances` is not an iterable (or is a lone string: wrap it in an array), or an item is neither a non-empty string nor an instance
   *   with a non-empty string key and address.
   */
  constructor(instances: Iterable<Instance | string>) {
    if (
      instances == null ||
      typeof instances === 'string' ||
      typeof (instances as Iterable<unknown>)[Symbol.iterator] !== 'function'
    ) {
      throw new TypeError(
        `FixedInstancer: expected an array of instances or "host:port" strings, got ${instances}`,
      );
    }
    const list: Instance[] = [];
    for (const item of instances) list.push(toFixedInstance(item));
    this.#cache.replace(list);
  }

  /** The one event (never `undefined`; the return type is the {@link Instancer}'s). */
  current(): InstancerEvent | undefined {
    return this.#cache.current();
  }

  /** Completes `events$`. Idempotent. */
  stop(): void {
    this.#cache.close();
  }

  /** Same as {@link FixedInstancer.stop}. */
  [Symbol.dispose](): void {
    this.stop();
  }
}

function toFixedInstance(item: Instance | string): Instance {
  if (typeof item === 'string') {
    if (item === '') throw new TypeError('FixedInstancer: an address string must not be empty');
    return Object.freeze({ key: item, address: item });
  }
  if (typeof item !== 'object' || item === null) {
    throw new TypeError(`FixedInstancer: expected an instance or a "host:port" string, got ${String(item)}`);
  }
  const { key, address, metadata } = item;
  if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null)) {
    throw new TypeError(`FixedInstancer: metadata of ${JSON.stringify(key)} must be an object`);
  }
  // The cache validates key and address (TypeError naming the key).
  return Object.freeze(
    metadata === undefined ? { key, address } : { key, address, metadata: Object.freeze({ ...metadata }) },
  );
}
