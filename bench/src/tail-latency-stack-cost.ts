/**
 * What the balancing compositions of the tail-latency benchmark cost per call themselves, in process: each over
 * ten no-op endpoints (no HTTP), through `retry`, timed as `picks.ts`' pipeline overhead is (with the no-op endpoint
 * called directly as the reference), interleaved run by run so that noise hits them alike.
 */
import {
  type Balancer,
  CallMeter,
  outlierEjection,
  peakEwma,
  retry,
  retryBudget,
  roundRobin,
  zoneAware,
} from '@sdkit/lb';
import { endpointer } from '@sdkit/sd-core';
import { FakeInstancer } from '@sdkit/sd-core/testing';
import { median, nsPerAsyncOp } from './measure.js';

/** One composition and its cost per call. */
export interface StackCost {
  readonly stack: string;
  readonly nsPerCall: number;
}

type Build = (
  source: ReturnType<typeof endpointer<number, number>>,
  meter: CallMeter,
) => Balancer<number, number>;

/** A composition: its name, how to build its balancer, whether its factory is measured, whether it has a budget. */
const STACKS: readonly (readonly [string, Build, boolean, boolean])[] = [
  ['retry(roundRobin(endpointer(instancer, factory)))', (source) => roundRobin(source), false, false],
  ['the same, factory measured: meter.measure(factory)', (source) => roundRobin(source), true, false],
  ['retry(peakEwma(…)), measured', (source, meter) => peakEwma(source, { meter }), true, false],
  [
    'retry(peakEwma(outlierEjection(…)), { budget }), measured',
    (source, meter) => peakEwma(outlierEjection(source, { meter }), { meter }),
    true,
    true,
  ],
  [
    'retry(peakEwma(zoneAware(outlierEjection(…))), { budget }), measured',
    (source, meter) => peakEwma(zoneAware(outlierEjection(source, { meter }), { zone: 'a' }), { meter }),
    true,
    true,
  ],
];

/** ns per call of each composition over ten no-op endpoints, three zones (the caller's holds four). */
export async function benchStackCost(quick: boolean): Promise<StackCost[]> {
  const iterations = quick ? 20_000 : 100_000;
  const runs = quick ? 5 : 9;
  const instances = Array.from({ length: 10 }, (_, i) => ({
    key: `instance-${i}`,
    address: `10.0.0.${i}:80`,
    metadata: { zone: i < 4 ? 'a' : i < 7 ? 'b' : 'c' },
  }));
  const made = await Promise.all(
    STACKS.map(async ([stack, build, measured, budgeted]) => {
      const instancer = new FakeInstancer(instances);
      const meter = new CallMeter();
      const factory = () => ({ endpoint: async (x: number) => x });
      const source = endpointer<number, number>(instancer, measured ? meter.measure(factory) : factory);
      await source.ready();
      const call = retry(build(source, meter), {
        maxAttempts: 3,
        timeoutMs: 10_000,
        ...(budgeted ? { budget: retryBudget() } : {}),
      });
      return { stack, call, close: () => source.close().then(() => instancer.stop()) };
    }),
  );
  const noop = async (x: number) => x;
  made.unshift({ stack: 'no-op endpoint, called directly', call: noop, close: async () => {} });
  const times = made.map(() => [] as number[]);
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < made.length; k++) {
      const i = (k + r) % made.length;
      times[i]!.push(await nsPerAsyncOp(() => made[i]!.call(1), iterations, 1));
    }
  }
  await Promise.all(made.map((m) => m.close()));
  return made.map((m, i) => ({ stack: m.stack, nsPerCall: median(times[i]!) }));
}
