import {
  assertKnownOptions,
  type Clock,
  type Endpoint,
  type EndpointOptions,
  type Factory,
  type Instance,
  systemClock,
} from '@sdkit/sd-core';
import { typeName } from './balancer.js';
import { toError } from './errors.js';
import { trackActiveCalls } from './lb-instruments.js';

/** Options of {@link CallMeter}. */
export interface CallMeterOptions {
  /** Times the calls. Default `systemClock`. */
  readonly clock?: Clock;
  /**
   * Decay time of the peak-sensitive latency average, ms: a latency spike is taken at once and forgotten with this
   * time constant (Finagle's `decayTime`). Finite, > 0. Default 10 000.
   */
  readonly decayMs?: number;
  /**
   * The latency assumed for an endpoint that has not answered yet, ms (so that a new endpoint is neither shunned nor
   * flooded; Linkerd's default RTT). Finite, >= 0. Default 30.
   */
  readonly defaultLatencyMs?: number;
}

/** One finished call through a measured endpoint, as {@link CallMeter.onOutcome} listeners get it. */
export interface CallOutcome {
  /** The measured endpoint (the one balancers pick). */
  readonly endpoint: Endpoint<never, unknown>;
  /** The instance it was made for. */
  readonly instance: Instance;
  /** Whether the call resolved. A rejection (or a synchronous throw) is a failure. */
  readonly ok: boolean;
  /** The rejection, for a failure. */
  readonly error?: Error;
  /** From the call to its settling, ms. */
  readonly latencyMs: number;
}

/** What a {@link CallMeter} knows of one endpoint's calls. Live: it changes as calls start and end. */
export interface EndpointLoad {
  /** The instance the endpoint was made for. */
  readonly instance: Instance;
  /** Calls started and not yet settled. */
  readonly inFlight: number;
  /** Calls settled since the last success (0 after a success). */
  readonly consecutiveFailures: number;
  /** Calls settled, and how many of them failed. */
  readonly calls: number;
  readonly failures: number;
  /**
   * The peak-sensitive moving average of latency at `now` (default: the clock's now), ms: the default latency until
   * the first answer; then a slower answer is taken at once, faster ones pull it down with the decay time, and it
   * decays towards 0 while no call ends (so an endpoint that was slow is tried again after a while).
   */
  latencyMs(now?: number): number;
  /**
   * Finagle's load: `latencyMs(now) × (inFlight + 1)`; an endpoint with calls in flight whose average decayed to 0
   * costs a large penalty instead (it is busy, and nothing says how fast it is).
   */
  cost(now?: number): number;
}

/** Where a measured endpoint keeps its {@link EndpointStats} (internal to @sdkit/lb). */
const STATS: unique symbol = Symbol('sdkit.endpointStats');

/** A cost larger than any real one, for an endpoint that is busy and of unknown speed (Finagle's `Penalty`). */
const PENALTY = Number.MAX_SAFE_INTEGER / 2;

type Measured = Endpoint<unknown, unknown> & { [STATS]?: EndpointStats };

/** The statistics of one measured endpoint. */
class EndpointStats implements EndpointLoad {
  inFlight = 0;
  consecutiveFailures = 0;
  calls = 0;
  failures = 0;
  /** The average as of {@link stamp}. @internal */
  average: number;
  /** When {@link average} was last updated; `undefined` until the first answer (the default does not decay). @internal */
  stamp: number | undefined;

  constructor(
    readonly instance: Instance,
    readonly meter: CallMeter,
  ) {
    this.average = meter.defaultLatencyMs;
  }

  latencyMs(now = this.meter.clock.now()): number {
    if (this.stamp === undefined) return this.average;
    const elapsed = now - this.stamp;
    return elapsed > 0 ? this.average * Math.exp(-elapsed / this.meter.decayMs) : this.average;
  }

  cost(now?: number): number {
    const latency = this.latencyMs(now);
    if (latency === 0 && this.inFlight > 0) return PENALTY;
    return latency * (this.inFlight + 1);
  }

  /** Records a settled call that started at `start`. */
  settle(endpoint: Endpoint<never, unknown>, start: number, error: unknown, failed: boolean): void {
    const now = this.meter.clock.now();
    const latency = Math.max(0, now - start);
    this.inFlight--;
    this.calls++;
    if (failed) {
      this.failures++;
      this.consecutiveFailures++;
    } else this.consecutiveFailures = 0;
    // Peak-sensitive EWMA: a slower answer is taken at once, a faster one weighs in with the decay time.
    const decayed = this.latencyMs(now);
    if (this.stamp === undefined || latency > decayed) this.average = latency;
    else {
      const w = Math.exp(-(now - this.stamp) / this.meter.decayMs);
      this.average = decayed * w + latency * (1 - w);
    }
    this.stamp = now;
    this.meter.notify(endpoint, this, failed ? toError(error) : undefined, latency);
  }
}

/**
 * Measures the calls made through the endpoints of a Factory — load and latency per endpoint, and each call's
 * outcome — for the balancers and ejectors that read them (Linkerd / Finagle's split: a decorator that measures,
 * a balancer that reads the load).
 *
 * ```ts
 * const meter = new CallMeter();
 * const endpoints = endpointer(instancer, meter.measure(factory));
 * const call = retry(peakEwma(endpoints, { meter }), { maxAttempts: 3, timeoutMs: 2_000 });
 * ```
 *
 * `measure(factory)` returns a Factory whose endpoints wrap the factory's: a call counts as in flight until its
 * promise settles; resolving is a success, rejecting (or throwing) a failure; its latency feeds a peak-sensitive
 * moving average (see {@link EndpointLoad}). The wrapper adds two clock reads per call and nothing per pick.
 * Listeners of {@link onOutcome} hear every settled call. One meter may measure several factories. With an
 * OpenTelemetry SDK registered, the calls in flight per instance key are reported as `sdkit.endpoint.active_calls`
 * (read at collection: nothing per call), until the endpointer closes the endpoint.
 *
 * @throws TypeError for invalid options.
 */
export class CallMeter {
  /** The clock the calls are timed with. */
  readonly clock: Clock;
  /** See {@link CallMeterOptions.decayMs}. */
  readonly decayMs: number;
  /** See {@link CallMeterOptions.defaultLatencyMs}. */
  readonly defaultLatencyMs: number;
  readonly #listeners = new Set<(outcome: CallOutcome) => void>();

  constructor(options: CallMeterOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`CallMeter: options must be an object, got ${typeName(options)}`);
    }
    assertKnownOptions('CallMeter', options, ['clock', 'decayMs', 'defaultLatencyMs'], {
      decayTime: 'decayMs',
      decayTimeMs: 'decayMs',
      defaultRtt: 'defaultLatencyMs',
    });
    const { decayMs = 10_000, defaultLatencyMs = 30 } = options;
    if (typeof decayMs !== 'number' || !(decayMs > 0 && Number.isFinite(decayMs))) {
      throw new TypeError(`CallMeter: decayMs must be a finite number > 0, got ${typeName(decayMs)}`);
    }
    if (
      typeof defaultLatencyMs !== 'number' ||
      !(defaultLatencyMs >= 0 && Number.isFinite(defaultLatencyMs))
    ) {
      throw new TypeError(
        `CallMeter: defaultLatencyMs must be a finite number >= 0, got ${typeName(defaultLatencyMs)}`,
      );
    }
    this.clock = options.clock ?? systemClock;
    this.decayMs = decayMs;
    this.defaultLatencyMs = defaultLatencyMs;
  }

  /** A Factory whose endpoints are `factory`'s, measured by this meter. `close` is passed through. */
  measure<Req, Res>(factory: Factory<Req, Res>): Factory<Req, Res> {
    if (typeof factory !== 'function') {
      throw new TypeError(`CallMeter.measure: factory must be a function, got ${typeName(factory)}`);
    }
    return (instance) => {
      const made = factory(instance);
      return made instanceof Promise ? made.then((m) => this.#wrap(instance, m)) : this.#wrap(instance, made);
    };
  }

  /** What this meter (or another) knows of `endpoint`; `undefined` for an endpoint no meter measures. */
  loadOf(endpoint: Endpoint<never, unknown>): EndpointLoad | undefined {
    return statsOf(endpoint);
  }

  /**
   * Calls `listener` with every call settled through an endpoint of this meter, synchronously as it settles (before
   * the caller sees the outcome). A listener that throws is ignored. Returns a function that removes it.
   */
  onOutcome(listener: (outcome: CallOutcome) => void): () => void {
    if (typeof listener !== 'function') {
      throw new TypeError(`CallMeter.onOutcome: listener must be a function, got ${typeName(listener)}`);
    }
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** @internal Tells the listeners of one settled call. */
  notify(
    endpoint: Endpoint<never, unknown>,
    stats: EndpointStats,
    error: Error | undefined,
    latencyMs: number,
  ): void {
    if (this.#listeners.size === 0) return;
    const outcome: CallOutcome =
      error === undefined
        ? { endpoint, instance: stats.instance, ok: true, latencyMs }
        : { endpoint, instance: stats.instance, ok: false, error, latencyMs };
    for (const listener of this.#listeners) {
      try {
        listener(outcome);
      } catch {
        // A listener's failure must not change the call's outcome.
      }
    }
  }

  #wrap<Req, Res>(
    instance: Instance,
    made: Awaited<ReturnType<Factory<Req, Res>>>,
  ): Awaited<ReturnType<Factory<Req, Res>>> {
    const inner = made?.endpoint;
    if (typeof inner !== 'function') return made; // the endpointer reports the broken factory
    const stats = new EndpointStats(instance, this);
    const clock = this.clock;
    const measured = ((request: Req, options?: EndpointOptions): Promise<Res> => {
      const start = clock.now();
      stats.inFlight++;
      let pending: Promise<Res>;
      try {
        pending = inner(request, options);
      } catch (error) {
        stats.settle(measured, start, error, true);
        throw error;
      }
      return Promise.resolve(pending).then(
        (value) => {
          stats.settle(measured, start, undefined, false);
          return value;
        },
        (error: unknown) => {
          stats.settle(measured, start, error, true);
          throw error;
        },
      );
    }) as Endpoint<Req, Res> & { [STATS]?: EndpointStats };
    measured[STATS] = stats;
    const untrack = trackActiveCalls(stats);
    const close = made.close;
    return {
      endpoint: measured,
      close() {
        untrack();
        return close?.call(this);
      },
    };
  }
}

/**
 * @internal Whether `b` costs less than `a` now, as {@link EndpointLoad.cost} compares them. While both have
 * answered at least once the clock is not read: both averages decay by the same factor from now, so comparing
 * `average × (inFlight + 1)` with the decay between their stamps gives the same order (reading the clock on every
 * pick allocated; the one difference: the penalty of a busy endpoint whose average decayed to exactly 0 does not
 * apply here). An endpoint no meter measured costs `fallbackMs`.
 */
export function cheaper(
  a: Endpoint<never, unknown>,
  b: Endpoint<never, unknown>,
  clock: Clock,
  fallbackMs: number,
): boolean {
  const sa = (a as Measured)[STATS];
  const sb = (b as Measured)[STATS];
  if (sa !== undefined && sb !== undefined && sa.stamp !== undefined && sb.stamp !== undefined) {
    const decay = Math.exp((sb.stamp - sa.stamp) / sa.meter.decayMs);
    return sb.average * (sb.inFlight + 1) * decay < sa.average * (sa.inFlight + 1);
  }
  const now = clock.now();
  return (sb === undefined ? fallbackMs : sb.cost(now)) < (sa === undefined ? fallbackMs : sa.cost(now));
}

/** The statistics of a measured endpoint, or `undefined`. @internal */
export function statsOf(endpoint: Endpoint<never, unknown>): EndpointLoad | undefined {
  return (endpoint as Measured)[STATS];
}
