import { describe, expect, it } from 'vitest';
import { endpointer } from './endpointer.js';
import { processHolds } from './hold-process.js';
import { assertKnownOptions } from './known-options.js';
import { FakeInstancer } from './testing/fake-instancer.js';
import { instance } from './testing/instances.js';
import type { Factory, FactoryResult } from './types.js';

const settle = () => new Promise<void>((r) => setImmediate(r));

/** Whether `promise` has settled after the queued work ran, and how. */
async function state(promise: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  let s: 'pending' | 'resolved' | 'rejected' = 'pending';
  promise.then(
    () => {
      s = 'resolved';
    },
    () => {
      s = 'rejected';
    },
  );
  await settle();
  return s;
}

const sync: Factory = (i) => ({ endpoint: async () => i.address });

describe('endpointer.ready()', () => {
  it('waits for the first event, then resolves (and resolves at once from then on)', async () => {
    const fake = new FakeInstancer();
    const e = endpointer(fake, sync);
    const ready = e.ready();
    expect(await state(ready)).toBe('pending');
    fake.emit({ instances: [instance('a')] });
    expect(await state(ready)).toBe('resolved');
    expect(e.endpoints()).toHaveLength(1);
    expect(await state(e.ready())).toBe('resolved');
    await e.close();
  });

  it('an empty first set or a failing source still makes it ready (the set is then known to be empty)', async () => {
    const fake = new FakeInstancer();
    const e = endpointer(fake, sync);
    const ready = e.ready();
    fake.emit({ instances: [], error: new Error('etcd unreachable') });
    expect(await state(ready)).toBe('resolved');
    expect(e.emptyReason?.()).toBe(
      'the instancer reports no instances (the instancer reports: etcd unreachable)',
    );
    await e.close();
  });

  it('with async factories: resolves when the first endpoint is ready, without waiting for the slowest', async () => {
    const fake = new FakeInstancer();
    const pending = new Map<string, (r: FactoryResult) => void>();
    const e = endpointer(
      fake,
      (i) =>
        new Promise<FactoryResult>((resolve) => {
          pending.set(i.key, resolve);
        }),
    );
    const ready = e.ready();
    fake.emit({ instances: [instance('a'), instance('b')] });
    expect(await state(ready)).toBe('pending');
    expect(e.emptyReason?.()).toBe('2 factory calls still running');
    pending.get('b')!({ endpoint: async () => 'b' });
    expect(await state(ready)).toBe('resolved');
    expect(e.endpoints()).toHaveLength(1);
    pending.get('a')!({ endpoint: async () => 'a' });
    await e.close();
  });

  it('when every factory fails, resolves once they all failed; emptyReason says why, with the last error', async () => {
    const fake = new FakeInstancer();
    const e = endpointer(fake, ((i: { address: string }) => async () => i.address) as unknown as Factory);
    const ready = e.ready();
    fake.emit({ instances: [instance('a'), instance('b')] });
    expect(await state(ready)).toBe('resolved');
    expect(e.endpoints()).toEqual([]);
    expect(e.emptyReason?.()).toMatch(
      /^the factory failed for 2 of 2 instances; last, for "b": factory returned a function; return \{ endpoint: yourFunction \}/,
    );
    await e.close();
  });

  it('an instancer that completes without an event makes it ready (nothing more will come)', async () => {
    const fake = new FakeInstancer();
    const e = endpointer(fake, sync);
    const ready = e.ready();
    fake.stop();
    expect(await state(ready)).toBe('resolved');
    await e.close();
  });

  it('rejects when closed first, or with the signal reason when aborted; an abandoned wait holds nothing', async () => {
    const fake = new FakeInstancer();
    const e = endpointer(fake, sync);
    const before = processHolds();
    const controller = new AbortController();
    const aborted = e.ready({ signal: controller.signal });
    const closed = e.ready();
    expect(processHolds()).toBe(before + 2);
    controller.abort(new Error('caller gave up'));
    await expect(aborted).rejects.toThrow('caller gave up');
    expect(processHolds()).toBe(before + 1);
    await e.close();
    await expect(closed).rejects.toThrow('endpointer closed before its first set was ready');
    expect(processHolds()).toBe(before);
    expect(e.emptyReason?.()).toBe('the endpointer is closed');
  });

  it('emptyReason before the first event', () => {
    const e = endpointer(new FakeInstancer(), sync);
    expect(e.emptyReason?.()).toBe('the instancer has not reported its first set yet');
    void e.close();
  });
});

describe('assertKnownOptions', () => {
  it('names every unknown option, with the right name where the mistake is known', () => {
    expect(() =>
      assertKnownOptions('Thing', { ttl: 1, colour: 'red', prefix: 'x' }, ['prefix', 'ttlSeconds'], {
        ttl: 'ttlSeconds',
      }),
    ).toThrow(
      new TypeError(
        'Thing: unknown options "ttl" (did you mean "ttlSeconds"?), "colour"; the options are prefix, ttlSeconds',
      ),
    );
  });

  it('accepts known options, and ignores symbol keys', () => {
    expect(() => assertKnownOptions('Thing', { prefix: 'x', [Symbol('s')]: 1 }, ['prefix'])).not.toThrow();
  });
});
