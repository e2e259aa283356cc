/**
 * Hand-written test doubles for the lb tests (not exported from the package index): an endpointer whose set is
 * set by hand, and endpoints that record their calls.
 * @internal
 */
import type { Endpoint, EndpointOptions } from '@sdkit/sd-core';
import type { EndpointSource } from './balancer.js';

/** An endpointer whose set of endpoints the test sets with {@link FakeEndpointer.set}. Frozen snapshots, like the real one. */
export class FakeEndpointer<Req = unknown, Res = unknown> implements EndpointSource<Req, Res> {
  #endpoints: readonly Endpoint<Req, Res>[];
  /** How many times endpoints() was called. */
  reads = 0;

  constructor(endpoints: readonly Endpoint<Req, Res>[] = []) {
    this.#endpoints = Object.freeze([...endpoints]);
  }

  endpoints(): readonly Endpoint<Req, Res>[] {
    this.reads++;
    return this.#endpoints;
  }

  set(endpoints: readonly Endpoint<Req, Res>[]): void {
    this.#endpoints = Object.freeze([...endpoints]);
  }
}

/** One recorded call of a {@link FakeEndpoint}. */
export interface FakeCall<Req> {
  readonly request: Req;
  readonly signal: AbortSignal | undefined;
}

/** How a {@link FakeEndpoint} answers a call: resolve with a value, reject, or hang until its signal aborts. */
export type Behaviour<Res> =
  | { readonly resolve: Res }
  | { readonly reject: unknown }
  | { readonly throwSync: unknown }
  | 'hang';

/** An endpoint with a name, that records its calls and answers by a script (the last entry repeats). */
export interface FakeEndpoint<Req, Res> extends Endpoint<Req, Res> {
  readonly label: string;
  readonly calls: FakeCall<Req>[];
  /** The abort reasons seen by hanging calls, in order. */
  readonly abortsSeen: unknown[];
}

/**
 * Makes a {@link FakeEndpoint}. A `'hang'` call never settles unless its signal aborts; it then rejects with the
 * signal's reason (as a well-behaved endpoint does) and records the reason in `abortsSeen`.
 */
export function fakeEndpoint<Req = unknown, Res = string>(
  label: string,
  ...script: Behaviour<Res>[]
): FakeEndpoint<Req, Res> {
  const calls: FakeCall<Req>[] = [];
  const abortsSeen: unknown[] = [];
  const fn = (request: Req, options?: EndpointOptions): Promise<Res> => {
    const signal = options?.signal;
    calls.push({ request, signal });
    const behaviour = script[Math.min(calls.length - 1, script.length - 1)] ?? 'hang';
    if (behaviour === 'hang') {
      return new Promise<Res>((_resolve, reject) => {
        if (signal === undefined) return;
        const onAbort = (): void => {
          abortsSeen.push(signal.reason);
          reject(signal.reason);
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      });
    }
    if ('throwSync' in behaviour) throw behaviour.throwSync;
    if ('reject' in behaviour) return Promise.reject(behaviour.reject);
    return Promise.resolve(behaviour.resolve);
  };
  return Object.assign(fn, { label, calls, abortsSeen });
}
