import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BLOCK_MAX, BLOCK_MIN, type Change, ChunkedSnapshot } from './chunked-snapshot.js';
import type { Endpoint, EndpointEntry } from './types.js';

type Entry = EndpointEntry<string, string>;

/** Keys sort like their numbers. */
const keyOf = (i: number): string => `k${String(i).padStart(5, '0')}`;

function entry(key: string, endpoint: Endpoint<string, string> = async () => key): Entry {
  return Object.freeze({ key, instance: Object.freeze({ key, address: `${key}:80` }), endpoint });
}

/** A run of keys `start … start + length − 1` and what happens to each. */
interface Run {
  readonly start: number;
  readonly length: number;
  /** put: a new entry and endpoint; retag: a new entry, same endpoint; same: the entry already there; delete. */
  readonly kind: 'put' | 'retag' | 'same' | 'delete';
}

const KEYS = 5_000;
const runArb: fc.Arbitrary<Run> = fc.record({
  start: fc.nat({ max: KEYS - 1 }),
  length: fc.integer({ min: 1, max: 400 }),
  kind: fc.constantFrom('put', 'retag', 'same', 'delete', 'put', 'delete'),
});
/**
 * A batch of runs: one or two short ones take the copy-on-write path, long ones the merge. A run `oneByOne` is
 * applied one key per batch instead (always copy-on-write, through splits and merges wherever it lands).
 */
const batchArb = fc.oneof(fc.array(runArb, { minLength: 1, maxLength: 3 }), fc.record({ oneByOne: runArb }));

/** Applies `runs` to the model; returns the changes, sorted by key, one per key (the last wins). */
function changesOf(model: Map<string, Entry>, runs: readonly Run[]): Change<string, string>[] {
  const changes = new Map<string, Entry | null>();
  for (const { start, length, kind } of runs) {
    for (let i = start; i < Math.min(KEYS, start + length); i++) {
      const key = keyOf(i);
      const old = changes.has(key) ? (changes.get(key) ?? undefined) : model.get(key);
      if (kind === 'delete') changes.set(key, null);
      else if (kind === 'put') changes.set(key, entry(key));
      else if (old !== undefined) changes.set(key, kind === 'same' ? old : entry(key, old.endpoint));
    }
  }
  for (const [key, change] of changes) {
    if (change === null) model.delete(key);
    else model.set(key, change);
  }
  return [...changes].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** The model's entries in key order. */
function sortedEntries(model: ReadonlyMap<string, Entry>): Entry[] {
  return [...model.keys()].sort().map((key) => model.get(key)!);
}

/** Checks every read of `snapshot` against `expected` (the entries in key order). */
function check(snapshot: ChunkedSnapshot<string, string>, expected: readonly Entry[]): void {
  expect(Object.isFrozen(snapshot)).toBe(true);
  expect(snapshot.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (snapshot.entryAt(i) !== expected[i]) expect.fail(`entryAt(${i})`);
    if (snapshot.endpointAt(i) !== expected[i]!.endpoint) expect.fail(`endpointAt(${i})`);
  }
  for (const bad of [-1, expected.length, expected.length + 1, 0.5, expected.length - 0.5, Number.NaN]) {
    expect(snapshot.endpointAt(bad)).toBeUndefined();
    expect(snapshot.entryAt(bad)).toBeUndefined();
  }
  expect(snapshot.entryArray()).toEqual(expected);
  expect(snapshot.endpointArray()).toEqual(expected.map((e) => e.endpoint));
  const step = Math.max(1, expected.length >> 6);
  for (let i = 0; i < expected.length; i += step) expect(snapshot.indexOfKey(expected[i]!.key)).toBe(i);
  for (const absent of ['', 'a', 'k', `${keyOf(KEYS)}`, 'l', `${expected[0]?.key ?? 'k'}!`]) {
    expect(snapshot.indexOfKey(absent)).toBe(-1);
  }
  const lengths = snapshot.blockLengths();
  expect(lengths.reduce((a, b) => a + b, 0)).toBe(expected.length);
  for (const length of lengths) {
    expect(length).toBeGreaterThanOrEqual(lengths.length > 1 ? BLOCK_MIN : 1);
    expect(length).toBeLessThanOrEqual(BLOCK_MAX);
  }
}

describe('ChunkedSnapshot', () => {
  it('the empty set', () => {
    const empty = ChunkedSnapshot.empty<string, string>();
    check(empty, []);
    expect(ChunkedSnapshot.of([])).toBe(empty);
    expect(empty.apply([['a', null]])).toBeUndefined();
  });

  it('one block up to BLOCK_MAX entries, several above, each at least BLOCK_MIN', () => {
    const entries = Array.from({ length: 3 * BLOCK_MAX + 7 }, (_, i) => entry(keyOf(i)));
    expect(ChunkedSnapshot.of(entries.slice(0, BLOCK_MAX)).blockLengths()).toEqual([BLOCK_MAX]);
    for (const n of [BLOCK_MAX + 1, 2 * BLOCK_MAX, entries.length])
      check(ChunkedSnapshot.of(entries.slice(0, n)), entries.slice(0, n));
    expect(ChunkedSnapshot.of(entries).blockLengths().length).toBeGreaterThan(1);
  });

  it('splits a block that outgrows BLOCK_MAX and merges one that falls below BLOCK_MIN, one change at a time', () => {
    const model = new Map<string, Entry>();
    let snapshot = ChunkedSnapshot.empty<string, string>();
    // Grow one key at a time from empty to 3 blocks' worth (every insert at the end of the last block)…
    for (let i = 0; i < 3 * BLOCK_MAX; i++) {
      snapshot = snapshot.apply(changesOf(model, [{ start: i, length: 1, kind: 'put' }]))!.snapshot;
    }
    check(snapshot, sortedEntries(model));
    expect(snapshot.blockLengths().length).toBeGreaterThanOrEqual(3);
    // … then delete one key at a time from the front, through merges, down to nothing.
    for (let i = 0; i < 3 * BLOCK_MAX; i++) {
      snapshot = snapshot.apply(changesOf(model, [{ start: i, length: 1, kind: 'delete' }]))!.snapshot;
      if (i % 97 === 0) check(snapshot, sortedEntries(model));
    }
    expect(snapshot).toBe(ChunkedSnapshot.empty());
  });

  it('property: after random batches, every read equals the sorted set; old snapshots never change', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 4_000 }),
        fc.boolean(),
        fc.array(batchArb, { minLength: 1, maxLength: 25 }),
        (initial, viaMerge, batches) => {
          const model = new Map<string, Entry>();
          // Every other key up to `initial`, so that puts land between existing keys.
          const first = changesOf(
            model,
            Array.from({ length: Math.ceil(initial / 2) }, (_, i) => ({
              start: 2 * i,
              length: 1,
              kind: 'put',
            })),
          );
          let snapshot = viaMerge
            ? (ChunkedSnapshot.empty<string, string>().apply(first)?.snapshot ?? ChunkedSnapshot.empty())
            : ChunkedSnapshot.of(first.map(([, e]) => e!));
          check(snapshot, sortedEntries(model));
          const history: [ChunkedSnapshot<string, string>, Entry[]][] = [[snapshot, sortedEntries(model)]];
          for (const batch of batches) {
            if (Array.isArray(batch)) {
              const before = sortedEntries(model);
              const applied = snapshot.apply(changesOf(model, batch));
              const after = sortedEntries(model);
              const entriesChanged = before.length !== after.length || before.some((e, i) => e !== after[i]);
              const endpointsChanged =
                before.length !== after.length || before.some((e, i) => e.endpoint !== after[i]!.endpoint);
              expect(applied !== undefined).toBe(entriesChanged);
              if (applied === undefined) continue;
              expect(applied.endpointsChanged).toBe(endpointsChanged);
              snapshot = applied.snapshot;
              check(snapshot, after);
              history.push([snapshot, after]);
              continue;
            }
            // One key per batch: checked cheaply at each step (that key, the length, the blocks), fully at the end.
            const { start, length } = batch.oneByOne;
            for (let i = start; i < Math.min(KEYS, start + length); i++) {
              const key = keyOf(i);
              const old = model.get(key);
              const applied = snapshot.apply(changesOf(model, [{ ...batch.oneByOne, start: i, length: 1 }]));
              const now = model.get(key);
              expect(applied !== undefined).toBe(old !== now);
              if (applied === undefined) continue;
              expect(applied.endpointsChanged).toBe(old?.endpoint !== now?.endpoint);
              snapshot = applied.snapshot;
              expect(snapshot.length).toBe(model.size);
              const at = snapshot.indexOfKey(key);
              if (now === undefined) expect(at).toBe(-1);
              else expect([snapshot.entryAt(at), snapshot.endpointAt(at)]).toEqual([now, now.endpoint]);
              const lengths = snapshot.blockLengths();
              for (const n of lengths) {
                if (n > BLOCK_MAX || n < (lengths.length > 1 ? BLOCK_MIN : 1)) expect.fail(`block of ${n}`);
              }
            }
            check(snapshot, sortedEntries(model));
            history.push([snapshot, sortedEntries(model)]);
          }
          for (const [old, entries] of history) check(old, entries);
        },
      ),
      { numRuns: 60 },
    );
  });
});
