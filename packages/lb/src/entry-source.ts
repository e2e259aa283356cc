import type { EndpointEntry } from '@sdkit/sd-core';
import type { EndpointSource } from './balancer.js';
import { assertEndpointSource } from './balancer.js';

/**
 * What the balancers and decorators that read keys, weights or zones take: an {@link EndpointSource} with
 * `entries()` (key, instance with metadata, endpoint), as sd-core's Endpointer has — the same order as
 * `endpoints()`, frozen, the same array until the set changes. `entries` is required at run time (checked when the
 * balancer is made) but optional in the type, so that decorators that have it when their source has it
 * (`outlierEjection`, whose `entries` is optional) fit.
 */
export type EntrySource<Req = unknown, Res = unknown> = EndpointSource<Req, Res> & {
  /** The current entries, in `endpoints()`' order; the same frozen array until the set changes. */
  entries?(): readonly EndpointEntry<Req, Res>[];
};

/** @internal Throws a TypeError naming `fn` unless `source` has `endpoints()` and `entries()` methods. */
export function assertEntrySource<Req, Res>(
  source: EntrySource<Req, Res>,
  fn: string,
): asserts source is EntrySource<Req, Res> & { entries(): readonly EndpointEntry<Req, Res>[] } {
  assertEndpointSource(source, fn);
  if (typeof (source as { entries?: unknown }).entries !== 'function') {
    throw new TypeError(
      `${fn}: the source must have entries() (an Endpointer, or a decorator over one such as outlierEjection), got an object without it`,
    );
  }
}
