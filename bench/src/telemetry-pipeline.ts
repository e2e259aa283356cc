/**
 * The pipelines the telemetry-cost benchmark times (`telemetry-cost.ts`, `telemetry-sdk.worker.ts`):
 * `retry(roundRobin(…))` over ten no-op endpoints, with telemetry off and on, timed alternately.
 * @module
 */
import { type RetryOptions, retry, roundRobin } from '@sdkit/lb';
import type { Endpoint } from '@sdkit/sd-core';
import { nsPerAsyncOp } from './measure.js';

/** How long to measure. */
export interface TelemetryRuns {
  readonly iterations: number;
  readonly runs: number;
}

const noop: Endpoint<number, number> = async (x) => x;
const endpoints = Object.freeze(Array.from({ length: 10 }, () => noop));
const options: RetryOptions<number> = { maxAttempts: 3, timeoutMs: 10_000 };

/**
 * ns per call with `telemetry: false` and with the default telemetry, the two interleaved run by run (so machine
 * noise hits both alike); medians of `runs`.
 */
export async function timeOffAndOn({
  iterations,
  runs,
}: TelemetryRuns): Promise<{ offNs: number; onNs: number }> {
  const off = retry(roundRobin({ endpoints: () => endpoints }), { ...options, telemetry: false });
  const on = retry(roundRobin({ endpoints: () => endpoints }), options);
  const offRuns: number[] = [];
  const onRuns: number[] = [];
  for (let r = 0; r < runs; r++) {
    offRuns.push(await nsPerAsyncOp(() => off(1), iterations, 1));
    onRuns.push(await nsPerAsyncOp(() => on(1), iterations, 1));
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  return { offNs: med(offRuns), onNs: med(onRuns) };
}
