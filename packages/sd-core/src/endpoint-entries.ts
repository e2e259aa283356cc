import type { Endpoint, EndpointEntry } from './types.js';

/** Endpoint → the entry an Endpointer made for it. Weak: forgotten with the endpoint. */
const entries = new WeakMap<Endpoint<never, unknown>, EndpointEntry<never, unknown>>();

/** Records `entry` as the one of its endpoint (by the Endpointer that made it). @internal */
export function rememberEntry<Req, Res>(entry: EndpointEntry<Req, Res>): void {
  entries.set(entry.endpoint as Endpoint<never, unknown>, entry as EndpointEntry<never, unknown>);
}

/**
 * The entry (key, instance) an Endpointer made for `endpoint` — the function its factory returned, which balancers
 * hand out — or `undefined` for a function no Endpointer made. It stays known after the endpoint left the set.
 * For telemetry and logs that name the instance behind a picked endpoint; O(1).
 */
export function endpointEntryOf<Req, Res>(endpoint: Endpoint<Req, Res>): EndpointEntry<Req, Res> | undefined {
  return entries.get(endpoint as Endpoint<never, unknown>) as EndpointEntry<Req, Res> | undefined;
}
