import { describe, expect, it } from 'vitest';
import { InstanceCache } from './instance-cache.js';

describe('InstanceCache (smoke)', () => {
  it('emits sorted', () => {
    const c = new InstanceCache();
    c.replace([{ key: 'b', address: 'b:1' }, { key: 'a', address: 'a:1' }]);
    expect(c.current()?.instances.map((i) => i.key)).toEqual(['a', 'b']);
  });
});
