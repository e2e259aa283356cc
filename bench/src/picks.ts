import {
  type Balancer,
  CallMeter,
  maglev,
  type PickContext,
  p2c,
  peakEwma,
  random,
  retry,
  ringHash,
  roundRobin,
  weighted,
  zoneAware,
} from '@sdkit/lb';
import type { Endpoint, EndpointEntry } from '@sdkit/sd-core';
import { bytesPerCall, nsPerAsyncOp, nsPerCall } from './measure.js';

/** One row of the pick benchmark. */
export interface PickResult {
  readonly balancer: string;
  readonly endpoints: number;
  readonly nsPerPick: number;
  readonly bytesPerPick: number;
}

const noop: Endpoint<number, number> = async (x) => x;

function fixedSource(n: number) {
  const endpoints = Object.freeze(Array.from({ length: n }, () => noop));
  return { endpoints: () => endpoints };
}

/**
 * `n` distinct endpoints measured by a fresh CallMeter (what p2c and peakEwma read), idle, each called once (as
 * endpoints in service have answered before; {@link benchPicks} lets those calls settle before it measures).
 */
function measuredSource(n: number) {
  const meter = new CallMeter();
  const factory = meter.measure<number, number>(() => ({ endpoint: noop }));
  const endpoints = Object.freeze(
    Array.from(
      { length: n },
      (_, i) =>
        (factory({ key: String(i), address: `h${i}:1` }) as { endpoint: Endpoint<number, number> }).endpoint,
    ),
  );
  for (const endpoint of endpoints) void endpoint(0);
  return { meter, source: { endpoints: () => endpoints } };
}

/**
 * `n` entries (what weighted, the hashing balancers and zoneAware read) with keys like a discovery source's
 * (`10.0.1.7:8080`, flat strings) and `metadata(i)`.
 */
function entrySource(n: number, metadata: (i: number) => Record<string, unknown>) {
  const keys: string[] = JSON.parse(
    JSON.stringify(
      Array.from({ length: n }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`),
    ),
  );
  const entries: readonly EndpointEntry<number, number>[] = Object.freeze(
    keys.map((key, i) =>
      Object.freeze({
        key,
        instance: Object.freeze({ key, address: key, metadata: metadata(i) }),
        endpoint: noop,
      }),
    ),
  );
  const endpoints = Object.freeze(entries.map((entry) => entry.endpoint));
  return { endpoints: () => endpoints, entries: () => entries };
}

/** What the pick benchmark times: `endpoint()` called without arguments. */
interface Pickable {
  endpoint(): unknown;
}

/**
 * A hashing balancer picked with a hash key per call, as `retry`'s `pickContext` passes it: 1 024 distinct keys
 * (`user-<n>`), made beforehand, taken in turn, so that the pick's own cost (hash + lookup) is measured over varied
 * keys rather than one cached path. The wrapper adds a call and an increment.
 */
function keyed(balancer: Balancer<number, number>): Pickable {
  const contexts: readonly PickContext[] = Array.from({ length: 1_024 }, (_, i) => ({
    hashKey: `user-${(i * 2_654_435_761) % 1_000_000}`,
  }));
  let next = 0;
  return { endpoint: () => balancer.endpoint(contexts[next++ & 1_023]) };
}

const balancers: Record<string, (n: number) => Pickable> = {
  roundRobin: (n) => roundRobin(fixedSource(n)),
  random: (n) => random(fixedSource(n), { seed: 42 }),
  'random (unseeded)': (n) => random(fixedSource(n)),
  p2c: (n) => {
    const { meter, source } = measuredSource(n);
    return p2c(source, { meter, seed: 42 });
  },
  peakEwma: (n) => {
    const { meter, source } = measuredSource(n);
    return peakEwma(source, { meter, seed: 42 });
  },
  // Weights 1 … 10 from metadata: the endpoints of one weight share a place in the heap.
  weighted: (n) =>
    weighted(
      entrySource(n, (i) => ({ weight: 1 + (i % 10) })),
      { seed: 42 },
    ),
  // The worst case: every weight different, a heap of n.
  'weighted (n distinct weights)': (n) =>
    weighted(
      entrySource(n, (i) => ({ weight: 1 + i })),
      { seed: 42 },
    ),
  ringHash: (n) =>
    keyed(
      ringHash(
        entrySource(n, () => ({})),
        { seed: 42 },
      ),
    ),
  maglev: (n) =>
    keyed(
      maglev(
        entrySource(n, () => ({})),
        { seed: 42 },
      ),
    ),
  // Three zones; the caller's holds its share, so it keeps its calls (a third of the set).
  'roundRobin(zoneAware)': (n) =>
    roundRobin(
      zoneAware(
        entrySource(n, (i) => ({ zone: `z${i % 3}` })),
        { zone: 'z0', seed: 42 },
      ),
    ),
};

/** ns and bytes per pick of every balancer at each size. */
export async function benchPicks(sizes: readonly number[], quick: boolean): Promise<PickResult[]> {
  const iterations = quick ? 200_000 : 2_000_000;
  const runs = quick ? 5 : 11;
  const out: PickResult[] = [];
  for (const n of sizes) {
    for (const [name, make] of Object.entries(balancers)) {
      const b = make(n);
      await new Promise<void>((resolve) => setImmediate(resolve)); // the measured endpoints' first calls settle
      out.push({
        balancer: name,
        endpoints: n,
        nsPerPick: nsPerCall(b, 'endpoint', iterations, runs),
        bytesPerPick: bytesPerCall(b, 'endpoint', 100_000),
      });
    }
  }
  return out;
}

/** Pipeline overhead: `retry(roundRobin(endpointer))` over a no-op endpoint versus the endpoint itself. */
export interface PipelineResult {
  readonly directNs: number;
  readonly pipelineNs: number;
  readonly overheadNs: number;
}

export async function benchPipeline(quick: boolean): Promise<PipelineResult> {
  const iterations = quick ? 50_000 : 300_000;
  const runs = quick ? 5 : 9;
  const call = retry(roundRobin(fixedSource(10)), { maxAttempts: 3, timeoutMs: 10_000 });
  // Interleave the two so machine noise hits both alike.
  const direct: number[] = [];
  const piped: number[] = [];
  for (let r = 0; r < runs; r++) {
    direct.push(await nsPerAsyncOp(() => noop(1), iterations, 1));
    piped.push(await nsPerAsyncOp(() => call(1), iterations, 1));
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  const directNs = med(direct);
  const pipelineNs = med(piped);
  return { directNs, pipelineNs, overheadNs: pipelineNs - directNs };
}
