/**
 * The balancing strategies the tail-latency benchmark compares, each composed the way docs/balancing.md says:
 * meter → endpointer → outlier ejection → zone → balancer → retry with budget.
 */
import {
  type Balancer,
  CallMeter,
  type EndpointSource,
  outlierEjection,
  p2c,
  peakEwma,
  random,
  retry,
  retryBudget,
  roundRobin,
  zoneAware,
} from '@sdkit/lb';
import { type EndpointEntry, endpointer, type Instance } from '@sdkit/sd-core';
import { FakeInstancer } from '@sdkit/sd-core/testing';
import { httpFactory } from './tail-latency-client.js';

/** The balancers compared. */
export type BalancerName = 'roundRobin' | 'random' | 'p2c' | 'peakEwma';
export const BALANCERS: readonly BalancerName[] = ['roundRobin', 'random', 'p2c', 'peakEwma'];

/** One strategy: a balancer, optionally behind outlier ejection and zone preference, optionally under retry. */
export interface StrategySpec {
  readonly balancer: BalancerName;
  /** `outlierEjection(source, { meter })` with its defaults (5 failures in a row, 30 s, at most 50 %). */
  readonly ejection?: boolean;
  /** `zoneAware(source, { zone: callerZone })` over the (ejecting) source, with its defaults. */
  readonly zoneAware?: boolean;
  /** `retry(balancer, { maxAttempts: 3, timeoutMs: 2 000 })`, without or with a shared `retryBudget()`. */
  readonly retry?: 'plain' | 'budget';
}

/** Attempts per call under retry. */
export const MAX_ATTEMPTS = 3;

/** How a strategy is called in tables and plots, e.g. `peakEwma + ejection + retry (budget)`. */
export function strategyName(s: StrategySpec): string {
  return [
    ...(s.zoneAware ? ['zoneAware'] : []),
    s.balancer,
    ...(s.ejection ? ['ejection'] : []),
    ...(s.retry === 'plain' ? ['retry'] : s.retry === 'budget' ? ['retry (budget)'] : []),
  ].join(' + ');
}

/** One strategy's client, ready to call. */
export interface StrategyClient {
  /** One call through the strategy. */
  call(): Promise<void>;
  /** Ejections so far (0 without ejection). */
  readonly ejections: () => number;
  close(): Promise<void>;
}

type Src = EndpointSource<void, void> & { entries(): readonly EndpointEntry<void, void>[] };

function balancerOf(name: BalancerName, source: Src, meter: CallMeter, seed: number): Balancer<void, void> {
  switch (name) {
    case 'roundRobin':
      return roundRobin(source);
    case 'random':
      return random(source, { seed });
    case 'p2c':
      return p2c(source, { meter, seed });
    case 'peakEwma':
      return peakEwma(source, { meter, seed });
  }
}

/**
 * Builds `spec` over `instances` (a FakeInstancer → `endpointer(instancer, meter.measure(httpFactory()))`), for a
 * caller in `callerZone`, with `seed` for the random draws; resolves once the endpointer has every endpoint.
 */
export async function strategyClient(
  spec: StrategySpec,
  instances: readonly Instance[],
  seed: number,
  callerZone: string,
): Promise<StrategyClient> {
  const instancer = new FakeInstancer(instances);
  const meter = new CallMeter();
  const endpoints = endpointer(instancer, meter.measure(httpFactory()));
  await endpoints.ready();
  let source: Src = endpoints;
  let ejections = 0;
  const ejector = spec.ejection ? outlierEjection(source, { meter }) : undefined;
  ejector?.onEvent((e) => {
    if (e.type === 'ejected') ejections++;
  });
  if (ejector) source = ejector as Src;
  if (spec.zoneAware) source = zoneAware(source, { zone: callerZone, seed });
  const balancer = balancerOf(spec.balancer, source, meter, seed);
  const call =
    spec.retry === undefined
      ? () => balancer.endpoint()(undefined)
      : retry(balancer, {
          maxAttempts: MAX_ATTEMPTS,
          timeoutMs: 2_000,
          ...(spec.retry === 'budget' ? { budget: retryBudget() } : {}),
        });
  return {
    call: () => call(undefined),
    ejections: () => ejections,
    close: async () => {
      ejector?.close();
      await endpoints.close();
      instancer.stop();
    },
  };
}
