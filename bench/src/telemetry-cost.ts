/**
 * What OpenTelemetry costs a call through `retry` (docs/telemetry.md): picks.ts' pipeline, `retry(roundRobin(…))`
 * over ten no-op endpoints, with its telemetry off (`telemetry: false`) and on with `@opentelemetry/api` loaded
 * but no SDK registered, the two interleaved; then, for information, the same two with the SDK registered, in a
 * worker thread (see `telemetry-sdk.worker.ts`).
 * @module
 */
import { Worker } from 'node:worker_threads';
import { type TelemetryRuns, timeOffAndOn } from './telemetry-pipeline.js';

/** ns per call through the pipeline in each telemetry setting. */
export interface TelemetryCostResult {
  /** `telemetry: false`, no SDK: the pipeline as it was before telemetry. */
  readonly offNs: number;
  /** Default telemetry, `@opentelemetry/api` loaded, no SDK registered. */
  readonly noSdkNs: number;
  /** `noSdkNs / offNs − 1`: what a call pays for telemetry while no SDK is registered. */
  readonly noSdkExtra: number;
  /** With the SDK registered (another thread): `telemetry: false`, and the default (a sampled span per call). */
  readonly sdkOffNs: number;
  readonly sdkNs: number;
}

export async function benchTelemetryCost(quick: boolean): Promise<TelemetryCostResult> {
  const runs: TelemetryRuns = { iterations: quick ? 50_000 : 300_000, runs: quick ? 5 : 9 };
  const { offNs, onNs } = await timeOffAndOn(runs);
  const worker = new Worker(new URL('./telemetry-sdk.worker.js', import.meta.url), { workerData: runs });
  try {
    const sdk = await new Promise<{ offNs: number; onNs: number }>((resolve, reject) => {
      worker.on('error', reject);
      worker.on('exit', (code) => reject(new Error(`telemetry worker exited (${code}) before it answered`)));
      worker.on('message', (m: { offNs: number; onNs: number } | { error: string }) => {
        if ('error' in m) reject(new Error(`telemetry worker: ${m.error}`));
        else resolve(m);
      });
    });
    return { offNs, noSdkNs: onNs, noSdkExtra: onNs / offNs - 1, sdkOffNs: sdk.offNs, sdkNs: sdk.onNs };
  } finally {
    await worker.terminate();
  }
}
