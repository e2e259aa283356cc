import { describe, expect, it } from 'vitest';
import { notifyClosed, onClosed } from './close-listeners.js';

describe('onClosed / notifyClosed', () => {
  it('tells each listener once, in order; a throwing one does not stop the others; removed ones are not told', () => {
    const owner = {};
    const told: string[] = [];
    const failures: unknown[] = [];
    const closed = () => new Error('closed');
    onClosed(owner, false, closed, (e) => told.push(`a ${e.message}`));
    onClosed(owner, false, closed, () => {
      throw new Error('boom');
    });
    const remove = onClosed(owner, false, closed, () => told.push('removed'));
    onClosed(owner, false, closed, (e) => told.push(`c ${e.message}`));
    remove();
    remove();
    notifyClosed(owner, new Error('bye'), (err) => failures.push(err));
    notifyClosed(owner, new Error('again'), (err) => failures.push(err));
    expect(told).toEqual(['a bye', 'c bye']);
    expect(failures.map((e) => (e as Error).message)).toEqual(['boom']);
  });

  it('an owner that is closed already tells the listener at once, with its closed error', () => {
    const told: string[] = [];
    const remove = onClosed(
      {},
      true,
      () => new Error('was closed'),
      (e) => told.push(e.message),
    );
    expect(told).toEqual(['was closed']);
    expect(remove).not.toThrow();
  });
});
