import { Observable } from 'rxjs';
import { InstanceCache } from '../instance-cache.js';
import { LatestSubject } from '../latest-subject.js';
import type { Instance, Instancer, InstancerEvent } from '../types.js';
import { toInstance } from './instances.js';

/**
 * An {@link Instancer} driven by hand, for tests of the layers above a source.
 *
 * `set`, `add`, `remove` and `fail` go through an {@link InstanceCache}, so they produce events exactly as a real
 * source would: sorted, unique keys, frozen, with `changes`, and only when something changed (a call that changes
 * nothing emits nothing). `emit` pushes any event as is, bypassing every rule, to test consumers against sources
 * that break the contract. After a raw `emit`, the next `set`/`add`/`remove`/`fail` always emits the fake's own
 * state again, even if that call changed nothing.
 *
 * `events$` is hot, replays the latest event, never errors, completes after `stop()`. Events are delivered in order
 * even when a subscriber drives the fake from inside its callback. Calls after `stop()` are ignored.
 */
export class FakeInstancer implements Instancer {
  readonly #cache = new InstanceCache();
  readonly #subject = new LatestSubject<InstancerEvent>();
  #current: InstancerEvent | undefined;
  #lastForwarded: InstancerEvent | undefined;
  #subscribers = 0;
  #stopped = false;

  /** Hot; replays the latest event; never errors; completes after {@link FakeInstancer.stop}. */
  readonly events$: Observable<InstancerEvent> = new Observable<InstancerEvent>((subscriber) => {
    this.#subscribers++;
    const inner = this.#subject.subscribe(subscriber);
    return () => {
      this.#subscribers--;
      inner.unsubscribe();
    };
  });

  /** With `initial`, starts as if `set(initial)` had been called (an empty array emits an empty first event). */
  constructor(initial?: readonly (Instance | string)[]) {
    if (initial !== undefined) this.set(initial);
  }

  /** The latest event emitted, or `undefined` before the first. */
  current(): InstancerEvent | undefined {
    return this.#current;
  }

  /**
   * Replaces the whole set (strings are `"host:port"` shorthands: key = address). Duplicate keys: the last wins.
   * @throws TypeError for an empty key or address.
   */
  set(instances: readonly (Instance | string)[]): void {
    this.#cache.replace(instances.map(toInstance));
    this.#forward();
  }

  /** Adds or replaces (by key) the given instances. */
  add(...instances: (Instance | string)[]): void {
    this.#cache.update({ put: instances.map(toInstance) });
    this.#forward();
  }

  /** Removes the instances with these keys; unknown keys are ignored. */
  remove(...keys: string[]): void {
    this.#cache.update({ delete: keys });
    this.#forward();
  }

  /**
   * Reports a source failure: emits `{ instances: lastKnownGood, error }`. Like a real source, a second failure with
   * the same message emits nothing. The next `set`/`add`/`remove` clears the error.
   */
  fail(error: Error | string): void {
    this.#cache.fail(typeof error === 'string' ? new Error(error) : error);
    this.#forward();
  }

  /** Emits `event` exactly as given (not validated, sorted or frozen). */
  emit(event: InstancerEvent): void {
    if (this.#stopped) return;
    this.#publish(event);
  }

  /** Number of current subscribers to `events$` (to check that consumers subscribe once and unsubscribe). */
  get subscriberCount(): number {
    return this.#subscribers;
  }

  /** Whether {@link FakeInstancer.stop} was called. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Completes `events$`. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#cache.close();
    this.#subject.complete();
  }

  /** Same as {@link FakeInstancer.stop}. */
  [Symbol.dispose](): void {
    this.stop();
  }

  #forward(): void {
    if (this.#stopped) return;
    const event = this.#cache.current();
    if (event === undefined) return;
    if (event === this.#lastForwarded && event === this.#current) return;
    this.#lastForwarded = event;
    this.#publish(event);
  }

  #publish(event: InstancerEvent): void {
    this.#current = event;
    this.#subject.next(event);
  }
}
