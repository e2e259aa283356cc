import { describe, expect, it } from 'vitest';
import { FixedInstancer } from './fixed-instancer.js';
import { MemoryRegistry } from './memory-registry.js';
import { FakeClock } from './testing/fake-clock.js';
import { FakeInstancer } from './testing/fake-instancer.js';
import { record } from './testing/record.js';
import type { Instancer } from './types.js';

/** One implementation under test: a fresh instancer holding a:1 and b:1, and ways to drive it. */
interface Subject {
  readonly instancer: Instancer;
  /** Makes a change (adds c:1 then, on the next call, c:2…); absent when the source cannot change. */
  readonly change?: () => void;
  /** Repeats the current state (must emit nothing). */
  readonly repeat?: () => void;
  readonly cleanup: () => void;
}

const subjects: [string, () => Subject, boolean][] = [
  [
    'FixedInstancer',
    () => {
      const instancer = new FixedInstancer(['b:1', 'a:1']);
      return { instancer, cleanup: () => instancer.stop() };
    },
    false,
  ],
  [
    'FakeInstancer',
    () => {
      const fake = new FakeInstancer(['b:1', 'a:1']);
      let n = 0;
      return {
        instancer: fake,
        change: () => fake.add({ key: 'c:1', address: `c:${++n}` }),
        repeat: () => fake.add('a:1', 'b:1'),
        cleanup: () => fake.stop(),
      };
    },
    true,
  ],
  [
    'MemoryRegistry.instancer',
    () => {
      const registry = new MemoryRegistry({ clock: new FakeClock() });
      registry.put('svc/a', 'a:1');
      registry.put('svc/b', 'b:1');
      registry.put('other/x', 'x:1');
      let n = 0;
      return {
        instancer: registry.instancer('svc/'),
        change: () => registry.put('svc/c', `c:${++n}`),
        repeat: () => {
          registry.put('svc/a', 'a:1');
          registry.put('other/y', 'y:1'); // outside the prefix
        },
        cleanup: () => registry.close(),
      };
    },
    true,
  ],
];

describe.each(subjects)('Instancer contract: %s', (_name, make) => {
  it('has its first event before anyone subscribes, sorted and frozen; a subscriber gets it at once', () => {
    const s = make();
    try {
      const current = s.instancer.current();
      expect(current).toBeDefined();
      expect(current!.instances.map((i) => i.address)).toEqual(['a:1', 'b:1']);
      expect(Object.isFrozen(current)).toBe(true);
      expect(Object.isFrozen(current!.instances)).toBe(true);
      const r = record(s.instancer.events$);
      expect(r.values).toEqual([current]);
      expect(r.values[0]).toBe(current);
      r.unsubscribe();
    } finally {
      s.cleanup();
    }
  });

  it('completes on stop (idempotent, also via Symbol.dispose), never errors, and completes late subscribers', () => {
    const s = make();
    try {
      const r = record(s.instancer.events$);
      s.instancer.stop();
      s.instancer.stop();
      s.instancer[Symbol.dispose]();
      expect(r.state).toEqual({ completed: true, errored: false });
      s.change?.();
      expect(r.values).toHaveLength(1);
      const late = record(s.instancer.events$);
      expect(late.state.completed).toBe(true);
      expect(late.state.errored).toBe(false);
    } finally {
      s.cleanup();
    }
  });

  it('disposes through a using declaration', () => {
    const s = make();
    let r: ReturnType<typeof record> | undefined;
    {
      using instancer = s.instancer;
      r = record(instancer.events$);
    }
    expect(r.state.completed).toBe(true);
    s.cleanup();
  });
});

// What only an instancer whose set can change can show (a FixedInstancer's never does).
describe.each(subjects.filter(([, , changes]) => changes))(
  'Instancer contract, changes: %s',
  (_name, make) => {
    it('is hot: a late subscriber gets only the latest event, then later ones', () => {
      const s = make();
      try {
        const early = record(s.instancer.events$);
        s.change!();
        s.change!();
        const late = record(s.instancer.events$);
        expect(early.values).toHaveLength(3);
        expect(late.values).toEqual([early.values[2]]);
        s.change!();
        expect(late.values).toHaveLength(2);
        expect(late.values[1]).toBe(s.instancer.current());
        expect(late.values[1]!.changes?.since).toBe(late.values[0]);
      } finally {
        s.cleanup();
      }
    });

    it('emits only on change', () => {
      const s = make();
      try {
        const r = record(s.instancer.events$);
        s.repeat!();
        s.repeat!();
        expect(r.values).toHaveLength(1);
      } finally {
        s.cleanup();
      }
    });
  },
);
