import {
  assertKnownOptions,
  type Clock,
  type Endpoint,
  type EndpointEntry,
  type EndpointSnapshot,
  type Instance,
  type Logger,
  silentLogger,
} from '@sdkit/sd-core';
import type { EndpointSource } from './balancer.js';
import { assertEndpointSource, typeName } from './balancer.js';
import { CallMeter, type CallOutcome } from './call-meter.js';
import { countEjection } from './lb-instruments.js';

/**
 * Success-rate ejection (Envoy's `success_rate_*`): once per interval, the endpoints that had at least
 * `requestVolume` calls in it are compared, and those whose success rate is below `mean − stdevFactor × stdev` of
 * them are ejected. Nothing is compared while fewer than `minimumHosts` endpoints had that many calls.
 */
export interface SuccessRateOptions {
  /** Length of the counting interval, ms. Finite, > 0. Default 10 000 (Envoy's `interval`). */
  readonly intervalMs?: number;
  /** Endpoints with enough calls needed for a comparison. An integer ≥ 1. Default 5. */
  readonly minimumHosts?: number;
  /** Calls an endpoint needs in the interval to take part. An integer ≥ 1. Default 100. */
  readonly requestVolume?: number;
  /**
   * How many standard deviations below the mean success rate an endpoint must fall to be ejected: a plain factor
   * (Envoy's `success_rate_stdev_factor` of 1900 is 1.9 here). Finite, in [0, 100]. Default 1.9.
   */
  readonly stdevFactor?: number;
}

/** Options of {@link outlierEjection}. */
export interface OutlierEjectionOptions {
  /**
   * The meter whose `measure(factory)` made the source's endpoints: its call outcomes drive the ejections. An
   * endpoint it did not measure is never ejected. Outcomes of endpoints outside the source's set are ignored, so
   * one meter may serve several sources.
   */
  readonly meter: CallMeter;
  /**
   * Failures in a row (with no success between them) that eject an endpoint (Envoy's `consecutive_5xx`). An
   * integer ≥ 1, or `false` to eject only by success rate. Default 5.
   */
  readonly consecutiveFailures?: number | false;
  /**
   * How long the first ejection lasts, ms; the k-th ejection in a row lasts k times as long (Envoy's
   * `base_ejection_time`). Also the time in which an endpoint back in the set forgets one ejection. Finite, > 0.
   * Default 30 000.
   */
  readonly baseEjectionMs?: number;
  /**
   * The longest an ejection lasts, ms (Envoy's `max_ejection_time`). Finite, ≥ `baseEjectionMs`. Default 300 000
   * (or `baseEjectionMs` if that is larger).
   */
  readonly maxEjectionMs?: number;
  /**
   * The largest share of the set that may be ejected at once, in percent: an ejection that would make the ejected
   * endpoints more than this share of the current set is not made (the endpoint stays in, and is ejected by a later
   * failure if room has been made). Strict, unlike Envoy, which always allows one: with 50, a set of one endpoint
   * ejects none, a set of two or three at most one. In [0, 100]. Default 50.
   */
  readonly maxEjectionPercent?: number;
  /**
   * Panic threshold, in percent (Envoy's `healthy_panic_threshold`): while the endpoints not ejected are fewer than
   * this share of the set (the set shrank after ejections, or `maxEjectionPercent` allows more), `endpoints()`
   * returns the whole set, ejected endpoints included, rather than load a few survivors with everything.
   * In [0, 100]; 0 never panics. Default 50.
   */
  readonly panicThresholdPercent?: number;
  /** Also eject by success rate (see {@link SuccessRateOptions}; `{}` for the defaults). Default: off. */
  readonly successRate?: SuccessRateOptions;
  /** Times the ejections. Default: the meter's clock. */
  readonly clock?: Clock;
  /** Ejections (warn), returns (info), panics (warn, then info when over). Default `silentLogger`. */
  readonly logger?: Logger;
}

/** Why an endpoint was ejected. */
export type EjectionReason = 'consecutive-failures' | 'success-rate';

/** One ejected endpoint, as {@link OutlierEjector.ejected} lists it. */
export interface EjectedEndpoint<Req = unknown, Res = unknown> {
  /** The instance key. */
  readonly key: string;
  /** The instance the endpoint was made for. */
  readonly instance: Instance;
  /** The endpoint, as the source lists it. */
  readonly endpoint: Endpoint<Req, Res>;
  /** Why it was ejected. */
  readonly reason: EjectionReason;
  /** When it was ejected (the clock's ms). */
  readonly since: number;
  /** When it returns (the clock's ms): at the first read of the set at or after this time. */
  readonly until: number;
  /** Its ejection count, this ejection included: the ejection lasts `min(times × baseEjectionMs, maxEjectionMs)`. */
  readonly times: number;
}

/** What {@link OutlierEjector.onEvent} listeners hear. Times are the clock's ms. */
export type OutlierEvent<Req = unknown, Res = unknown> =
  | (EjectedEndpoint<Req, Res> & {
      readonly type: 'ejected';
      /** For `consecutive-failures`: the failures in a row. */
      readonly failures?: number;
      /** For `success-rate`: its success rate in the interval, in [0, 1], and the threshold it fell below. */
      readonly successRate?: number;
      readonly threshold?: number;
    })
  | {
      /** An ejected endpoint's time was up: it is back in the set. */
      readonly type: 'returned';
      readonly key: string;
      readonly instance: Instance;
      readonly endpoint: Endpoint<Req, Res>;
      /** When its ejection ended (its `until`). */
      readonly at: number;
      readonly times: number;
    }
  | {
      /** An ejected endpoint left the source's set: it is forgotten. */
      readonly type: 'removed';
      readonly key: string;
      readonly instance: Instance;
      readonly endpoint: Endpoint<Req, Res>;
      readonly at: number;
    }
  | {
      /** `panic-started`: too few endpoints are left, the whole set is used; `panic-ended`: enough are back. */
      readonly type: 'panic-started' | 'panic-ended';
      readonly at: number;
      /** Ejected endpoints and the size of the set at that moment. */
      readonly ejected: number;
      readonly total: number;
    };

/**
 * An {@link EndpointSource} without the endpoints that outlier detection ejected; see {@link outlierEjection}.
 * `ready` is present when the source has it, `entries` when the source has it.
 */
export interface OutlierEjector<Req = unknown, Res = unknown> extends Disposable {
  /**
   * The source's endpoints minus the ejected ones, in the source's order; in panic, all of them; after `close()`,
   * the source's own. A frozen array, the same one until the source's array, the ejected set or the panic state
   * changes (the source's own array while nothing is ejected). Returns ejected endpoints whose time is up first.
   * O(1) and allocation-free when nothing changed; O(n) for the read after a change.
   */
  endpoints(): readonly Endpoint<Req, Res>[];
  /**
   * When the source has `entries()`: its entries filtered exactly like {@link endpoints} (for the same state,
   * `entries()[i].endpoint === endpoints()[i]`); frozen, the same array until either changes.
   */
  entries?(): readonly EndpointEntry<Req, Res>[];
  /**
   * When the source has `snapshot()` (sd-core's Endpointer does): the set of {@link endpoints} as an immutable
   * snapshot, what balancers read — the source's own snapshot while nothing is ejected (or in panic), else a view
   * of it without the ejected endpoints (O(log e) per index for e ejected). The same object until the source's
   * snapshot, the ejected set or the panic state changes. Through it, a change of the source costs O(e log n)
   * here instead of O(n), and `endpoints()` / `entries()` are built (O(n)) only when read.
   */
  snapshot?(): EndpointSnapshot<Req, Res>;
  /** The source's `ready()`, when it has one. */
  ready?(options?: { readonly signal?: AbortSignal }): Promise<void>;
  /**
   * Why `endpoints()` is empty: that every endpoint of the set is ejected, or the source's reason ('' when the
   * source cannot tell).
   */
  emptyReason(): string;
  /** The endpoints ejected now (after returning those whose time is up), sorted by key. A fresh frozen array. */
  ejected(): readonly EjectedEndpoint<Req, Res>[];
  /** Whether `endpoints()` is in panic now (returns the whole set although some endpoints are ejected). */
  panicking(): boolean;
  /**
   * Calls `listener` with every ejection, return, removal of an ejected endpoint and start or end of a panic, in
   * order, synchronously when the ejector notices it: an ejection as the call that caused it settles (before its
   * caller sees the outcome), a return or a panic at the next read of the set (`endpoints()`, `entries()`,
   * `ejected()`, `panicking()`) or settled call. A listener that throws is ignored. Returns a function that
   * removes it.
   */
  onEvent(listener: (event: OutlierEvent<Req, Res>) => void): () => void;
  /**
   * Stops listening to the meter and forgets every ejection (without events); `endpoints()` then passes the
   * source's through. Idempotent; same as `[Symbol.dispose]()`. Closes nothing else: the source is not its own.
   */
  close(): void;
}

const OPTIONS = [
  'meter',
  'consecutiveFailures',
  'baseEjectionMs',
  'maxEjectionMs',
  'maxEjectionPercent',
  'panicThresholdPercent',
  'successRate',
  'clock',
  'logger',
] as const;
const HINTS = {
  consecutive5xx: 'consecutiveFailures',
  consecutiveErrors: 'consecutiveFailures',
  baseEjectionTime: 'baseEjectionMs',
  baseEjectionTimeMs: 'baseEjectionMs',
  maxEjectionTime: 'maxEjectionMs',
  maxEjectionTimeMs: 'maxEjectionMs',
  panicThreshold: 'panicThresholdPercent',
  healthyPanicThreshold: 'panicThresholdPercent',
  successRateMinimumHosts: 'successRate',
  successRateRequestVolume: 'successRate',
  successRateStdevFactor: 'successRate',
};
const SUCCESS_RATE_OPTIONS = ['intervalMs', 'minimumHosts', 'requestVolume', 'stdevFactor'] as const;
const SUCCESS_RATE_HINTS = {
  interval: 'intervalMs',
  successRateMinimumHosts: 'minimumHosts',
  successRateRequestVolume: 'requestVolume',
  successRateStdevFactor: 'stdevFactor',
};

/** The settings of one ejector, validated. */
interface Settings {
  readonly consecutiveFailures: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectionPercent: number;
  readonly panicThresholdPercent: number;
  readonly successRate: Required<SuccessRateOptions> | undefined;
}

/**
 * Outlier ejection (Envoy's outlier detection; gRPC's `outlier_detection` policy): wraps an endpoint source so that
 * endpoints whose calls keep failing leave the set for a while. Any balancer composes with it:
 *
 * ```ts
 * const meter = new CallMeter();
 * const endpoints = endpointer(instancer, meter.measure(factory));
 * const healthy = outlierEjection(endpoints, { meter });
 * const call = retry(roundRobin(healthy), { maxAttempts: 3, timeoutMs: 2_000 });
 * ```
 *
 * - An endpoint is ejected after `consecutiveFailures` failed calls in a row (a success resets the count) and,
 *   with `successRate`, when its success rate over an interval is an outlier among the others'. Calls that settle
 *   while it is ejected do not count.
 * - An ejection lasts `min(k × baseEjectionMs, maxEjectionMs)`, where k counts its ejections: 1 for the first, one
 *   more for each ejection after it, one less for each `baseEjectionMs` it then spends back in the set (so an
 *   endpoint that stays in for `k × baseEjectionMs` starts again from the base time). At the end the endpoint
 *   returns with its failure counts cleared. No timer: returns happen at the first read of the set (or settled
 *   call) at or after their time, computed from the clock.
 * - Never more than `maxEjectionPercent` of the set is ejected at once, and below `panicThresholdPercent` of the
 *   set not ejected, `endpoints()` returns the whole set (panic; logged once per episode).
 * - An endpoint that leaves the source's set is forgotten (its counts and ejection; a `removed` event if it was
 *   ejected).
 *
 * Ejections, returns and panics are logged and reported to {@link OutlierEjector.onEvent} listeners;
 * {@link OutlierEjector.ejected} lists the ejected endpoints. With an OpenTelemetry SDK registered, each ejection
 * counts in `sdkit.endpoint.ejections` (by reason). `endpoints()` costs the source's `endpoints()` plus,
 * while an endpoint is ejected, one clock read; it allocates nothing unless the set changed. A change of the
 * source's array costs O(n) at the next read while any endpoint has counts. When the source has `snapshot()`,
 * the ejector follows that instead and offers its own `snapshot()` (balancers read it): a change of the source
 * then costs O(k log n) for the k endpoints with counts, and the arrays are built only when read. `close()` stops
 * listening to the meter.
 *
 * @throws TypeError if `source` has no `endpoints()`, `meter` is not a CallMeter, or an option is unknown or
 *   invalid (naming it).
 */
export function outlierEjection<Req, Res>(
  source: EndpointSource<Req, Res> & { entries?(): readonly EndpointEntry<Req, Res>[] },
  options: OutlierEjectionOptions,
): OutlierEjector<Req, Res> {
  assertEndpointSource(source, 'outlierEjection');
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`outlierEjection: options must be an object with a meter, got ${typeName(options)}`);
  }
  assertKnownOptions('outlierEjection', options, OPTIONS, HINTS);
  const { meter, logger = silentLogger } = options;
  if (!(meter instanceof CallMeter)) {
    throw new TypeError(
      `outlierEjection: options.meter must be the CallMeter that measured the endpoints (endpointer(instancer, meter.measure(factory))), got ${typeName(meter)}`,
    );
  }
  const clock = options.clock ?? meter.clock;
  if (typeof clock !== 'object' || clock === null || typeof clock.now !== 'function') {
    throw new TypeError(`outlierEjection: clock must be a Clock, got ${typeName(clock)}`);
  }
  if (
    typeof logger !== 'object' ||
    logger === null ||
    typeof logger.warn !== 'function' ||
    typeof logger.info !== 'function' ||
    typeof logger.debug !== 'function'
  ) {
    throw new TypeError(
      `outlierEjection: logger must be a Logger (debug/info/warn/error), got ${typeName(logger)}`,
    );
  }
  const ejector = new Ejector<Req, Res>(source, meter, clock, logger, settingsOf(options));
  const api: OutlierEjector<Req, Res> = {
    endpoints: () => ejector.endpoints(),
    emptyReason: () => ejector.emptyReason(),
    ejected: () => ejector.ejected(),
    panicking: () => ejector.panicking(),
    onEvent: (listener) => ejector.onEvent(listener),
    close: () => ejector.close(),
    [Symbol.dispose]: () => ejector.close(),
  };
  if (typeof source.entries === 'function') api.entries = () => ejector.entries();
  if (typeof source.snapshot === 'function') api.snapshot = () => ejector.snapshot();
  const ready = source.ready;
  if (typeof ready === 'function') api.ready = (readyOptions) => ready.call(source, readyOptions);
  return api;
}

function settingsOf(options: OutlierEjectionOptions): Settings {
  const {
    consecutiveFailures = 5,
    baseEjectionMs = 30_000,
    maxEjectionPercent = 50,
    panicThresholdPercent = 50,
    successRate,
  } = options;
  if (
    consecutiveFailures !== false &&
    !(Number.isSafeInteger(consecutiveFailures) && (consecutiveFailures as number) >= 1)
  ) {
    throw new TypeError(
      `outlierEjection: consecutiveFailures must be an integer >= 1 or false, got ${typeName(consecutiveFailures)}`,
    );
  }
  if (typeof baseEjectionMs !== 'number' || !(baseEjectionMs > 0 && Number.isFinite(baseEjectionMs))) {
    throw new TypeError(
      `outlierEjection: baseEjectionMs must be a finite number > 0, got ${typeName(baseEjectionMs)}`,
    );
  }
  const { maxEjectionMs = Math.max(300_000, baseEjectionMs) } = options;
  if (
    typeof maxEjectionMs !== 'number' ||
    !(maxEjectionMs >= baseEjectionMs && Number.isFinite(maxEjectionMs))
  ) {
    throw new TypeError(
      `outlierEjection: maxEjectionMs must be a finite number >= baseEjectionMs (${baseEjectionMs}), got ${typeName(maxEjectionMs)}`,
    );
  }
  assertPercent('maxEjectionPercent', maxEjectionPercent);
  assertPercent('panicThresholdPercent', panicThresholdPercent);
  return {
    consecutiveFailures: consecutiveFailures === false ? Number.POSITIVE_INFINITY : consecutiveFailures,
    baseEjectionMs,
    maxEjectionMs,
    maxEjectionPercent,
    panicThresholdPercent,
    successRate: successRate === undefined ? undefined : successRateSettings(successRate),
  };
}

function successRateSettings(options: SuccessRateOptions): Required<SuccessRateOptions> {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(
      `outlierEjection: successRate must be an object ({} for the defaults), got ${typeName(options)}`,
    );
  }
  assertKnownOptions('outlierEjection: successRate', options, SUCCESS_RATE_OPTIONS, SUCCESS_RATE_HINTS);
  const { intervalMs = 10_000, minimumHosts = 5, requestVolume = 100, stdevFactor = 1.9 } = options;
  if (typeof intervalMs !== 'number' || !(intervalMs > 0 && Number.isFinite(intervalMs))) {
    throw new TypeError(
      `outlierEjection: successRate.intervalMs must be a finite number > 0, got ${typeName(intervalMs)}`,
    );
  }
  for (const [name, value] of [
    ['minimumHosts', minimumHosts],
    ['requestVolume', requestVolume],
  ] as const) {
    if (!(Number.isSafeInteger(value) && value >= 1)) {
      throw new TypeError(
        `outlierEjection: successRate.${name} must be an integer >= 1, got ${typeName(value)}`,
      );
    }
  }
  if (typeof stdevFactor !== 'number' || !(stdevFactor >= 0 && stdevFactor <= 100)) {
    throw new TypeError(
      `outlierEjection: successRate.stdevFactor must be a number in [0, 100] (a plain factor: Envoy's 1900 is 1.9), got ${typeName(stdevFactor)}`,
    );
  }
  return { intervalMs, minimumHosts, requestVolume, stdevFactor };
}

function assertPercent(name: string, value: unknown): void {
  if (typeof value !== 'number' || !(value >= 0 && value <= 100)) {
    throw new TypeError(`outlierEjection: ${name} must be a number in [0, 100], got ${typeName(value)}`);
  }
}

type AnyEndpoint = Endpoint<never, unknown>;

/** What the ejector knows of one endpoint. */
class EndpointState {
  /** Equal to the ejector's epoch when the endpoint is known to be in the source's current array. */
  epoch = -1;
  /** Failures in a row since the last success, ejection or return. */
  failures = 0;
  /** Ejections counted, as of {@link healthySince} (see {@link Ejector.timesAt}). */
  times = 0;
  /** When it last returned (the decay of `times` counts from there). */
  healthySince = 0;
  ejected = false;
  reason: EjectionReason = 'consecutive-failures';
  since = 0;
  until = 0;
  /** Calls and failures in the current success-rate interval. */
  windowCalls = 0;
  windowFailures = 0;

  constructor(
    readonly endpoint: AnyEndpoint,
    readonly instance: Instance,
  ) {}
}

const EMPTY: readonly never[] = Object.freeze([]);

/** The state machine behind {@link outlierEjection}. */
class Ejector<Req, Res> {
  readonly #source: EndpointSource<Req, Res> & { entries?(): readonly EndpointEntry<Req, Res>[] };
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #settings: Settings;
  readonly #states = new Map<AnyEndpoint, EndpointState>();
  /** The ejected states (few: at most `maxEjectionPercent` of the set). */
  #ejected: EndpointState[] = [];
  /** The earliest `until` of {@link #ejected}. */
  #nextReturnAt = Number.POSITIVE_INFINITY;
  /**
   * Whether the source has `snapshot()`: the ejector then follows the source's snapshots (`#current` is one),
   * else its `endpoints()` arrays.
   */
  readonly #snapshots: boolean;
  /** The source's snapshot or array as last seen; `undefined` before the first read. */
  #current: EndpointSnapshot<Req, Res> | readonly Endpoint<Req, Res>[] | undefined;
  /** Bumped whenever membership marks must be redone (see {@link EndpointState.epoch}). */
  #epoch = 0;
  /** Without snapshots: the source's array minus the ejected endpoints (what `endpoints()` returns). */
  #view: readonly Endpoint<Req, Res>[] = EMPTY;
  /** Bumped whenever {@link #view} is replaced, for the entries cache. */
  #viewVersion = 0;
  /** With snapshots: the source's snapshot minus the ejected endpoints (what `snapshot()` returns). */
  #viewSnapshot: EndpointSnapshot<Req, Res> | undefined;
  /** Bumped whenever the ejected set or the panic state changes, for the arrays built from snapshots. */
  #filterVersion = 0;
  #arraySource: readonly Endpoint<Req, Res>[] | undefined;
  #arrayVersion = -1;
  #arrayView: readonly Endpoint<Req, Res>[] = EMPTY;
  /** {@link #view} must be rebuilt: the source's array or the ejected set changed. */
  #dirty = true;
  #panic = false;
  #entriesSource: readonly EndpointEntry<Req, Res>[] | undefined;
  #entriesVersion = -1;
  #entriesView: readonly EndpointEntry<Req, Res>[] = EMPTY;
  /** Start of the current success-rate interval. */
  #windowStart: number;
  readonly #listeners = new Set<(event: OutlierEvent<Req, Res>) => void>();
  readonly #outbox: OutlierEvent<Req, Res>[] = [];
  #delivering = false;
  #closed = false;
  readonly #unsubscribe: () => void;

  constructor(
    source: EndpointSource<Req, Res> & { entries?(): readonly EndpointEntry<Req, Res>[] },
    meter: CallMeter,
    clock: Clock,
    logger: Logger,
    settings: Settings,
  ) {
    this.#source = source;
    this.#snapshots = typeof source.snapshot === 'function';
    this.#clock = clock;
    this.#logger = logger;
    this.#settings = settings;
    this.#windowStart = clock.now();
    this.#unsubscribe = meter.onOutcome((outcome) => this.#onOutcome(outcome));
  }

  endpoints(): readonly Endpoint<Req, Res>[] {
    if (this.#closed) return this.#source.endpoints();
    this.#refresh();
    if (!this.#snapshots) return this.#view;
    // From the source's own array, rebuilt when it or the ejected set changed (not on every new snapshot: a
    // change of entries only leaves the endpoints, and the indexes of the ejected ones, as they were).
    const source = this.#source.endpoints();
    const view = this.#viewSnapshot;
    if (!(view instanceof FilteredSnapshot)) return source;
    if (source !== this.#arraySource || this.#arrayVersion !== this.#filterVersion) {
      this.#arraySource = source;
      this.#arrayVersion = this.#filterVersion;
      this.#arrayView = Object.freeze(view.filter(source));
    }
    return this.#arrayView;
  }

  snapshot(): EndpointSnapshot<Req, Res> {
    if (this.#closed) return this.#source.snapshot!();
    this.#refresh();
    return this.#viewSnapshot!;
  }

  entries(): readonly EndpointEntry<Req, Res>[] {
    const entries = this.#source.entries!;
    if (this.#closed) return entries.call(this.#source);
    this.#refresh();
    const source = entries.call(this.#source);
    if (this.#snapshots) {
      const view = this.#viewSnapshot;
      if (!(view instanceof FilteredSnapshot)) return source;
      if (source !== this.#entriesSource || this.#entriesVersion !== this.#filterVersion) {
        this.#entriesSource = source;
        this.#entriesVersion = this.#filterVersion;
        this.#entriesView = Object.freeze(view.filter(source));
      }
      return this.#entriesView;
    }
    if (source !== this.#entriesSource || this.#entriesVersion !== this.#viewVersion) {
      this.#entriesSource = source;
      this.#entriesVersion = this.#viewVersion;
      this.#entriesView =
        this.#view === this.#current
          ? source
          : Object.freeze(source.filter((entry) => !this.#isEjected(entry.endpoint)));
    }
    return this.#entriesView;
  }

  emptyReason(): string {
    const total = this.#read().length;
    const left = this.#snapshots ? this.snapshot().length : this.endpoints().length;
    if (!this.#closed && total > 0 && left === 0) {
      return `all ${total} endpoints are ejected by outlier detection`;
    }
    return this.#source.emptyReason?.() ?? '';
  }

  ejected(): readonly EjectedEndpoint<Req, Res>[] {
    if (this.#closed) return EMPTY;
    this.#refresh();
    const list = this.#ejected.map((s) => Object.freeze(this.#describe(s)));
    list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return Object.freeze(list);
  }

  panicking(): boolean {
    if (this.#closed) return false;
    this.#refresh();
    return this.#panic;
  }

  onEvent(listener: (event: OutlierEvent<Req, Res>) => void): () => void {
    if (typeof listener !== 'function') {
      throw new TypeError(`outlierEjection: onEvent listener must be a function, got ${typeName(listener)}`);
    }
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.#states.clear();
    this.#ejected = [];
    this.#listeners.clear();
    this.#outbox.length = 0;
    this.#view = EMPTY;
    this.#current = undefined;
    this.#viewSnapshot = undefined;
    this.#arraySource = undefined;
    this.#arrayView = EMPTY;
    this.#entriesSource = undefined;
    this.#entriesView = EMPTY;
  }

  /** The source's set now: its snapshot when it has them, else its array. */
  #read(): EndpointSnapshot<Req, Res> | readonly Endpoint<Req, Res>[] {
    return this.#snapshots ? this.#source.snapshot!() : this.#source.endpoints();
  }

  /** Brings the state up to date with the source and the clock; delivers what happened. */
  #refresh(): void {
    const current = this.#read();
    if (current !== this.#current) this.#adopt(current);
    if (this.#ejected.length > 0) {
      const now = this.#clock.now();
      if (now >= this.#nextReturnAt) this.#returnDue(now);
    }
    if (this.#dirty) this.#rebuild();
    if (this.#outbox.length > 0) this.#flush();
  }

  #onOutcome(outcome: CallOutcome): void {
    if (this.#closed) return;
    const successRate = this.#settings.successRate;
    // Fast path: a success of an endpoint with no history changes nothing (unless success rates are counted).
    if (outcome.ok && successRate === undefined && !this.#states.has(outcome.endpoint)) return;
    const now = this.#clock.now();
    const current = this.#read();
    if (current !== this.#current) this.#adopt(current);
    if (this.#ejected.length > 0 && now >= this.#nextReturnAt) this.#returnDue(now);
    if (successRate !== undefined && now - this.#windowStart >= successRate.intervalMs) {
      this.#closeWindow(now, successRate);
    }
    let state = this.#states.get(outcome.endpoint);
    if (state === undefined && !(outcome.ok && successRate === undefined)) {
      state = new EndpointState(outcome.endpoint, outcome.instance);
      this.#states.set(outcome.endpoint, state);
      // Outcomes of endpoints outside the set (one meter, several sources) must not pile up: sweep now and then.
      if (this.#states.size > 2 * (this.#current?.length ?? 0) + 16) this.#sweep();
    }
    if (state !== undefined && !state.ejected) {
      if (successRate !== undefined) {
        state.windowCalls++;
        if (!outcome.ok) state.windowFailures++;
      }
      if (outcome.ok) {
        state.failures = 0;
        if (successRate === undefined && this.#timesAt(state, now) === 0) this.#states.delete(state.endpoint);
      } else if (++state.failures >= this.#settings.consecutiveFailures) {
        this.#eject(state, now, 'consecutive-failures', { failures: state.failures });
      }
    }
    if (this.#outbox.length > 0) this.#flush();
  }

  /** Takes `current` as the source's set: forgets the states of endpoints no longer in it. */
  #adopt(current: EndpointSnapshot<Req, Res> | readonly Endpoint<Req, Res>[]): void {
    this.#current = current;
    this.#dirty = true;
    this.#epoch++;
    if (this.#states.size > 0) this.#sweep();
  }

  /**
   * Marks the states of endpoints in the source's set and forgets the others: O(n) over an array; over a
   * snapshot, O(k log n) for k states (or one pass over it when the states are more than n / 32).
   */
  #sweep(): void {
    const current = this.#current ?? EMPTY;
    const epoch = ++this.#epoch;
    if (!this.#snapshots) {
      for (const endpoint of current as readonly Endpoint<Req, Res>[]) {
        const state = this.#states.get(endpoint);
        if (state !== undefined) state.epoch = epoch;
      }
    } else if (this.#states.size * 32 > current.length) {
      const snapshot = current as EndpointSnapshot<Req, Res>;
      for (let i = 0; i < snapshot.length; i++) {
        const state = this.#states.get(snapshot.endpointAt(i) as unknown as AnyEndpoint);
        if (state !== undefined) state.epoch = epoch;
      }
    } else {
      for (const state of this.#states.values()) {
        if (indexIn(current as EndpointSnapshot<Req, Res>, state) >= 0) state.epoch = epoch;
      }
    }
    const now = this.#clock.now();
    for (const state of this.#states.values()) {
      if (state.epoch !== epoch) this.#forget(state, now);
    }
  }

  #forget(state: EndpointState, now: number): void {
    this.#states.delete(state.endpoint);
    if (!state.ejected) return;
    state.ejected = false;
    this.#removeEjected(state);
    this.#logger.info(
      { key: state.instance.key, address: state.instance.address },
      'sdkit: ejected endpoint left the set; forgotten',
    );
    this.#emit({
      type: 'removed',
      key: state.instance.key,
      instance: state.instance,
      endpoint: state.endpoint as unknown as Endpoint<Req, Res>,
      at: now,
    });
  }

  /** Whether `endpoint` is in the source's current array (cached in its state until the array changes). */
  #isMember(state: EndpointState): boolean {
    if (state.epoch === this.#epoch) return true;
    const current = this.#current ?? EMPTY;
    const member = this.#snapshots
      ? indexIn(current as EndpointSnapshot<Req, Res>, state) >= 0
      : (current as readonly Endpoint<Req, Res>[]).includes(state.endpoint as unknown as Endpoint<Req, Res>);
    if (!member) return false;
    state.epoch = this.#epoch;
    return true;
  }

  #isEjected(endpoint: Endpoint<Req, Res>): boolean {
    return this.#states.get(endpoint)?.ejected === true;
  }

  /** Its ejection count at `now`: one less per `baseEjectionMs` spent back in the set. */
  #timesAt(state: EndpointState, now: number): number {
    if (state.times === 0) return 0;
    const forgotten = Math.floor((now - state.healthySince) / this.#settings.baseEjectionMs);
    return forgotten > 0 ? Math.max(0, state.times - forgotten) : state.times;
  }

  /** Ejects `state`'s endpoint if it is in the set and the set allows one more ejection. */
  #eject(
    state: EndpointState,
    now: number,
    reason: EjectionReason,
    detail: { failures?: number; successRate?: number; threshold?: number },
  ): boolean {
    if (!this.#isMember(state)) {
      this.#states.delete(state.endpoint); // another source's endpoint, measured by the same meter
      return false;
    }
    const total = this.#current?.length ?? 0;
    if ((this.#ejected.length + 1) * 100 > this.#settings.maxEjectionPercent * total) {
      this.#logger.debug(
        { key: state.instance.key, reason, ejected: this.#ejected.length, total },
        'sdkit: outlier not ejected: maxEjectionPercent reached',
      );
      return false;
    }
    const { baseEjectionMs, maxEjectionMs } = this.#settings;
    const times = this.#timesAt(state, now) + 1;
    const ejectionMs = Math.min(times * baseEjectionMs, maxEjectionMs);
    state.times = times;
    state.ejected = true;
    state.reason = reason;
    state.since = now;
    state.until = now + ejectionMs;
    state.failures = 0;
    state.windowCalls = 0;
    state.windowFailures = 0;
    this.#ejected.push(state);
    if (state.until < this.#nextReturnAt) this.#nextReturnAt = state.until;
    this.#dirty = true;
    this.#filterVersion++;
    this.#logger.warn(
      {
        key: state.instance.key,
        address: state.instance.address,
        reason,
        ...detail,
        times,
        ejectionMs,
        until: state.until,
      },
      `sdkit: endpoint ejected for ${ejectionMs} ms (${reason})`,
    );
    this.#emit({ type: 'ejected', ...this.#describe(state), ...detail });
    countEjection(reason);
    return true;
  }

  /** Returns every ejected endpoint whose time is up at `now`. */
  #returnDue(now: number): void {
    let next = Number.POSITIVE_INFINITY;
    const still: EndpointState[] = [];
    for (const state of this.#ejected) {
      if (state.until > now) {
        still.push(state);
        if (state.until < next) next = state.until;
        continue;
      }
      state.ejected = false;
      state.healthySince = state.until;
      state.failures = 0;
      state.windowCalls = 0;
      state.windowFailures = 0;
      this.#logger.info(
        { key: state.instance.key, address: state.instance.address, times: state.times },
        'sdkit: ejected endpoint returned',
      );
      this.#emit({
        type: 'returned',
        key: state.instance.key,
        instance: state.instance,
        endpoint: state.endpoint as unknown as Endpoint<Req, Res>,
        at: state.until,
        times: state.times,
      });
    }
    this.#ejected = still;
    this.#nextReturnAt = next;
    this.#dirty = true;
    this.#filterVersion++;
  }

  #removeEjected(state: EndpointState): void {
    this.#ejected = this.#ejected.filter((s) => s !== state);
    let next = Number.POSITIVE_INFINITY;
    for (const s of this.#ejected) if (s.until < next) next = s.until;
    this.#nextReturnAt = next;
    this.#dirty = true;
    this.#filterVersion++;
  }

  /** Ends the success-rate interval: ejects the outliers among the endpoints with enough calls, resets counts. */
  #closeWindow(now: number, options: Required<SuccessRateOptions>): void {
    const { intervalMs, minimumHosts, requestVolume, stdevFactor } = options;
    this.#windowStart += Math.floor((now - this.#windowStart) / intervalMs) * intervalMs;
    this.#sweep(); // only endpoints of the set take part
    const candidates: EndpointState[] = [];
    for (const state of this.#states.values()) {
      if (!state.ejected && state.windowCalls >= requestVolume) candidates.push(state);
    }
    if (candidates.length >= minimumHosts) {
      const rate = (s: EndpointState): number => 1 - s.windowFailures / s.windowCalls;
      let sum = 0;
      for (const s of candidates) sum += rate(s);
      const mean = sum / candidates.length;
      let squares = 0;
      for (const s of candidates) squares += (rate(s) - mean) ** 2;
      const threshold = mean - stdevFactor * Math.sqrt(squares / candidates.length);
      const outliers = candidates.filter((s) => rate(s) < threshold).sort((a, b) => rate(a) - rate(b));
      for (const s of outliers) {
        this.#eject(s, now, 'success-rate', { successRate: rate(s), threshold });
      }
    }
    for (const state of this.#states.values()) {
      state.windowCalls = 0;
      state.windowFailures = 0;
    }
  }

  /** Makes the view: the source's set minus the ejected endpoints, or all of it in panic. */
  #rebuild(): void {
    this.#dirty = false;
    const current = this.#current ?? EMPTY;
    const total = current.length;
    const ejected = this.#ejected.length;
    const panic =
      ejected > 0 && total > 0 && (total - ejected) * 100 < this.#settings.panicThresholdPercent * total;
    if (panic !== this.#panic) {
      this.#panic = panic;
      this.#filterVersion++;
      const at = this.#clock.now();
      if (panic) {
        this.#logger.warn(
          { ejected, total },
          'sdkit: outlier ejection in panic: too few endpoints left, using all of them',
        );
      } else this.#logger.info({ ejected, total }, 'sdkit: outlier ejection panic over');
      this.#emit({ type: panic ? 'panic-started' : 'panic-ended', at, ejected, total });
    }
    if (this.#snapshots) {
      const snapshot = current as EndpointSnapshot<Req, Res>;
      if (ejected === 0 || panic) this.#viewSnapshot = snapshot;
      else {
        // Every ejected endpoint is in the set: those that left it were forgotten when it was adopted.
        const skipped: number[] = [];
        for (const state of this.#ejected) {
          const index = indexIn(snapshot, state);
          if (index >= 0) skipped.push(index);
        }
        this.#viewSnapshot = new FilteredSnapshot(
          snapshot,
          skipped.sort((a, b) => a - b),
        );
      }
      return;
    }
    const source = current as readonly Endpoint<Req, Res>[];
    const view =
      ejected === 0 || panic
        ? source
        : Object.freeze(source.filter((endpoint) => !this.#isEjected(endpoint)));
    if (view !== this.#view) {
      this.#view = view;
      this.#viewVersion++;
    }
  }

  #describe(state: EndpointState): EjectedEndpoint<Req, Res> {
    return {
      key: state.instance.key,
      instance: state.instance,
      endpoint: state.endpoint as unknown as Endpoint<Req, Res>,
      reason: state.reason,
      since: state.since,
      until: state.until,
      times: state.times,
    };
  }

  #emit(event: OutlierEvent<Req, Res>): void {
    if (this.#listeners.size > 0) this.#outbox.push(event);
  }

  /** Delivers queued events in order; an event emitted by a listener's own call waits for the current one. */
  #flush(): void {
    if (this.#delivering) return;
    this.#delivering = true;
    try {
      for (let event = this.#outbox.shift(); event !== undefined; event = this.#outbox.shift()) {
        for (const listener of this.#listeners) {
          try {
            listener(Object.freeze(event));
          } catch {
            // A listener's failure must not change the set or the call's outcome.
          }
        }
      }
    } finally {
      this.#delivering = false;
    }
  }
}

/** The index of `state`'s endpoint in `snapshot` (found by its key, and only if it is that endpoint), or -1. */
function indexIn<Req, Res>(snapshot: EndpointSnapshot<Req, Res>, state: EndpointState): number {
  const index = snapshot.indexOfKey(state.instance.key);
  return index >= 0 && (snapshot.endpointAt(index) as unknown) === state.endpoint ? index : -1;
}

/**
 * A snapshot without the endpoints at some of its indexes (the ejected ones): immutable, like its source. Index i
 * maps to the source index `i + m`, m being the number of left-out indexes that come before it, found by a binary
 * search over them: O(log e) per index for e left out, no allocation.
 */
class FilteredSnapshot<Req, Res> implements EndpointSnapshot<Req, Res> {
  readonly length: number;
  readonly #source: EndpointSnapshot<Req, Res>;
  /** The source indexes left out, ascending. */
  readonly #skipped: readonly number[];
  /** `#skipped[m] - m`: how many kept indexes come before the m-th left-out one (non-decreasing). */
  readonly #keptBefore: readonly number[];

  /** `skipped`: distinct indexes of `source`, ascending. */
  constructor(source: EndpointSnapshot<Req, Res>, skipped: readonly number[]) {
    this.length = source.length - skipped.length;
    this.#source = source;
    this.#skipped = skipped;
    this.#keptBefore = skipped.map((index, m) => index - m);
    Object.freeze(this);
  }

  endpointAt(index: number): Endpoint<Req, Res> | undefined {
    if (!(index >= 0 && index < this.length)) return undefined;
    return this.#source.endpointAt(this.#sourceIndex(index));
  }

  entryAt(index: number): EndpointEntry<Req, Res> | undefined {
    if (!(index >= 0 && index < this.length)) return undefined;
    return this.#source.entryAt(this.#sourceIndex(index));
  }

  indexOfKey(key: string): number {
    const index = this.#source.indexOfKey(key);
    if (index < 0) return -1;
    const before = countBelow(this.#skipped, index + 1);
    return before > 0 && this.#skipped[before - 1] === index ? -1 : index - before;
  }

  /** `array`, index-aligned with the source (its `endpoints()` or `entries()`), without the left-out indexes. */
  filter<T>(array: readonly T[]): T[] {
    const out: T[] = [];
    let from = 0;
    for (const skip of [...this.#skipped, array.length]) {
      for (let i = from; i < skip; i++) out.push(array[i]!);
      from = skip + 1;
    }
    return out;
  }

  /** The source index of kept index `index`. */
  #sourceIndex(index: number): number {
    return index + countBelow(this.#keptBefore, index + 1);
  }
}

/** How many of `sorted` (ascending) are below `limit`. */
function countBelow(sorted: readonly number[], limit: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < limit) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
