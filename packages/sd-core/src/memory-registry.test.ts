import { filter, firstValueFrom, timeout } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { MemoryRegistry } from './memory-registry.js';
import { FakeClock } from './testing/fake-clock.js';
import { record } from './testing/record.js';
import { recordingLogger } from './testing/recording-logger.js';
import type { InstancerEvent, RegistrarState } from './types.js';

const addresses = (e: InstancerEvent | undefined) => e?.instances.map((i) => i.address);

function setup(reregisterDelayMs?: number) {
  const clock = new FakeClock();
  const logger = recordingLogger();
  const registry = new MemoryRegistry(
    reregisterDelayMs === undefined ? { clock, logger } : { clock, logger, reregisterDelayMs },
  );
  return { clock, registry, logs: logger.records };
}

describe('MemoryRegistry: validation', () => {
  const { registry } = setup();
  it.each([
    [{ key: '', address: 'a:1' }, /key/],
    [{ key: 'k', address: '' }, /address/],
    [{ key: 'k', address: 'a:1', ttlSeconds: 0 }, /ttlSeconds/],
    [{ key: 'k', address: 'a:1', ttlSeconds: -1 }, /ttlSeconds/],
    [{ key: 'k', address: 'a:1', ttlSeconds: Number.NaN }, /ttlSeconds/],
    [{ key: 'k', address: 'a:1', ttlSeconds: Number.POSITIVE_INFINITY }, /ttlSeconds/],
    [{ key: 'k', address: 'a:1', metadata: 'zone' as unknown as object }, /metadata/],
  ])('registrar(%o) throws a TypeError', (options, message) => {
    expect(() => registry.registrar(options as never)).toThrow(TypeError);
    expect(() => registry.registrar(options as never)).toThrow(message);
  });
  it('rejects bad put, instancer and options', () => {
    expect(() => registry.registrar(null as never)).toThrow(TypeError);
    expect(() => registry.put('', 'a:1')).toThrow(TypeError);
    expect(() => registry.put('k', '')).toThrow(/"k"/);
    expect(() => registry.instancer(5 as unknown as string)).toThrow(TypeError);
    expect(() => new MemoryRegistry({ reregisterDelayMs: -1 })).toThrow(TypeError);
    expect(() => new MemoryRegistry({ clock: {} as FakeClock })).toThrow(TypeError);
  });
});

describe('MemoryRegistry: entries and instancers', () => {
  it('put/get/delete/size, with metadata copied and frozen', () => {
    const { registry } = setup();
    const meta = { zone: 'a' };
    registry.put('svc/a', 'a:1', meta);
    meta.zone = 'b';
    expect(registry.get('svc/a')).toEqual({ key: 'svc/a', address: 'a:1', metadata: { zone: 'a' } });
    expect(Object.isFrozen(registry.get('svc/a')?.metadata)).toBe(true);
    expect(registry.size).toBe(1);
    expect(registry.delete('svc/a')).toBe(true);
    expect(registry.delete('svc/a')).toBe(false);
    expect(registry.get('svc/a')).toBeUndefined();
  });

  it('an instancer sees the entries under its prefix at once, then each change as one incremental event', () => {
    const { registry } = setup();
    registry.put('svc/b', 'b:1');
    registry.put('svc/a', 'a:1');
    registry.put('svcx/z', 'z:1');
    const inst = registry.instancer('svc/');
    const r = record(inst.events$);
    expect(addresses(inst.current())).toEqual(['a:1', 'b:1']);
    registry.put('other/q', 'q:1');
    registry.put('svcx/z', 'z:2');
    registry.put('svc/a', 'a:1'); // same value
    expect(r.values).toHaveLength(1);
    registry.put('svc/c', 'c:1');
    registry.put('svc/a', 'a:2');
    registry.delete('svc/b');
    expect(r.values).toHaveLength(4);
    expect(addresses(inst.current())).toEqual(['a:2', 'c:1']);
    const last = r.values[3]!;
    expect(last.changes?.since).toBe(r.values[2]);
    expect(last.changes?.removed.map((i) => i.key)).toEqual(['svc/b']);
    expect(last.changes?.added).toEqual([]);
    expect(r.values[2]!.changes?.added).toEqual([{ key: 'svc/a', address: 'a:2' }]);
    expect(r.values[2]!.changes?.removed).toEqual([{ key: 'svc/a', address: 'a:1' }]);
  });

  it('an empty prefix sees everything; an empty registry gives an empty first event', () => {
    const { registry } = setup();
    const all = registry.instancer();
    expect(all.current()?.instances).toEqual([]);
    registry.put('x', 'x:1');
    registry.put('y/z', 'z:1');
    expect(all.current()?.instances.map((i) => i.key)).toEqual(['x', 'y/z']);
  });

  it('serves several instancers on the same or overlapping prefixes; stop() ends only one', () => {
    const { registry } = setup();
    const one = registry.instancer('svc/');
    const two = registry.instancer('svc/');
    const wide = registry.instancer('s');
    const r1 = record(one.events$);
    registry.put('svc/a', 'a:1');
    expect(addresses(one.current())).toEqual(['a:1']);
    expect(addresses(two.current())).toEqual(['a:1']);
    expect(addresses(wide.current())).toEqual(['a:1']);
    one.stop();
    expect(r1.state.completed).toBe(true);
    registry.put('svc/b', 'b:1');
    expect(addresses(one.current())).toEqual(['a:1']);
    expect(addresses(two.current())).toEqual(['a:1', 'b:1']);
    expect(addresses(wide.current())).toEqual(['a:1', 'b:1']);
  });

  it('close() completes every instancer, drops every entry and timer, and refuses further use', async () => {
    const { clock, registry } = setup();
    const inst = registry.instancer('');
    const r = record(inst.events$);
    const reg = registry.registrar({ key: 'k', address: 'k:1', ttlSeconds: 3 });
    const states = record(reg.state$);
    await reg.register();
    expect(clock.pendingTimers).toBeGreaterThan(0);
    registry.close();
    registry.close();
    expect(registry.closed).toBe(true);
    expect(r.state).toEqual({ completed: true, errored: false });
    expect(clock.pendingTimers).toBe(0);
    expect(registry.size).toBe(0);
    expect(states.values.at(-1)).toBe('deregistered');
    expect(states.state.completed).toBe(true);
    expect(() => registry.put('k', 'k:1')).toThrow(/closed/);
    expect(() => registry.delete('k')).toThrow(/closed/);
    expect(() => registry.instancer('')).toThrow(/closed/);
    expect(() => registry.registrar({ key: 'k', address: 'k:1' })).toThrow(/closed/);
    await expect(reg.register()).rejects.toThrow(/closed/);
  });

  it('costs O(changes): one put into a large registry only touches that entry', () => {
    const { registry } = setup();
    for (let i = 0; i < 5000; i++) registry.put(`svc/${String(i).padStart(5, '0')}`, `10.0.0.1:${i}`);
    const inst = registry.instancer('svc/');
    const before = inst.current()!;
    registry.put('svc/02500x', 'new:1');
    const after = inst.current()!;
    expect(after.changes?.since).toBe(before);
    expect(after.changes?.added.map((i) => i.key)).toEqual(['svc/02500x']);
    expect(after.changes?.removed).toEqual([]);
    expect(after.instances).toHaveLength(5001);
    expect(after.instances[2501]?.key).toBe('svc/02500x');
    // Unchanged instances are shared, not rebuilt.
    expect(after.instances[0]).toBe(before.instances[0]);
  });
});

describe('MemoryRegistry: registrars', () => {
  it('register() is idempotent and resolves once the entry is visible; state$ goes registering → registered', async () => {
    const { registry } = setup();
    const inst = registry.instancer('svc/');
    const reg = registry.registrar({ key: 'svc/a', address: 'a:1', metadata: { v: 1 } });
    const states = record(reg.state$);
    expect(reg.state).toBeUndefined();
    expect(states.values).toEqual([]);
    await Promise.all([reg.register(), reg.register()]);
    expect(inst.current()?.instances).toEqual([{ key: 'svc/a', address: 'a:1', metadata: { v: 1 } }]);
    await reg.register();
    expect(states.values).toEqual(['registering', 'registered']);
    expect(reg.state).toBe('registered');
    expect(reg.key).toBe('svc/a');
    // A late subscriber gets the current state only.
    expect(record(reg.state$).values).toEqual(['registered']);
  });

  it('deregister() removes the entry at once (no TTL wait), stops heartbeats, and is idempotent', async () => {
    const { clock, registry } = setup();
    const inst = registry.instancer('svc/');
    const reg = registry.registrar({ key: 'svc/a', address: 'a:1', ttlSeconds: 30 });
    await reg.register();
    expect(clock.pendingTimers).toBe(2); // expiry + heartbeat
    await reg.deregister();
    expect(inst.current()?.instances).toEqual([]);
    expect(reg.state).toBe('deregistered');
    expect(clock.pendingTimers).toBe(0);
    const states = record(reg.state$);
    await reg.deregister();
    expect(states.values).toEqual(['deregistered']);
    // It can register again.
    await reg.register();
    expect(addresses(inst.current())).toEqual(['a:1']);
  });

  it('heartbeats keep a TTL entry alive for as long as it is registered', async () => {
    const { clock, registry } = setup();
    const reg = registry.registrar({ key: 'svc/a', address: 'a:1', ttlSeconds: 3 });
    await reg.register();
    clock.advance(10 * 60_000);
    expect(registry.get('svc/a')).toBeDefined();
    expect(reg.state).toBe('registered');
  });

  it('after abandon(), the entry expires exactly ttlSeconds after the last heartbeat', async () => {
    const { clock, registry, logs } = setup();
    const inst = registry.instancer('svc/');
    const r = record(inst.events$);
    const reg = registry.registrar({ key: 'svc/a', address: 'a:1', ttlSeconds: 3 });
    const states = record(reg.state$);
    await reg.register();
    clock.advance(2500); // heartbeats at 1000 and 2000
    reg.abandon();
    reg.abandon();
    expect(states.state.completed).toBe(true);
    clock.advance(2499); // 4999: last heartbeat was at 2000
    expect(registry.get('svc/a')).toBeDefined();
    clock.advance(1); // 5000
    expect(registry.get('svc/a')).toBeUndefined();
    expect(r.values.at(-1)?.instances).toEqual([]);
    expect(logs.some((l) => l.level === 'info' && l.obj.key === 'svc/a')).toBe(true);
    // A crashed process does nothing more.
    expect(states.values).toEqual(['registering', 'registered']);
    expect(clock.pendingTimers).toBe(0);
    await expect(reg.register()).rejects.toThrow(/abandoned/);
    await expect(reg.deregister()).resolves.toBeUndefined();
  });

  it('an abandoned registrar without a TTL stays registered until someone deletes it', async () => {
    const { clock, registry } = setup();
    const reg = registry.registrar({ key: 'svc/a', address: 'a:1' });
    await reg.register();
    expect(clock.pendingTimers).toBe(0);
    reg.abandon();
    clock.advance(1e9);
    expect(registry.get('svc/a')).toBeDefined();
    registry.delete('svc/a');
    clock.advance(1e9);
    expect(registry.get('svc/a')).toBeUndefined();
  });

  it('goes lost when its entry is deleted by someone else, then registers again after reregisterDelayMs', async () => {
    const { clock, registry, logs } = setup(250);
    const inst = registry.instancer('svc/');
    const events = record(inst.events$);
    const reg = registry.registrar({ key: 'svc/a', address: 'a:1', ttlSeconds: 3 });
    const states = record(reg.state$);
    await reg.register();
    registry.delete('svc/a');
    expect(reg.state).toBe('lost');
    expect(logs.some((l) => l.level === 'warn' && l.obj.key === 'svc/a')).toBe(true);
    clock.advance(249);
    expect(registry.get('svc/a')).toBeUndefined();
    clock.advance(1);
    expect(registry.get('svc/a')?.address).toBe('a:1');
    expect(states.values).toEqual(['registering', 'registered', 'lost', 'registering', 'registered']);
    expect(events.values.map(addresses)).toEqual([[], ['a:1'], [], ['a:1']]);
    // And it keeps heartbeating afterwards.
    clock.advance(60_000);
    expect(reg.state).toBe('registered');
  });

  it('waits the same reregisterDelayMs after every loss in a row (default 100); 0 registers again at once', async () => {
    const { clock, registry, logs } = setup();
    const reg = registry.registrar({ key: 'svc/a', address: 'a:1' });
    await reg.register();
    for (let i = 0; i < 5; i++) {
      registry.delete('svc/a');
      clock.advance(99);
      expect(reg.state).toBe('lost');
      clock.advance(1);
      expect(reg.state).toBe('registered');
    }
    expect(logs.filter((l) => l.level === 'warn').map((l) => l.obj.retryInMs)).toEqual([
      100, 100, 100, 100, 100,
    ]);
    const quick = setup(0);
    const other = quick.registry.registrar({ key: 'svc/b', address: 'b:1' });
    await other.register();
    quick.registry.delete('svc/b');
    expect(other.state).toBe('lost');
    quick.clock.advance(0);
    expect(other.state).toBe('registered');
  });

  it('goes lost when someone else overwrites its entry, and restores its own value', async () => {
    const { clock, registry } = setup();
    const reg = registry.registrar({ key: 'svc/a', address: 'a:1', ttlSeconds: 3 });
    await reg.register();
    registry.put('svc/a', 'intruder:1');
    expect(reg.state).toBe('lost');
    // The overwrite is permanent (no TTL) until the registrar takes the key back.
    clock.advance(100);
    expect(registry.get('svc/a')?.address).toBe('a:1');
    expect(reg.state).toBe('registered');
  });

  it('uses 100 ms as the default re-registration delay', async () => {
    const { clock, registry } = setup();
    const reg = registry.registrar({ key: 'k', address: 'k:1' });
    await reg.register();
    registry.delete('k');
    clock.advance(99);
    expect(reg.state).toBe('lost');
    clock.advance(1);
    expect(reg.state).toBe('registered');
  });

  it('deregister() while lost cancels the re-registration; register() while lost registers at once', async () => {
    const { clock, registry } = setup();
    const reg = registry.registrar({ key: 'k', address: 'k:1' });
    await reg.register();
    registry.delete('k');
    await reg.deregister();
    clock.advance(1000);
    expect(registry.get('k')).toBeUndefined();
    expect(reg.state).toBe('deregistered');
    await reg.register();
    registry.delete('k');
    await reg.register();
    expect(reg.state).toBe('registered');
    expect(registry.get('k')).toBeDefined();
    expect(clock.pendingTimers).toBe(0);
  });

  it('handles a watcher that deletes the entry as soon as it appears (lost, not registered)', async () => {
    const { clock, registry } = setup();
    const inst = registry.instancer('k');
    let deletes = 0;
    inst.events$.subscribe((e) => {
      if (e.instances.length > 0 && deletes === 0) {
        deletes++;
        registry.delete('k');
      }
    });
    const reg = registry.registrar({ key: 'k', address: 'k:1' });
    const states = record(reg.state$);
    await reg.register();
    expect(reg.state).toBe('lost');
    clock.advance(100);
    expect(states.values).toEqual(['registering', 'lost', 'registering', 'registered']);
    expect(registry.get('k')).toBeDefined();
  });

  it('deregistering one registrar never removes an entry another owns', async () => {
    const { registry } = setup();
    const first = registry.registrar({ key: 'k', address: 'first:1' });
    const second = registry.registrar({ key: 'k', address: 'second:1' });
    await first.register();
    await second.register();
    expect(first.state).toBe('lost');
    await first.deregister();
    expect(registry.get('k')?.address).toBe('second:1');
  });

  it('[Symbol.asyncDispose] deregisters and completes state$', async () => {
    const { registry } = setup();
    const reg = registry.registrar({ key: 'k', address: 'k:1', ttlSeconds: 1 });
    const states = record(reg.state$);
    {
      await using r = reg;
      await r.register();
    }
    expect(registry.get('k')).toBeUndefined();
    expect(states.values.at(-1)).toBe('deregistered');
    expect(states.state.completed).toBe(true);
    await expect(reg.register()).rejects.toThrow(/disposed/);
  });

  it('expires an abandoned registration on the real clock (bounded wait)', async () => {
    const registry = new MemoryRegistry();
    try {
      const inst = registry.instancer('svc/');
      const reg = registry.registrar({ key: 'svc/a', address: 'a:1', ttlSeconds: 0.05 });
      await reg.register();
      await new Promise((r) => setTimeout(r, 120)); // heartbeats must keep it alive past its TTL
      expect(registry.get('svc/a')).toBeDefined();
      const gone = firstValueFrom(
        inst.events$.pipe(
          filter((e) => e.instances.length === 0),
          timeout(2000),
        ),
      );
      reg.abandon();
      await expect(gone).resolves.toBeDefined();
    } finally {
      registry.close();
    }
  });
});

describe('MemoryRegistry: state$ contract', () => {
  it('emits distinct states only and never errors', async () => {
    const { registry } = setup();
    const reg = registry.registrar({ key: 'k', address: 'k:1' });
    const states = record<RegistrarState>(reg.state$);
    await reg.register();
    await reg.register();
    await reg.deregister();
    await reg.deregister();
    expect(states.values).toEqual(['registering', 'registered', 'deregistered']);
    expect(states.state.errored).toBe(false);
  });
});
