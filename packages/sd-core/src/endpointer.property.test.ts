import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { endpointer } from './endpointer.js';
import { sameInstance } from './instance-cache.js';
import { FakeInstancer } from './testing/fake-instancer.js';
import type { Endpoint, FactoryResult, Instance } from './types.js';

// Instancer events are driven through a FakeInstancer: well-formed ones (set/add/remove/fail) carry `changes`
// and exercise the incremental path; raw ones (unsorted, duplicate keys, no changes) exercise the full diff.

type Op =
  | { kind: 'set'; list: Instance[] }
  | { kind: 'add'; list: Instance[] }
  | { kind: 'remove'; keys: string[] }
  | { kind: 'fail'; message: string }
  | { kind: 'raw'; list: Instance[] }
  | { kind: 'settle'; index: number; ok: boolean };

const keyArb = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f');
const instanceArb: fc.Arbitrary<Instance> = fc
  .record({
    key: keyArb,
    address: fc.constantFrom('1', '2', '3'),
    zone: fc.option(fc.constantFrom('x', 'y')),
  })
  .map(({ key, address, zone }) =>
    zone === null
      ? { key, address: `${key}:${address}` }
      : { key, address: `${key}:${address}`, metadata: { zone } },
  );
const listArb = fc.array(instanceArb, { maxLength: 6 });
const eventOps: fc.Arbitrary<Op>[] = [
  fc.record({ kind: fc.constant('set' as const), list: listArb }),
  fc.record({
    kind: fc.constant('add' as const),
    list: fc.array(instanceArb, { minLength: 1, maxLength: 3 }),
  }),
  fc.record({ kind: fc.constant('remove' as const), keys: fc.array(keyArb, { minLength: 1, maxLength: 3 }) }),
  fc.record({ kind: fc.constant('fail' as const), message: fc.constantFrom('e1', 'e2') }),
  fc.record({ kind: fc.constant('raw' as const), list: listArb }),
];
const settleOp: fc.Arbitrary<Op> = fc.record({
  kind: fc.constant('settle' as const),
  index: fc.nat(),
  ok: fc.boolean(),
});

function apply(fake: FakeInstancer, op: Op): void {
  if (op.kind === 'set') fake.set(op.list);
  else if (op.kind === 'add') fake.add(...op.list);
  else if (op.kind === 'remove') fake.remove(...op.keys);
  else if (op.kind === 'fail') fake.fail(op.message);
  else if (op.kind === 'raw') fake.emit({ instances: op.list });
}

/** What the endpointer must follow: the set of the latest event, duplicate keys collapsed (the last wins). */
function visible(fake: FakeInstancer): Map<string, Instance> {
  return new Map((fake.current()?.instances ?? []).map((i) => [i.key, i]));
}

/** How many instance versions enter the set going from `prev` to `next` (new keys, or changed values). */
function entering(prev: Map<string, Instance>, next: Map<string, Instance>): number {
  let n = 0;
  for (const [key, inst] of next) {
    const old = prev.get(key);
    if (old === undefined || !sameInstance(old, inst)) n++;
  }
  return n;
}

interface Made {
  readonly instance: Instance;
  readonly endpoint: Endpoint;
  closes: number;
}

const sortedKeys = (m: Map<string, Instance>) => [...m.keys()].sort();

describe('endpointer (property)', () => {
  it('sync factory: one call per instance version, endpoints() matches the set, every endpoint closed exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(...eventOps), { maxLength: 25 }), async (ops) => {
        const fake = new FakeInstancer();
        const made: Made[] = [];
        const byEndpoint = new Map<Endpoint, Made>();
        const e = endpointer(fake, (instance): FactoryResult => {
          const m: Made = { instance, endpoint: async () => instance.address, closes: 0 };
          made.push(m);
          byEndpoint.set(m.endpoint, m);
          return {
            endpoint: m.endpoint,
            close: () => {
              m.closes++;
            },
          };
        });
        let versions = 0;
        let prev = new Map<string, Instance>();
        for (const op of ops) {
          const before = e.endpoints();
          apply(fake, op);
          const next = visible(fake);
          versions += entering(prev, next);
          const setChanged = entering(prev, next) > 0 || entering(next, prev) > 0;
          prev = next;

          expect(made).toHaveLength(versions);
          const current = e.endpoints().map((ep) => byEndpoint.get(ep)!);
          expect(current.map((m) => m.instance.key)).toEqual(sortedKeys(next));
          for (const m of current) {
            expect(sameInstance(m.instance, next.get(m.instance.key)!)).toBe(true);
            expect(m.closes).toBe(0);
          }
          // Everything else it made was closed exactly once.
          const live = new Set(current);
          for (const m of made) if (!live.has(m)) expect(m.closes).toBe(1);
          // O(1) snapshot: the same array unless the set changed.
          if (!setChanged) expect(e.endpoints()).toBe(before);
        }
        await e.close();
        for (const m of made) expect(m.closes).toBe(1);
        expect(e.endpoints()).toEqual([]);
        expect(fake.subscriberCount).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('async factory settling in any order, failing at random: never publishes a stale or removed result, heals on the next event, closes everything once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof({ arbitrary: fc.oneof(...eventOps), weight: 2 }, { arbitrary: settleOp, weight: 3 }),
          {
            maxLength: 40,
          },
        ),
        async (ops) => {
          const fake = new FakeInstancer();
          interface Call {
            readonly instance: Instance;
            readonly resolve: (ok: boolean) => void;
            made?: Made;
          }
          const pending: Call[] = [];
          const calls: Call[] = [];
          const byEndpoint = new Map<Endpoint, Made>();
          const published = new Set<Made>();
          const e = endpointer(
            fake,
            (instance) =>
              new Promise<FactoryResult>((resolve, reject) => {
                const call: Call = {
                  instance,
                  resolve: (ok) => {
                    if (!ok) return reject(new Error(`cannot dial ${instance.address}`));
                    const m: Made = { instance, endpoint: async () => instance.address, closes: 0 };
                    call.made = m;
                    byEndpoint.set(m.endpoint, m);
                    resolve({
                      endpoint: m.endpoint,
                      close: () => {
                        m.closes++;
                      },
                    });
                  },
                };
                pending.push(call);
                calls.push(call);
              }),
          );
          e.endpoints$.subscribe((eps) => {
            for (const ep of eps) published.add(byEndpoint.get(ep)!);
          });
          const settleOne = (index: number, ok: boolean) => {
            const [call] = pending.splice(index % pending.length, 1);
            call!.resolve(ok);
          };
          const flush = () => new Promise<void>((r) => setImmediate(r));
          const check = () => {
            const next = visible(fake);
            const current = e.endpoints().map((ep) => byEndpoint.get(ep)!);
            const keys = current.map((m) => m.instance.key);
            expect(keys).toEqual([...keys].sort());
            expect(new Set(keys).size).toBe(keys.length);
            for (const m of current) {
              // Only the current version of an instance still in the set, and not closed.
              expect(next.has(m.instance.key)).toBe(true);
              expect(sameInstance(m.instance, next.get(m.instance.key)!)).toBe(true);
              expect(m.closes).toBe(0);
            }
            for (const call of calls) expect(call.made?.closes ?? 0).toBeLessThanOrEqual(1);
          };

          for (const op of ops) {
            if (op.kind === 'settle') {
              if (pending.length > 0) settleOne(op.index, op.ok);
            } else apply(fake, op);
            await flush();
            check();
          }
          // Heal: let every call succeed; failed instances are retried on the next event.
          for (let round = 0; round < 3; round++) {
            while (pending.length > 0) settleOne(0, true);
            await flush();
            fake.emit(fake.current() ?? { instances: [] });
            await flush();
          }
          while (pending.length > 0) settleOne(0, true);
          await flush();
          check();
          const next = visible(fake);
          expect(e.endpoints().map((ep) => byEndpoint.get(ep)!.instance.key)).toEqual(sortedKeys(next));

          await e.close();
          for (const call of calls) if (call.made) expect(call.made.closes).toBe(1);
          // Every result ever published was closed exactly once in the end.
          for (const m of published) expect(m.closes).toBe(1);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('endpointer (property, reads between batches of changes)', () => {
  it('endpoints() equals the set however many changes happened since the last read', () => {
    // Up to 60 keys, so the changes between two reads can be few (spliced into a copy) or many (merged).
    const wideKey = fc.integer({ min: 0, max: 59 }).map((n) => `k${String(n).padStart(2, '0')}`);
    const wideInstance = fc
      .record({ key: wideKey, address: fc.constantFrom('1', '2') })
      .map(({ key, address }): Instance => ({ key, address: `${key}:${address}` }));
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), list: fc.array(wideInstance, { maxLength: 60 }) }),
      fc.record({
        kind: fc.constant('add' as const),
        list: fc.array(wideInstance, { minLength: 1, maxLength: 25 }),
      }),
      fc.record({
        kind: fc.constant('remove' as const),
        keys: fc.array(wideKey, { minLength: 1, maxLength: 25 }),
      }),
      fc.record({ kind: fc.constant('read' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const fake = new FakeInstancer([]);
        const byEndpoint = new Map<Endpoint, Instance>();
        const e = endpointer(fake, (inst) => {
          const endpoint: Endpoint = async () => inst.address;
          byEndpoint.set(endpoint, inst);
          return { endpoint };
        });
        let last = e.endpoints();
        let opsSinceRead = false;
        for (const o of ops) {
          if (o.kind === 'read') {
            const now = e.endpoints();
            const got = now.map((ep) => byEndpoint.get(ep)!);
            const want = [...visible(fake).values()].sort((a, b) => (a.key < b.key ? -1 : 1));
            expect(got.map((i) => `${i.key}=${i.address}`)).toEqual(want.map((i) => `${i.key}=${i.address}`));
            expect(Object.isFrozen(now)).toBe(true);
            // Nothing happened since the last read: the very same array.
            if (!opsSinceRead) expect(now).toBe(last);
            last = now;
            opsSinceRead = false;
          } else {
            apply(fake, o);
            opsSinceRead = true;
          }
        }
        void e.close();
      }),
      { numRuns: 300 },
    );
  });
});
