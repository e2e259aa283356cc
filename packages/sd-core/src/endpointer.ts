import { defer, type Observable, ReplaySubject, type Subscription } from 'rxjs';
import { compareKeys } from './btree.js';
import { holdUntilSettled } from './hold-process.js';
import { sameInstance } from './instance-cache.js';
import { assertKnownOptions } from './known-options.js';
import { ReadyLatch } from './ready-latch.js';
import {
  type Clock,
  type Endpoint,
  type Endpointer,
  type Factory,
  type FactoryResult,
  type Instance,
  type Instancer,
  type InstancerEvent,
  type Logger,
  silentLogger,
  systemClock,
} from './types.js';

/** Options of {@link endpointer}. */
export interface EndpointerOptions {
  /**
   * What to do while the instancer reports an error. Absent (the default) or `Infinity`: keep serving the last
   * known endpoints for as long as it fails. A number of ms: drop (and close) every endpoint that long after the
   * FIRST error of a failure streak (later errors do not restart the countdown); a good event before then cancels
   * it, and a good event after it builds the endpoints again. `0` drops them at once on error.
   */
  readonly invalidateOnErrorMs?: number;
  /** Where factory and close failures are reported (`warn`/`error`, with the instance `key`). Default: silent. */
  readonly logger?: Logger;
  /**
   * How long `close()` waits, in ms, for factory calls still running and endpoint closes still settling. Past it,
   * `close()` resolves anyway and logs a warning with the keys still pending; what they produce is still closed
   * when they settle (never published). Default 10 000; `Infinity` waits for ever. A factory that never settles
   * (a dial that hangs) would otherwise hold a graceful shutdown for ever.
   */
  readonly closeTimeoutMs?: number;
  /**
   * Time source for `invalidateOnErrorMs` and `closeTimeoutMs`. Default {@link systemClock} (its timers do not
   * keep the process alive).
   */
  readonly clock?: Clock;
}

const ENDPOINTER_OPTIONS = ['invalidateOnErrorMs', 'logger', 'closeTimeoutMs', 'clock'] as const;

/** Default of {@link EndpointerOptions.closeTimeoutMs}. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

/**
 * Follows `instancer` and keeps one endpoint per instance, made by `factory` (go-kit's `sd.NewEndpointer`).
 *
 * - The factory is called exactly once per new instance (by key). An instance whose address or metadata changed is
 *   a replacement: the old endpoint is closed and a new one made. Endpoints of unchanged instances are reused.
 * - A factory that throws, rejects, or returns no `endpoint` function skips that instance (logged as a warning with
 *   its key) and is called again for it on the next instancer event, whatever that event is.
 * - Async factories: results are published as they resolve. A result whose instance was removed or replaced
 *   meanwhile, or that resolves after `close()`, is closed and never published.
 * - Duplicate keys in an event (a source breaking the contract) never give duplicate endpoints: the last wins.
 * - `close` of a {@link FactoryResult} is called exactly once, when its instance goes away, when the endpoints are
 *   invalidated, or on `close()`. Its errors (thrown or rejected) are logged, never thrown.
 * - Errors from the instancer keep the last known endpoints, unless `invalidateOnErrorMs` says otherwise.
 * - `endpoints()` returns a frozen array, ordered by instance key, and the same array until the set changes. A
 *   change is recorded in O(1); the array is rebuilt on the first call after changes (one copy, O(n), at memcpy
 *   speed for a few changes), or at once while `endpoints$` has subscribers. Events that carry `changes` from the event processed just
 *   before are applied in time proportional to the change; others are diffed against the current set.
 * - `endpoints$` is hot, starts with the current snapshot for each subscriber, emits each new snapshot, and
 *   completes after `close()` (having emitted an empty one).
 * - `close()` unsubscribes (it does not stop the instancer, which it does not own), closes every endpoint, waits
 *   for pending factory calls to settle (closing what they return) and for every close to finish — at most
 *   `closeTimeoutMs` (default 10 s; then it resolves and logs what is still pending, which is closed when it
 *   settles). Idempotent.
 *   If the instancer completes, the endpointer keeps its last endpoints until `close()`.
 *
 * @throws TypeError if `instancer` has no `events$`, `factory` is not a function, `invalidateOnErrorMs` or
 *   `closeTimeoutMs` is negative or NaN, or `logger`/`clock` is not one.
 */
export function endpointer<Req = unknown, Res = unknown>(
  instancer: Instancer,
  factory: Factory<Req, Res>,
  options: EndpointerOptions = {},
): Endpointer<Req, Res> {
  if (
    typeof instancer !== 'object' ||
    instancer === null ||
    typeof (instancer as { events$?: { subscribe?: unknown } }).events$?.subscribe !== 'function'
  ) {
    throw new TypeError(
      `endpointer: expected an Instancer (an object with events$), got ${describe(instancer)}`,
    );
  }
  if (typeof factory !== 'function') {
    throw new TypeError(`endpointer: factory must be a function, got ${describe(factory)}`);
  }
  if (typeof options === 'object' && options !== null) {
    assertKnownOptions('endpointer', options, ENDPOINTER_OPTIONS, {
      invalidateOnError: 'invalidateOnErrorMs',
    });
  }
  const { invalidateOnErrorMs, closeTimeoutMs, logger, clock } = options;
  if (logger !== undefined && typeof logger?.warn !== 'function') {
    throw new TypeError(
      `endpointer: logger must be a Logger (debug/info/warn/error), got ${describe(logger)}`,
    );
  }
  if (clock !== undefined && (typeof clock?.setTimeout !== 'function' || typeof clock.now !== 'function')) {
    throw new TypeError(`endpointer: clock must be a Clock (now, setTimeout), got ${describe(clock)}`);
  }
  if (
    invalidateOnErrorMs !== undefined &&
    (typeof invalidateOnErrorMs !== 'number' || Number.isNaN(invalidateOnErrorMs) || invalidateOnErrorMs < 0)
  ) {
    throw new TypeError(
      `endpointer: invalidateOnErrorMs must be a number >= 0 (or absent), got ${describe(invalidateOnErrorMs)}`,
    );
  }
  if (
    closeTimeoutMs !== undefined &&
    (typeof closeTimeoutMs !== 'number' || Number.isNaN(closeTimeoutMs) || closeTimeoutMs < 0)
  ) {
    throw new TypeError(
      `endpointer: closeTimeoutMs must be a number >= 0 (or absent), got ${describe(closeTimeoutMs)}`,
    );
  }
  return new DefaultEndpointer(instancer, factory, options);
}

type EntryState = 'pending' | 'ready' | 'failed' | 'retired';

/** One instance version the endpointer wants an endpoint for. */
interface Entry<Req, Res> {
  readonly instance: Instance;
  state: EntryState;
  result?: FactoryResult<Req, Res>;
}

const EMPTY: readonly never[] = Object.freeze([]);

class DefaultEndpointer<Req, Res> implements Endpointer<Req, Res> {
  readonly #factory: Factory<Req, Res>;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #invalidateMs: number | undefined;

  /** One entry per key of the applied instance set, whatever its state. */
  readonly #entries = new Map<string, Entry<Req, Res>>();
  /** Entries whose factory failed: tried again on the next event. */
  readonly #failed = new Set<Entry<Req, Res>>();
  /** The event whose instance set `#entries` holds; `undefined` before the first and after an invalidation. */
  #applied: InstancerEvent | undefined;

  /** Ready entries by key, in key order: what `endpoints()` lists. O(log n) per change. */
  /** The array `endpoints()` returns, ordered by key; rebuilt on demand once `#dirty` holds changes. */
  #built: readonly Endpoint<Req, Res>[] = EMPTY;
  /** The keys of `#built`, index for index (private, so updated in place). */
  #builtKeys: string[] = [];
  /** Changes of the ready set not yet in `#built`: key → the new ready entry, or `null` for "none". */
  readonly #dirty = new Map<string, Entry<Req, Res> | null>();
  #flushScheduled = false;

  readonly #subject = new ReplaySubject<readonly Endpoint<Req, Res>[]>(1);
  #published: readonly Endpoint<Req, Res>[] | undefined;
  #publishing = false;
  #completeAfterPublish = false;

  #inError = false;
  #invalidated = false;
  #cancelInvalidation: (() => void) | undefined;

  readonly #queue: InstancerEvent[] = [];
  #processing = false;
  /** Factory calls in flight, with the key each is for. */
  readonly #pendingFactories = new Map<Promise<void>, string>();
  /** Endpoint closes in flight, with the key each is for. */
  readonly #pendingCloses = new Map<Promise<void>, string>();
  readonly #closeTimeoutMs: number;
  #subscription: Subscription | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Opens once the first event is applied and an endpoint is ready or no factory is running (see `ready()`). */
  readonly #ready = new ReadyLatch();
  /** Whether the instancer delivered an event (or completed) yet. */
  #heard = false;
  /** The last factory failure, for {@link emptyReason}. */
  #lastFactoryError: { key: string; err: unknown } | undefined;

  // A subscriber first brings the replayed snapshot up to date: with nobody subscribed, changes are not published
  // (building the array is O(n)), only recorded in `#dirty`.
  readonly endpoints$: Observable<readonly Endpoint<Req, Res>[]> = defer(() => {
    this.#publish();
    return this.#subject;
  });

  constructor(instancer: Instancer, factory: Factory<Req, Res>, options: EndpointerOptions) {
    this.#factory = factory;
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
    this.#invalidateMs = options.invalidateOnErrorMs === Infinity ? undefined : options.invalidateOnErrorMs;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
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
    if (this.#dirty.size > 0) this.#rebuild();
    return this.#built;
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
    if (this.#invalidated)
      return 'the instancer kept failing and its endpoints were dropped (invalidateOnErrorMs)';
    const error = this.#applied?.error ? ` (the instancer reports: ${this.#applied.error.message})` : '';
    const total = this.#entries.size;
    if (total === 0) return `the instancer reports no instances${error}`;
    const pending = this.#pendingFactories.size;
    const failed = this.#failed.size;
    const parts: string[] = [];
    if (failed > 0) {
      const last = this.#lastFactoryError;
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
    this.#cancelInvalidation?.();
    this.#cancelInvalidation = undefined;
    this.#queue.length = 0;
    this.#retireAll();
    this.#dirty.clear();
    this.#built = EMPTY;
    this.#builtKeys = [];
    this.#completeAfterPublish = true;
    this.#publish();
    // Held: the wait for factories runs on an unref'd timer, and a caller awaiting close() must see it end.
    this.#closing = holdUntilSettled(this.#drain());
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Waits until no factory call or close is in flight (a settling factory may start a close), or until
   * `closeTimeoutMs` has passed; then logs what is still pending.
   */
  async #drain(): Promise<void> {
    const pending = () => this.#pendingFactories.size > 0 || this.#pendingCloses.size > 0;
    if (!pending()) return;
    let timedOut = false;
    let cancel: (() => void) | undefined;
    const deadline =
      this.#closeTimeoutMs === Infinity
        ? undefined
        : new Promise<void>((resolve) => {
            cancel = this.#clock.setTimeout(() => {
              timedOut = true;
              resolve();
            }, this.#closeTimeoutMs);
          });
    try {
      while (pending() && !timedOut) {
        const all = Promise.allSettled([...this.#pendingFactories.keys(), ...this.#pendingCloses.keys()]);
        await (deadline ? Promise.race([all, deadline]) : all);
      }
    } finally {
      cancel?.();
    }
    if (timedOut && pending()) {
      this.#logger.warn(
        {
          closeTimeoutMs: this.#closeTimeoutMs,
          pendingFactories: this.#pendingFactories.size,
          pendingCloses: this.#pendingCloses.size,
          // The first few keys, to say which; a huge list would only flood the log.
          keys: [...new Set([...this.#pendingFactories.values(), ...this.#pendingCloses.values()])].slice(
            0,
            10,
          ),
        },
        'sdkit endpointer: close() stopped waiting for factory calls or endpoint closes still running; ' +
          'what they return is closed when they settle',
      );
    }
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
          this.#process(next);
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
    if (this.#pendingFactories.size === 0 || this.endpoints().length > 0) this.#ready.open();
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

  #process(event: InstancerEvent): void {
    if (event.error) {
      if (!this.#inError) {
        this.#inError = true;
        this.#logger.warn(
          { err: event.error, invalidateOnErrorMs: this.#invalidateMs },
          'sdkit endpointer: the instancer reports an error; keeping the last known endpoints',
        );
        if (this.#invalidateMs === 0) this.#invalidate();
        else if (this.#invalidateMs !== undefined) {
          this.#cancelInvalidation = this.#clock.setTimeout(() => {
            this.#cancelInvalidation = undefined;
            if (!this.#closed && this.#inError) {
              this.#invalidate();
              this.#flush();
            }
          }, this.#invalidateMs);
        }
      }
      if (this.#invalidated) return;
    } else {
      if (this.#inError) {
        this.#inError = false;
        this.#cancelInvalidation?.();
        this.#cancelInvalidation = undefined;
      }
      this.#invalidated = false;
    }
    this.#sync(event);
  }

  /** Brings `#entries` to the set of `event`, then retries the factories that failed before it. */
  #sync(event: InstancerEvent): void {
    const prev = this.#applied;
    const retry = this.#failed.size > 0 ? [...this.#failed] : EMPTY;
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
    for (const entry of retry) {
      if (this.#closed) return;
      if (entry.state === 'failed' && this.#entries.get(entry.instance.key) === entry) this.#make(entry);
    }
  }

  #fullSync(instances: readonly Instance[]): void {
    const wanted = new Map<string, Instance>();
    for (const instance of instances) wanted.set(instance.key, instance);
    for (const [key, entry] of this.#entries) {
      const next = wanted.get(key);
      if (next === undefined || !sameInstance(entry.instance, next)) this.#remove(key);
    }
    for (const instance of wanted.values()) this.#add(instance);
  }

  #remove(key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    this.#retire(entry);
  }

  #add(instance: Instance): void {
    if (this.#closed) return;
    const current = this.#entries.get(instance.key);
    if (current !== undefined) {
      if (sameInstance(current.instance, instance)) return;
      this.#remove(instance.key);
    }
    const entry: Entry<Req, Res> = { instance, state: 'pending' };
    this.#entries.set(instance.key, entry);
    this.#make(entry);
  }

  /** Drops every endpoint after a failure streak reached `invalidateOnErrorMs`. */
  #invalidate(): void {
    this.#logger.warn(
      { invalidateOnErrorMs: this.#invalidateMs, endpoints: this.#entries.size },
      'sdkit endpointer: the instancer kept failing; dropping its endpoints',
    );
    this.#invalidated = true;
    this.#retireAll();
  }

  #retireAll(): void {
    for (const entry of this.#entries.values()) this.#retire(entry);
    this.#entries.clear();
    this.#failed.clear();
    this.#applied = undefined;
  }

  // ---- entries ------------------------------------------------------------------------------------------------

  #make(entry: Entry<Req, Res>): void {
    entry.state = 'pending';
    this.#failed.delete(entry);
    let out: FactoryResult<Req, Res> | Promise<FactoryResult<Req, Res>>;
    try {
      out = this.#factory(entry.instance);
    } catch (err) {
      this.#factoryFailed(entry, err);
      return;
    }
    if (!isThenable(out)) {
      this.#settle(entry, out);
      return;
    }
    const settled = Promise.resolve(out).then(
      (result) => this.#settle(entry, result),
      (err: unknown) => {
        if (entry.state === 'retired') {
          this.#logger.debug(
            { key: entry.instance.key, err },
            'sdkit endpointer: factory of a removed instance failed',
          );
        } else this.#factoryFailed(entry, err);
      },
    );
    this.#pendingFactories.set(settled, entry.instance.key);
    void settled.finally(() => {
      this.#pendingFactories.delete(settled);
      this.#checkReady();
    });
  }

  #settle(entry: Entry<Req, Res>, result: FactoryResult<Req, Res>): void {
    if (typeof (result as Partial<FactoryResult<Req, Res>> | undefined)?.endpoint !== 'function') {
      const err = new TypeError(
        typeof result === 'function'
          ? 'factory returned a function; return { endpoint: yourFunction } (and optionally close) instead'
          : `factory returned ${describe(result)}, not { endpoint: function, close? }`,
      );
      if (entry.state === 'retired') {
        this.#logger.debug(
          { key: entry.instance.key, err },
          'sdkit endpointer: factory of a removed instance failed',
        );
      } else this.#factoryFailed(entry, err);
      return;
    }
    if (entry.state === 'retired') {
      // Removed, replaced, invalidated or closed while the factory ran: never publish it.
      this.#closeResult(entry.instance.key, result);
      return;
    }
    entry.state = 'ready';
    entry.result = result;
    this.#dirty.set(entry.instance.key, entry);
    if (!this.#processing) this.#scheduleFlush();
  }

  #factoryFailed(entry: Entry<Req, Res>, err: unknown): void {
    entry.state = 'failed';
    this.#failed.add(entry);
    this.#lastFactoryError = { key: entry.instance.key, err };
    this.#logger.warn(
      { key: entry.instance.key, address: entry.instance.address, err },
      'sdkit endpointer: factory failed; skipping the instance until the next instancer event',
    );
  }

  #retire(entry: Entry<Req, Res>): void {
    const was = entry.state;
    entry.state = 'retired';
    if (was === 'failed') this.#failed.delete(entry);
    else if (was === 'ready') {
      this.#dirty.set(entry.instance.key, null);
      this.#closeResult(entry.instance.key, entry.result!);
    }
    // 'pending': #settle sees 'retired' and closes the result when it arrives.
  }

  #closeResult(key: string, result: FactoryResult<Req, Res>): void {
    const { close } = result;
    if (typeof close !== 'function') return;
    const failed = (err: unknown) =>
      this.#logger.warn({ key, err }, 'sdkit endpointer: closing an endpoint failed (ignored)');
    let out: void | Promise<void>;
    try {
      out = close.call(result);
    } catch (err) {
      failed(err);
      return;
    }
    if (isThenable(out)) {
      const done = Promise.resolve(out).then(undefined, failed);
      this.#pendingCloses.set(done, key);
      void done.finally(() => this.#pendingCloses.delete(done));
    }
  }

  // ---- snapshot -----------------------------------------------------------------------------------------------

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
   * otherwise leaves the changes in `#dirty` for the next `endpoints()` call, so a change nobody reads costs O(1).
   */
  #flush(): void {
    if (this.#closed || this.#dirty.size === 0) return;
    if (this.#subject.observed) this.#publish();
    // Unread changes are folded in once they outnumber the endpoints, so `#dirty` stays bounded.
    else if (this.#dirty.size > Math.max(SPLICE_MAX, this.#builtKeys.length)) this.#rebuild();
  }

  /**
   * Applies `#dirty` to `#built`, giving a new frozen array (the same one if nothing in it differs). A few changes
   * are spliced into a copy (memmove speed); many are merged in one pass. O(n + k log k) either way.
   */
  #rebuild(): void {
    const changes = [...this.#dirty].sort((a, b) => compareKeys(a[0], b[0]));
    this.#dirty.clear();
    const prev = this.#built;
    if (changes.length <= SPLICE_MAX) {
      const keys = this.#builtKeys;
      // Copied with a spread: V8's `slice()` of a frozen array takes a slow path (~20× slower at 10 000).
      let out: Endpoint<Req, Res>[] | undefined;
      for (const [key, entry] of changes) {
        const at = lowerBound(keys, key);
        const present = at < keys.length && keys[at] === key;
        const endpoint = entry !== null && entry.state === 'ready' ? entry.result!.endpoint : undefined;
        if (endpoint !== undefined) {
          if (present && (out ?? prev)[at] === endpoint) continue;
          out ??= [...prev];
          if (present) out[at] = endpoint;
          else {
            keys.splice(at, 0, key);
            out.splice(at, 0, endpoint);
          }
        } else if (present) {
          out ??= [...prev];
          keys.splice(at, 1);
          out.splice(at, 1);
        }
      }
      if (out !== undefined) this.#built = Object.freeze(out);
      return;
    }
    const prevKeys = this.#builtKeys;
    const keys: string[] = [];
    const out: Endpoint<Req, Res>[] = [];
    let changed = false;
    let i = 0;
    for (const [key, entry] of changes) {
      while (i < prevKeys.length && prevKeys[i]! < key) {
        keys.push(prevKeys[i]!);
        out.push(prev[i++]!);
      }
      const old = i < prevKeys.length && prevKeys[i] === key ? prev[i++] : undefined;
      const endpoint = entry !== null && entry.state === 'ready' ? entry.result!.endpoint : undefined;
      if (endpoint !== undefined) {
        keys.push(key);
        out.push(endpoint);
      }
      if (old !== endpoint) changed = true;
    }
    if (!changed) return;
    while (i < prevKeys.length) {
      keys.push(prevKeys[i]!);
      out.push(prev[i++]!);
    }
    this.#builtKeys = keys;
    this.#built = Object.freeze(out);
  }

  /**
   * Emits the latest snapshot (then completes, once closed). A snapshot made by a subscriber during an emission is
   * emitted after it, so every subscriber sees the snapshots in order and ends on the latest.
   */
  #publish(): void {
    if (this.#publishing) return;
    this.#publishing = true;
    try {
      while (this.#published !== this.endpoints()) {
        const snapshot = this.#built;
        this.#published = snapshot;
        this.#subject.next(snapshot);
      }
      if (this.#completeAfterPublish) this.#subject.complete();
    } finally {
      this.#publishing = false;
    }
  }
}

/** Changes applied by splicing a copy rather than by a merge pass (see `#rebuild`). */
const SPLICE_MAX = 16;

/** First index whose key is >= `key` (keys sorted). */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${value}`;
  return typeof value;
}
