/**
 * @sdkit/lb — load balancers over an sdkit Endpointer (round-robin, random; load-aware: p2c and peakEwma over a
 * CallMeter that measures the calls) and `retry`, which turns a balancer
 * into one Endpoint that retries on other instances, with backoff (from p-retry), per-attempt and overall
 * timeouts, and abort, keeping every attempt's error. Spans and metrics go through `@opentelemetry/api`
 * (docs/telemetry.md).
 * @packageDocumentation
 */
export type { Balancer, EndpointSource, PickContext } from './balancer.js';
export { CallMeter, type CallMeterOptions, type CallOutcome, type EndpointLoad } from './call-meter.js';
export type { EntrySource } from './entry-source.js';
export {
  NoEndpointsError,
  RetryError,
  type RetryErrorInit,
  type RetryGiveUpReason,
  TimeoutError,
} from './errors.js';
export { type MaglevOptions, maglev } from './maglev.js';
export {
  type EjectedEndpoint,
  type EjectionReason,
  type OutlierEjectionOptions,
  type OutlierEjector,
  type OutlierEvent,
  outlierEjection,
  type SuccessRateOptions,
} from './outlier-ejection.js';
export { type P2cOptions, p2c } from './p2c.js';
export { type PeakEwmaOptions, peakEwma } from './peak-ewma.js';
export { type RandomOptions, random } from './random.js';
export { type BackoffOptions, type RetryInfo, type RetryOptions, retry } from './retry.js';
export { type RetryBudget, type RetryBudgetOptions, retryBudget } from './retry-budget.js';
export type { RetryTelemetryOptions } from './retry-telemetry.js';
export { type RingHashOptions, ringHash } from './ring-hash.js';
export { roundRobin } from './round-robin.js';
export { type WeightedOptions, weighted } from './weighted.js';
export { type ZoneAwareOptions, type ZoneAwareSource, type ZoneRouting, zoneAware } from './zone-aware.js';
