import type { Endpoint, Endpointer } from '@sdkit/sd-core';
import { NoEndpointsError } from './errors.js';

/**
 * What a {@link Balancer} reads: any {@link Endpointer} fits. The set is read on every pick, so a balancer always
 * sees the current set and needs no subscription or cleanup: its `snapshot()` when the source has one (sd-core's
 * Endpointer does: a change of the set then costs the pick after it O(√n)-sized work instead of a copy of the
 * whole set), else `endpoints()`. Whether the source has `snapshot()` is decided once, when the balancer is made.
 * `ready()` and `emptyReason()`, when the source has them, let {@link Balancer.ready} wait for the first set and
 * let {@link NoEndpointsError} say why the set is empty.
 */
export type EndpointSource<Req = unknown, Res = unknown> = Pick<Endpointer<Req, Res>, 'endpoints'> &
  Partial<Pick<Endpointer<Req, Res>, 'ready' | 'emptyReason' | 'snapshot'>>;

/**
 * What a call tells the balancer about itself, for strategies that pick by request (consistent hashing picks by
 * `hashKey`). `retry` computes it once per call ({@link RetryOptions.pickContext}) and adds the number of the
 * attempt from the second attempt on. Balancers that pick without it (roundRobin, random) ignore it.
 */
export interface PickContext {
  /** The key a hashing balancer maps to an endpoint: the same key, the same endpoint while the set is unchanged. */
  readonly hashKey?: string;
  /**
   * Which attempt of a call the pick is for: absent or 1 for the first, 2 for the first retry, and so on (`retry`
   * sets it). A hashing balancer sends attempt k of a key to the key's k-th choice, so that a retry does not go
   * back to the endpoint that just failed: with n endpoints, attempts 1 … n of one key go to n different ones, the
   * same in every client that sees the same set.
   */
  readonly attempt?: number;
}

/**
 * Picks one endpoint of a live set for each call (go-kit's `lb.Balancer`).
 *
 * `endpoint()` is synchronous and cheap (it runs once per request): it returns one of the endpoints the source
 * holds at that moment, or throws {@link NoEndpointsError} when the source has none. It never caches the set, so a
 * change of the set is visible at the next pick. Balancers hold no resources: there is nothing to close.
 */
export interface Balancer<Req = unknown, Res = unknown> {
  /**
   * One endpoint of the current set. `context`: what the call says about itself (see {@link PickContext});
   * optional, and ignored by balancers that do not pick by request.
   * @throws NoEndpointsError when the set is empty.
   */
  endpoint(context?: PickContext): Endpoint<Req, Res>;
  /**
   * Resolves once the source has its first set (its `ready()`); absent when the source cannot tell. `retry`
   * calls it when a pick finds no endpoint, so that a call made right after start-up waits for discovery instead
   * of failing.
   */
  ready?(options?: { readonly signal?: AbortSignal }): Promise<void>;
}

/** @internal The `NoEndpointsError` a balancer throws for an empty `source`, saying why when the source can. */
export function noEndpoints<Req, Res>(source: EndpointSource<Req, Res>): NoEndpointsError {
  const reason = source.emptyReason?.();
  return new NoEndpointsError(reason ? `no endpoints available: ${reason}` : undefined);
}

/** @internal `ready` for a balancer over `source`: the source's own, when it has one. */
export function readyOf<Req, Res>(
  source: EndpointSource<Req, Res>,
): Pick<Balancer<Req, Res>, 'ready'> | Record<string, never> {
  const ready = source.ready;
  return typeof ready === 'function' ? { ready: (options) => ready.call(source, options) } : {};
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
