import type { Observable } from 'rxjs';

/**
 * One addressable instance of a service, as a discovery source reports it.
 *
 * Instances are plain immutable values. Two instances with the same `key` are the same instance as far as sdkit
 * is concerned; when the `address` or `metadata` of a key changes, consumers treat it as a replacement (the old
 * endpoint is closed and a new one made).
 */
export interface Instance {
  /** Identity inside its source: the etcd key, an EndpointSlice endpoint id, `"host:port"`. Never empty. */
  readonly key: string;
  /** What a {@link Factory} dials: `"host:port"` or a URL. Never empty. */
  readonly address: string;
  /** Zone, weight, version… exactly as the source gave them. Absent when the source has none. */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/**
 * What an {@link Instancer} emits: the whole current set, plus the source's error state.
 *
 * Errors are data: a failing source emits `{ instances: lastKnownGood, error }` and keeps trying; it never drops
 * instances because of an error. The next good event has no `error`.
 */
export interface InstancerEvent {
  /**
   * The whole current set, sorted by `key` (code-unit order), no duplicate keys. Frozen. A source may build it
   * lazily on first read (sdkit's own do); every read of one event returns the same array.
   */
  readonly instances: readonly Instance[];
  /** Present while the source is failing; `instances` is then the last known good set. */
  readonly error?: Error;
  /**
   * Optional hint: how this event differs from `changes.since`, the event the same source emitted just before.
   * A consumer that processed exactly `since` may apply `added`/`removed` instead of diffing the whole set, so
   * its cost per change is proportional to the change. Consumers may ignore it; `instances` is always complete.
   */
  readonly changes?: InstanceChanges;
}

/** The difference between two consecutive events of one source (see {@link InstancerEvent.changes}). */
export interface InstanceChanges {
  /**
   * The event these changes apply to. Cleared (`undefined`) as soon as the source emits a newer event, so that
   * events never hold on to their whole history; a consumer compares it with the event it processed last, when
   * it receives this one.
   */
  readonly since?: InstancerEvent | undefined;
  /** Instances that are new, or whose address or metadata changed (the new value). Sorted by key. */
  readonly added: readonly Instance[];
  /** Instances that are gone, or whose address or metadata changed (the old value). Sorted by key. */
  readonly removed: readonly Instance[];
}

/**
 * A source of instances for one service (go-kit's `sd.Instancer`).
 *
 * Contract:
 * - `events$` is hot: subscribing starts nothing, and a new subscriber gets the latest event at once (if there is
 *   one yet), then every later one.
 * - An event is emitted only when the set or the error state changed; a burst of changes that arrives together
 *   gives one event.
 * - `events$` never errors. It completes after {@link Instancer.stop}.
 * - `stop()` is idempotent and releases everything (watches, timers); nothing keeps the process alive after it.
 */
export interface Instancer extends Disposable {
  /** Hot stream of events; replays the latest to each new subscriber; never errors; completes after `stop()`. */
  readonly events$: Observable<InstancerEvent>;
  /** The latest event, synchronously; `undefined` before the source has produced its first one. */
  current(): InstancerEvent | undefined;
  /** Releases the watch and completes `events$`. Idempotent. Same as `[Symbol.dispose]()`. */
  stop(): void;
}

/** Options every {@link Endpoint} accepts. */
export interface EndpointOptions {
  /** Aborts the call. An endpoint should reject promptly with the signal's reason once it fires. */
  readonly signal?: AbortSignal;
}

/** A callable remote operation (go-kit's `endpoint.Endpoint`): one request in, one response out. */
export type Endpoint<Req = unknown, Res = unknown> = (
  request: Req,
  options?: EndpointOptions,
) => Promise<Res>;

/** What a {@link Factory} makes for one instance: the endpoint, and how to release what backs it. */
export interface FactoryResult<Req = unknown, Res = unknown> {
  readonly endpoint: Endpoint<Req, Res>;
  /** Called once when the instance goes away or the Endpointer closes. Errors are logged, never thrown. */
  readonly close?: () => void | Promise<void>;
}

/**
 * Turns an instance into an endpoint (go-kit's `sd.Factory`). Called once per new instance by an
 * {@link Endpointer}. If it throws or rejects, that instance is skipped (and logged) and tried again on the next
 * event from the instancer.
 */
export type Factory<Req = unknown, Res = unknown> = (
  instance: Instance,
) => FactoryResult<Req, Res> | Promise<FactoryResult<Req, Res>>;

/**
 * One endpoint of an {@link Endpointer}, with the instance it was made for: what a balancer needs beyond the
 * function (weights and zones from `metadata`, hashing by `key`, per-endpoint state keyed by the entry). Frozen.
 * An Endpointer keeps one entry object per endpoint for as long as that endpoint is listed, so an entry may serve
 * as a key (a `WeakMap`, a `Map`) for state about its endpoint.
 */
export interface EndpointEntry<Req = unknown, Res = unknown> {
  /** The instance key (`instance.key`). */
  readonly key: string;
  /**
   * The instance as the instancer gave it, metadata included: the value the factory was called with (a later
   * event's instance of the same key equal in address and metadata does not replace it).
   */
  readonly instance: Instance;
  /** The endpoint the factory made for `instance`. */
  readonly endpoint: Endpoint<Req, Res>;
}

/**
 * The endpoints of an {@link Endpointer} at one moment, read by index without building the `endpoints()` array:
 * what a balancer reads on every pick (see {@link Endpointer.snapshot}). Immutable: a snapshot handed out never
 * changes, whatever happens to the set later; for the set it was taken from, `endpointAt(i) === endpoints()[i]`
 * and `entryAt(i) === entries()[i]`.
 */
export interface EndpointSnapshot<Req = unknown, Res = unknown> {
  /** How many endpoints (`endpoints().length` for the same set). */
  readonly length: number;
  /** The endpoint at `index` (0 ≤ index < length, an integer), `undefined` for any other index. O(1). */
  endpointAt(index: number): Endpoint<Req, Res> | undefined;
  /** The entry at `index` (0 ≤ index < length, an integer), `undefined` for any other index. O(1). */
  entryAt(index: number): EndpointEntry<Req, Res> | undefined;
  /** The index of the entry whose key is `key`, or -1. O(log n). */
  indexOfKey(key: string): number;
}

/**
 * The live set of endpoints for the instances of an {@link Instancer} (go-kit's `sd.Endpointer`).
 */
export interface Endpointer<Req = unknown, Res = unknown> extends AsyncDisposable {
  /**
   * The current endpoints, ordered by instance key: a frozen array, the same one until the set changes. The first
   * call after a change builds it (O(n)); every other call is O(1). Changes themselves cost O(change).
   */
  endpoints(): readonly Endpoint<Req, Res>[];
  /**
   * The entries behind `endpoints()`, in the same order: for the same set, `entries()[i].endpoint ===
   * endpoints()[i]`. Frozen (the array and each entry), the same array until the set changes (an instance
   * replaced by one with a new address or metadata is a change here even when its factory returned the same
   * function), and built lazily like `endpoints()`: a change nobody reads costs nothing here. An entry object stays
   * the same for as long as its endpoint is listed.
   */
  entries(): readonly EndpointEntry<Req, Res>[];
  /**
   * Optional: the current set as an {@link EndpointSnapshot}, the same object until the set changes (as
   * `entries()`: a replaced instance is a change even when its endpoint is the same function). Unlike
   * `endpoints()`, reading it after a change does not copy the set: sdkit's Endpointer keeps the set in blocks of
   * at most 1 024 entries, and a change copies only the block it touches plus the short index of the blocks
   * (≈ √n-sized work for n up to about a million, instead of O(n)); reading an index costs O(1). Balancers read
   * it instead of `endpoints()` when the source has it, so a decorator that filters or reorders `endpoints()`
   * must offer a matching `snapshot()`, or none.
   */
  snapshot?(): EndpointSnapshot<Req, Res>;
  /**
   * Hot; replays the current snapshot to each new subscriber; emits on every change; completes after `close()`.
   * Each emission is the whole array, built for it while anyone subscribes: O(n) per change (≈ 1.5 ms at 100 000
   * endpoints). To follow a large set, read `snapshot()` when you need it instead.
   */
  readonly endpoints$: Observable<readonly Endpoint<Req, Res>[]>;
  /**
   * Resolves once the instancer's first event is applied and either an endpoint is ready or no factory call for
   * it is still running — from then on `endpoints()` reflects the source (an empty set then means the source
   * has no usable instance). At once when that already happened, or when the instancer completed without an
   * event. Rejects if the endpointer is closed first, or with `options.signal`'s reason when it aborts. Keeps the
   * process alive while pending. `retry` waits for it before a pick finds no endpoint; call it yourself to wait
   * for the first set without rxjs: `await endpoints.ready()`.
   */
  ready(options?: { readonly signal?: AbortSignal }): Promise<void>;
  /**
   * Optional: why `endpoints()` is empty right now, in words (no first event yet, the source's error, no
   * instances, factory failures with the last error…). Balancers put it in their `NoEndpointsError`. Not for the
   * hot path.
   */
  emptyReason?(): string;
  /**
   * Stops following the instancer (it does not stop the instancer, which it does not own) and closes every
   * endpoint it made. Idempotent. Same as `[Symbol.asyncDispose]()`.
   */
  close(): Promise<void>;
}

/**
 * The lifecycle of a {@link Registrar}:
 * - `registering`: writing the registration (first time, or again after a loss);
 * - `registered`: visible in the source and kept alive;
 * - `lost`: the source dropped it (lease expired, store restarted); the registrar is trying to register again;
 * - `deregistered`: removed on request; nothing is kept alive.
 */
export type RegistrarState = 'registering' | 'registered' | 'lost' | 'deregistered';

/**
 * Announces one instance in a discovery source and keeps it there (go-kit's `sd.Registrar`).
 */
export interface Registrar extends AsyncDisposable {
  /** Idempotent; resolves once the instance is visible in the source. Concurrent calls share one attempt. */
  register(): Promise<void>;
  /** Removes the instance at once (not after a TTL) and stops keeping it alive. Idempotent. */
  deregister(): Promise<void>;
  /** Hot; replays the current state to each new subscriber; distinct states only; completes on dispose. */
  readonly state$: Observable<RegistrarState>;
}

/**
 * The logging interface sdkit uses: a structural subset of pino's `Logger`, so any pino logger (or child) fits.
 * sdkit never logs credentials. Pass `{ logger }` to any component; the default logs nothing.
 */
export interface Logger {
  /** Logs at debug level: `obj`'s fields, then `msg` (pino's argument order). */
  debug(obj: object, msg?: string): void;
  /** Logs at info level, like {@link debug}. */
  info(obj: object, msg?: string): void;
  /** Logs at warn level, like {@link debug}. */
  warn(obj: object, msg?: string): void;
  /** Logs at error level, like {@link debug}. */
  error(obj: object, msg?: string): void;
}

/** A {@link Logger} that drops everything: the default wherever a logger is optional. */
export const silentLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});

/**
 * Time source for everything time-based in sdkit, injectable for tests (see `FakeClock` in
 * `@sdkit/sd-core/testing`). Timers made through it must not keep the process alive (`unref`).
 */
export interface Clock {
  /** Milliseconds since an arbitrary origin; monotonic. */
  now(): number;
  /** Runs `fn` once after `ms`; returns a function that cancels it (idempotent). */
  setTimeout(fn: () => void, ms: number): () => void;
}

/** Longest delay Node's `setTimeout` honours; a longer one fires after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Lets the runtime exit while `timer` is pending: `unref()` where `setTimeout` returns an object (Node, Bun),
 * `Deno.unrefTimer` where it returns a number in Deno; elsewhere (browsers, workerd) there is nothing to do.
 */
function unref(timer: unknown): void {
  if (typeof timer === 'object' && timer !== null) {
    (timer as { unref?: () => void }).unref?.();
  } else if (typeof timer === 'number') {
    (globalThis as { Deno?: { unrefTimer?: (id: number) => void } }).Deno?.unrefTimer?.(timer);
  }
}

/**
 * The real clock: `performance.now()` and unref'd `setTimeout`. Delays longer than Node's limit (~24.8 days) are
 * chained rather than clamped to 1 ms; `Infinity` never fires.
 */
export const systemClock: Clock = Object.freeze({
  now: () => performance.now(),
  setTimeout(fn: () => void, ms: number): () => void {
    if (ms <= MAX_TIMER_MS) {
      // The common case, on the hot path of every call through retry: one timer, no chaining closure.
      const timer = setTimeout(fn, ms);
      unref(timer);
      return () => clearTimeout(timer);
    }
    let t: ReturnType<typeof setTimeout>;
    const arm = (remaining: number) => {
      t =
        remaining > MAX_TIMER_MS
          ? setTimeout(() => arm(remaining - MAX_TIMER_MS), MAX_TIMER_MS)
          : setTimeout(fn, remaining);
      unref(t);
    };
    arm(ms);
    return () => clearTimeout(t);
  },
});
