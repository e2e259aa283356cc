import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { endpointer } from './endpointer.js';
import { FakeInstancer } from './testing/fake-instancer.js';
import type { Endpoint, EndpointEntry, Endpointer, EndpointSnapshot, Factory, Instance } from './types.js';

/** A factory that makes a distinct endpoint per call (its instance's address as the answer). */
const distinct: Factory = (inst) => ({ endpoint: async () => inst.address });

const snapshotOf = (e: Endpointer): EndpointSnapshot => e.snapshot!();

/** Every entry of `snapshot`, by index. */
function entriesOf(snapshot: EndpointSnapshot): EndpointEntry[] {
  return Array.from({ length: snapshot.length }, (_, i) => snapshot.entryAt(i)!);
}

/** Checks that `snapshot` shows exactly `entries` (and their endpoints), by index and by key. */
function expectShows(snapshot: EndpointSnapshot, entries: readonly EndpointEntry[]): void {
  expect(snapshot.length).toBe(entries.length);
  entries.forEach((entry, i) => {
    if (snapshot.entryAt(i) !== entry) expect.fail(`entryAt(${i})`);
    if (snapshot.endpointAt(i) !== entry.endpoint) expect.fail(`endpointAt(${i})`);
    if (snapshot.indexOfKey(entry.key) !== i) expect.fail(`indexOfKey(${entry.key})`);
  });
  expect(snapshot.endpointAt(entries.length)).toBeUndefined();
  expect(snapshot.entryAt(-1)).toBeUndefined();
}

const keyOf = (n: number) => `k${String(n).padStart(4, '0')}`;

describe('endpointer.snapshot()', () => {
  it('shows what entries() and endpoints() list, index for index, and is frozen', async () => {
    const fake = new FakeInstancer(['c:1', 'a:1', 'b:1']);
    const e = endpointer(fake, distinct);
    const s = snapshotOf(e);
    expect(Object.isFrozen(s)).toBe(true);
    expectShows(s, e.entries());
    expect(Array.from({ length: s.length }, (_, i) => s.endpointAt(i))).toEqual(e.endpoints());
    expect(s.indexOfKey('zz')).toBe(-1);
    await e.close();
  });

  it('is the same object until an entry changes; a snapshot handed out never changes', async () => {
    const fake = new FakeInstancer(['a:1', 'b:1']);
    const e = endpointer(fake, distinct);
    const s1 = snapshotOf(e);
    const shown = entriesOf(s1);
    expect(snapshotOf(e)).toBe(s1);
    fake.fail('down'); // error, no invalidation: no change
    fake.set(['a:1', 'b:1']); // error cleared, same set
    expect(snapshotOf(e)).toBe(s1);
    fake.add('c:1');
    fake.remove('a:1');
    const s2 = snapshotOf(e);
    expect(s2).not.toBe(s1);
    expectShows(s2, e.entries());
    expectShows(s1, shown);
    await e.close();
  });

  it('is a new object when only an entry changes (the endpoint being the same function), endpoints() is not', async () => {
    const fake = new FakeInstancer([{ key: 'a', address: 'a:1' }]);
    const shared: Endpoint = async () => 'shared';
    const e = endpointer(fake, () => ({ endpoint: shared }));
    const s1 = snapshotOf(e);
    const endpoints = e.endpoints();
    fake.add({ key: 'a', address: 'a:2' });
    const s2 = snapshotOf(e);
    expect(s2).not.toBe(s1);
    expect(s2.entryAt(0)!.instance.address).toBe('a:2');
    expect(s1.entryAt(0)!.instance.address).toBe('a:1');
    expect(e.endpoints()).toBe(endpoints);
    await e.close();
  });

  it('is empty before the first event, and after close()', async () => {
    const fake = new FakeInstancer();
    const e = endpointer(fake, distinct);
    expect(snapshotOf(e).length).toBe(0);
    fake.set(['a:1']);
    expect(snapshotOf(e).length).toBe(1);
    await e.close();
    expect(snapshotOf(e).length).toBe(0);
    expect(snapshotOf(e).endpointAt(0)).toBeUndefined();
  });

  it('follows a set of thousands (several blocks) through single changes and whole new sets', async () => {
    const all = Array.from({ length: 5_000 }, (_, i): Instance => ({ key: keyOf(i), address: `h${i}:1` }));
    const fake = new FakeInstancer(all.filter((_, i) => i % 2 === 0));
    const e = endpointer(fake, distinct);
    expectShows(snapshotOf(e), e.entries());
    for (let i = 1; i < 5_000; i += 7) {
      fake.add(all[i]!);
      if (i % 3 === 0) fake.remove(keyOf(i - 1));
      if (i % 50 === 1) expectShows(snapshotOf(e), e.entries());
      else snapshotOf(e);
    }
    expectShows(snapshotOf(e), e.entries());
    fake.set(all.filter((_, i) => i % 3 === 0));
    expectShows(snapshotOf(e), e.entries());
    await e.close();
  });

  it('property: matches the instancer set after any changes; snapshots handed out keep what they showed', () => {
    const key = fc.nat({ max: 2_999 });
    const op = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), from: key, count: fc.integer({ min: 1, max: 600 }) }),
      fc.record({ kind: fc.constant('remove' as const), from: key, count: fc.integer({ min: 1, max: 600 }) }),
      fc.record({ kind: fc.constant('flip' as const), from: key, count: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ kind: fc.constant('one' as const), at: key, remove: fc.boolean() }),
      fc.record({ kind: fc.constant('read' as const) }),
    );
    fc.assert(
      fc.property(fc.nat({ max: 3_000 }), fc.array(op, { maxLength: 30 }), (initial, ops) => {
        const version = new Map<number, number>();
        const inst = (n: number): Instance => ({ key: keyOf(n), address: `h${n}:${version.get(n) ?? 0}` });
        const fake = new FakeInstancer(Array.from({ length: initial }, (_, i) => inst(i)));
        const e = endpointer(fake, distinct);
        const kept: [EndpointSnapshot, EndpointEntry[]][] = [];
        const check = () => {
          const s = snapshotOf(e);
          const want = fake.current()?.instances ?? [];
          expect(s.length).toBe(want.length);
          const shown = entriesOf(s);
          expect(shown.map((x) => `${x.key}=${x.instance.address}`)).toEqual(
            want.map((i) => `${i.key}=${i.address}`),
          );
          expectShows(s, e.entries());
          kept.push([s, shown]);
        };
        for (const o of ops) {
          if (o.kind === 'read') check();
          else if (o.kind === 'one') {
            if (o.remove) fake.remove(keyOf(o.at));
            else fake.add(inst(o.at));
            snapshotOf(e);
          } else {
            const keys = Array.from({ length: o.count }, (_, i) => o.from + i).filter((n) => n < 3_000);
            if (o.kind === 'remove') fake.remove(...keys.map(keyOf));
            else {
              if (o.kind === 'flip') for (const n of keys) version.set(n, (version.get(n) ?? 0) + 1);
              fake.add(...keys.map(inst));
            }
          }
        }
        check();
        for (const [s, shown] of kept) expectShows(s, shown);
        void e.close();
      }),
      { numRuns: 40 },
    );
  });
});
