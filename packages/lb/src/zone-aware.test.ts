import { type Endpoint, type EndpointEntry, endpointer, type Instance } from '@sdkit/sd-core';
import { FakeClock, FakeInstancer } from '@sdkit/sd-core/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CallMeter } from './call-meter.js';
import { NoEndpointsError } from './errors.js';
import { maglev } from './maglev.js';
import { outlierEjection } from './outlier-ejection.js';
import { ringHash } from './ring-hash.js';
import { roundRobin } from './round-robin.js';
import { type EntrySpec, FakeEntrySource } from './testing-entries.js';
import { weighted } from './weighted.js';
import { zoneAware } from './zone-aware.js';

/** Endpoints `<zone>-<i>` with `metadata.zone`, `sizes[zone]` per zone (zones named a, b, c…). */
function zoned(
  sizes: Record<string, number>,
  extra: (zone: string, i: number) => object = () => ({}),
): EntrySpec[] {
  const specs: EntrySpec[] = [];
  for (const [zone, size] of Object.entries(sizes)) {
    for (let i = 0; i < size; i++) specs.push({ key: `${zone}-${i}`, metadata: { zone, ...extra(zone, i) } });
  }
  return specs;
}

const keysOf = (source: FakeEntrySource, endpoints: readonly Endpoint<unknown, string>[]) =>
  endpoints.map((e) => source.keyOf(e));

/** The zones of the chosen endpoints: `{ a: 2, b: 1 }`. */
function zonesOf(keys: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const key of keys) {
    const zone = key.split('-')[0]!;
    counts[zone] = (counts[zone] ?? 0) + 1;
  }
  return counts;
}

describe('zoneAware', () => {
  it('keeps the calls in the caller zone while it holds its share of the endpoints', () => {
    const source = new FakeEntrySource(zoned({ a: 4, b: 4, c: 4 }));
    const local = zoneAware(source, { zone: 'a', seed: 1 });
    expect(keysOf(source, local.endpoints())).toEqual(['a-0', 'a-1', 'a-2', 'a-3']);
    expect(local.routing()).toEqual({
      mode: 'local',
      total: 12,
      healthy: 12,
      local: 4,
      localShare: 1,
      selected: 4,
    });
    // More than its share: still only its own.
    source.set(zoned({ a: 6, b: 3, c: 3 }));
    expect(zonesOf(keysOf(source, local.endpoints()))).toEqual({ a: 6 });
  });

  it('spills over in proportion when the caller zone holds fewer: to the zones with endpoints to spare', () => {
    // 12 endpoints, callers spread over 3 zones: each zone's callers need 4. Zone a has 2: it adds 2 from b and c,
    // which have 1 to spare each, and keeps half of its calls.
    const source = new FakeEntrySource(zoned({ a: 2, b: 5, c: 5 }));
    const spill = zoneAware(source, { zone: 'a', seed: 1 });
    expect(zonesOf(keysOf(source, spill.endpoints()))).toEqual({ a: 2, b: 1, c: 1 });
    expect(spill.routing()).toEqual({
      mode: 'spill',
      total: 12,
      healthy: 12,
      local: 2,
      localShare: 0.5,
      selected: 4,
    });
    // Only the zones with a surplus give: b has 4 = its callers' share, c 7.
    source.set(zoned({ a: 1, b: 4, c: 7 }));
    expect(zonesOf(keysOf(source, spill.endpoints()))).toEqual({ a: 1, c: 3 });
  });

  it('rounds fractional spill-overs up or down at random, right on average over callers', () => {
    // 13 endpoints: zone a's callers need 13/3 = 4.33; it has 1, so 3.33 more, 1.67 from b and from c each.
    const source = new FakeEntrySource(zoned({ a: 1, b: 6, c: 6 }));
    let remote = 0;
    const sizes = new Set<number>();
    for (let seed = 0; seed < 600; seed++) {
      const chosen = zonesOf(keysOf(source, zoneAware(source, { zone: 'a', seed }).endpoints()));
      expect(chosen.a).toBe(1);
      expect([1, 2]).toContain(chosen.b);
      expect([1, 2]).toContain(chosen.c);
      remote += chosen.b! + chosen.c!;
      sizes.add(chosen.b! + chosen.c!);
    }
    expect([...sizes].sort()).toEqual([3, 4]);
    expect(remote / 600).toBeGreaterThan(3.2);
    expect(remote / 600).toBeLessThan(3.46);
  });

  it('different callers spill over to different endpoints; one caller keeps its choice while the set holds', () => {
    const source = new FakeEntrySource(zoned({ a: 1, b: 10, c: 10 }));
    const picked = new Set<string>();
    for (let seed = 0; seed < 50; seed++) {
      for (const key of keysOf(source, zoneAware(source, { zone: 'a', seed }).endpoints())) picked.add(key);
    }
    expect(picked.size).toBe(21);
    const one = zoneAware(source, { zone: 'a', seed: 3 });
    const before = one.endpoints();
    expect(one.endpoints()).toBe(before);
    // Another remote endpoint joins: the rank of the chosen ones does not change, so they stay chosen.
    const chosen = keysOf(source, before);
    source.set([...zoned({ a: 1, b: 10, c: 10 }), { key: 'c-10', metadata: { zone: 'c' } }]);
    const after = keysOf(source, one.endpoints());
    expect(after.filter((k) => chosen.includes(k)).length).toBeGreaterThanOrEqual(chosen.length - 1);
  });

  it('uses every endpoint when the caller zone has none, or the set is smaller than minEndpoints', () => {
    const source = new FakeEntrySource(zoned({ b: 4, c: 4 }));
    const none = zoneAware(source, { zone: 'a' });
    expect(none.endpoints()).toHaveLength(8);
    expect(none.routing()).toMatchObject({ mode: 'all', reason: 'no-local-endpoint', localShare: 0 });
    source.set(zoned({ a: 1, b: 2, c: 2 }));
    expect(none.endpoints()).toHaveLength(5);
    expect(none.routing()).toMatchObject({
      mode: 'all',
      reason: 'too-few-endpoints',
      local: 1,
      localShare: 0.2,
    });
    const small = zoneAware(source, { zone: 'b', minEndpoints: 0 });
    expect(zonesOf(keysOf(source, small.endpoints()))).toEqual({ b: 2 });
  });

  it('callerShare: the share of the calls from the caller zone sets how many endpoints it needs', () => {
    const source = new FakeEntrySource(zoned({ a: 3, b: 4, c: 5 }));
    expect(zoneAware(source, { zone: 'a', callerShare: 0.25 }).routing().mode).toBe('local');
    const half = zoneAware(source, { zone: 'a', callerShare: 0.5, seed: 2 });
    // Needs 6: 3 more. The others' callers (half of all) are assumed spread evenly: 3 endpoints each; b gives 1, c 2.
    expect(zonesOf(keysOf(source, half.endpoints()))).toEqual({ a: 3, b: 1, c: 2 });
    expect(half.routing().localShare).toBe(0.5);
  });

  it('endpoints of no zone take spill-over but are never local', () => {
    const source = new FakeEntrySource([...zoned({ a: 1, b: 3 }), 'x-0', 'x-1', 'x-2']);
    // 7 endpoints, 2 zones: a needs 3.5, has 1. b's callers need 3.5 (no surplus); the unzoned give all of it.
    const spill = zoneAware(source, { zone: 'a', seed: 4 });
    const chosen = zonesOf(keysOf(source, spill.endpoints()));
    expect(chosen.a).toBe(1);
    expect(chosen.b).toBeUndefined();
    expect([2, 3]).toContain(chosen.x);
  });

  it('uses only healthy endpoints (default: not metadata.conditions.ready === false), all of them if none is', () => {
    const conditions = (zone: string, i: number) => ({
      conditions: { ready: !(zone === 'a' && i === 0), serving: true, terminating: zone === 'a' && i === 0 },
    });
    const source = new FakeEntrySource(zoned({ a: 3, b: 3, c: 3 }, conditions));
    const healthy = zoneAware(source, { zone: 'a', seed: 1 });
    const keys = keysOf(source, healthy.endpoints());
    expect(keys).not.toContain('a-0');
    expect(healthy.routing()).toMatchObject({ mode: 'spill', total: 9, healthy: 8, local: 2 });
    const custom = zoneAware(source, { zone: 'a', healthy: (i) => i.key !== 'b-0' && i.key !== 'b-1' });
    expect(keysOf(source, custom.endpoints())).toEqual(['a-0', 'a-1', 'a-2']);
    const none = zoneAware(source, { zone: 'a', healthy: () => false });
    expect(none.endpoints()).toHaveLength(9);
    expect(none.routing()).toMatchObject({ mode: 'all', reason: 'none-healthy', healthy: 0, local: 3 });
  });

  it('uses Kubernetes topology hints (metadata.hints.forZones, as sd-kubernetes reads them) as kube-proxy does', () => {
    // The EndpointSlice controller gave zone a (1 endpoint) one of c's: hints for a on a-0 and c-1.
    const hinted = (zone: string, i: number) => ({
      hints: { forZones: zone === 'c' && i === 1 ? ['a'] : [zone] },
      conditions: { ready: true, serving: true, terminating: false },
    });
    const source = new FakeEntrySource(zoned({ a: 1, b: 3, c: 3 }, hinted));
    const withHints = zoneAware(source, { zone: 'a' });
    expect(keysOf(source, withHints.endpoints())).toEqual(['a-0', 'c-1']);
    expect(withHints.routing()).toMatchObject({ mode: 'hints', local: 1, localShare: 0.5, selected: 2 });
    // Hints off: Envoy's proportions instead.
    expect(zoneAware(source, { zone: 'a', hints: false, seed: 1 }).routing().mode).toBe('spill');
    // One endpoint without hints (or with none): hints are ignored, as kube-proxy does.
    source.set([
      ...zoned({ a: 1, b: 3, c: 3 }, hinted),
      { key: 'b-9', metadata: { zone: 'b', hints: { forZones: [] } } },
    ]);
    expect(withHints.routing().mode).toBe('spill');
    // No endpoint hinted for the caller's zone: ignored too.
    source.set(zoned({ b: 3, c: 3 }, (zone) => ({ hints: { forZones: [zone] } })));
    expect(zoneAware(source, { zone: 'a' }).routing()).toMatchObject({
      mode: 'all',
      reason: 'no-local-endpoint',
    });
  });

  it('zoneOf: a zone from elsewhere in the metadata', () => {
    const source = new FakeEntrySource(
      ['1', '2', '3', '4', '5', '6'].map((k, i) => ({
        key: `n${k}`,
        metadata: { az: i < 3 ? 'east' : 'west' },
      })),
    );
    const east = zoneAware(source, { zone: 'east', zoneOf: (i: Instance) => i.metadata?.az as string });
    expect(keysOf(source, east.endpoints())).toEqual(['n1', 'n2', 'n3']);
  });

  it('a zoneOf that throws fails the read; the next read chooses again', () => {
    const source = new FakeEntrySource(zoned({ a: 4, b: 4, c: 4 }));
    let fail = true;
    const zones = zoneAware(source, {
      zone: 'a',
      zoneOf: (instance) => {
        if (fail) throw new Error('no zones yet');
        return instance.metadata?.zone as string;
      },
    });
    expect(() => zones.endpoints()).toThrow('no zones yet');
    fail = false;
    expect(keysOf(source, zones.endpoints())).toEqual(['a-0', 'a-1', 'a-2', 'a-3']);
  });

  it('keeps its arrays (frozen, entries matching endpoints) until the choice changes', () => {
    const source = new FakeEntrySource(zoned({ a: 4, b: 4, c: 4 }));
    const local = zoneAware(source, { zone: 'a' });
    const endpoints = local.endpoints();
    const entries = local.entries();
    const routing = local.routing();
    expect(Object.isFrozen(endpoints) && Object.isFrozen(entries) && Object.isFrozen(routing)).toBe(true);
    expect(entries.map((e) => e.endpoint)).toEqual(endpoints);
    expect(local.endpoints()).toBe(endpoints);
    // A change elsewhere that leaves the choice as it was: the same arrays (and routing).
    const sourceEntries = source.entries();
    source.set(zoned({ a: 4, b: 4, c: 4 }, (zone, i) => (zone === 'b' && i === 0 ? { version: 2 } : {})));
    expect(source.entries()).not.toBe(sourceEntries);
    expect(local.endpoints()).toBe(endpoints);
    expect(local.entries()).toBe(entries);
    expect(local.routing()).toBe(routing);
    source.set(zoned({ a: 5, b: 5, c: 4 }));
    expect(local.endpoints()).not.toBe(endpoints);
    expect(local.endpoints()).toHaveLength(5);
  });

  it('composes: roundRobin(zoneAware(outlierEjection(endpoints))) spills over as local endpoints are ejected', async () => {
    const clock = new FakeClock(1_000);
    const meter = new CallMeter({ clock });
    const failing = new Set<string>();
    const factory = meter.measure<string, string>((instance) => ({
      endpoint: async () => {
        if (failing.has(instance.key)) throw new Error(`${instance.key} failed`);
        return instance.key;
      },
    }));
    const entries: EndpointEntry<string, string>[] = [];
    for (const spec of zoned({ a: 3, b: 3, c: 3 })) {
      const { key, metadata } = spec as { key: string; metadata: Record<string, unknown> };
      const instance = Object.freeze({ key, address: `${key}:80`, metadata });
      entries.push(Object.freeze({ key, instance, endpoint: (await factory(instance)).endpoint }));
    }
    const frozen = Object.freeze(entries);
    const list = Object.freeze(frozen.map((e) => e.endpoint));
    const source = { endpoints: () => list, entries: () => frozen };
    const healthy = outlierEjection(source, { meter, consecutiveFailures: 2, maxEjectionPercent: 50 });
    const zones = zoneAware(healthy, { zone: 'a', seed: 7 });
    const balancer = roundRobin(zones);
    const call = async () =>
      balancer
        .endpoint()('req')
        .catch(() => 'failed');
    const served = async (count: number) => Promise.all(Array.from({ length: count }, call));

    expect(new Set(await served(30))).toEqual(new Set(['a-0', 'a-1', 'a-2']));
    failing.add('a-0');
    failing.add('a-1');
    await served(12); // a-0 and a-1 fail twice in a row: ejected
    expect(healthy.ejected().map((e) => e.key)).toEqual(['a-0', 'a-1']);
    expect(zones.routing()).toMatchObject({ mode: 'spill', healthy: 7, local: 1 });
    const after = await served(60);
    expect(after).not.toContain('a-0');
    expect(after).not.toContain('a-1');
    expect(after).toContain('a-2');
    expect(after.some((k) => !k.startsWith('a-'))).toBe(true);
    expect(after).not.toContain('failed');
    healthy.close();
  });

  it('works over a real Endpointer, under roundRobin, weighted, ringHash and maglev, following its changes', async () => {
    const instance = (key: string, zone: string, weight = 1): Instance => ({
      key,
      address: `${key}:80`,
      metadata: { zone, weight },
    });
    const instancer = new FakeInstancer([
      instance('a-0', 'a', 1),
      instance('a-1', 'a', 3),
      instance('b-0', 'b'),
      instance('b-1', 'b'),
      instance('c-0', 'c'),
      instance('c-1', 'c'),
    ]);
    const endpoints = endpointer<string, string>(instancer, (i) => ({ endpoint: async () => i.key }));
    await endpoints.ready();
    const zones = zoneAware(endpoints, { zone: 'a', seed: 1 });
    const keys = async (
      balancer: { endpoint(context?: { hashKey: string }): Endpoint<string, string> },
      n: number,
    ) => Promise.all(Array.from({ length: n }, (_, i) => balancer.endpoint({ hashKey: `k${i}` })('req')));
    expect(await keys(roundRobin(zones), 4)).toEqual(['a-0', 'a-1', 'a-0', 'a-1']);
    const byWeight = weighted(zones, { seed: 1 });
    const counts = zonesOf(await keys(byWeight, 8));
    expect(counts).toEqual({ a: 8 });
    expect((await keys(byWeight, 8)).filter((k) => k === 'a-1')).toHaveLength(6);
    const ring = ringHash(zones);
    const table = maglev(zones);
    expect(new Set(await keys(ring, 50))).toEqual(new Set(['a-0', 'a-1']));
    expect(new Set(await keys(table, 50))).toEqual(new Set(['a-0', 'a-1']));
    // Zone a loses an endpoint: 5 left, below minEndpoints (6): all of them.
    instancer.remove('a-1');
    expect(zones.routing()).toMatchObject({ mode: 'all', reason: 'too-few-endpoints' });
    expect(new Set(await keys(ring, 200))).toEqual(new Set(['a-0', 'b-0', 'b-1', 'c-0', 'c-1']));
    expect(new Set(await keys(table, 200))).toEqual(new Set(['a-0', 'b-0', 'b-1', 'c-0', 'c-1']));
    await endpoints.close();
  });

  it('property: with callers spread evenly over the zones, every endpoint gets about the same load', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 2, maxLength: 4 }),
        fc.integer({ min: 0, max: 2 }),
        (sizes, unzoned) => {
          const names = sizes.map((_, z) => String.fromCharCode(97 + z));
          const specs = [
            ...zoned(Object.fromEntries(names.map((name, z) => [name, sizes[z]!]))),
            ...Array.from({ length: unzoned }, (_, i) => `x-${i}`),
          ];
          const n = specs.length;
          fc.pre(n >= 6);
          const source = new FakeEntrySource(specs);
          const load = new Map<string, number>();
          const callers = 200;
          for (const zone of names) {
            for (let seed = 0; seed < callers; seed++) {
              const chosen = zoneAware(source, { zone, seed: seed * 31 + zone.charCodeAt(0) }).endpoints();
              for (const key of keysOf(source, chosen)) {
                load.set(key, (load.get(key) ?? 0) + 1 / names.length / callers / chosen.length);
              }
            }
          }
          for (const entry of source.entries()) {
            const relative = (load.get(entry.key) ?? 0) * n;
            expect(relative).toBeGreaterThan(0.7);
            expect(relative).toBeLessThan(1.3);
          }
        },
      ),
      { numRuns: 40, seed: 0x5eed }, // statistical bounds: a fixed seed keeps the run deterministic
    );
  });

  it('passes ready() and emptyReason() through; an empty source gives an empty set', async () => {
    const source = Object.assign(new FakeEntrySource([]), {
      ready: async () => undefined,
      emptyReason: () => 'no instances yet',
    });
    const zones = zoneAware(source, { zone: 'a' });
    await expect(zones.ready?.()).resolves.toBeUndefined();
    expect(zones.endpoints()).toEqual([]);
    expect(zones.routing()).toMatchObject({ mode: 'all', reason: 'empty' });
    expect(() => roundRobin(zones).endpoint()).toThrow(/no endpoints available: no instances yet/);
    expect(() => roundRobin(zones).endpoint()).toThrow(NoEndpointsError);
    expect(zoneAware(new FakeEntrySource([]), { zone: 'a' }).ready).toBeUndefined();
  });

  it('refuses a missing zone, a source without entries(), unknown options and bad values, naming them', () => {
    const source = new FakeEntrySource(['a']);
    expect(() => zoneAware(source, {} as never)).toThrow(/zoneAware: zone must be a non-empty string/);
    expect(() => zoneAware(source, { zone: '' })).toThrow(/zone must be a non-empty string/);
    expect(() => zoneAware(source, undefined as never)).toThrow(/options must be an object/);
    expect(() => zoneAware({ endpoints: () => [] } as never, { zone: 'a' })).toThrow(/must have entries\(\)/);
    expect(() => zoneAware(source, { zone: 'a', minLocalShare: 0.5 } as never)).toThrow(
      /"minLocalShare" \(did you mean "callerShare"\?\)/,
    );
    for (const callerShare of [0, 1.5, -0.1, Number.NaN, '0.5']) {
      expect(() => zoneAware(source, { zone: 'a', callerShare: callerShare as never })).toThrow(
        /callerShare must be a number in \(0, 1\]/,
      );
    }
    expect(() => zoneAware(source, { zone: 'a', minEndpoints: -1 })).toThrow(
      /minEndpoints must be an integer >= 0/,
    );
    expect(() => zoneAware(source, { zone: 'a', zoneOf: 'zone' as never })).toThrow(
      /zoneOf must be a function/,
    );
    expect(() => zoneAware(source, { zone: 'a', healthy: true as never })).toThrow(
      /healthy must be a function/,
    );
    expect(() => zoneAware(source, { zone: 'a', hints: 'yes' as never })).toThrow(/hints must be a boolean/);
    expect(() => zoneAware(source, { zone: 'a', seed: 2 ** 32 })).toThrow(
      /zoneAware: seed must be an integer/,
    );
  });
});
