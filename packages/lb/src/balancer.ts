import type { Endpoint, Endpointer } from '@sdkit/sd-core';

/**
 * What a {@link Balancer} reads: any {@link Endpointer} fits (only `endpoints()` is used, on every pick, so a
 * balancer always sees the current set and needs no subscription or cleanup).
 */
export type EndpointSource<Req = unknown, Res = unknown> = Pick<Endpointer<Req, Res>, 'endpoints'>;

/**
 * Picks one endpoint of a live set for each call (go-kit's `lb.Balancer`).
 *
 * `endpoint()` is synchronous and cheap (it runs once per request): it returns one of the endpoints the source
 * holds at that moment, or throws {@link NoEndpointsError} when the source has none. It never caches the set, so a
 * change of the set is visible at the next pick. Balancers hold no resources: there is nothing to close.
 */
export interface Balancer<Req = unknown, Res = unknown> {
  /**
   * One endpoint of the current set.
   * @throws NoEndpointsError when the set is empty.
   */
  endpoint(): Endpoint<Req, Res>;
}

/** @internal Throws a TypeError unless `source` has an `endpoints()` method. */
export function assertEndpointSource(source: unknown, fn: string): void {
  if (
    typeof source !== 'object' ||
    source === null ||
    typeof (source as { endpoints?: unknown }).endpoints !== 'function'
  ) {
    throw new TypeError(
      `${fn}: expected an Endpointer (an object with endpoints()), got ${typeName(source)}`,
    );
  }
}

/** @internal A short description of a value's type, for error messages. */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${value}`;
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`;
  return typeof value;
}
