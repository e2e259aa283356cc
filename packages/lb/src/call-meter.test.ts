import type { Endpoint, Instance } from '@sdkit/sd-core';
import { FakeClock } from '@sdkit/sd-core/testing';
import { describe, expect, it } from 'vitest';
import { CallMeter, type CallOutcome } from './call-meter.js';

const inst = (key: string): Instance => ({ key, address: key });

/** An endpoint whose calls settle only when the test says so. */
function manual() {
  const pending: Array<{ resolve(v: string): void; reject(e: Error): void }> = [];
  const endpoint: Endpoint<string, string> = () =>
    new Promise<string>((resolve, reject) => pending.push({ resolve, reject }));
  return { endpoint, pending };
}

async function made<Req, Res>(
  meter: CallMeter,
  endpoint: Endpoint<Req, Res>,
  key = 'a',
): Promise<Endpoint<Req, Res>> {
  const factory = meter.measure<Req, Res>(() => ({ endpoint }));
  const result = await factory(inst(key));
  return result.endpoint;
}

describe('CallMeter', () => {
  it('counts calls in flight and settles them as successes or failures', async () => {
    const clock = new FakeClock();
    const meter = new CallMeter({ clock });
    const m = manual();
    const endpoint = await made(meter, m.endpoint);
    const load = meter.loadOf(endpoint)!;
    expect(load.instance.key).toBe('a');
    const first = endpoint('x');
    const second = endpoint('y');
    expect(load.inFlight).toBe(2);
    m.pending[0]!.resolve('ok');
    await first;
    expect([load.inFlight, load.calls, load.failures, load.consecutiveFailures]).toEqual([1, 1, 0, 0]);
    m.pending[1]!.reject(new Error('down'));
    await expect(second).rejects.toThrow('down');
    expect([load.inFlight, load.calls, load.failures, load.consecutiveFailures]).toEqual([0, 2, 1, 1]);
  });

  it('a synchronous throw is a failure and is rethrown as it was', async () => {
    const meter = new CallMeter({ clock: new FakeClock() });
    const boom = new TypeError('bad request');
    const endpoint = await made(meter, () => {
      throw boom;
    });
    expect(() => endpoint('x')).toThrow(boom);
    const load = meter.loadOf(endpoint)!;
    expect([load.inFlight, load.failures, load.consecutiveFailures]).toEqual([0, 1, 1]);
  });

  it('peak-sensitive latency: the default until the first answer, a spike at once, decay with decayMs', async () => {
    const clock = new FakeClock();
    const meter = new CallMeter({ clock, decayMs: 1_000, defaultLatencyMs: 30 });
    const m = manual();
    const endpoint = await made(meter, m.endpoint);
    const load = meter.loadOf(endpoint)!;
    clock.advance(5_000);
    expect(load.latencyMs()).toBe(30); // no answer yet: the default, not decayed
    const call = endpoint('x');
    clock.advance(200);
    m.pending[0]!.resolve('ok');
    await call;
    expect(load.latencyMs()).toBe(200); // slower than the average: taken at once
    // Decays towards 0 while nothing ends: e^-1 after one decay time.
    expect(load.latencyMs(clock.now() + 1_000)).toBeCloseTo(200 * Math.exp(-1), 6);
    // A faster answer pulls the average down, weighted by the time since the last update.
    const next = endpoint('y');
    clock.advance(10);
    m.pending[1]!.resolve('ok');
    await next;
    const decayed = 200 * Math.exp(-10 / 1_000);
    const w = Math.exp(-10 / 1_000);
    expect(load.latencyMs()).toBeCloseTo(decayed * w + 10 * (1 - w), 6);
  });

  it('cost is latency × (in flight + 1); busy with a fully decayed average costs a penalty', async () => {
    const clock = new FakeClock();
    const meter = new CallMeter({ clock, decayMs: 10, defaultLatencyMs: 30 });
    const m = manual();
    const endpoint = await made(meter, m.endpoint);
    const load = meter.loadOf(endpoint)!;
    expect(load.cost()).toBe(30);
    void endpoint('a');
    void endpoint('b');
    expect(load.cost()).toBe(90);
    m.pending[0]!.resolve('x');
    await Promise.resolve();
    await Promise.resolve();
    clock.advance(1e6); // the average decays to 0 while one call is still in flight
    expect(load.latencyMs()).toBe(0);
    expect(load.cost()).toBeGreaterThan(1e12);
  });

  it('onOutcome hears every settled call, with the instance, latency and error; a throwing listener changes nothing', async () => {
    const clock = new FakeClock();
    const meter = new CallMeter({ clock });
    const heard: CallOutcome[] = [];
    const stop = meter.onOutcome((o) => heard.push(o));
    meter.onOutcome(() => {
      throw new Error('listener bug');
    });
    const m = manual();
    const endpoint = await made(meter, m.endpoint, 'k1');
    const a = endpoint('a');
    clock.advance(7);
    m.pending[0]!.resolve('fine');
    await expect(a).resolves.toBe('fine');
    const b = endpoint('b');
    const down = new Error('down');
    m.pending[1]!.reject(down);
    await expect(b).rejects.toBe(down);
    expect(heard.map((o) => [o.instance.key, o.ok, o.error, o.latencyMs])).toEqual([
      ['k1', true, undefined, 7],
      ['k1', false, down, 0],
    ]);
    expect(heard[0]!.endpoint).toBe(endpoint);
    stop();
    const c = endpoint('c');
    m.pending[2]!.resolve('x');
    await c;
    expect(heard).toHaveLength(2);
  });

  it('passes close through, keeps a factory that broke its contract as it is, and knows nothing of other endpoints', async () => {
    const meter = new CallMeter();
    let closed = 0;
    const f = meter.measure(async () => ({ endpoint: async () => 'v', close: () => void closed++ }));
    const result = await f(inst('a'));
    await result.close?.();
    expect(closed).toBe(1);
    const broken = meter.measure(() => ({ endpoint: 'nope' }) as never);
    expect((broken(inst('b')) as { endpoint: unknown }).endpoint).toBe('nope');
    expect(meter.loadOf(async () => 'x')).toBeUndefined();
  });

  it('refuses bad options, naming them', () => {
    expect(() => new CallMeter({ decayMs: 0 })).toThrow(/decayMs must be a finite number > 0/);
    expect(() => new CallMeter({ defaultLatencyMs: -1 })).toThrow(/defaultLatencyMs/);
    expect(() => new CallMeter({ decayTime: 5 } as never)).toThrow(/decayMs/);
    expect(() => new CallMeter().measure('f' as never)).toThrow(/factory must be a function/);
  });
});
