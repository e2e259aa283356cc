/**
 * Work per change against the size of the set: one put or one delete per event, applied by an instancer's
 * `InstanceCache` (through `FakeInstancer`, the same cache every sdkit instancer uses) and followed by an
 * `endpointer` with a synchronous factory. Runs in one process, no etcd, so it isolates sdkit's own cost from the
 * network. A third column adds one `roundRobin` pick after every change, which makes the endpointer build its
 * `endpoints()` array (O(n)) once per change: the price of reading the whole set, paid only by whoever reads it.
 */
import { roundRobin } from '@sdkit/lb';
import { endpointer, type Instance } from '@sdkit/sd-core';
import { FakeInstancer } from '@sdkit/sd-core/testing';
import { consume, median } from './measure.js';
import { addressOf, keyOf } from './workload.js';

/** Result at one set size. */
export interface PerChangeResult {
  readonly instances: number;
  /** µs per change: the instancer's cache alone (event emitted, nobody reads `instances`). */
  readonly instancerUs: number;
  /** µs per change: instancer + endpointer following `changes`. */
  readonly endpointerUs: number;
  /** µs per change: instancer + endpointer + one balancer pick after each change. */
  readonly withPickUs: number;
}

const noop = async (x: unknown) => x;

function run(n: number, changes: number, mode: 'instancer' | 'endpointer' | 'pick'): number {
  const list: Instance[] = [];
  for (let i = 0; i < n; i++) list.push({ key: keyOf('/services/bench/', i), address: addressOf(i) });
  const instancer = new FakeInstancer(list);
  const ep = mode === 'instancer' ? undefined : endpointer(instancer, () => ({ endpoint: noop }));
  const balancer = ep && mode === 'pick' ? roundRobin(ep) : undefined;
  const extra = (j: number): Instance => ({ key: keyOf('/services/bench/x', j), address: addressOf(j) });
  const step = (j: number) => {
    if (j % 2 === 0) instancer.add(extra(j));
    else instancer.remove(extra(j - 1).key);
    if (balancer) consume(balancer.endpoint());
  };
  for (let j = 0; j < 200; j++) step(j);
  const t0 = process.hrtime.bigint();
  for (let j = 200; j < 200 + changes; j++) step(j);
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / changes;
  void ep?.close();
  instancer.stop();
  return us;
}

/** Measures the three columns at each size; the median of `runs` runs each. */
export function benchPerChange(sizes: readonly number[], quick: boolean): PerChangeResult[] {
  const runs = quick ? 3 : 5;
  // Warm the JIT on every path first, or the first size measured pays for compilation.
  for (const mode of ['instancer', 'endpointer', 'pick'] as const) run(1_000, 8_000, mode);
  return sizes.map((n) => {
    // Enough changes to dominate timer noise, few enough that the O(n) column stays quick at 100 000.
    const changes = n >= 100_000 ? 400 : 4_000;
    const col = (mode: 'instancer' | 'endpointer' | 'pick') =>
      median(
        Array.from({ length: runs }, () =>
          run(n, mode === 'pick' && n >= 10_000 ? changes / 4 : changes, mode),
        ),
      );
    return {
      instances: n,
      instancerUs: col('instancer'),
      endpointerUs: col('endpointer'),
      withPickUs: col('pick'),
    };
  });
}
