import type { Endpoint } from '@sdkit/sd-core';
import { FakeClock } from '@sdkit/sd-core/testing';
import { describe, expect, it } from 'vitest';
import type { Balancer } from './balancer.js';
import { CallMeter } from './call-meter.js';
import { NoEndpointsError } from './errors.js';
import { p2c } from './p2c.js';
import { peakEwma } from './peak-ewma.js';
import { roundRobin } from './round-robin.js';
import { FakeEndpointer } from './testing-fakes.js';

/** Endpoints measured by `meter` whose calls take `latencies[i]` ms of the fake clock. */
async function timedEndpoints(meter: CallMeter, clock: FakeClock, latencies: readonly number[]) {
  const factory = meter.measure<string, string>((instance) => ({
    endpoint: () =>
      new Promise<string>((resolve) => {
        clock.setTimeout(() => resolve(instance.key), latencies[Number(instance.key)]!);
      }),
  }));
  const endpoints: Endpoint<string, string>[] = [];
  for (let i = 0; i < latencies.length; i++) {
    endpoints.push((await factory({ key: String(i), address: `h${i}:1` })).endpoint);
  }
  return endpoints;
}

/** Lets settled calls' handlers (the meter's bookkeeping) run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 3; i++) await Promise.resolve();
}

/**
 * A fixed-rate load on the fake clock: one call per ms for `ms`, through `balancer`; returns the share of calls
 * each endpoint got after `warmupMs`.
 */
async function simulate(
  balancer: Balancer<string, string>,
  endpoints: readonly Endpoint<string, string>[],
  clock: FakeClock,
  ms: number,
  warmupMs: number,
): Promise<number[]> {
  const counts = endpoints.map(() => 0);
  let measured = 0;
  for (let t = 0; t < ms; t++) {
    const picked = balancer.endpoint();
    void picked('req');
    if (t >= warmupMs) {
      counts[endpoints.indexOf(picked)]!++;
      measured++;
    }
    clock.advance(1);
    await flush();
  }
  clock.advance(10_000);
  await flush();
  return counts.map((c) => c / measured);
}

describe('p2c (least in flight of two random picks)', () => {
  it('never picks the busiest endpoint while another is less busy, and spreads over the rest', async () => {
    const clock = new FakeClock();
    const meter = new CallMeter({ clock });
    const endpoints = await timedEndpoints(meter, clock, [1_000_000, 1, 1, 1]);
    const balancer = p2c(new FakeEndpointer(endpoints), { meter, seed: 7 });
    // Endpoint 0 hangs with three calls in flight.
    for (let i = 0; i < 3; i++) void endpoints[0]!('stuck');
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 3_000; i++) counts[endpoints.indexOf(balancer.endpoint())]!++;
    expect(counts[0]).toBe(0);
    for (const c of counts.slice(1)) expect(c).toBeGreaterThan(800);
  });

  it('with one endpoint, that one; with none, NoEndpointsError', async () => {
    const clock = new FakeClock();
    const meter = new CallMeter({ clock });
    const [only] = await timedEndpoints(meter, clock, [1]);
    const source = new FakeEndpointer([only!]);
    const balancer = p2c(source, { meter });
    expect(balancer.endpoint()).toBe(only);
    source.set([]);
    expect(() => balancer.endpoint()).toThrow(NoEndpointsError);
  });

  it('the same seed gives the same picks', async () => {
    const clock = new FakeClock();
    const meter = new CallMeter({ clock });
    const endpoints = await timedEndpoints(meter, clock, [1, 1, 1, 1, 1]);
    const run = () => {
      const b = p2c(new FakeEndpointer(endpoints), { meter, seed: 42 });
      return Array.from({ length: 50 }, () => endpoints.indexOf(b.endpoint()));
    };
    expect(run()).toEqual(run());
  });

  it('refuses a missing meter, a bad seed and unknown options', () => {
    const source = new FakeEndpointer<string, string>([]);
    expect(() => p2c(source, {} as never)).toThrow(/options.meter must be the CallMeter/);
    expect(() => p2c(source, { meter: new CallMeter(), seed: -1 })).toThrow(/seed/);
    expect(() => p2c(source, { meter: new CallMeter(), seeds: 1 } as never)).toThrow(/seeds/);
    expect(() => peakEwma({} as never, { meter: new CallMeter() })).toThrow(/endpoints\(\)/);
  });
});

describe('peakEwma (two choices over latency × load)', () => {
  it('one of ten endpoints 10× slower: it gets a small share where round-robin gives it 10 %', async () => {
    const latencies = [100, 10, 10, 10, 10, 10, 10, 10, 10, 10];
    const clock = new FakeClock();
    const meter = new CallMeter({ clock, decayMs: 10_000 });
    const endpoints = await timedEndpoints(meter, clock, latencies);
    const ewma = await simulate(
      peakEwma(new FakeEndpointer(endpoints), { meter, seed: 1 }),
      endpoints,
      clock,
      5_000,
      1_000,
    );
    expect(ewma[0]).toBeLessThan(0.03);
    for (const share of ewma.slice(1)) expect(share).toBeGreaterThan(0.08);

    const rrClock = new FakeClock();
    const rrMeter = new CallMeter({ clock: rrClock });
    const rrEndpoints = await timedEndpoints(rrMeter, rrClock, latencies);
    const rr = await simulate(
      roundRobin(new FakeEndpointer(rrEndpoints)),
      rrEndpoints,
      rrClock,
      5_000,
      1_000,
    );
    expect(rr[0]).toBeCloseTo(0.1, 2);
  });

  it('a slow endpoint that recovered gets its share back as its average decays', async () => {
    const latencies = [100, 10, 10, 10];
    const clock = new FakeClock();
    const meter = new CallMeter({ clock, decayMs: 1_000 });
    const endpoints = await timedEndpoints(meter, clock, latencies);
    const balancer = peakEwma(new FakeEndpointer(endpoints), { meter, seed: 3 });
    const slow = await simulate(balancer, endpoints, clock, 3_000, 1_000);
    expect(slow[0]).toBeLessThan(0.1);
    latencies[0] = 10; // it recovers
    clock.advance(5_000); // its average decays; the next calls measure it fast
    const recovered = await simulate(balancer, endpoints, clock, 3_000, 1_000);
    expect(recovered[0]).toBeGreaterThan(0.18);
  });

  it('a new endpoint starts at the default latency: it is tried, not flooded', async () => {
    const clock = new FakeClock();
    const meter = new CallMeter({ clock, defaultLatencyMs: 30 });
    const endpoints = await timedEndpoints(meter, clock, [20, 20, 20, 20, 20]);
    const source = new FakeEndpointer(endpoints.slice(0, 4));
    const balancer = peakEwma(source, { meter, seed: 9 });
    await simulate(balancer, endpoints.slice(0, 4), clock, 1_000, 0);
    source.set(endpoints);
    const shares = await simulate(balancer, endpoints, clock, 2_000, 0);
    expect(shares[4]).toBeGreaterThan(0.05);
    expect(shares[4]).toBeLessThan(0.5);
  });
});
