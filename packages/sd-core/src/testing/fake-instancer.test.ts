import { describe, expect, it } from 'vitest';
import type { InstancerEvent } from '../types.js';
import { FakeInstancer } from './fake-instancer.js';
import { instance } from './instances.js';

const keys = (e: InstancerEvent | undefined) => e?.instances.map((i) => i.key);

describe('FakeInstancer', () => {
  it('has no event until the first call when built without instances', () => {
    const fake = new FakeInstancer();
    const seen: InstancerEvent[] = [];
    fake.events$.subscribe((e) => seen.push(e));
    expect(fake.current()).toBeUndefined();
    expect(seen).toHaveLength(0);
    fake.set([]);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.instances).toEqual([]);
  });

  it('set/add/remove produce well-formed events with changes, like a real source', () => {
    const fake = new FakeInstancer(['b:1', 'a:1']);
    const first = fake.current()!;
    expect(keys(first)).toEqual(['a:1', 'b:1']);
    fake.add('c:1', instance('a:1', { zone: 'z' }));
    const second = fake.current()!;
    expect(keys(second)).toEqual(['a:1', 'b:1', 'c:1']);
    expect(second.changes?.since).toBe(first);
    expect(second.changes?.added.map((i) => i.key)).toEqual(['a:1', 'c:1']);
    expect(second.changes?.removed).toEqual([instance('a:1')]);
    fake.remove('b:1', 'nope');
    expect(keys(fake.current())).toEqual(['a:1', 'c:1']);
    expect(fake.current()?.changes?.removed.map((i) => i.key)).toEqual(['b:1']);
  });

  it('fail keeps the set and dedupes the same message; accepts a string', () => {
    const fake = new FakeInstancer(['a:1']);
    const seen: InstancerEvent[] = [];
    fake.events$.subscribe((e) => seen.push(e));
    fake.fail('down');
    fake.fail(new Error('down'));
    expect(seen).toHaveLength(2);
    expect(seen[1]!.error?.message).toBe('down');
    expect(keys(seen[1])).toEqual(['a:1']);
    fake.set(['a:1']);
    expect(seen).toHaveLength(3);
    expect(seen[2]!.error).toBeUndefined();
  });

  it('emit pushes any event as is; the next well-formed call re-emits the fake state even when unchanged', () => {
    const fake = new FakeInstancer(['a:1']);
    const own = fake.current();
    const seen: InstancerEvent[] = [];
    fake.events$.subscribe((e) => seen.push(e));
    const raw = { instances: [instance('z:1'), instance('z:1'), instance('b:1')] };
    fake.emit(raw);
    expect(fake.current()).toBe(raw);
    expect(seen.at(-1)).toBe(raw);
    fake.add('a:1'); // no change for the fake itself, but consumers last saw `raw`
    expect(seen.at(-1)).toBe(own);
    expect(seen).toHaveLength(3);
    fake.add('a:1');
    expect(seen).toHaveLength(3);
  });

  it('counts subscribers and reports stopped; calls after stop are ignored', () => {
    const fake = new FakeInstancer([]);
    expect(fake.subscriberCount).toBe(0);
    const s1 = fake.events$.subscribe();
    const s2 = fake.events$.subscribe();
    expect(fake.subscriberCount).toBe(2);
    s1.unsubscribe();
    expect(fake.subscriberCount).toBe(1);
    expect(fake.stopped).toBe(false);
    fake.stop();
    expect(fake.stopped).toBe(true);
    const before = fake.current();
    fake.set(['x:1']);
    fake.emit({ instances: [] });
    fake.fail('x');
    expect(fake.current()).toBe(before);
    s2.unsubscribe();
    expect(fake.subscriberCount).toBe(0);
  });

  it('delivers in order when a subscriber drives it from inside its callback', () => {
    const fake = new FakeInstancer(['a:1']);
    const seenB: (string[] | undefined)[] = [];
    fake.events$.subscribe((e) => {
      if (e.instances.length === 1) fake.add('b:1');
    });
    fake.events$.subscribe((e) => seenB.push(keys(e)));
    expect(seenB).toEqual([['a:1', 'b:1']]);
    fake.remove('b:1');
    expect(seenB.at(-1)).toEqual(['a:1', 'b:1']);
    expect(seenB).toEqual([['a:1', 'b:1'], ['a:1'], ['a:1', 'b:1']]);
  });

  it('rejects invalid instances with a TypeError', () => {
    const fake = new FakeInstancer();
    expect(() => fake.set([''])).toThrow(TypeError);
    expect(() => fake.add({ key: 'k', address: '' })).toThrow(TypeError);
  });
});
