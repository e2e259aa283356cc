import { createNoopMeter, type Meter, type MeterProvider, metrics } from '@opentelemetry/api';

/** The API's no-op meter: what every meter of an unregistered (or no-op) MeterProvider is. */
const NOOP_METER = createNoopMeter();

/** An instrumentation scope: the package that records, and its version (OpenTelemetry's meter name and version). */
export interface InstrumentationScope {
  readonly name: string;
  readonly version: string;
}

/**
 * The instruments of one instrumentation scope on the global MeterProvider of `@opentelemetry/api`, made by `make`
 * when first needed and made again whenever the global provider changes.
 *
 * Why: the API has no proxy for metrics — a meter taken before an SDK registers its MeterProvider stays a no-op
 * forever. Asking {@link current} at each recording instead means an SDK registered after sdkit was imported (or
 * replaced later) gets every measurement from then on. `make` may register observable callbacks; they are
 * registered once per provider.
 *
 * Cost: one `metrics.getMeterProvider()` per {@link current} (a few ns), plus `make` once per provider.
 */
export class MeterInstruments<T> {
  readonly #scope: InstrumentationScope;
  readonly #make: (meter: Meter) => T;
  #provider: MeterProvider | undefined;
  #instruments: T | undefined;

  constructor(scope: InstrumentationScope, make: (meter: Meter) => T) {
    this.#scope = scope;
    this.#make = make;
  }

  /**
   * The instruments on the global MeterProvider now, or `undefined` while no MeterProvider is registered (the
   * API's no-op), so that a caller skips building attributes.
   */
  current(): T | undefined {
    const provider = metrics.getMeterProvider();
    if (provider !== this.#provider) {
      this.#provider = provider;
      const meter = provider.getMeter(this.#scope.name, this.#scope.version);
      this.#instruments = meter === NOOP_METER ? undefined : this.#make(meter);
    }
    return this.#instruments;
  }
}
