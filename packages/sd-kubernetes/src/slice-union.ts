import { type Instance, sameInstance } from '@sdkit/sd-core';
import type { SliceContribution } from './endpoint-slice.js';

/**
 * The per-endpoint union of a Service's EndpointSlices: every slice counts (a Service has one slice per ~100
 * endpoints), an endpoint held by several slices appears once, and a slice's change costs O(that slice), never
 * O(the Service).
 *
 * Kept per slice: its contribution (served instances by key). Kept per key: the slices that hold it, with each
 * one's copy. The union's instance for a key is the copy of the holder whose slice name sorts first (code-unit
 * order): a deterministic choice, the same whatever order the slices arrived in. Hence the no-flap rule: an
 * endpoint moving between slices (added to one, then removed from the other, or both in one batch) never
 * leaves the union, and when both copies are equal its instance does not change at all; when they differ, it
 * changes at most once (to the copy of the slice that sorts first). (Removed from one slice in an earlier batch
 * than it is added to another, it does leave the union in between: the union holds no removal back.)
 *
 * Mutations record the keys whose instance may have changed in the `changed` set the caller passes; the caller
 * reads {@link SliceUnion.get} for each after a batch (a key may be recorded although its instance ended up
 * equal: consumers compare, as `InstanceCache` does).
 */
export class SliceUnion {
  readonly #slices = new Map<string, SliceContribution>();
  /** Key → its holders: one `[slice, instance]` pair (the common case), or a Map of them. */
  readonly #holders = new Map<string, Holder | Map<string, Instance>>();
  #ipSlices = 0;
  #ipSlicesWithPort = 0;

  /** Number of slices held (of any address type). */
  get sliceCount(): number {
    return this.#slices.size;
  }

  /** Number of instances in the union. */
  get size(): number {
    return this.#holders.size;
  }

  /** Number of IPv4/IPv6 slices, and how many of them have the selected port. O(1). */
  portCoverage(): { readonly slices: number; readonly withPort: number } {
    return { slices: this.#ipSlices, withPort: this.#ipSlicesWithPort };
  }

  /** The distinct port descriptions of the IPv4/IPv6 slices, sorted (for messages). O(slices). */
  portsOffered(): string[] {
    const all = new Set<string>();
    for (const slice of this.#slices.values()) {
      if (isIpSlice(slice)) for (const port of slice.ports) all.add(port);
    }
    return [...all].sort();
  }

  /** The slice held under `name`. */
  slice(name: string): SliceContribution | undefined {
    return this.#slices.get(name);
  }

  /** Names of the slices held. */
  sliceNames(): IterableIterator<string> {
    return this.#slices.keys();
  }

  /** The union's instance for `key`: the copy of its first holder by slice name. O(holders of the key). */
  get(key: string): Instance | undefined {
    const h = this.#holders.get(key);
    if (h === undefined) return undefined;
    if (!(h instanceof Map)) return h.instance;
    let best: string | undefined;
    let instance: Instance | undefined;
    for (const [slice, copy] of h) {
      if (best === undefined || slice < best) {
        best = slice;
        instance = copy;
      }
    }
    return instance;
  }

  /** Every instance of the union, in no particular order. O(n). */
  *instances(): IterableIterator<Instance> {
    for (const key of this.#holders.keys()) yield this.get(key)!;
  }

  /**
   * Puts (adds or replaces) one slice. O(endpoints of the old and new versions). A slice with the same name and
   * resourceVersion as the one held is skipped. An endpoint whose instance is equal to the one held keeps the held
   * object and is not reported as changed (a slice update rewrites all its endpoints: otherwise every one of them
   * would be compared again downstream and held twice).
   */
  set(next: SliceContribution, changed: Set<string>): void {
    const old = this.#slices.get(next.name);
    if (
      old !== undefined &&
      old.resourceVersion !== undefined &&
      old.resourceVersion === next.resourceVersion
    ) {
      return;
    }
    const slice = old === undefined ? next : keepUnchanged(old, next);
    this.#count(old, -1);
    this.#count(slice, 1);
    this.#slices.set(slice.name, slice);
    for (const [key, instance] of slice.instances) {
      if (old?.instances.get(key) === instance) continue;
      this.#hold(key, slice.name, instance);
      changed.add(key);
    }
    if (old) {
      for (const key of old.instances.keys()) {
        if (slice.instances.has(key)) continue;
        this.#release(key, slice.name);
        changed.add(key);
      }
    }
  }

  /** Removes one slice: only the keys that no other slice holds leave the union. O(endpoints of the slice). */
  delete(name: string, changed: Set<string>): void {
    const old = this.#slices.get(name);
    if (old === undefined) return;
    this.#slices.delete(name);
    this.#count(old, -1);
    for (const key of old.instances.keys()) {
      this.#release(key, name);
      changed.add(key);
    }
  }

  /**
   * Replaces every slice (a fresh list): slices not in `slices` are deleted, the others put (unchanged ones, by
   * resourceVersion, cost nothing). O(slices + endpoints of the slices that changed).
   */
  reset(slices: ReadonlyMap<string, SliceContribution>, changed: Set<string>): void {
    for (const name of [...this.#slices.keys()]) if (!slices.has(name)) this.delete(name, changed);
    for (const slice of slices.values()) this.set(slice, changed);
  }

  #count(slice: SliceContribution | undefined, delta: 1 | -1): void {
    if (slice === undefined || !isIpSlice(slice)) return;
    this.#ipSlices += delta;
    if (slice.hasPort) this.#ipSlicesWithPort += delta;
  }

  #hold(key: string, slice: string, instance: Instance): void {
    const h = this.#holders.get(key);
    if (h === undefined) {
      this.#holders.set(key, { slice, instance });
    } else if (h instanceof Map) {
      h.set(slice, instance);
    } else if (h.slice === slice) {
      h.instance = instance;
    } else {
      this.#holders.set(
        key,
        new Map([
          [h.slice, h.instance],
          [slice, instance],
        ]),
      );
    }
  }

  #release(key: string, slice: string): void {
    const h = this.#holders.get(key);
    if (h === undefined) return;
    if (!(h instanceof Map)) {
      if (h.slice === slice) this.#holders.delete(key);
      return;
    }
    h.delete(slice);
    if (h.size === 1) {
      const [only, instance] = h.entries().next().value!;
      this.#holders.set(key, { slice: only, instance });
    }
  }
}

/** `next`, with the instances equal to `old`'s replaced by `old`'s objects (a copy only when one was equal). */
function keepUnchanged(old: SliceContribution, next: SliceContribution): SliceContribution {
  let instances: Map<string, Instance> | undefined;
  for (const [key, instance] of next.instances) {
    const held = old.instances.get(key);
    if (held === undefined || held === instance || !sameInstance(held, instance)) continue;
    instances ??= new Map(next.instances);
    instances.set(key, held);
  }
  return instances === undefined ? next : { ...next, instances };
}

interface Holder {
  readonly slice: string;
  instance: Instance;
}

function isIpSlice(slice: SliceContribution): boolean {
  return slice.addressType === 'IPv4' || slice.addressType === 'IPv6';
}
