import { type Balancer, CallMeter, p2c, peakEwma, random, retry, roundRobin } from '@sdkit/lb';
import type { Endpoint } from '@sdkit/sd-core';
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

/** `n` distinct endpoints measured by a fresh CallMeter (what p2c and peakEwma read), idle. */
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
  return { meter, source: { endpoints: () => endpoints } };
}

const balancers: Record<string, (n: number) => Balancer<number, number>> = {
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
};

/** ns and bytes per pick of every balancer at each size. */
export function benchPicks(sizes: readonly number[], quick: boolean): PickResult[] {
  const iterations = quick ? 200_000 : 2_000_000;
  const runs = quick ? 5 : 11;
  const out: PickResult[] = [];
  for (const n of sizes) {
    for (const [name, make] of Object.entries(balancers)) {
      const b = make(n);
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
