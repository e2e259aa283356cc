import {
  type Endpoint,
  type Endpointer,
  type EndpointSnapshot,
  endpointer,
  type Instance,
} from '@sdkit/sd-core';
import { FakeClock, FakeInstancer } from '@sdkit/sd-core/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Balancer, EndpointSource } from './balancer.js';
import { CallMeter } from './call-meter.js';
import { NoEndpointsError } from './errors.js';
import { type OutlierEvent, outlierEjection } from './outlier-ejection.js';
import { p2c } from './p2c.js';
import { peakEwma } from './peak-ewma.js';
import { random } from './random.js';
import { roundRobin } from './round-robin.js';

// Balancers read a source's snapshot() when it has one (sd-core's Endpointer does) instead of endpoints(). These
// tests hold the two paths to the same picks, and outlierEjection's snapshot mode to its array mode.

type Ep = Endpoint<string, string>;

const keyOf = (n: number) => `k${String(n).padStart(4, '0')}`;
const inst = (n: number, version = 0): Instance => ({ key: keyOf(n), address: `h${n}:${version}` });

/** The same source without snapshot(): what balancers over it read is `endpoints()`. */
function arrayOnly<Req, Res>(source: Endpointer<Req, Res>): EndpointSource<Req, Res> {
  return { endpoints: () => source.endpoints() };
}

/** The endpoints a snapshot shows, in order. */
function shown<Req, Res>(snapshot: EndpointSnapshot<Req, Res>): Endpoint<Req, Res>[] {
  return Array.from({ length: snapshot.length }, (_, i) => snapshot.endpointAt(i)!);
}

const KINDS = ['roundRobin', 'random', 'p2c', 'peakEwma'] as const;
type Kind = (typeof KINDS)[number];

function balancerOf(kind: Kind, source: EndpointSource<string, string>, meter: CallMeter, seed: number) {
  if (kind === 'roundRobin') return roundRobin(source);
  if (kind === 'random') return random(source, { seed });
  if (kind === 'p2c') return p2c(source, { meter, seed });
  return peakEwma(source, { meter, seed });
}

describe('balancers over a source with snapshot()', () => {
  it('read snapshot(), never endpoints(), on every pick', () => {
    const fake = new FakeInstancer(Array.from({ length: 2_000 }, (_, i) => inst(i)));
    const meter = new CallMeter({ clock: new FakeClock() });
    const ep = endpointer<string, string>(
      fake,
      meter.measure(() => ({ endpoint: async () => 'x' })),
    );
    let reads = 0;
    let snapshots = 0;
    const source: EndpointSource<string, string> = {
      endpoints: () => {
        reads++;
        return ep.endpoints();
      },
      snapshot: () => {
        snapshots++;
        return ep.snapshot!();
      },
    };
    for (const kind of KINDS) {
      const balancer = balancerOf(kind, source, meter, 1);
      for (let i = 0; i < 100; i++) {
        if (i % 10 === 0) fake.add(inst(2_000 + i));
        balancer.endpoint();
      }
    }
    expect(reads).toBe(0);
    expect(snapshots).toBe(400);
    void ep.close();
  });

  it('throw NoEndpointsError saying why the set is empty', async () => {
    const fake = new FakeInstancer([]);
    const ep = endpointer<string, string>(fake, () => ({ endpoint: async () => 'x' }));
    const meter = new CallMeter();
    for (const kind of KINDS) {
      const balancer = balancerOf(kind, ep, meter, 1);
      expect(() => balancer.endpoint()).toThrow(NoEndpointsError);
      expect(() => balancer.endpoint()).toThrow(/the instancer reports no instances/);
    }
    fake.add(inst(1));
    for (const kind of KINDS) expect(balancerOf(kind, ep, meter, 1).endpoint()).toBe(ep.endpoints()[0]);
    await ep.close();
  });

  it('property: pick exactly what they pick through endpoints(), as the set changes (sets of thousands too)', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('add' as const),
        from: fc.nat({ max: 2_999 }),
        count: fc.integer({ min: 1, max: 300 }),
      }),
      fc.record({
        kind: fc.constant('remove' as const),
        from: fc.nat({ max: 2_999 }),
        count: fc.integer({ min: 1, max: 300 }),
      }),
      fc.record({ kind: fc.constant('one' as const), at: fc.nat({ max: 2_999 }), remove: fc.boolean() }),
      fc.record({
        kind: fc.constant('picks' as const),
        count: fc.integer({ min: 1, max: 30 }),
        call: fc.boolean(),
      }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...KINDS),
        fc.constantFrom(0, 5, 1_500),
        fc.nat(),
        fc.array(op, { maxLength: 25 }),
        (kind, initial, seed, ops) => {
          const clock = new FakeClock();
          const meter = new CallMeter({ clock });
          // Calls never settle: each call adds one in flight for good, which p2c and peakEwma weigh.
          const factory = meter.measure<string, string>(() => ({
            endpoint: () => new Promise<string>(() => {}),
          }));
          const fake = new FakeInstancer(Array.from({ length: initial }, (_, i) => inst(i)));
          const ep = endpointer<string, string>(fake, factory);
          const viaSnapshot = balancerOf(kind, ep, meter, seed);
          const viaArray = balancerOf(kind, arrayOnly(ep), meter, seed);
          const pick = (balancer: Balancer<string, string>): Ep | string => {
            try {
              return balancer.endpoint();
            } catch (err) {
              return (err as Error).name;
            }
          };
          for (const o of ops) {
            if (o.kind === 'picks') {
              for (let i = 0; i < o.count; i++) {
                const a = pick(viaSnapshot);
                const b = pick(viaArray);
                if (a !== b) expect.fail(`pick ${i}: the two paths differ`);
                if (o.call && typeof a === 'function') void a('req');
                clock.advance(7);
              }
            } else if (o.kind === 'one') {
              if (o.remove) fake.remove(keyOf(o.at));
              else fake.add(inst(o.at));
            } else {
              const keys = Array.from({ length: o.count }, (_, i) => o.from + i).filter((n) => n < 3_000);
              if (o.kind === 'add') fake.add(...keys.map((n) => inst(n)));
              else fake.remove(...keys.map(keyOf));
            }
          }
          void ep.close();
        },
      ),
      { numRuns: 120 },
    );
  });
});

describe('outlierEjection over a source with snapshot()', () => {
  /** An endpointer of measured endpoints whose calls fail while `failing` has their key. */
  function measuredEndpointer(initial: number) {
    const clock = new FakeClock(1_000);
    const meter = new CallMeter({ clock });
    const failing = new Set<string>();
    const factory = meter.measure<string, string>((instance) => ({
      endpoint: () =>
        failing.has(instance.key)
          ? Promise.reject(new Error(`${instance.key} failed`))
          : Promise.resolve('ok'),
    }));
    const fake = new FakeInstancer(Array.from({ length: initial }, (_, i) => inst(i)));
    const ep = endpointer<string, string>(fake, factory);
    return { clock, meter, failing, fake, ep };
  }

  it('offers snapshot() only when the source has one; balancers over it read it', async () => {
    const { meter, failing, fake, ep } = measuredEndpointer(10);
    expect(outlierEjection(arrayOnly(ep), { meter }).snapshot).toBeUndefined();
    const healthy = outlierEjection(ep, { meter, consecutiveFailures: 2 });
    const all = healthy.snapshot!();
    expect(all).toBe(ep.snapshot!()); // nothing ejected: the source's own
    failing.add(keyOf(3));
    await ep.endpoints()[3]!('a').catch(() => undefined);
    await ep.endpoints()[3]!('b').catch(() => undefined);
    const view = healthy.snapshot!();
    expect(view.length).toBe(9);
    expect(shown(view)).toEqual(ep.endpoints().filter((_, i) => i !== 3));
    expect(shown(view)).toEqual(healthy.endpoints());
    expect(view.indexOfKey(keyOf(3))).toBe(-1);
    expect(view.indexOfKey(keyOf(4))).toBe(3);
    expect(view.entryAt(3)!.key).toBe(keyOf(4));
    expect(view.endpointAt(9)).toBeUndefined();
    expect(healthy.snapshot!()).toBe(view); // the same until something changes
    // The old snapshot (before the ejection) still shows all ten.
    expect(shown(all)).toEqual(ep.endpoints());
    // A change of the set: a new view, the ejected endpoint still out.
    fake.add(inst(42));
    const after = healthy.snapshot!();
    expect(after).not.toBe(view);
    expect(after.length).toBe(10);
    expect(after.indexOfKey(keyOf(3))).toBe(-1);
    expect(shown(view)).toHaveLength(9);
    const balancer = roundRobin(healthy);
    const picked = new Set(Array.from({ length: 20 }, () => balancer.endpoint()));
    expect(picked.has(ep.endpoints()[3]!)).toBe(false);
    expect(picked.size).toBe(10);
    healthy.close();
    expect(healthy.snapshot!()).toBe(ep.snapshot!());
    await ep.close();
  });

  it('property: decides, logs and lists exactly as over the same source without snapshot()', async () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('fail' as const), at: fc.nat(), times: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constant('heal' as const), at: fc.nat(), times: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 40_000 }) }),
      fc.record({
        kind: fc.constant('add' as const),
        at: fc.nat({ max: 1_999 }),
        count: fc.integer({ min: 1, max: 40 }),
      }),
      fc.record({
        kind: fc.constant('remove' as const),
        at: fc.nat(),
        count: fc.integer({ min: 1, max: 5 }),
      }),
      fc.record({ kind: fc.constant('replace' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('read' as const) }),
      // An ejected endpoint leaves the set, or is replaced by a new one for its key.
      fc.record({ kind: fc.constantFrom('dropEjected' as const, 'replaceEjected' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(1, 3, 8, 20, 100, 1_200),
        fc.boolean(),
        fc.array(op, { maxLength: 40 }),
        async (initial, successRate, ops) => {
          const { clock, meter, failing, fake, ep } = measuredEndpointer(initial);
          const options = {
            meter,
            consecutiveFailures: 2,
            baseEjectionMs: 10_000,
            ...(successRate ? { successRate: { intervalMs: 5_000, minimumHosts: 2, requestVolume: 3 } } : {}),
          };
          const viaSnapshot = outlierEjection(ep, options);
          const viaArray = outlierEjection({ ...arrayOnly(ep), entries: () => ep.entries() }, options);
          const events: [OutlierEvent<string, string>[], OutlierEvent<string, string>[]] = [[], []];
          viaSnapshot.onEvent((e) => events[0].push(e));
          viaArray.onEvent((e) => events[1].push(e));
          const kept: [EndpointSnapshot<string, string>, Ep[]][] = [];
          const keys = (list: readonly { readonly key: string }[]) => list.map((e) => e.key);
          const compare = () => {
            const a = viaSnapshot.endpoints();
            expect(a).toEqual(viaArray.endpoints());
            expect(Object.isFrozen(a)).toBe(true);
            expect(keys(viaSnapshot.entries!())).toEqual(keys(viaArray.entries!()));
            const snapshot = viaSnapshot.snapshot!();
            expect(shown(snapshot)).toEqual(a);
            expect(keys(Array.from({ length: snapshot.length }, (_, i) => snapshot.entryAt(i)!))).toEqual(
              keys(viaSnapshot.entries!()),
            );
            for (const entry of ep.entries()) {
              const index = snapshot.indexOfKey(entry.key);
              expect(index).toBe(a.indexOf(entry.endpoint));
            }
            expect(viaSnapshot.panicking()).toBe(viaArray.panicking());
            expect(viaSnapshot.ejected().map((e) => e.key)).toEqual(viaArray.ejected().map((e) => e.key));
            kept.push([snapshot, shown(snapshot)]);
          };
          for (const o of ops) {
            const current = ep.entries();
            const at = 'at' in o ? o.at : 0;
            const target = current.length > 0 ? current[at % current.length] : undefined;
            if (o.kind === 'fail' || o.kind === 'heal') {
              if (target === undefined) continue;
              if (o.kind === 'fail') failing.add(target.key);
              else failing.delete(target.key);
              for (let i = 0; i < o.times; i++) await target.endpoint('req').catch(() => undefined);
            } else if (o.kind === 'advance') clock.advance(o.ms);
            else if (o.kind === 'add') {
              fake.add(...Array.from({ length: o.count }, (_, i) => inst(o.at + i)));
            } else if (o.kind === 'remove') {
              if (target === undefined) continue;
              const from = current.indexOf(target);
              fake.remove(...current.slice(from, from + o.count).map((e) => e.key));
            } else if (o.kind === 'replace') {
              if (target === undefined) continue;
              fake.add({ key: target.key, address: `${target.instance.address}+` });
            } else if (o.kind === 'dropEjected' || o.kind === 'replaceEjected') {
              viaSnapshot.ejected(); // both read at the same moment, as everywhere else
              const ejected = viaArray.ejected()[0];
              if (ejected === undefined) continue;
              if (o.kind === 'dropEjected') fake.remove(ejected.key);
              else fake.add({ key: ejected.key, address: `${ejected.instance.address}+` });
            } else compare();
          }
          compare();
          expect(events[0].map((e) => `${e.type} ${'key' in e ? e.key : ''}`)).toEqual(
            events[1].map((e) => `${e.type} ${'key' in e ? e.key : ''}`),
          );
          for (const [snapshot, endpoints] of kept) expect(shown(snapshot)).toEqual(endpoints);
          viaSnapshot.close();
          viaArray.close();
          await ep.close();
        },
      ),
      { numRuns: 150 },
    );
  });
});
