import { describe, expect, it } from 'vitest';
import { FixedInstancer } from './fixed-instancer.js';
import type { Instance } from './types.js';

describe('FixedInstancer', () => {
  it('turns "host:port" strings into instances keyed by their address, sorted', () => {
    const fixed = new FixedInstancer(['10.0.0.2:80', '10.0.0.1:80']);
    expect(fixed.current()?.instances).toEqual([
      { key: '10.0.0.1:80', address: '10.0.0.1:80' },
      { key: '10.0.0.2:80', address: '10.0.0.2:80' },
    ]);
    expect(fixed.current()?.error).toBeUndefined();
  });

  it('accepts instances with metadata and mixes them with strings; copies and freezes them', () => {
    const meta = { zone: 'a' };
    const given: Instance = { key: 'k1', address: 'http://x:1', metadata: meta };
    const fixed = new FixedInstancer([given, 'y:2']);
    const got = fixed.current()!.instances;
    expect(got).toEqual([given, { key: 'y:2', address: 'y:2' }]);
    expect(got[0]).not.toBe(given);
    expect(Object.isFrozen(got[0])).toBe(true);
    expect(Object.isFrozen(got[0]!.metadata)).toBe(true);
    meta.zone = 'changed';
    expect(got[0]!.metadata).toEqual({ zone: 'a' });
  });

  it('collapses duplicate keys, the last winning', () => {
    const fixed = new FixedInstancer([
      { key: 'k', address: 'a:1' },
      { key: 'k', address: 'a:2' },
    ]);
    expect(fixed.current()?.instances).toEqual([{ key: 'k', address: 'a:2' }]);
  });

  it('allows an empty list: one event with no instances', () => {
    const fixed = new FixedInstancer([]);
    expect(fixed.current()?.instances).toEqual([]);
  });

  it('accepts any iterable', () => {
    const fixed = new FixedInstancer(new Set(['a:1']));
    expect(fixed.current()?.instances.map((i) => i.key)).toEqual(['a:1']);
  });

  it('rejects bad input with a TypeError naming it', () => {
    // A lone string is iterable (of characters): almost certainly a mistake.
    expect(() => new FixedInstancer('a:1' as unknown as string[])).toThrow(TypeError);
    expect(() => new FixedInstancer(undefined as unknown as string[])).toThrow(TypeError);
    expect(() => new FixedInstancer([''])).toThrow(/empty/);
    expect(() => new FixedInstancer([null as unknown as string])).toThrow(TypeError);
    expect(() => new FixedInstancer([{ key: '', address: 'a:1' }])).toThrow(TypeError);
    expect(() => new FixedInstancer([{ key: 'k', address: '' }])).toThrow(/"k"/);
    expect(
      () =>
        new FixedInstancer([{ key: 'k', address: 'a', metadata: 5 as unknown as Record<string, unknown> }]),
    ).toThrow(/metadata/);
  });
});
