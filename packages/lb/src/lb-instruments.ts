/**
 * lb's metrics (docs/telemetry.md has the table): retries and give-ups of `retry`, ejections of `outlierEjection`,
 * calls in flight per endpoint of a `CallMeter`.
 * @internal
 * @module
 */
import type { Attributes, Counter, ObservableResult } from '@opentelemetry/api';
import { type Instance, type InstrumentationScope, MeterInstruments } from '@sdkit/sd-core';

/** lb's instrumentation scope (its package name and version). */
export const LB_SCOPE: InstrumentationScope = Object.freeze({ name: '@sdkit/lb', version: '0.1.0' });

/** Attribute: the instance key of an endpoint. */
export const ENDPOINT_KEY = 'sdkit.endpoint.key';

/** The synchronous instruments of lb. */
export interface LbInstruments {
  readonly retries: Counter;
  readonly giveUps: Counter;
  readonly ejections: Counter;
}

/** What the in-flight observable reads of one measured endpoint. */
export interface ActiveCalls {
  readonly instance: Instance;
  readonly inFlight: number;
}

type Ref = { deref(): ActiveCalls | undefined };

/** The measured endpoints not closed yet; weakly held where the runtime has WeakRef. */
const tracked = new Set<Ref>();
/** Keys of endpoints closed since the last collection: reported as 0 once (an SDK keeps a series' last value). */
const retired = new Set<string>();

/**
 * Reports `calls.inFlight` under `calls.instance.key` as `sdkit.endpoint.active_calls` until the returned function
 * is called (idempotent), or until `calls` is garbage (where WeakRef exists).
 */
export function trackActiveCalls(calls: ActiveCalls): () => void {
  const ref: Ref = typeof WeakRef === 'function' ? new WeakRef(calls) : { deref: () => calls };
  tracked.add(ref);
  lbInstruments.current(); // registers the observable on the provider of now
  return () => {
    if (tracked.delete(ref) && lbInstruments.current() !== undefined) retired.add(calls.instance.key);
  };
}

/** One point per instance key: the calls in flight through every tracked endpoint of that instance. */
function observeActiveCalls(result: ObservableResult): void {
  const byKey = new Map<string, number>();
  for (const ref of tracked) {
    const calls = ref.deref();
    if (calls === undefined) {
      tracked.delete(ref);
      continue;
    }
    const key = calls.instance.key;
    byKey.set(key, (byKey.get(key) ?? 0) + calls.inFlight);
  }
  for (const [key, inFlight] of byKey) result.observe(inFlight, { [ENDPOINT_KEY]: key });
  for (const key of retired) if (!byKey.has(key)) result.observe(0, { [ENDPOINT_KEY]: key });
  retired.clear();
}

/** lb's instruments on the global MeterProvider (undefined while none is registered). */
export const lbInstruments = new MeterInstruments<LbInstruments>(LB_SCOPE, (meter) => {
  meter
    .createObservableUpDownCounter('sdkit.endpoint.active_calls', {
      description: 'Calls in flight through an endpoint measured by a CallMeter, per instance key.',
      unit: '{call}',
    })
    .addCallback(observeActiveCalls);
  return {
    retries: meter.createCounter('sdkit.retry.retries', {
      description: 'Attempts retry made after the first of a call, by the error of the attempt before.',
      unit: '{attempt}',
    }),
    giveUps: meter.createCounter('sdkit.retry.give_ups', {
      description: 'Calls through retry that failed (rejected with a RetryError), by reason.',
      unit: '{call}',
    }),
    ejections: meter.createCounter('sdkit.endpoint.ejections', {
      description: 'Endpoints outlierEjection ejected, by reason.',
      unit: '{ejection}',
    }),
  };
});

/** Counts one ejection by `outlierEjection`. */
export function countEjection(reason: string): void {
  lbInstruments
    .current()
    ?.ejections.add(1, { 'sdkit.endpoint.ejection.reason': reason } satisfies Attributes);
}
