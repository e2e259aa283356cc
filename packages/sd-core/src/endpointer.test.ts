import { filter, firstValueFrom, timeout } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { endpointer } from './endpointer.js';
import { FakeClock } from './testing/fake-clock.js';
import { FakeInstancer } from './testing/fake-instancer.js';
import { instance } from './testing/instances.js';
import { record } from './testing/record.js';
import { recordingLogger } from './testing/recording-logger.js';
import type { Endpoint, Factory, FactoryResult, Instance, InstancerEvent, Logger } from './types.js';

interface Made {
  readonly instance: Instance;
  readonly endpoint: Endpoint;
  closes: number;
}

/** A factory that records what it makes and how often each result is closed. */
function recordingFactory() {
  const made: Made[] = [];
  const factory: Factory = (inst) => {
    const m: Made = { instance: inst, endpoint: async () => inst.address, closes: 0 };
    made.push(m);
    return {
      endpoint: m.endpoint,
      close: () => {
        m.closes++;
      },
    };
  };
  const addresses = (eps: readonly Endpoint[]) =>
    eps.map((ep) => made.find((m) => m.endpoint === ep)?.instance.address ?? '?');
  const closesOf = (address: string) =>
    made.filter((m) => m.instance.address === address).map((m) => m.closes);
  return { factory, made, addresses, closesOf };
}

/** A promise with its resolve/reject, for async factories resolved by hand. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every queued microtask (promise callbacks) run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

describe('endpointer: options', () => {
  const fake = new FakeInstancer([]);
  const f: Factory = () => ({ endpoint: async () => 1 });
  it.each([-1, Number.NaN, '5' as unknown as number])(
    'rejects invalidateOnErrorMs %s with a TypeError naming it',
    (bad) => {
      expect(() => endpointer(fake, f, { invalidateOnErrorMs: bad })).toThrow(TypeError);
      expect(() => endpointer(fake, f, { invalidateOnErrorMs: bad })).toThrow(/invalidateOnErrorMs/);
    },
  );
  it('rejects a non-instancer, a non-function factory, a bad clock or logger', () => {
    expect(() => endpointer({} as FakeInstancer, f)).toThrow(TypeError);
    expect(() => endpointer(null as unknown as FakeInstancer, f)).toThrow(/null/);
    expect(() => endpointer(fake, 'f' as unknown as Factory)).toThrow(/factory/);
    expect(() => endpointer(fake, f, { clock: {} as FakeClock })).toThrow(/clock/);
    expect(() => endpointer(fake, f, { logger: {} as Logger })).toThrow(/logger/);
    for (const bad of [-1, Number.NaN, '5' as unknown as number]) {
      expect(() => endpointer(fake, f, { closeTimeoutMs: bad })).toThrow(
        /closeTimeoutMs must be a number >= 0/,
      );
    }
  });
  it('accepts 0, a positive number, Infinity, or nothing', async () => {
    for (const ms of [0, 10, Number.POSITIVE_INFINITY, undefined]) {
      const e = endpointer(fake, f, ms === undefined ? {} : { invalidateOnErrorMs: ms });
      await e.close();
    }
  });
});

describe('endpointer: factory calls, reuse and close', () => {
  it('makes one endpoint per instance, ordered by key, once per new instance, reusing unchanged ones', async () => {
    const fake = new FakeInstancer(['b:1', 'a:1']);
    const h = recordingFactory();
    const e = endpointer(fake, h.factory);
    expect(h.addresses(e.endpoints())).toEqual(['a:1', 'b:1']);
    expect(h.made).toHaveLength(2);
    const [a] = e.endpoints();
    fake.add('c:1');
    fake.fail('x'); // an error event: nothing new is made
    fake.set(['a:1', 'b:1', 'c:1']);
    expect(h.made.map((m) => m.instance.key)).toEqual(['a:1', 'b:1', 'c:1']);
    expect(e.endpoints()[0]).toBe(a);
    expect(h.addresses(e.endpoints())).toEqual(['a:1', 'b:1', 'c:1']);
    await e.close();
  });

  it('closes the endpoint of a removed instance once, and only that one', async () => {
    const fake = new FakeInstancer(['a:1', 'b:1']);
    const h = recordingFactory();
    const e = endpointer(fake, h.factory);
    fake.remove('a:1');
    expect(h.closesOf('a:1')).toEqual([1]);
    expect(h.closesOf('b:1')).toEqual([0]);
    expect(h.addresses(e.endpoints())).toEqual(['b:1']);
    fake.add('a:1'); // back again: a new endpoint
    expect(h.closesOf('a:1')).toEqual([1, 0]);
    expect(h.made).toHaveLength(3);
    await e.close();
  });

  it('treats a changed address or metadata as a replacement: closes the old, makes the new', async () => {
    const fake = new FakeInstancer([{ key: 'k', address: 'x:1' }]);
    const h = recordingFactory();
    const e = endpointer(fake, h.factory);
    fake.add({ key: 'k', address: 'x:2' });
    expect(h.made.map((m) => [m.instance.address, m.closes])).toEqual([
      ['x:1', 1],
      ['x:2', 0],
    ]);
    fake.add({ key: 'k', address: 'x:2', metadata: { zone: 'b' } });
    expect(h.made).toHaveLength(3);
    expect(h.made[1]!.closes).toBe(1);
    expect(h.made[2]!.instance.metadata).toEqual({ zone: 'b' });
    expect(e.endpoints()).toEqual([h.made[2]!.endpoint]);
    await e.close();
  });

  it('close() closes every endpoint once, is idempotent, empties endpoints(), and does not stop the instancer', async () => {
    const fake = new FakeInstancer(['a:1', 'b:1']);
    const h = recordingFactory();
    const e = endpointer(fake, h.factory);
    expect(fake.subscriberCount).toBe(1);
    const first = e.close();
    expect(e.close()).toBe(first);
    await first;
    await e.close();
    expect(h.made.map((m) => m.closes)).toEqual([1, 1]);
    expect(e.endpoints()).toEqual([]);
    expect(fake.stopped).toBe(false);
    expect(fake.subscriberCount).toBe(0);
    fake.add('c:1');
    expect(h.made).toHaveLength(2);
    expect(e.endpoints()).toEqual([]);
  });

  it('is disposable with await using', async () => {
    const fake = new FakeInstancer(['a:1']);
    const h = recordingFactory();
    {
      await using e = endpointer(fake, h.factory);
      expect(e.endpoints()).toHaveLength(1);
    }
    expect(h.made[0]!.closes).toBe(1);
  });

  it('close() waits at most closeTimeoutMs for a factory that never settles (or a close that hangs), logs the keys, and closes late results when they arrive', async () => {
    const fake = new FakeInstancer(['a:1', 'b:1', 'c:1']);
    const clock = new FakeClock();
    const logger = recordingLogger();
    let lateA: ((r: FactoryResult) => void) | undefined;
    let lateAClosed = false;
    const e = endpointer(
      fake,
      (inst): FactoryResult | Promise<FactoryResult> => {
        if (inst.key === 'a:1') return new Promise<FactoryResult>((r) => (lateA = r)); // a dial that hangs
        if (inst.key === 'b:1')
          return { endpoint: async () => 'b', close: () => new Promise<void>(() => {}) };
        return { endpoint: async () => 'c' };
      },
      { clock, logger, closeTimeoutMs: 2_000 },
    );
    let closed = false;
    const closing = e.close().then(() => {
      closed = true;
    });
    await settle();
    clock.advance(1_999);
    await settle();
    expect(closed).toBe(false); // still waiting within the bound
    clock.advance(1);
    await closing;
    const warning = logger.records.find((r) => r.level === 'warn');
    expect(warning?.msg).toMatch(/close\(\) stopped waiting/);
    expect(warning?.obj).toMatchObject({ closeTimeoutMs: 2_000, pendingFactories: 1, pendingCloses: 1 });
    expect([...((warning?.obj.keys as string[] | undefined) ?? [])].sort()).toEqual(['a:1', 'b:1']);
    expect(clock.pendingTimers).toBe(0);
    // The hung factory finally answers: its endpoint is closed, never published.
    lateA!({
      endpoint: async () => 'a',
      close: () => {
        lateAClosed = true;
      },
    });
    await settle();
    expect(lateAClosed).toBe(true);
    expect(e.endpoints()).toEqual([]);
  });

  it('close() resolves at once when nothing is pending, without a timer; closeTimeoutMs: Infinity waits for ever', async () => {
    const clock = new FakeClock();
    const quick = endpointer(new FakeInstancer(['a:1']), () => ({ endpoint: async () => 1 }), { clock });
    await quick.close();
    expect(clock.pendingTimers).toBe(0);
    let release: ((r: FactoryResult) => void) | undefined;
    const e = endpointer(new FakeInstancer(['a:1']), () => new Promise<FactoryResult>((r) => (release = r)), {
      clock,
      closeTimeoutMs: Number.POSITIVE_INFINITY,
    });
    let closed = false;
    const closing = e.close().then(() => {
      closed = true;
    });
    clock.advance(1e9);
    await settle();
    expect(closed).toBe(false);
    release!({ endpoint: async () => 1 });
    await closing;
  });

  it('logs close errors (thrown or rejected) with the key and never throws them; close() waits for async closes', async () => {
    const fake = new FakeInstancer(['a:1', 'b:1', 'c:1']);
    const logger = recordingLogger();
    const entries = logger.records;
    let asyncClosed = false;
    const e = endpointer(
      fake,
      (inst): FactoryResult => ({
        endpoint: async () => inst.address,
        close:
          inst.key === 'a:1'
            ? () => {
                throw new Error('sync close failure');
              }
            : inst.key === 'b:1'
              ? () => Promise.reject(new Error('async close failure'))
              : async () => {
                  await settle();
                  asyncClosed = true;
                },
      }),
      { logger },
    );
    fake.remove('a:1');
    expect(entries.filter((x) => x.level === 'warn').map((x) => x.obj.key)).toEqual(['a:1']);
    await expect(e.close()).resolves.toBeUndefined();
    expect(asyncClosed).toBe(true);
    expect(entries.filter((x) => x.level === 'warn').map((x) => x.obj.key)).toEqual(['a:1', 'b:1']);
    expect(String(entries.find((x) => x.obj.key === 'b:1')?.obj.err)).toMatch(/async close failure/);
  });

  it('keeps the last endpoints when the instancer completes', async () => {
    const fake = new FakeInstancer(['a:1']);
    const h = recordingFactory();
    const e = endpointer(fake, h.factory);
    fake.stop();
    expect(h.addresses(e.endpoints())).toEqual(['a:1']);
    expect(h.made[0]!.closes).toBe(0);
    await e.close();
    expect(h.made[0]!.closes).toBe(1);
  });
});

describe('endpointer: failing factories', () => {
  function flaky(failures: Map<string, number>, mode: 'throw' | 'reject' | 'bad') {
    const calls: string[] = [];
    const factory: Factory = (inst) => {
      calls.push(inst.key);
      const left = failures.get(inst.key) ?? 0;
      if (left > 0) {
        failures.set(inst.key, left - 1);
        if (mode === 'throw') throw new Error(`cannot dial ${inst.address}`);
        if (mode === 'reject') return Promise.reject(new Error(`cannot dial ${inst.address}`));
        return { endpoint: 'not a function' } as unknown as FactoryResult;
      }
      return mode === 'reject'
        ? Promise.resolve({ endpoint: async () => inst.address })
        : { endpoint: async () => inst.address };
    };
    return { factory, calls };
  }

  it.each(['throw', 'reject', 'bad'] as const)(
    'a factory that fails (%s) skips the instance, warns with its key, and is retried on the next event',
    async (mode) => {
      const fake = new FakeInstancer(['a:1', 'b:1']);
      const logger = recordingLogger();
      const entries = logger.records;
      const { factory, calls } = flaky(new Map([['b:1', 2]]), mode);
      const e = endpointer(fake, factory, { logger });
      await settle();
      expect(e.endpoints()).toHaveLength(1);
      expect(calls).toEqual(['a:1', 'b:1']);
      expect(entries.filter((x) => x.level === 'warn').map((x) => x.obj.key)).toEqual(['b:1']);
      // Any event retries: an unrelated addition…
      fake.add('c:1');
      await settle();
      expect(calls).toEqual(['a:1', 'b:1', 'c:1', 'b:1']);
      expect(e.endpoints()).toHaveLength(2);
      // …or an error event; this time it works.
      fake.fail('source down');
      await settle();
      expect(calls).toEqual(['a:1', 'b:1', 'c:1', 'b:1', 'b:1']);
      expect(await Promise.all(e.endpoints().map((ep) => ep(undefined)))).toEqual(['a:1', 'b:1', 'c:1']);
      // Once made, it is not made again.
      fake.add('d:1');
      await settle();
      expect(calls.filter((k) => k === 'b:1')).toHaveLength(3);
      await e.close();
    },
  );

  it('does not retry an instance that was removed meanwhile', async () => {
    const fake = new FakeInstancer(['a:1']);
    const { factory, calls } = flaky(new Map([['a:1', 5]]), 'throw');
    const e = endpointer(fake, factory);
    fake.set(['b:1']);
    fake.add('c:1');
    expect(calls).toEqual(['a:1', 'b:1', 'c:1']);
    await e.close();
  });

  it('retries a failed instance only once per event', async () => {
    const fake = new FakeInstancer(['a:1']);
    const { factory, calls } = flaky(new Map([['a:1', 10]]), 'throw');
    const e = endpointer(fake, factory);
    fake.add('b:1');
    fake.add('c:1');
    expect(calls).toEqual(['a:1', 'b:1', 'a:1', 'c:1', 'a:1']);
    await e.close();
  });
});

describe('endpointer: async factories', () => {
  function asyncFactory() {
    const pending = new Map<string, ReturnType<typeof deferred<FactoryResult>>[]>();
    const closed: string[] = [];
    const factory: Factory = (inst) => {
      const d = deferred<FactoryResult>();
      pending.set(inst.address, [...(pending.get(inst.address) ?? []), d]);
      return d.promise;
    };
    const resolve = (address: string, i = 0) =>
      pending.get(address)![i]!.resolve({
        endpoint: async () => address,
        close: () => {
          closed.push(address);
        },
      });
    return { factory, pending, closed, resolve };
  }

  it('publishes results as they resolve, in key order', async () => {
    const fake = new FakeInstancer(['a:1', 'b:1']);
    const f = asyncFactory();
    const e = endpointer(fake, f.factory);
    expect(e.endpoints()).toEqual([]);
    f.resolve('b:1');
    await settle();
    expect(await Promise.all(e.endpoints().map((ep) => ep(0)))).toEqual(['b:1']);
    f.resolve('a:1');
    await settle();
    expect(await Promise.all(e.endpoints().map((ep) => ep(0)))).toEqual(['a:1', 'b:1']);
    await e.close();
    expect(f.closed.sort()).toEqual(['a:1', 'b:1']);
  });

  it('closes and never publishes a result whose instance was removed while it was pending', async () => {
    const fake = new FakeInstancer(['a:1']);
    const f = asyncFactory();
    const e = endpointer(fake, f.factory);
    const seen = record(e.endpoints$);
    fake.remove('a:1');
    f.resolve('a:1');
    await settle();
    expect(e.endpoints()).toEqual([]);
    expect(f.closed).toEqual(['a:1']);
    expect(seen.values.every((v) => v.length === 0)).toBe(true);
    await e.close();
    expect(f.closed).toEqual(['a:1']);
  });

  it('an older resolution never overwrites a newer version of the same key', async () => {
    const fake = new FakeInstancer([{ key: 'k', address: 'v:1' }]);
    const f = asyncFactory();
    const e = endpointer(fake, f.factory);
    fake.add({ key: 'k', address: 'v:2' });
    f.resolve('v:2');
    await settle();
    f.resolve('v:1'); // late
    await settle();
    expect(await Promise.all(e.endpoints().map((ep) => ep(0)))).toEqual(['v:2']);
    expect(f.closed).toEqual(['v:1']);
    await e.close();
    expect(f.closed).toEqual(['v:1', 'v:2']);
  });

  it('a key removed and added back while its first factory call is pending ends with the second result only', async () => {
    const fake = new FakeInstancer(['a:1']);
    const f = asyncFactory();
    const e = endpointer(fake, f.factory);
    fake.remove('a:1');
    fake.add('a:1');
    expect(f.pending.get('a:1')).toHaveLength(2);
    f.resolve('a:1', 1);
    f.resolve('a:1', 0);
    await settle();
    expect(e.endpoints()).toHaveLength(1);
    expect(f.closed).toEqual(['a:1']);
    await e.close();
    expect(f.closed).toEqual(['a:1', 'a:1']);
  });

  it('close() waits for pending factories and closes what they return, without publishing it', async () => {
    const fake = new FakeInstancer(['a:1']);
    const f = asyncFactory();
    const e = endpointer(fake, f.factory);
    const seen = record(e.endpoints$);
    let closeDone = false;
    const closing = e.close().then(() => {
      closeDone = true;
    });
    await settle();
    expect(closeDone).toBe(false);
    f.resolve('a:1');
    await closing;
    expect(f.closed).toEqual(['a:1']);
    expect(e.endpoints()).toEqual([]);
    expect(seen.values.every((v) => v.length === 0)).toBe(true);
  });

  it('a rejection after removal is neither logged as a warning nor retried', async () => {
    const fake = new FakeInstancer(['a:1']);
    const f = asyncFactory();
    const logger = recordingLogger();
    const entries = logger.records;
    const e = endpointer(fake, f.factory, { logger });
    fake.remove('a:1');
    f.pending.get('a:1')![0]!.reject(new Error('late failure'));
    await settle();
    fake.add('b:1');
    expect(f.pending.get('a:1')).toHaveLength(1);
    expect(entries.filter((x) => x.level === 'warn')).toEqual([]);
    f.resolve('b:1');
    await e.close();
  });

  it('coalesces results resolving together into one new snapshot', async () => {
    const fake = new FakeInstancer(['a:1', 'b:1', 'c:1']);
    const e = endpointer(fake, async (inst) => ({ endpoint: async () => inst.address }));
    const seen = record(e.endpoints$);
    await settle();
    expect(seen.values.map((v) => v.length)).toEqual([0, 3]);
    await e.close();
  });
});

describe('endpointer: malformed events', () => {
  it('never gives duplicate endpoints for duplicate keys (last wins)', async () => {
    const fake = new FakeInstancer();
    const h = recordingFactory();
    const e = endpointer(fake, h.factory);
    fake.emit({
      instances: [
        { key: 'k', address: 'x:1' },
        { key: 'j', address: 'j:1' },
        { key: 'k', address: 'x:2' },
      ],
    });
    expect(h.addresses(e.endpoints())).toEqual(['j:1', 'x:2']);
    // Duplicates in incremental changes too.
    const since = fake.current()!;
    fake.emit({
      instances: since.instances,
      changes: { since, added: [instance('z:1'), instance('z:1')], removed: [] },
    });
    expect(h.addresses(e.endpoints())).toEqual(['j:1', 'x:2', 'z:1']);
    expect(h.made.filter((m) => m.instance.key === 'z:1')).toHaveLength(1);
    await e.close();
  });

  it('logs an event it cannot read and keeps going', async () => {
    const fake = new FakeInstancer(['a:1']);
    const logger = recordingLogger();
    const entries = logger.records;
    const h = recordingFactory();
    const e = endpointer(fake, h.factory, { logger });
    fake.emit({ instances: [null as unknown as Instance] });
    expect(entries.some((x) => x.level === 'error')).toBe(true);
    fake.set(['b:1']);
    expect(h.addresses(e.endpoints())).toEqual(['b:1']);
    await e.close();
  });
});

describe('endpointer: incremental changes', () => {
  /** An instances array that throws if anyone reads it. */
  const untouchable = () =>
    new Proxy([] as Instance[], {
      get(target, prop) {
        if (prop === 'length' || prop === Symbol.iterator || typeof prop === 'string') {
          throw new Error(`read instances.${String(prop)}`);
        }
        return Reflect.get(target, prop);
      },
    });

  it('applies changes from the event it processed last without reading the whole set', async () => {
    const fake = new FakeInstancer(['a:1', 'b:1']);
    const h = recordingFactory();
    const logger = recordingLogger();
    const entries = logger.records;
    const e = endpointer(fake, h.factory, { logger });
    const since = fake.current()!;
    const next: InstancerEvent = {
      instances: untouchable(),
      changes: { since, added: [instance('c:1')], removed: [instance('a:1')] },
    };
    fake.emit(next);
    expect(entries.filter((x) => x.level === 'error')).toEqual([]);
    expect(h.addresses(e.endpoints())).toEqual(['b:1', 'c:1']);
    // And again, chained on that event.
    fake.emit({ instances: untouchable(), changes: { since: next, added: [instance('d:1')], removed: [] } });
    expect(h.addresses(e.endpoints())).toEqual(['b:1', 'c:1', 'd:1']);
    await e.close();
  });

  it('diffs the whole set when changes are relative to an event it did not process', async () => {
    const fake = new FakeInstancer(['a:1']);
    const h = recordingFactory();
    const e = endpointer(fake, h.factory);
    const other: InstancerEvent = { instances: [] };
    fake.emit({
      instances: [instance('a:1'), instance('b:1')],
      changes: { since: other, added: [instance('bogus:1')], removed: [] },
    });
    expect(h.addresses(e.endpoints())).toEqual(['a:1', 'b:1']);
    expect(h.made).toHaveLength(2);
    await e.close();
  });
});

describe('endpointer: endpoints() snapshot and endpoints$', () => {
  it('returns the same frozen array until the set changes', async () => {
    const fake = new FakeInstancer(['a:1', 'b:1']);
    const h = recordingFactory();
    const e = endpointer(fake, h.factory);
    const s1 = e.endpoints();
    expect(Object.isFrozen(s1)).toBe(true);
    expect(e.endpoints()).toBe(s1);
    fake.fail('down'); // error, no invalidation: no change
    fake.set(['a:1', 'b:1']); // error cleared, same set
    fake.emit({ instances: [instance('b:1'), instance('a:1')] }); // same set, unsorted, no changes
    expect(e.endpoints()).toBe(s1);
    fake.add('c:1');
    const s2 = e.endpoints();
    expect(s2).not.toBe(s1);
    expect(s2).toHaveLength(3);
    expect(e.endpoints()).toBe(s2);
    await e.close();
  });

  it('endpoints$ replays the current snapshot, emits each change once, and completes (with an empty one) after close', async () => {
    const fake = new FakeInstancer(['a:1']);
    const h = recordingFactory();
    const e = endpointer(fake, h.factory);
    fake.add('b:1');
    const r = record(e.endpoints$);
    expect(r.values).toEqual([e.endpoints()]);
    fake.fail('x');
    fake.add('c:1');
    expect(r.values).toHaveLength(2);
    expect(r.values[1]).toBe(e.endpoints());
    const late = record(e.endpoints$);
    expect(late.values).toEqual([e.endpoints()]);
    await e.close();
    expect(r.values.at(-1)).toEqual([]);
    expect(r.state).toEqual({ completed: true, errored: false });
    const afterClose = record(e.endpoints$);
    expect(afterClose.state.completed).toBe(true);
  });

  it('a subscriber that arrives after unobserved changes gets the current set, not a stale one', async () => {
    const fake = new FakeInstancer(['a:1']);
    const h = recordingFactory();
    const e = endpointer(fake, h.factory);
    const first = record(e.endpoints$);
    first.unsubscribe();
    // Nobody observes these: the endpointer only marks its snapshot stale.
    fake.add('b:1');
    fake.remove('a:1');
    fake.add('c:1');
    const late = record(e.endpoints$);
    expect(late.values).toHaveLength(1);
    expect(h.addresses(late.values[0]!)).toEqual(['b:1', 'c:1']);
    expect(late.values[0]).toBe(e.endpoints());
    fake.add('d:1');
    expect(h.addresses(late.values.at(-1)!)).toEqual(['b:1', 'c:1', 'd:1']);
    await e.close();
  });

  it('keeps the same array when a change is undone before anyone looked', async () => {
    const fake = new FakeInstancer(['a:1', 'b:1']);
    const h = recordingFactory();
    const e = endpointer(fake, h.factory);
    const s1 = e.endpoints();
    fake.add('c:1');
    fake.remove('c:1');
    expect(e.endpoints()).toBe(s1);
    await e.close();
  });

  it('starts with an empty snapshot for an instancer that has not emitted yet', async () => {
    const fake = new FakeInstancer();
    const e = endpointer(fake, recordingFactory().factory);
    const r = record(e.endpoints$);
    expect(r.values).toEqual([[]]);
    await e.close();
  });

  it('stays consistent when a factory drives the instancer re-entrantly', async () => {
    const fake = new FakeInstancer(['a:1']);
    const made: string[] = [];
    const e = endpointer(fake, (inst) => {
      made.push(inst.key);
      if (inst.key === 'b:1') fake.add('c:1');
      return { endpoint: async () => inst.key };
    });
    fake.add('b:1');
    expect(made).toEqual(['a:1', 'b:1', 'c:1']);
    expect(await Promise.all(e.endpoints().map((ep) => ep(0)))).toEqual(['a:1', 'b:1', 'c:1']);
    await e.close();
  });

  it('can be closed from an endpoints$ subscriber', async () => {
    const fake = new FakeInstancer(['a:1']);
    const h = recordingFactory();
    const e = endpointer(fake, h.factory);
    let closing: Promise<void> | undefined;
    const r = record(e.endpoints$);
    e.endpoints$.subscribe((eps) => {
      if (eps.length === 2) closing = e.close();
    });
    fake.add('b:1');
    await closing;
    expect(h.made.map((m) => m.closes)).toEqual([1, 1]);
    expect(r.values.map((v) => v.length)).toEqual([1, 2, 0]);
    expect(r.state.completed).toBe(true);
  });
});

describe('endpointer: instancer errors and invalidateOnErrorMs', () => {
  function setup(invalidateOnErrorMs?: number) {
    const fake = new FakeInstancer(['a:1', 'b:1']);
    const clock = new FakeClock();
    const h = recordingFactory();
    const e = endpointer(
      fake,
      h.factory,
      invalidateOnErrorMs === undefined ? { clock } : { clock, invalidateOnErrorMs },
    );
    return { fake, clock, h, e };
  }

  it('keeps the last known endpoints while the source fails, without the option', async () => {
    const { fake, clock, h, e } = setup();
    fake.fail('down');
    clock.advance(1e9);
    expect(h.addresses(e.endpoints())).toEqual(['a:1', 'b:1']);
    expect(clock.pendingTimers).toBe(0);
    expect(h.made.map((m) => m.closes)).toEqual([0, 0]);
    await e.close();
  });

  it('drops (and closes) them exactly invalidateOnErrorMs after the first error', async () => {
    const { fake, clock, h, e } = setup(1000);
    clock.advance(50);
    fake.fail('down');
    clock.advance(999);
    expect(e.endpoints()).toHaveLength(2);
    expect(h.made.map((m) => m.closes)).toEqual([0, 0]);
    clock.advance(1);
    expect(e.endpoints()).toEqual([]);
    expect(h.made.map((m) => m.closes)).toEqual([1, 1]);
    await e.close();
    expect(h.made.map((m) => m.closes)).toEqual([1, 1]);
  });

  it('does not restart the countdown on later errors', async () => {
    const { fake, clock, e } = setup(1000);
    fake.fail('down');
    clock.advance(600);
    fake.fail('still down, differently');
    clock.advance(400);
    expect(e.endpoints()).toEqual([]);
    await e.close();
  });

  it('a good event before the deadline cancels it; the next failure streak starts a new countdown', async () => {
    const { fake, clock, h, e } = setup(1000);
    fake.fail('down');
    clock.advance(900);
    fake.set(['a:1', 'b:1']);
    expect(clock.pendingTimers).toBe(0);
    clock.advance(5000);
    expect(e.endpoints()).toHaveLength(2);
    fake.fail('down again');
    clock.advance(999);
    expect(e.endpoints()).toHaveLength(2);
    clock.advance(1);
    expect(e.endpoints()).toHaveLength(0);
    expect(h.made).toHaveLength(2);
    await e.close();
  });

  it('stays empty while failing after invalidation, then rebuilds on the next good event', async () => {
    const { fake, clock, h, e } = setup(100);
    fake.fail('down');
    clock.advance(100);
    fake.fail('other error');
    expect(e.endpoints()).toEqual([]);
    expect(h.made).toHaveLength(2);
    fake.set(['a:1', 'b:1', 'c:1']);
    expect(h.addresses(e.endpoints())).toEqual(['a:1', 'b:1', 'c:1']);
    expect(h.made).toHaveLength(5);
    expect(h.made.map((m) => m.closes)).toEqual([1, 1, 0, 0, 0]);
    await e.close();
  });

  it('invalidateOnErrorMs = 0 drops at once on error, and rebuilds on recovery', async () => {
    const { fake, clock, h, e } = setup(0);
    const r = record(e.endpoints$);
    fake.fail('down');
    expect(e.endpoints()).toEqual([]);
    expect(h.made.map((m) => m.closes)).toEqual([1, 1]);
    expect(clock.pendingTimers).toBe(0);
    fake.set(['a:1']);
    expect(h.addresses(e.endpoints())).toEqual(['a:1']);
    expect(r.values.map((v) => v.length)).toEqual([2, 0, 1]);
    await e.close();
  });

  it('close() cancels a pending invalidation', async () => {
    const { fake, clock, e } = setup(1000);
    fake.fail('down');
    expect(clock.pendingTimers).toBe(1);
    await e.close();
    expect(clock.pendingTimers).toBe(0);
  });

  it('uses the system clock by default (bounded wait for the invalidation)', async () => {
    const fake = new FakeInstancer(['a:1']);
    const e = endpointer(fake, recordingFactory().factory, { invalidateOnErrorMs: 20 });
    const emptied = firstValueFrom(
      e.endpoints$.pipe(
        filter((v) => v.length === 0),
        timeout(2000),
      ),
    );
    fake.fail('down');
    await expect(emptied).resolves.toEqual([]);
    await e.close();
  });

  it('treats an erroring events$ (a broken source) as a failure, and logs it', async () => {
    const fake = new FakeInstancer(['a:1']);
    const logger = recordingLogger();
    const entries = logger.records;
    const clock = new FakeClock();
    const h = recordingFactory();
    const broken = {
      events$: new (await import('rxjs')).Observable<InstancerEvent>((sub) => {
        sub.next(fake.current()!);
        sub.error(new Error('boom'));
      }),
      current: () => fake.current(),
      stop: () => {},
      [Symbol.dispose]: () => {},
    };
    const e = endpointer(broken, h.factory, { logger, clock, invalidateOnErrorMs: 10 });
    expect(entries.some((x) => x.level === 'error')).toBe(true);
    expect(e.endpoints()).toHaveLength(1);
    clock.advance(10);
    expect(e.endpoints()).toHaveLength(0);
    await e.close();
  });
});
