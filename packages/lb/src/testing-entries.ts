/**
 * A hand-written test double for the lb tests of the balancers that read entries (not exported from the package
 * index): a source whose entries the test sets by hand.
 * @internal
 */
import type { Endpoint, EndpointEntry, Instance } from '@sdkit/sd-core';
import type { EntrySource } from './entry-source.js';
import { type FakeEndpoint, fakeEndpoint } from './testing-fakes.js';

/** One entry of a {@link FakeEntrySource}: its key, and optionally its instance's metadata. */
export type EntrySpec =
  | string
  | { readonly key: string; readonly metadata?: Readonly<Record<string, unknown>> };

/**
 * An entry source like sd-core's Endpointer: `entries()` and `endpoints()` are frozen arrays in the same order,
 * the same arrays until {@link FakeEntrySource.set}; one endpoint per key for the life of the source (the same
 * function when the key comes back; it answers every call with its key), and one entry object per key while its
 * metadata is unchanged.
 */
export class FakeEntrySource<Req = unknown, Res = string> implements EntrySource<Req, Res> {
  readonly #endpoints = new Map<string, FakeEndpoint<Req, Res>>();
  #entryByKey = new Map<string, { json: string; entry: EndpointEntry<Req, Res> }>();
  #entries: readonly EndpointEntry<Req, Res>[] = Object.freeze([]);
  #list: readonly Endpoint<Req, Res>[] = Object.freeze([]);
  /** How many times entries() was called. */
  reads = 0;

  constructor(specs: readonly EntrySpec[] = []) {
    this.set(specs);
  }

  entries(): readonly EndpointEntry<Req, Res>[] {
    this.reads++;
    return this.#entries;
  }

  endpoints(): readonly Endpoint<Req, Res>[] {
    return this.#list;
  }

  /** Replaces the set (in the given order). */
  set(specs: readonly EntrySpec[]): void {
    const next = new Map<string, { json: string; entry: EndpointEntry<Req, Res> }>();
    const entries: EndpointEntry<Req, Res>[] = [];
    for (const spec of specs) {
      const { key, metadata } = typeof spec === 'string' ? { key: spec, metadata: undefined } : spec;
      const json = JSON.stringify(metadata ?? null);
      let kept = this.#entryByKey.get(key);
      if (kept === undefined || kept.json !== json) {
        const instance: Instance = Object.freeze(
          metadata === undefined ? { key, address: `${key}:80` } : { key, address: `${key}:80`, metadata },
        );
        kept = { json, entry: Object.freeze({ key, instance, endpoint: this.endpoint(key) }) };
      }
      next.set(key, kept);
      entries.push(kept.entry);
    }
    this.#entryByKey = next;
    this.#entries = Object.freeze(entries);
    this.#list = Object.freeze(entries.map((e) => e.endpoint));
  }

  /** The endpoint of `key` (made on first use, the same afterwards). */
  endpoint(key: string): FakeEndpoint<Req, Res> {
    let endpoint = this.#endpoints.get(key);
    if (endpoint === undefined) {
      endpoint = fakeEndpoint<Req, Res>(key, { resolve: key as Res });
      this.#endpoints.set(key, endpoint);
    }
    return endpoint;
  }

  /** The key of an endpoint this source made. */
  keyOf(endpoint: Endpoint<Req, Res>): string {
    return (endpoint as FakeEndpoint<Req, Res>).label;
  }
}
