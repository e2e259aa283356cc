import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { endpointer } from './endpointer.js';
import { sameInstance } from './instance-cache.js';
import { FakeClock } from './testing/fake-clock.js';
import { FakeInstancer } from './testing/fake-instancer.js';
import { instance } from './testing/instances.js';
import type { Endpoint, EndpointEntry, Endpointer, Factory, FactoryResult, Instance } from './types.js';

/** A factory that makes a distinct endpoint per call (its instance's address as the answer). */
const distinct: Factory = (inst) => ({ endpoint: async () => inst.address });

/** Checks the invariant between the two snapshots: same length, `entries()[i].endpoint === endpoints()[i]`. */
function expectAligned(e: Endpointer): void {
  const entries = e.entries();
  const endpoints = e.endpoints();
  expect(entries).toHaveLength(endpoints.length);
  entries.forEach((entry, i) => {
    expect(entry.endpoint).toBe(endpoints[i]);
    expect(entry.key).toBe(entry.instance.key);
  });
}

const keysOf = (entries: readonly EndpointEntry[]) => entries.map((x) => x.key);

/** Lets every queued microtask (promise callbacks) run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

describe('endpointer.entries()', () => {
  it('lists the entries of endpoints(), in key order, index for index', async () => {
    const fake = new FakeInstancer(['c:1', 'a:1', 'b:1']);
    const e = endpointer(fake, distinct);
    expect(keysOf(e.entries())).toEqual(['a:1', 'b:1', 'c:1']);
    expectAligned(e);
    // Read in the other order after a change: the same agreement.
    fake.add('0:1');
    fake.remove('b:1');
    const entries = e.entries();
    expect(keysOf(entries)).toEqual(['0:1', 'a:1', 'c:1']);
    expectAligned(e);
    expect(await entries[0]!.endpoint(undefined)).toBe('0:1');
    await e.close();
  });

  it('is frozen, array and entries', async () => {
    const fake = new FakeInstancer(['a:1', 'b:1']);
    const e = endpointer(fake, distinct);
    const entries = e.entries();
    expect(Object.isFrozen(entries)).toBe(true);
    for (const entry of entries) expect(Object.isFrozen(entry)).toBe(true);
    await e.close();
  });

  it('returns the same array until an entry changes', async () => {
    const fake = new FakeInstancer(['a:1', 'b:1']);
    const e = endpointer(fake, distinct);
    const s1 = e.entries();
    expect(e.entries()).toBe(s1);
    fake.fail('down'); // error, no invalidation: no change
    fake.set(['a:1', 'b:1']); // error cleared, same set
    fake.emit({ instances: [instance('b:1'), instance('a:1')] }); // same set, new objects, no changes
    expect(e.entries()).toBe(s1);
    fake.add('c:1');
    fake.remove('c:1'); // undone before anyone looked
    expect(e.entries()).toBe(s1);
    fake.add('c:1');
    const s2 = e.entries();
    expect(s2).not.toBe(s1);
    expect(keysOf(s2)).toEqual(['a:1', 'b:1', 'c:1']);
    expect(e.entries()).toBe(s2);
    // Reading endpoints() in between builds nothing new for entries().
    e.endpoints();
    expect(e.entries()).toBe(s2);
    await e.close();
  });

  it('keeps the entry object of an unchanged endpoint; a replaced instance gets a new one', async () => {
    const fake = new FakeInstancer(['a:1', 'b:1', 'c:1']);
    const e = endpointer(fake, distinct);
    const [a, b, c] = e.entries();
    fake.add('0:1', 'd:1');
    fake.remove('b:1');
    // Many changes at once (merged rather than spliced) keep them too.
    fake.add(...Array.from({ length: 40 }, (_, i) => `m${String(i).padStart(2, '0')}:1`));
    const after = e.entries();
    expect(after).toContain(a);
    expect(after).toContain(c);
    expect(after).not.toContain(b);
    // A full diff (an event without changes) with equal new instance objects keeps them as well.
    fake.emit({ instances: [instance('a:1'), instance('c:1')] });
    expect(e.entries()).toEqual([a, c]);
    expect(e.entries()[0]).toBe(a);
    // New metadata is a replacement: a new entry, a new endpoint.
    fake.set(['a:1', 'c:1']);
    fake.add(instance('a:1', { zone: 'z2' }));
    const [a2, c2] = e.entries();
    expect(a2).not.toBe(a);
    expect(a2!.endpoint).not.toBe(a!.endpoint);
    expect(a2!.instance.metadata).toEqual({ zone: 'z2' });
    expect(c2).toBe(c);
    expectAligned(e);
    await e.close();
  });

  it('carries the instance as the instancer gave it, metadata included', async () => {
    const a = instance('a:1', { zone: 'eu-1a', weight: 3 });
    const b = instance('b:1');
    const fake = new FakeInstancer([b, a]);
    const e = endpointer(fake, distinct);
    const [ea, eb] = e.entries();
    expect(ea!.instance).toEqual(a);
    expect(ea!.instance.metadata).toEqual({ zone: 'eu-1a', weight: 3 });
    expect(eb!.instance).toEqual(b);
    expect(eb!.instance.metadata).toBeUndefined();
    await e.close();
  });

  it('tells apart instances whose factory returned the same function (endpoints() stays the same array)', async () => {
    const shared: Endpoint = async () => 'same';
    const fake = new FakeInstancer([instance('a:1', { v: 1 }), instance('b:1')]);
    const e = endpointer(fake, () => ({ endpoint: shared }));
    const endpoints = e.endpoints();
    const entries = e.entries();
    fake.add(instance('a:1', { v: 2 }));
    expect(e.endpoints()).toBe(endpoints);
    expect(e.entries()).not.toBe(entries);
    expect(e.entries()[0]!.instance.metadata).toEqual({ v: 2 });
    expectAligned(e);
    // Many replacements at once (merged rather than spliced): the same.
    const many = Array.from({ length: 40 }, (_, i) => `m${String(i).padStart(2, '0')}:1`);
    fake.add(...many);
    const endpoints2 = e.endpoints();
    const entries2 = e.entries();
    fake.add(...many.map((key) => instance(key, { v: 2 })));
    expect(e.endpoints()).toBe(endpoints2);
    expect(e.entries()).not.toBe(entries2);
    expect(e.entries().filter((x) => x.instance.metadata?.v === 2)).toHaveLength(41);
    expectAligned(e);
    await e.close();
  });

  it('is empty (and frozen) before the first event, for an empty set, and when nothing is ready', async () => {
    const fake = new FakeInstancer();
    const pending: ((r: FactoryResult) => void)[] = [];
    const e = endpointer(fake, () => new Promise<FactoryResult>((resolve) => pending.push(resolve)));
    expect(e.entries()).toEqual([]);
    expect(Object.isFrozen(e.entries())).toBe(true);
    fake.set([]);
    expect(e.entries()).toEqual([]);
    fake.set(['a:1', 'b:1']);
    expect(e.entries()).toEqual([]);
    pending[1]!({ endpoint: async () => 'b' });
    await settle();
    expect(keysOf(e.entries())).toEqual(['b:1']);
    expectAligned(e);
    fake.set([]);
    expect(e.entries()).toEqual([]);
    expect(Object.isFrozen(e.entries())).toBe(true);
    pending[0]!({ endpoint: async () => 'a' }); // its instance is gone: never listed
    await settle();
    expect(e.entries()).toEqual([]);
    await e.close();
  });

  it('leaves out instances whose factory failed, and lists them once a retry succeeds', async () => {
    let fail = true;
    const fake = new FakeInstancer(['a:1', 'b:1']);
    const e = endpointer(fake, (inst) => {
      if (inst.key === 'a:1' && fail) throw new Error('dial failed');
      return { endpoint: async () => inst.address };
    });
    expect(keysOf(e.entries())).toEqual(['b:1']);
    fail = false;
    fake.add('c:1');
    expect(keysOf(e.entries())).toEqual(['a:1', 'b:1', 'c:1']);
    expectAligned(e);
    await e.close();
  });

  it('is emptied by invalidateOnErrorMs and built again by the next good event', async () => {
    const clock = new FakeClock();
    const fake = new FakeInstancer(['a:1']);
    const e = endpointer(fake, distinct, { invalidateOnErrorMs: 1_000, clock });
    const [a] = e.entries();
    fake.fail('down');
    expect(e.entries()).toEqual([a]);
    clock.advance(1_000);
    expect(e.entries()).toEqual([]);
    fake.set(['a:1']);
    const [a2] = e.entries();
    expect(a2!.key).toBe('a:1');
    expect(a2).not.toBe(a); // dropped and made again
    expectAligned(e);
    await e.close();
  });

  it('is empty and frozen after close(), and stays so', async () => {
    const fake = new FakeInstancer(['a:1', 'b:1']);
    const e = endpointer(fake, distinct);
    expect(e.entries()).toHaveLength(2);
    fake.add('c:1'); // unread when closing
    await e.close();
    expect(e.entries()).toEqual([]);
    expect(Object.isFrozen(e.entries())).toBe(true);
    fake.add('d:1');
    expect(e.entries()).toEqual([]);
    expect(e.endpoints()).toEqual([]);
  });
});

describe('endpointer.entries() (property, reads between batches of changes)', () => {
  it('matches the set, agrees with endpoints(), and keeps the entries of unchanged instances', () => {
    // 6 keys (replacements and reads of an unchanged set are frequent) or 60 (the changes between two reads can be
    // few, spliced, or many, merged).
    const opsOver = (keys: number) => {
      const key = fc.integer({ min: 0, max: keys - 1 }).map((n) => `k${String(n).padStart(2, '0')}`);
      const inst = fc
        .record({ key, address: fc.constantFrom('1', '2') })
        .map(({ key, address }): Instance => ({ key, address: `${key}:${address}` }));
      const max = Math.min(keys, 25);
      const op = fc.oneof(
        fc.record({
          kind: fc.constant('set' as const),
          list: fc.array(inst, { maxLength: keys, size: 'max' }),
        }),
        fc.record({
          kind: fc.constant('add' as const),
          list: fc.array(inst, { minLength: 1, maxLength: max }),
        }),
        fc.record({
          kind: fc.constant('remove' as const),
          keys: fc.array(key, { minLength: 1, maxLength: max }),
        }),
        // Replaces every `every`-th instance present by one with the other address: no key comes or goes.
        fc.record({ kind: fc.constant('flip' as const), every: fc.integer({ min: 1, max: 3 }) }),
        fc.record({ kind: fc.constantFrom('entries' as const, 'endpoints' as const) }),
        fc.record({ kind: fc.constant('entries' as const) }),
      );
      return fc.array(op, { maxLength: 40, size: 'medium' });
    };
    const ops = fc.constantFrom(6, 60).chain(opsOver);
    fc.assert(
      fc.property(ops, fc.boolean(), (ops, sharedEndpoint) => {
        const fake = new FakeInstancer([]);
        const shared: Endpoint = async () => 'shared';
        // Either a distinct endpoint per instance, or one function for all (entries change, endpoints() not).
        const e = endpointer(fake, (inst) => ({
          endpoint: sharedEndpoint ? shared : async () => inst.address,
        }));
        const current = () => new Map((fake.current()?.instances ?? []).map((i) => [i.key, i]));
        let last = e.entries();
        let lastEndpoints = e.endpoints();
        let changedSinceRead = false;
        /** Whether a key came or went since the last read (even if the set of keys is the same again). */
        let keysChanged = false;
        /** Keys whose instance was removed or replaced since the last read (even if back now). */
        const touched = new Set<string>();
        for (const o of ops) {
          if (o.kind === 'set' || o.kind === 'add' || o.kind === 'remove' || o.kind === 'flip') {
            const before = current();
            if (o.kind === 'set') fake.set(o.list);
            else if (o.kind === 'add') fake.add(...o.list);
            else if (o.kind === 'remove') fake.remove(...o.keys);
            else {
              const flipped = [...before.values()]
                .filter((_, i) => i % o.every === 0)
                .map((was) => ({
                  key: was.key,
                  address: `${was.key}:${was.address.endsWith(':1') ? 2 : 1}`,
                }));
              if (flipped.length > 0) fake.add(...flipped);
            }
            const after = current();
            for (const [key, inst] of before) {
              const next = after.get(key);
              if (next === undefined || !sameInstance(inst, next)) touched.add(key);
              if (next === undefined) keysChanged = true;
            }
            if (after.size !== before.size) keysChanged = true;
            changedSinceRead = true;
            continue;
          }
          if (o.kind === 'endpoints') e.endpoints();
          const now = e.entries();
          const want = [...(fake.current()?.instances ?? [])];
          expect(now.map((x) => `${x.key}=${x.instance.address}`)).toEqual(
            want.map((i) => `${i.key}=${i.address}`),
          );
          expect(Object.isFrozen(now)).toBe(true);
          expectAligned(e);
          if (!changedSinceRead) expect(now).toBe(last);
          // endpoints() is a new array only when the endpoints differ: with one function for all, only when keys
          // came or went.
          const endpoints = e.endpoints();
          if (!changedSinceRead || (sharedEndpoint && !keysChanged)) {
            expect(endpoints).toBe(lastEndpoints);
          }
          lastEndpoints = endpoints;
          const before = new Map(last.map((x) => [x.key, x]));
          for (const entry of now) {
            const old = before.get(entry.key);
            if (old !== undefined && !touched.has(entry.key)) expect(entry).toBe(old);
          }
          last = now;
          changedSinceRead = false;
          keysChanged = false;
          touched.clear();
        }
        void e.close();
      }),
      { numRuns: 300 },
    );
  });
});
