import type { Endpoint, EndpointEntry } from '@sdkit/sd-core';
import { FakeClock, recordingLogger } from '@sdkit/sd-core/testing';
import { describe, expect, it } from 'vitest';
import { CallMeter } from './call-meter.js';
import { NoEndpointsError } from './errors.js';
import { type OutlierEjectionOptions, type OutlierEvent, outlierEjection } from './outlier-ejection.js';
import { p2c } from './p2c.js';
import { retry } from './retry.js';
import { roundRobin } from './round-robin.js';
import { FakeEndpointer } from './testing-fakes.js';

type Ep = Endpoint<string, string>;

/** How an endpoint answers its next call: true = success. */
type Answer = () => boolean;
const ok: Answer = () => true;
const fail: Answer = () => false;

/** A deterministic PRNG (mulberry32) in [0, 1). */
function prng(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `n` endpoints `e0 … e(n−1)` measured by one meter on a FakeClock, in a FakeEndpointer, behind an ejector.
 * `answers[key]` decides each call (default: success); `calls[key]` counts the calls that reached each endpoint.
 */
async function setup(n: number, options: Partial<OutlierEjectionOptions> = {}) {
  const clock = new FakeClock(1_000);
  const meter = new CallMeter({ clock });
  const answers: Record<string, Answer> = {};
  const calls: Record<string, number> = {};
  const factory = meter.measure<string, string>((instance) => ({
    endpoint: () => {
      calls[instance.key] = (calls[instance.key] ?? 0) + 1;
      return (answers[instance.key] ?? ok)()
        ? Promise.resolve(instance.key)
        : Promise.reject(new Error(`${instance.key} failed`));
    },
  }));
  const endpoints: Ep[] = [];
  const byKey: Record<string, Ep> = {};
  for (let i = 0; i < n; i++) {
    const key = `e${i}`;
    const endpoint = (await factory({ key, address: `10.0.0.${i}:80` })).endpoint;
    endpoints.push(endpoint);
    byKey[key] = endpoint;
  }
  const source = new FakeEndpointer(endpoints);
  const logger = recordingLogger();
  const healthy = outlierEjection(source, { meter, clock, logger, ...options });
  const events: OutlierEvent<string, string>[] = [];
  healthy.onEvent((event) => events.push(event));
  /** Makes `count` calls to the endpoint of `key`, one after the other, ignoring their outcome. */
  const call = async (key: string, count = 1): Promise<void> => {
    for (let i = 0; i < count; i++) await byKey[key]!('req').catch(() => undefined);
  };
  const keysOf = (list: readonly Ep[]): string[] => list.map((e) => endpoints.indexOf(e)).map((i) => `e${i}`);
  return { clock, meter, answers, calls, endpoints, byKey, source, logger, healthy, events, call, keysOf };
}

describe('outlierEjection: consecutive failures', () => {
  it('ejects after N failures in a row, not after N−1, and not when a success comes between', async () => {
    const { answers, healthy, call, keysOf, byKey, clock, events } = await setup(10, {
      consecutiveFailures: 5,
    });
    answers.e3 = fail;
    await call('e3', 4);
    expect(healthy.endpoints()).toHaveLength(10);
    expect(healthy.ejected()).toEqual([]);

    // e7: four failures, a success, four failures: never five in a row.
    let n = 0;
    answers.e7 = () => ++n === 5;
    await call('e7', 9);
    expect(healthy.endpoints()).toHaveLength(10);

    await call('e3'); // the fifth in a row
    expect(keysOf(healthy.endpoints())).not.toContain('e3');
    expect(healthy.endpoints()).toHaveLength(9);
    expect(healthy.ejected()).toEqual([
      {
        key: 'e3',
        instance: { key: 'e3', address: '10.0.0.3:80' },
        endpoint: byKey.e3,
        reason: 'consecutive-failures',
        since: clock.now(),
        until: clock.now() + 30_000,
        times: 1,
      },
    ]);
    expect(events).toMatchObject([{ type: 'ejected', key: 'e3', failures: 5, times: 1 }]);
    expect(keysOf(healthy.endpoints())).toContain('e7');
  });

  it('returns an endpoint when its base time is up, with its count cleared', async () => {
    const { answers, healthy, call, clock, events, source, logger } = await setup(10);
    answers.e0 = fail;
    await call('e0', 5);
    const ejectedAt = clock.now();
    expect(healthy.endpoints()).toHaveLength(9);
    clock.advance(29_999);
    expect(healthy.endpoints()).toHaveLength(9);
    clock.advance(1);
    expect(healthy.endpoints()).toBe(source.endpoints()); // all back: the source's own array
    expect(healthy.ejected()).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['ejected', 'returned']);
    expect(events[1]).toMatchObject({ type: 'returned', key: 'e0', at: ejectedAt + 30_000, times: 1 });
    expect(logger.records.map((r) => [r.level, r.obj.key])).toEqual([
      ['warn', 'e0'],
      ['info', 'e0'],
    ]);
    expect(logger.records[0]!.obj).toMatchObject({
      key: 'e0',
      failures: 5,
      until: ejectedAt + 30_000,
      reason: 'consecutive-failures',
    });
    // Back with a clean slate: four more failures do not eject it again.
    await call('e0', 4);
    expect(healthy.endpoints()).toHaveLength(10);
  });

  it('calls that settle while the endpoint is ejected (in flight, or in panic) do not count', async () => {
    const { answers, healthy, call, clock, events } = await setup(4, {
      maxEjectionPercent: 100,
      panicThresholdPercent: 0,
    });
    answers.e0 = fail;
    await call('e0', 5);
    const [first] = healthy.ejected();
    await call('e0', 12);
    expect(healthy.ejected()).toEqual([first]);
    expect(events.filter((e) => e.type === 'ejected')).toHaveLength(1);
    clock.advance(30_000);
    expect(healthy.endpoints()).toHaveLength(4);
    await call('e0', 4);
    expect(healthy.endpoints()).toHaveLength(4);
  });

  it('ejects for longer each time (base × times), capped by maxEjectionMs, and forgets while healthy', async () => {
    const { answers, healthy, call, clock } = await setup(10, {
      baseEjectionMs: 10_000,
      maxEjectionMs: 25_000,
    });
    answers.e1 = fail;
    const durations: number[] = [];
    for (let k = 0; k < 4; k++) {
      await call('e1', 5);
      const [ejected] = healthy.ejected();
      durations.push(ejected!.until - ejected!.since);
      expect(ejected!.times).toBe(k + 1);
      clock.advance(ejected!.until - clock.now());
      expect(healthy.endpoints()).toHaveLength(10);
    }
    expect(durations).toEqual([10_000, 20_000, 25_000, 25_000]);

    // Four ejections counted; each 10 s back in the set forgets one: after 30 s, one is left.
    clock.advance(30_000);
    await call('e1', 5);
    expect(healthy.ejected()[0]).toMatchObject({ times: 2 });
    expect(healthy.ejected()[0]!.until - clock.now()).toBe(20_000);
    clock.advance(20_000);
    // After base × times healthy, it starts again from the base time.
    clock.advance(20_000);
    await call('e1', 5);
    expect(healthy.ejected()[0]).toMatchObject({ times: 1 });
    expect(healthy.ejected()[0]!.until - clock.now()).toBe(10_000);
  });

  it('never ejects more than maxEjectionPercent of the set; a freed slot lets the next failure eject', async () => {
    const { answers, healthy, call, keysOf, clock } = await setup(10, { maxEjectionPercent: 20 });
    answers.e0 = fail;
    answers.e1 = fail;
    answers.e2 = fail;
    await call('e0', 5);
    clock.advance(5_000);
    await call('e1', 5);
    await call('e2', 5);
    expect(healthy.ejected().map((e) => e.key)).toEqual(['e0', 'e1']);
    expect(keysOf(healthy.endpoints())).toContain('e2');
    // e0 returns at 30 s; e2's next failure (its count went on) ejects it.
    clock.advance(25_000);
    expect(healthy.ejected().map((e) => e.key)).toEqual(['e1']);
    await call('e2');
    expect(healthy.ejected().map((e) => e.key)).toEqual(['e1', 'e2']);
  });

  it('the share is strict: with 50 %, a single endpoint is never ejected, and one of two or three is', async () => {
    const one = await setup(1, { maxEjectionPercent: 50 });
    one.answers.e0 = fail;
    await one.call('e0', 20);
    expect(one.healthy.ejected()).toEqual([]);
    expect(one.healthy.endpoints()).toHaveLength(1);

    const three = await setup(3, { maxEjectionPercent: 50, panicThresholdPercent: 0 });
    three.answers.e0 = fail;
    three.answers.e1 = fail;
    await three.call('e0', 5);
    await three.call('e1', 5);
    expect(three.healthy.ejected().map((e) => e.key)).toEqual(['e0']);
  });

  it('outcomes of endpoints outside the set (same meter, another source) change nothing', async () => {
    const { meter, healthy, events, source } = await setup(4);
    const other = meter.measure<string, string>(() => ({ endpoint: () => Promise.reject(new Error('x')) }));
    const foreign = (await other({ key: 'zz', address: 'zz:1' })).endpoint;
    for (let i = 0; i < 50; i++) await foreign('req').catch(() => undefined);
    expect(healthy.ejected()).toEqual([]);
    expect(events).toEqual([]);
    expect(healthy.endpoints()).toBe(source.endpoints());
  });

  it('an endpoint the meter did not measure is never ejected', async () => {
    const clock = new FakeClock();
    const meter = new CallMeter({ clock });
    const plain: Ep = () => Promise.reject(new Error('down'));
    const source = new FakeEndpointer([plain]);
    const healthy = outlierEjection(source, { meter, maxEjectionPercent: 100 });
    for (let i = 0; i < 20; i++) await plain('req').catch(() => undefined);
    expect(healthy.endpoints()).toEqual([plain]);
    expect(healthy.ejected()).toEqual([]);
  });
});

describe('outlierEjection: panic', () => {
  it('uses the whole set while too few endpoints are left, logging once per episode', async () => {
    const { answers, healthy, call, source, endpoints, events, logger, clock } = await setup(4, {
      maxEjectionPercent: 50,
      panicThresholdPercent: 50,
    });
    answers.e0 = fail;
    answers.e1 = fail;
    await call('e0', 5);
    await call('e1', 5);
    // 2 of 4 left: exactly the threshold, not below it.
    expect(healthy.endpoints()).toHaveLength(2);
    expect(healthy.panicking()).toBe(false);

    // The set shrinks: 1 of 3 left, below 50 %: the whole set is used.
    source.set([endpoints[0]!, endpoints[1]!, endpoints[2]!]);
    expect(healthy.endpoints()).toBe(source.endpoints());
    expect(healthy.panicking()).toBe(true);
    for (let i = 0; i < 5; i++) healthy.endpoints();
    expect(healthy.ejected()).toHaveLength(2); // still ejected, only not enforced
    expect(events.filter((e) => e.type === 'panic-started')).toEqual([
      { type: 'panic-started', at: clock.now(), ejected: 2, total: 3 },
    ]);
    expect(logger.records.filter((r) => /panic/.test(r.msg ?? '')).map((r) => r.level)).toEqual(['warn']);

    // Calls during the panic that fail do not count against ejected endpoints.
    await call('e0', 10);
    // Both return at 30 s: the panic is over.
    clock.advance(30_000);
    expect(healthy.endpoints()).toBe(source.endpoints());
    expect(healthy.panicking()).toBe(false);
    expect(events.map((e) => e.type).slice(-3)).toEqual(['returned', 'returned', 'panic-ended']);
    expect(logger.records.filter((r) => /panic/.test(r.msg ?? '')).map((r) => r.level)).toEqual([
      'warn',
      'info',
    ]);
  });

  it('with the panic threshold at 0, an all-ejected set is empty and says why', async () => {
    const { answers, healthy, call } = await setup(2, { maxEjectionPercent: 100, panicThresholdPercent: 0 });
    answers.e0 = fail;
    answers.e1 = fail;
    await call('e0', 5);
    await call('e1', 5);
    expect(healthy.endpoints()).toEqual([]);
    expect(healthy.emptyReason()).toMatch(/all 2 endpoints are ejected/);
    expect(() => roundRobin(healthy).endpoint()).toThrow(NoEndpointsError);
    expect(() => roundRobin(healthy).endpoint()).toThrow(/all 2 endpoints are ejected/);
  });
});

describe('outlierEjection: success rate', () => {
  /** 20 calls to each endpoint, `failing` endpoint failing every other one (never two in a row). */
  async function interval(s: Awaited<ReturnType<typeof setup>>, failing: readonly string[], calls = 20) {
    let flip = false;
    for (const key of failing)
      s.answers[key] = () => {
        flip = !flip;
        return flip;
      };
    for (let i = 0; i < calls; i++) {
      for (const endpoint of s.endpoints) await endpoint('req').catch(() => undefined);
    }
  }

  const successRate = { intervalMs: 1_000, requestVolume: 20, minimumHosts: 5 };

  it('ejects an endpoint whose success rate is an outlier, at the end of the interval', async () => {
    const s = await setup(10, { consecutiveFailures: false, successRate });
    await interval(s, ['e4']);
    expect(s.healthy.ejected()).toEqual([]); // the interval is not over
    s.clock.advance(1_000);
    await s.call('e0'); // the first outcome after the interval ends it
    expect(s.healthy.ejected().map((e) => [e.key, e.reason])).toEqual([['e4', 'success-rate']]);
    const event = s.events.find((e) => e.type === 'ejected');
    // 9 × 1.0 and 0.5: mean 0.95, stdev 0.15, threshold 0.95 − 1.9 × 0.15 = 0.665.
    expect(event).toMatchObject({ key: 'e4', successRate: 0.5 });
    expect((event as { threshold: number }).threshold).toBeCloseTo(0.665, 9);
  });

  it('compares nothing with fewer than minimumHosts endpoints of enough volume, or with equal rates', async () => {
    const few = await setup(10, { consecutiveFailures: false, successRate });
    await interval(few, ['e4'], 19); // 19 calls each: below the request volume
    few.clock.advance(1_000);
    await few.call('e0');
    expect(few.healthy.ejected()).toEqual([]);

    const equal = await setup(6, { consecutiveFailures: false, successRate });
    await interval(equal, []); // all at 100 %
    equal.clock.advance(1_000);
    await equal.call('e0');
    expect(equal.healthy.ejected()).toEqual([]);
  });

  it('counts each interval afresh', async () => {
    const s = await setup(10, { consecutiveFailures: false, successRate });
    await interval(s, ['e4'], 10); // half the volume in the first interval…
    s.clock.advance(1_000);
    await interval(s, [], 10); // …and the other half, healthy, in the next one
    s.clock.advance(1_000);
    await s.call('e0');
    expect(s.healthy.ejected()).toEqual([]);
  });
});

describe('outlierEjection: the set', () => {
  it('forgets an endpoint that leaves the source: its ejection and its counts', async () => {
    const { answers, healthy, call, source, endpoints, events, keysOf } = await setup(10);
    answers.e2 = fail;
    answers.e5 = fail;
    await call('e2', 5);
    await call('e5', 4);
    const without = endpoints.filter((_, i) => i !== 2 && i !== 5);
    source.set(without);
    expect(healthy.endpoints()).toBe(source.endpoints());
    expect(healthy.ejected()).toEqual([]);
    expect(events.map((e) => [e.type, (e as { key?: string }).key])).toEqual([
      ['ejected', 'e2'],
      ['removed', 'e2'],
    ]);
    // Back in the set (the same endpoints): nothing is remembered.
    source.set(endpoints);
    expect(keysOf(healthy.endpoints())).toContain('e2');
    await call('e5'); // its fifth failure overall, but the first since it came back
    await call('e2', 4);
    expect(healthy.endpoints()).toHaveLength(10);
    await call('e2');
    expect(healthy.ejected()).toMatchObject([{ key: 'e2', times: 1 }]);
  });

  it('endpoints(): the source’s own array while nothing is ejected, else one frozen array per state', async () => {
    const { answers, healthy, call, source, endpoints, clock } = await setup(5);
    expect(healthy.endpoints()).toBe(source.endpoints());
    answers.e1 = fail;
    await call('e1', 5);
    const first = healthy.endpoints();
    expect(Object.isFrozen(first)).toBe(true);
    expect(first).toEqual(endpoints.filter((_, i) => i !== 1));
    expect(healthy.endpoints()).toBe(first);
    await call('e0', 3); // successes change no state
    expect(healthy.endpoints()).toBe(first);
    // The source's array changes: a new array.
    source.set([...endpoints]);
    const second = healthy.endpoints();
    expect(second).not.toBe(first);
    expect(second).toEqual(first);
    expect(healthy.endpoints()).toBe(second);
    // The ejected set changes: a new array.
    answers.e3 = fail;
    await call('e3', 5);
    const third = healthy.endpoints();
    expect(third).not.toBe(second);
    expect(third).toEqual(endpoints.filter((_, i) => i !== 1 && i !== 3));
    clock.advance(30_000);
    expect(healthy.endpoints()).toBe(source.endpoints());
  });

  it('entries(): when the source has them, filtered like endpoints(), same array until either changes', async () => {
    const { answers, call, source, endpoints, meter, clock } = await setup(4);
    const entries: EndpointEntry<string, string>[] = endpoints.map((endpoint, i) =>
      Object.freeze({ key: `e${i}`, instance: { key: `e${i}`, address: `a${i}` }, endpoint }),
    );
    let entriesArray = Object.freeze([...entries]);
    const withEntries = Object.assign(source, { entries: () => entriesArray });
    const healthy = outlierEjection(withEntries, { meter, clock });
    expect(healthy.entries!()).toBe(entriesArray);
    answers.e2 = fail;
    await call('e2', 5);
    const filtered = healthy.entries!();
    expect(filtered.map((e) => e.key)).toEqual(['e0', 'e1', 'e3']);
    expect(filtered.map((e) => e.endpoint)).toEqual(healthy.endpoints());
    expect(healthy.entries!()).toBe(filtered);
    entriesArray = Object.freeze([...entries]);
    source.set([...endpoints]);
    expect(healthy.entries!()).not.toBe(filtered);
    expect(healthy.entries!().map((e) => e.key)).toEqual(['e0', 'e1', 'e3']);
    // A source without entries(): none offered.
    expect(outlierEjection(new FakeEndpointer(), { meter }).entries).toBeUndefined();
  });

  it('forwards ready() and the source’s emptyReason()', async () => {
    const meter = new CallMeter({ clock: new FakeClock() });
    let readied = 0;
    const source = {
      endpoints: () => [] as Ep[],
      ready: async () => {
        readied++;
      },
      emptyReason: () => 'no instances yet',
    };
    const healthy = outlierEjection(source, { meter });
    await healthy.ready!();
    expect(readied).toBe(1);
    expect(healthy.emptyReason()).toBe('no instances yet');
    expect(() => roundRobin(healthy).endpoint()).toThrow('no endpoints available: no instances yet');
    expect(outlierEjection(new FakeEndpointer(), { meter }).ready).toBeUndefined();
  });

  it('composes with p2c: the ejected endpoint is never picked', async () => {
    const { answers, healthy, call, meter, byKey } = await setup(3);
    answers.e0 = fail;
    await call('e0', 5);
    const balancer = p2c(healthy, { meter, seed: 7 });
    for (let i = 0; i < 200; i++) expect(balancer.endpoint()).not.toBe(byKey.e0);
  });

  it('close(): stops listening to the meter, forgets everything, passes the source through', async () => {
    const { answers, healthy, call, source, events } = await setup(4);
    answers.e0 = fail;
    await call('e0', 5);
    expect(healthy.endpoints()).toHaveLength(3);
    healthy[Symbol.dispose]();
    healthy.close(); // idempotent
    expect(healthy.endpoints()).toBe(source.endpoints());
    expect(healthy.ejected()).toEqual([]);
    answers.e1 = fail;
    await call('e1', 10);
    expect(healthy.endpoints()).toBe(source.endpoints());
    expect(events.map((e) => e.type)).toEqual(['ejected']);
  });

  it('a listener that throws changes nothing; events reach listeners in order', async () => {
    const { answers, healthy, call, clock } = await setup(10);
    const seen: string[] = [];
    healthy.onEvent(() => {
      throw new Error('listener bug');
    });
    const off = healthy.onEvent((e) => seen.push(`${e.type}:${(e as { key?: string }).key}`));
    answers.e0 = fail;
    answers.e1 = fail;
    await call('e0', 5);
    await call('e1', 5);
    clock.advance(30_000);
    healthy.endpoints();
    off();
    await call('e0', 5);
    expect(seen).toEqual(['ejected:e0', 'ejected:e1', 'returned:e0', 'returned:e1']);
    expect(healthy.ejected().map((e) => e.key)).toEqual(['e0']);
  });
});

describe('outlierEjection: options', () => {
  const source = new FakeEndpointer();
  const meter = new CallMeter({ clock: new FakeClock() });
  it.each([
    [null, /options must be an object/],
    [{}, /options.meter must be the CallMeter/],
    [
      { meter, consecutive5xx: 3 },
      /unknown option "consecutive5xx" \(did you mean "consecutiveFailures"\?\)/,
    ],
    [{ meter, consecutiveFailures: 0 }, /consecutiveFailures must be an integer >= 1 or false, got number 0/],
    [{ meter, consecutiveFailures: 2.5 }, /consecutiveFailures must be an integer/],
    [{ meter, baseEjectionMs: 0 }, /baseEjectionMs must be a finite number > 0/],
    [{ meter, baseEjectionMs: 10_000, maxEjectionMs: 5_000 }, /maxEjectionMs must be a finite number >= /],
    [{ meter, maxEjectionPercent: 101 }, /maxEjectionPercent must be a number in \[0, 100\]/],
    [{ meter, panicThresholdPercent: -1 }, /panicThresholdPercent must be a number in \[0, 100\]/],
    [{ meter, successRate: true }, /successRate must be an object/],
    [{ meter, successRate: { interval: 5 } }, /unknown option "interval" \(did you mean "intervalMs"\?\)/],
    [{ meter, successRate: { stdevFactor: 1900 } }, /Envoy's 1900 is 1.9/],
    [{ meter, successRate: { requestVolume: 0 } }, /successRate.requestVolume must be an integer >= 1/],
    [{ meter, clock: {} }, /clock must be a Clock/],
    [{ meter, logger: console.log }, /logger must be a Logger/],
  ])('refuses %o', (options, message) => {
    expect(() => outlierEjection(source, options as never)).toThrow(TypeError);
    expect(() => outlierEjection(source, options as never)).toThrow(message);
  });

  it('refuses a source without endpoints()', () => {
    expect(() => outlierEjection({} as never, { meter })).toThrow(/expected an Endpointer/);
  });

  it('a base time above 300 s raises the default cap with it', async () => {
    const s = await setup(4, { baseEjectionMs: 400_000 });
    s.answers.e0 = fail;
    await s.call('e0', 5);
    expect(s.healthy.ejected()[0]!.until - s.clock.now()).toBe(400_000);
  });
});

describe('outlierEjection: the goal (one of ten failing, behind roundRobin with retry)', () => {
  /**
   * One call per ms of fake time through `retry(roundRobin(source))` for `seconds`; returns, per 10 s window, the
   * share of attempts that reached e0, and the calls that failed after retries.
   */
  async function simulate(e0: Answer, eject: boolean, seconds = 120) {
    const s = await setup(10, { consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionPercent: 50 });
    s.answers.e0 = e0;
    const source = eject ? s.healthy : s.source;
    const call = retry(roundRobin(source), {
      maxAttempts: 3,
      timeoutMs: 1_000,
      backoff: false,
      clock: s.clock,
    });
    const shares: number[] = [];
    let failedCalls = 0;
    for (let w = 0; w < seconds / 10; w++) {
      const before = { ...s.calls };
      for (let t = 0; t < 10_000; t++) {
        await call('req').catch(() => failedCalls++);
        s.clock.advance(1);
      }
      let all = 0;
      for (const key of Object.keys(s.calls)) all += s.calls[key]! - (before[key] ?? 0);
      shares.push((s.calls.e0! - (before.e0 ?? 0)) / all);
    }
    return { shares, failedCalls, events: s.events };
  }

  it('an endpoint failing every call gets ≤ 5 % of the attempts in every 10 s, from the first', async () => {
    const { shares, failedCalls, events } = await simulate(fail, true);
    for (const share of shares) expect(share).toBeLessThanOrEqual(0.05);
    expect(shares[0]).toBeLessThan(0.001); // five attempts of ~10 000
    expect(failedCalls).toBe(0); // retry took every failure elsewhere
    // Ejected, returned and ejected again for longer: 30 s, then 60 s.
    const ejections = events.filter((e) => e.type === 'ejected');
    expect(ejections.map((e) => (e as { times: number }).times)).toEqual([1, 2, 3]);
  });

  it('an endpoint failing half its calls (at random) gets ≤ 5 % of the attempts in every 10 s', async () => {
    const random = prng(42);
    const { shares, failedCalls } = await simulate(() => random() >= 0.5, true);
    for (const share of shares) expect(share).toBeLessThanOrEqual(0.05);
    expect(failedCalls).toBe(0);
  });

  it('without ejection the same endpoint keeps its tenth or more (what the ejector saves)', async () => {
    const random = prng(42);
    const { shares } = await simulate(() => random() >= 0.5, false, 20);
    for (const share of shares) expect(share).toBeGreaterThan(0.09);
  });
});
