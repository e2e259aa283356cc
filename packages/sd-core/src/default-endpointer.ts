import { defer, type Observable, ReplaySubject, type Subscription } from 'rxjs';
import { ErrorInvalidation } from './error-invalidation.js';
import { FactoryRuns, type Slot, slotFor } from './factory-runs.js';
import { holdUntilSettled } from './hold-process.js';
import { sameInstance } from './instance-cache.js';
import { ReadyLatch } from './ready-latch.js';
import { ReadySet } from './ready-set.js';
import {
  type Clock,
  type Endpoint,
  type EndpointEntry,
  type Endpointer,
  type EndpointSnapshot,
  type Factory,
  type Instance,
  type Instancer,
  type InstancerEvent,
  type Logger,
  silentLogger,
  systemClock,
} from './types.js';

const EMPTY: readonly never[] = Object.freeze([]);

/** What {@link DefaultEndpointer} takes, already validated (see `endpointer()`). */
export interface DefaultEndpointerOptions {
  readonly invalidateOnErrorMs?: number | undefined;
  readonly logger?: Logger | undefined;
  readonly closeTimeoutMs: number;
  readonly clock?: Clock | undefined;
}

/**
 * The {@link Endpointer} `endpointer()` returns; its contract is documented there. This class follows the
 * instancer: it keeps one {@link Slot} per key of the applied set, applies each event (by its `changes` when they
 * follow the event applied before, else by a diff), and publishes the snapshots of its {@link ReadySet}. The
 * factory calls are {@link FactoryRuns}', the error policy {@link ErrorInvalidation}'s.
 */
export class DefaultEndpointer<Req, Res> implements Endpointer<Req, Res> {
  readonly #logger: Logger;
  readonly #closeTimeoutMs: number;
  readonly #readySet = new ReadySet<Req, Res>();
  readonly #runs: FactoryRuns<Req, Res>;
  readonly #errors: ErrorInvalidation;

  /** One slot per key of the applied instance set, whatever its state. */
  readonly #slots = new Map<string, Slot<Req, Res>>();
  /** The event whose instance set `#slots` holds; `undefined` before the first and after an invalidation. */
  #applied: InstancerEvent | undefined;

  readonly #queue: InstancerEvent[] = [];
  #processing = false;
  #flushScheduled = false;

  readonly #subject = new ReplaySubject<readonly Endpoint<Req, Res>[]>(1);
  #published: readonly Endpoint<Req, Res>[] | undefined;
  #publishing = false;
  #completeAfterPublish = false;

  #subscription: Subscription | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Opens once the first event is applied and an endpoint is ready or no factory is running (see `ready()`). */
  readonly #ready = new ReadyLatch();
  /** Whether the instancer delivered an event (or completed) yet. */
  #heard = false;

  // A subscriber first brings the replayed snapshot up to date: with nobody subscribed, changes are not published
  // (building the array is O(n)), only recorded in the ready set.
  readonly endpoints$: Observable<readonly Endpoint<Req, Res>[]> = defer(() => {
    this.#publish();
    return this.#subject;
  });

  constructor(instancer: Instancer, factory: Factory<Req, Res>, options: DefaultEndpointerOptions) {
    const logger = options.logger ?? silentLogger;
    const clock = options.clock ?? systemClock;
    this.#logger = logger;
    this.#closeTimeoutMs = options.closeTimeoutMs;
    this.#runs = new FactoryRuns({
      factory,
      logger,
      clock,
      ready: this.#readySet,
      // A synchronous factory runs while an event is processed, which flushes at its end.
      onReady: () => {
        if (!this.#processing) this.#scheduleFlush();
      },
      onSettled: () => this.#checkReady(),
    });
    this.#errors = new ErrorInvalidation({
      invalidateOnErrorMs: options.invalidateOnErrorMs === Infinity ? undefined : options.invalidateOnErrorMs,
      clock,
      logger,
      invalidate: () => this.#invalidate(),
    });
    this.#publish();
    const subscription = instancer.events$.subscribe({
      next: (event) => this.#onEvent(event),
      error: (err: unknown) => this.#onSourceError(err),
      complete: () => {
        // Nothing more will come: a wait for the first set would never end.
        this.#heard = true;
        this.#ready.open();
      },
    });
    if (this.#closed) subscription.unsubscribe();
    else this.#subscription = subscription;
  }

  endpoints(): readonly Endpoint<Req, Res>[] {
    return this.#readySet.endpoints();
  }

  entries(): readonly EndpointEntry<Req, Res>[] {
    return this.#readySet.entries();
  }

  snapshot(): EndpointSnapshot<Req, Res> {
    return this.#readySet.snapshot();
  }

  ready(options?: { readonly signal?: AbortSignal }): Promise<void> {
    return this.#ready.wait(options?.signal);
  }

  /**
   * Why `endpoints()` is empty, in words, for {@link NoEndpointsError}-style messages: no event yet, the source's
   * error, no instances, or factory failures (with the last one). Not meant for the hot path.
   */
  emptyReason(): string {
    if (this.#closed) return 'the endpointer is closed';
    if (!this.#heard) return 'the instancer has not reported its first set yet';
    if (this.#errors.invalidated)
      return 'the instancer kept failing and its endpoints were dropped (invalidateOnErrorMs)';
    const error = this.#applied?.error ? ` (the instancer reports: ${this.#applied.error.message})` : '';
    const total = this.#slots.size;
    if (total === 0) return `the instancer reports no instances${error}`;
    const pending = this.#runs.pendingFactories;
    const failed = this.#runs.failed.size;
    const parts: string[] = [];
    if (failed > 0) {
      const last = this.#runs.lastError;
      const why = last ? `; last, for ${JSON.stringify(last.key)}: ${errorMessage(last.err)}` : '';
      parts.push(`the factory failed for ${failed} of ${total} instances${why}`);
    }
    if (pending > 0) parts.push(`${pending} factory calls still running`);
    return parts.length > 0 ? `${parts.join('; ')}${error}` : `no endpoint is ready${error}`;
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#ready.fail(new Error('endpointer closed before its first set was ready'));
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
    this.#errors.stop();
    this.#queue.length = 0;
    this.#retireAll();
    this.#readySet.clear();
    this.#completeAfterPublish = true;
    this.#publish();
    // Held: the wait for factories runs on an unref'd timer, and a caller awaiting close() must see it end.
    this.#closing = holdUntilSettled(this.#runs.drain(this.#closeTimeoutMs));
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- events -------------------------------------------------------------------------------------------------

  #onEvent(event: InstancerEvent): void {
    if (this.#closed) return;
    this.#queue.push(event);
    // An event that arrives while one is processed (a factory or subscriber driving the instancer) waits its turn.
    if (this.#processing) return;
    this.#processing = true;
    try {
      for (let next = this.#queue.shift(); next !== undefined && !this.#closed; next = this.#queue.shift()) {
        try {
          if (this.#errors.observe(next.error)) this.#sync(next);
        } catch (err) {
          // Only a source breaking the contract (a malformed event) gets here; keep going with the next one.
          this.#logger.error({ err }, 'sdkit endpointer: could not apply an instancer event');
        }
      }
    } finally {
      this.#processing = false;
    }
    this.#heard = true;
    this.#flush();
    this.#checkReady();
  }

  /** Opens `ready()` once the first event is applied and an endpoint is ready or no factory is running. */
  #checkReady(): void {
    if (this.#ready.isOpen || !this.#heard || this.#closed) return;
    if (this.#runs.pendingFactories === 0 || this.#readySet.snapshot().length > 0) this.#ready.open();
  }

  #onSourceError(err: unknown): void {
    // The Instancer contract says events$ never errors; treat a broken one as a failing source that stopped.
    this.#logger.error(
      { err },
      'sdkit endpointer: the instancer stream errored (it should never); it is no longer followed',
    );
    if (this.#closed) return;
    const error = err instanceof Error ? err : new Error(String(err));
    this.#onEvent({ instances: this.#applied?.instances ?? EMPTY, error });
  }

  /** Brings `#slots` to the set of `event`, then retries the factories that failed before it. */
  #sync(event: InstancerEvent): void {
    const prev = this.#applied;
    const retry = this.#runs.failed.size > 0 ? [...this.#runs.failed] : EMPTY;
    if (prev !== undefined && event.changes !== undefined && event.changes.since === prev) {
      for (const old of event.changes.removed) this.#remove(old.key);
      this.#applied = event;
      for (const instance of event.changes.added) this.#add(instance);
    } else if (prev === undefined || event.instances !== prev.instances) {
      this.#applied = event;
      this.#fullSync(event.instances);
    } else {
      this.#applied = event;
    }
    for (const slot of retry) {
      if (this.#closed) return;
      if (slot.state === 'failed' && this.#slots.get(slot.instance.key) === slot) this.#runs.start(slot);
    }
  }

  #fullSync(instances: readonly Instance[]): void {
    const wanted = new Map<string, Instance>();
    for (const instance of instances) wanted.set(instance.key, instance);
    for (const [key, slot] of this.#slots) {
      const next = wanted.get(key);
      if (next === undefined || !sameInstance(slot.instance, next)) this.#remove(key);
    }
    for (const instance of wanted.values()) this.#add(instance);
  }

  #remove(key: string): void {
    const slot = this.#slots.get(key);
    if (slot === undefined) return;
    this.#slots.delete(key);
    this.#runs.retire(slot);
  }

  #add(instance: Instance): void {
    if (this.#closed) return;
    const current = this.#slots.get(instance.key);
    if (current !== undefined) {
      if (sameInstance(current.instance, instance)) return;
      this.#remove(instance.key);
    }
    const slot = slotFor<Req, Res>(instance);
    this.#slots.set(instance.key, slot);
    this.#runs.start(slot);
  }

  /** Drops every endpoint after a failure streak reached `invalidateOnErrorMs` ({@link ErrorInvalidation}). */
  #invalidate(): void {
    if (this.#closed) return;
    this.#logger.warn(
      { invalidateOnErrorMs: this.#errors.invalidateOnErrorMs, endpoints: this.#slots.size },
      'sdkit endpointer: the instancer kept failing; dropping its endpoints',
    );
    this.#retireAll();
    // From the countdown's timer: nothing else will flush.
    if (!this.#processing) this.#flush();
  }

  #retireAll(): void {
    for (const slot of this.#slots.values()) this.#runs.retire(slot);
    this.#slots.clear();
    this.#runs.clearFailed();
    this.#applied = undefined;
  }

  // ---- snapshots ----------------------------------------------------------------------------------------------

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Coalesces the async factories that resolve together into one new snapshot.
    queueMicrotask(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  /**
   * After a batch of work: publishes the new endpoints if someone subscribes to `endpoints$` (building the array);
   * otherwise leaves the changes recorded for the next read, so a change nobody reads costs O(1).
   */
  #flush(): void {
    if (this.#closed || !this.#readySet.changed) return;
    if (this.#subject.observed) this.#publish();
    else this.#readySet.compact();
  }

  /**
   * Emits the latest snapshot (then completes, once closed). A snapshot made by a subscriber during an emission is
   * emitted after it, so every subscriber sees the snapshots in order and ends on the latest.
   */
  #publish(): void {
    if (this.#publishing) return;
    this.#publishing = true;
    try {
      for (let snapshot = this.endpoints(); this.#published !== snapshot; snapshot = this.endpoints()) {
        this.#published = snapshot;
        this.#subject.next(snapshot);
      }
      if (this.#completeAfterPublish) this.#subject.complete();
    } finally {
      this.#publishing = false;
    }
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
