import { describe, expect, it } from 'vitest';
import { instance, instances } from './instances.js';

describe('instance / instances', () => {
  it('builds frozen instances keyed by their address, with metadata only when given', () => {
    const a = instance('10.0.0.1:80');
    expect(a).toEqual({ key: '10.0.0.1:80', address: '10.0.0.1:80' });
    expect('metadata' in a).toBe(false);
    expect(Object.isFrozen(a)).toBe(true);
    expect(instance('b:1', { zone: 'z' }).metadata).toEqual({ zone: 'z' });
  });

  it('keeps the order given', () => {
    expect(instances('b:1', 'a:1').map((i) => i.key)).toEqual(['b:1', 'a:1']);
  });

  it('rejects an empty address', () => {
    expect(() => instance('')).toThrow(TypeError);
  });
});
