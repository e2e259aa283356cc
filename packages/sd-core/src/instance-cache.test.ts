import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InstanceCache, sameInstance } from './instance-cache.js';
import type { Instance, InstancerEvent } from './types.js';

const inst = (key: string, address = `${key}:1`, metadata?: Record<string, unknown>): Instance =>
  metadata === undefined ? { key, address } : { key, address, metadata };
const keys = (e: InstancerEvent | undefined) => e?.instances.map((i) => i.key);

function recorder(cache: InstanceCache) {
  const events: InstancerEvent[] = [];
  let completed = false;
  let errored = false;
  const sub = cache.events$.subscribe({
    next: (e) => events.push(e),
    complete: () => {
      completed = true;
    },
    error: () => {
      errored = true;
    },
  });
  return {
    events,
    get completed() {
      return completed;
    },
    get errored() {
      return errored;
    },
    unsubscribe: () => sub.unsubscribe(),
  };
}

describe('InstanceCache', () => {
  it('emits nothing before the first replace/update/fail, then a sorted, frozen first event without changes', () => {
    const c = new InstanceCache();
    const r = recorder(c);
    expect(c.current()).toBeUndefined();
    expect(r.events).toHaveLength(0);
    c.replace([inst('b'), inst('a'), inst('c')]);
    expect(r.events).toHaveLength(1);
    expect(keys(r.events[0])).toEqual(['a', 'b', 'c']);
    expect(Object.isFrozen(r.events[0])).toBe(true);
    expect(Object.isFrozen(r.events[0]!.instances)).toBe(true);
    expect(r.events[0]!.changes).toBeUndefined();
    expect(c.current()).toBe(r.events[0]);
  });

  it('does not keep its history alive: only the latest event points at its predecessor', () => {
    const c = new InstanceCache();
    const seen: InstancerEvent[] = [];
    // What a consumer sees on receipt: `since` is the event it processed just before.
    const sinceOnReceipt: (InstancerEvent | undefined)[] = [];
    c.events$.subscribe((e) => {
      sinceOnReceipt.push(e.changes?.since);
      seen.push(e);
    });
    for (let i = 0; i < 50; i++) c.update({ put: [inst(`k${i}`)] });
    c.fail(new Error('down'));
    c.update({ put: [inst('last')] });
    expect(sinceOnReceipt.slice(1, 50)).toEqual(seen.slice(0, 49));
    // Afterwards no event but the latest still references another one: the chain is one link long.
    const current = c.current()!;
    expect(current.changes?.since).toBe(seen[seen.length - 2]);
    expect(current.changes?.since?.changes?.since).toBeUndefined();
    expect(seen.slice(0, -1).every((e) => e.changes?.since === undefined)).toBe(true);
  });

  it('emits an empty first event for an empty first read', () => {
    const c = new InstanceCache();
    c.replace([]);
    expect(c.current()?.instances).toEqual([]);
  });

  it('collapses duplicate keys (last wins) and orders by code unit', () => {
    const c = new InstanceCache();
    c.replace([inst('b', 'old'), inst('B'), inst('b', 'new'), inst('a')]);
    expect(c.current()?.instances).toEqual([inst('B'), inst('a'), inst('b', 'new')]);
  });

  it('does not emit when nothing changed (same values, structurally equal metadata)', () => {
    const c = new InstanceCache();
    const r = recorder(c);
    c.replace([inst('a', 'a:1', { zone: 'x', tags: ['t'] })]);
    c.replace([inst('a', 'a:1', { zone: 'x', tags: ['t'] })]);
    c.update({ put: [inst('a', 'a:1', { tags: ['t'], zone: 'x' })], delete: ['unknown'] });
    expect(r.events).toHaveLength(1);
  });

  it('reports a change of address or metadata as removed old + added new, with since = previous event', () => {
    const c = new InstanceCache();
    c.replace([inst('a'), inst('b')]);
    const first = c.current()!;
    c.update({ put: [inst('b', 'b:2')] });
    const second = c.current()!;
    expect(second.changes?.since).toBe(first);
    expect(second.changes?.added).toEqual([inst('b', 'b:2')]);
    expect(second.changes?.removed).toEqual([inst('b')]);
    expect(second.instances).toEqual([inst('a'), inst('b', 'b:2')]);
    // Unchanged instances keep their identity.
    expect(second.instances[0]).toBe(first.instances[0]);
  });

  it('applies a batch as one event; a key both put and deleted ends up deleted', () => {
    const c = new InstanceCache();
    c.replace([inst('a')]);
    const r = recorder(c);
    c.update({ put: [inst('b'), inst('c')], delete: ['a', 'c'] });
    expect(r.events).toHaveLength(2); // replayed + one
    expect(keys(c.current())).toEqual(['b']);
    expect(c.current()?.changes?.removed).toEqual([inst('a')]);
    expect(c.current()?.changes?.added).toEqual([inst('b')]);
  });

  it('takes any iterable for put and delete, not only arrays', () => {
    const c = new InstanceCache();
    c.replace([inst('a'), inst('b')]);
    function* keysToDelete() {
      yield 'a';
    }
    c.update({ put: new Set([inst('c')]), delete: keysToDelete() });
    expect(keys(c.current())).toEqual(['b', 'c']);
    c.update({ put: new Map([['d', inst('d')]]).values() });
    expect(keys(c.current())).toEqual(['b', 'c', 'd']);
  });

  it('keeps the last known good set on fail, dedupes equal errors, and clears the error on the next good update', () => {
    const c = new InstanceCache();
    c.replace([inst('a')]);
    const good = c.current()!;
    const r = recorder(c);
    c.fail(new Error('down'));
    c.fail(new Error('down'));
    expect(r.events).toHaveLength(2);
    const failed = c.current()!;
    expect(failed.error?.message).toBe('down');
    expect(failed.instances).toBe(good.instances);
    c.fail(new Error('still down, differently'));
    expect(r.events).toHaveLength(3);
    // A read equal to the last good set still emits, to clear the error.
    c.replace([inst('a')]);
    expect(r.events).toHaveLength(4);
    expect(c.current()?.error).toBeUndefined();
    expect(c.current()?.changes?.since).toBe(r.events[2]);
    expect(c.current()?.changes?.added).toEqual([]);
  });

  it("builds an event's array once, on first read, frozen; a failure event shares the array of the one before", () => {
    const c = new InstanceCache();
    c.replace([inst('b'), inst('a')]);
    const first = c.current()!;
    const arr = first.instances;
    expect(Object.isFrozen(arr)).toBe(true);
    expect(first.instances).toBe(arr);
    // Spreading and structural equality see `instances` like a plain property.
    expect({ ...first }).toEqual({ instances: [inst('a'), inst('b')] });
    expect(JSON.parse(JSON.stringify(first))).toEqual({ instances: [inst('a'), inst('b')] });
    c.fail(new Error('down'));
    expect(c.current()!.instances).toBe(arr);
    // The failure event says nothing changed, so an incremental consumer does no work.
    expect(c.current()!.changes).toEqual({ since: first, added: [], removed: [] });
    c.update({ put: [inst('c')] });
    expect(c.current()!.instances).not.toBe(arr);
    expect(first.instances).toEqual([inst('a'), inst('b')]);
  });

  it('fail before any read emits an empty error event', () => {
    const c = new InstanceCache();
    c.fail(new Error('x'));
    expect(c.current()?.instances).toEqual([]);
    expect(c.current()?.error?.message).toBe('x');
  });

  it('rejects empty keys and addresses with a TypeError, applying nothing', () => {
    const c = new InstanceCache();
    c.replace([inst('a')]);
    const before = c.current();
    expect(() => c.replace([inst('b'), { key: '', address: 'x' }])).toThrow(TypeError);
    expect(() => c.update({ put: [inst('b'), { key: 'c', address: '' }] })).toThrow(/"c"/);
    expect(c.current()).toBe(before);
    expect(c.size).toBe(1);
  });

  it('is hot: replays only the latest event to late subscribers', () => {
    const c = new InstanceCache();
    c.replace([inst('a')]);
    c.update({ put: [inst('b')] });
    const r = recorder(c);
    expect(r.events).toEqual([c.current()]);
  });

  it('completes on close, ignores updates after it, and never errors', () => {
    const c = new InstanceCache();
    const r = recorder(c);
    c.replace([inst('a')]);
    c.close();
    c.close();
    c.replace([inst('b')]);
    expect(c.closed).toBe(true);
    expect(r.completed).toBe(true);
    expect(r.errored).toBe(false);
    expect(keys(c.current())).toEqual(['a']);
    const late = recorder(c);
    expect(late.events).toHaveLength(1);
    expect(late.completed).toBe(true);
  });

  it('delivers events in order to every subscriber when a subscriber updates from inside its callback', () => {
    const c = new InstanceCache();
    const seenA: (string[] | undefined)[] = [];
    const seenB: (string[] | undefined)[] = [];
    c.events$.subscribe((e) => {
      seenA.push(keys(e));
      if (e.instances.length === 1) c.update({ put: [inst('b')] });
    });
    c.events$.subscribe((e) => seenB.push(keys(e)));
    c.replace([inst('a')]);
    expect(seenA).toEqual([['a'], ['a', 'b']]);
    expect(seenB).toEqual([['a'], ['a', 'b']]);
    expect(keys(c.current())).toEqual(['a', 'b']);
  });

  it('completes after pending events when closed from inside a subscriber', () => {
    const c = new InstanceCache();
    const seen: (string[] | undefined)[] = [];
    let completed = false;
    c.events$.subscribe((e) => {
      if (e.instances.length === 1) {
        c.update({ put: [inst('b')] });
        c.close();
      }
    });
    c.events$.subscribe({ next: (e) => seen.push(keys(e)), complete: () => (completed = true) });
    c.replace([inst('a')]);
    expect(seen).toEqual([['a'], ['a', 'b']]);
    expect(completed).toBe(true);
  });
});

// ---- property: InstanceCache against a Map model ------------------------------------------------------------

type Op =
  | { kind: 'update'; put: Instance[]; del: string[] }
  | { kind: 'replace'; all: Instance[] }
  | { kind: 'fail'; message: string };

const keyArb = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'B', 'aa', 'é');
const instanceArb = fc
  .record({ key: keyArb, address: fc.constantFrom('1', '2'), zone: fc.option(fc.constantFrom('x', 'y')) })
  .map(({ key, address, zone }) => (zone === null ? inst(key, address) : inst(key, address, { zone })));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('update' as const),
    put: fc.array(instanceArb, { maxLength: 4 }),
    del: fc.array(keyArb, { maxLength: 3 }),
  }),
  fc.record({ kind: fc.constant('replace' as const), all: fc.array(instanceArb, { maxLength: 6 }) }),
  fc.record({ kind: fc.constant('fail' as const), message: fc.constantFrom('e1', 'e2') }),
);

const sameSet = (a: readonly Instance[], b: readonly Instance[]) =>
  a.length === b.length && a.every((x, i) => sameInstance(x, b[i]!));

describe('InstanceCache (property)', () => {
  it('gives every event the set of its own moment, even when its instances are first read much later', () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.integer({ min: 4, max: 300 }),
        (ops, readOrder, bulk) => {
          const c = new InstanceCache();
          // A bulk of keys so the tree has several levels and copy-on-write has nodes to share.
          c.replace(Array.from({ length: bulk }, (_, i) => inst(`bulk-${String(i).padStart(4, '0')}`)));
          const events: InstancerEvent[] = [];
          const expected: string[][] = [];
          const model = new Map(c.current()!.instances.map((i) => [i.key, i]));
          c.events$.subscribe((e) => {
            // Record what the set is now, without reading e.instances.
            events.push(e);
            expected.push([...model.values()].map((i) => `${i.key}=${i.address}`).sort());
          });
          for (const op of ops) {
            if (op.kind === 'replace') {
              model.clear();
              for (const i of op.all) model.set(i.key, i);
              c.replace(op.all);
            } else if (op.kind === 'update') {
              const del = new Set(op.del);
              for (const i of op.put) if (!del.has(i.key)) model.set(i.key, i);
              for (const k of del) model.delete(k);
              c.update({ put: op.put, delete: op.del });
            } else c.fail(new Error(op.message));
          }
          // Read the events' sets in a random order, long after they were emitted.
          const order = readOrder.map((n) => n % events.length);
          for (let i = 0; i < events.length; i++) order.push(i);
          for (const i of order) {
            const got = events[i]!.instances.map((x) => `${x.key}=${x.address}`);
            expect(got).toEqual(expected[i]);
            expect(events[i]!.instances).toBe(events[i]!.instances);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('matches a Map model; every event sorted, unique, equal to the model, with consistent changes, only on change', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 30 }), (ops) => {
        const c = new InstanceCache();
        const events: InstancerEvent[] = [];
        c.events$.subscribe((e) => events.push(e));
        const model = new Map<string, Instance>();
        let modelError: string | undefined;
        let started = false;
        for (const op of ops) {
          const before = new Map(model);
          const errorBefore = modelError;
          const startedBefore = started;
          if (op.kind === 'fail') {
            modelError = op.message;
          } else {
            if (op.kind === 'replace') {
              model.clear();
              for (const i of op.all) model.set(i.key, i);
            } else {
              const del = new Set(op.del);
              for (const i of op.put) if (!del.has(i.key)) model.set(i.key, i);
              for (const k of del) model.delete(k);
            }
            modelError = undefined;
          }
          started = true;
          const n = events.length;
          if (op.kind === 'fail') c.fail(new Error(op.message));
          else if (op.kind === 'replace') c.replace(op.all);
          else c.update({ put: op.put, delete: op.del });

          const setChanged =
            before.size !== model.size ||
            [...model].some(([k, v]) => !before.has(k) || !sameInstance(before.get(k)!, v));
          const shouldEmit = !startedBefore || setChanged || errorBefore !== modelError;
          expect(events.length - n).toBe(shouldEmit ? 1 : 0);
          if (!shouldEmit) continue;
          const e = events.at(-1)!;
          const expected = [...model.values()].sort((x, y) => (x.key < y.key ? -1 : 1));
          expect(sameSet(e.instances, expected)).toBe(true);
          for (let i = 1; i < e.instances.length; i++) {
            expect(e.instances[i - 1]!.key < e.instances[i]!.key).toBe(true);
          }
          expect(e.error?.message).toBe(modelError);
          // Every update after the first carries changes; error events do not need them.
          if (op.kind !== 'fail' && startedBefore) expect(e.changes).toBeDefined();
          if (e.changes) {
            expect(e.changes.since).toBe(events[events.length - 2]);
            // since.instances - removed + added == instances
            const rebuilt = new Map(e.changes.since!.instances.map((i) => [i.key, i]));
            for (const r of e.changes.removed) {
              expect(sameInstance(rebuilt.get(r.key)!, r)).toBe(true);
              rebuilt.delete(r.key);
            }
            for (const a of e.changes.added) {
              expect(rebuilt.has(a.key)).toBe(false);
              rebuilt.set(a.key, a);
            }
            expect(
              sameSet(
                [...rebuilt.values()].sort((x, y) => (x.key < y.key ? -1 : 1)),
                e.instances,
              ),
            ).toBe(true);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
