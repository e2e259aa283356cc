import type { Attributes } from '@opentelemetry/api';
import { assertKnownOptions, errorType } from '@sdkit/sd-core';
import { typeName } from './balancer.js';
import type { RetryError } from './errors.js';
import { lbInstruments } from './lb-instruments.js';
import { lbTracer } from './lb-tracer.js';
import { RetrySpan } from './retry-span.js';

/** {@link RetryOptions.telemetry}: how calls through one `retry` endpoint show in OpenTelemetry. */
export interface RetryTelemetryOptions {
  /**
   * Names the endpoint (the service it calls, e.g. `'barsvc'`), recorded as `sdkit.retry.name` on its spans and
   * metrics: one short constant per `retry`, never per call. Default: none.
   */
  readonly name?: string;
}

/**
 * The telemetry of one `retry` endpoint: a span per call (when a TracerProvider is registered), retries and
 * give-ups counted (when a MeterProvider is). See docs/telemetry.md.
 * @internal
 */
export class RetryTelemetry {
  /** `sdkit.retry.name` when named: on every span and metric point. */
  readonly #attributes: Attributes;

  constructor(options: RetryTelemetryOptions) {
    this.#attributes = Object.freeze(options.name === undefined ? {} : { 'sdkit.retry.name': options.name });
  }

  /** The span of a call starting now (in the caller's context), or `undefined` while no TracerProvider is registered. */
  startSpan(): RetrySpan | undefined {
    const tracer = lbTracer();
    return tracer === undefined ? undefined : new RetrySpan(tracer, this.#attributes);
  }

  /** A call retries after `previous`, the error of its attempt before. */
  retried(previous: Error | undefined): void {
    lbInstruments.current()?.retries.add(1, { ...this.#attributes, 'error.type': errorType(previous) });
  }

  /** A call gave up with `error`; its span (if any) ends with it. */
  gaveUp(error: RetryError, span: RetrySpan | undefined): void {
    span?.failed(error);
    lbInstruments.current()?.giveUps.add(1, {
      ...this.#attributes,
      'sdkit.retry.reason': error.reason,
      'error.type': errorType(error.cause),
    });
  }
}

/** The validated `telemetry` option of `retry`: `undefined` for `false` (no telemetry). */
export function retryTelemetryOf(option: unknown): RetryTelemetry | undefined {
  if (option === false) return undefined;
  if (option === undefined) return new RetryTelemetry({});
  if (typeof option !== 'object' || option === null) {
    throw new TypeError(`retry: telemetry must be false or an object ({ name? }), got ${typeName(option)}`);
  }
  assertKnownOptions('retry: telemetry', option, ['name'], { serviceName: 'name', spanName: 'name' });
  const { name } = option as RetryTelemetryOptions;
  if (name !== undefined && (typeof name !== 'string' || name === '')) {
    throw new TypeError(`retry: telemetry.name must be a non-empty string, got ${typeName(name)}`);
  }
  return new RetryTelemetry({ ...(name === undefined ? {} : { name }) });
}
