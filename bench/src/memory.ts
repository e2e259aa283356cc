/**
 * Memory per instance held by a client-side pipeline: an instancer's set + `endpointer` (a factory returning a
 * trivial endpoint) + `roundRobin`. The source is a `FakeInstancer` from `@sdkit/sd-core/testing` (the same
 * `InstanceCache` every sdkit instancer is built on), so 100 000 instances need no etcd. Figures are heapUsed after
 * a full GC minus the heap before anything was built, divided by the instance count; the instance objects and
 * their key/address strings count as held.
 */
import { roundRobin } from '@sdkit/lb';
import { endpointer, type Instance } from '@sdkit/sd-core';
import { FakeInstancer } from '@sdkit/sd-core/testing';
import { consume, heapAfterGc } from './measure.js';
import { addressOf, keyOf } from './workload.js';

/** Result of the memory benchmark. */
export interface MemoryResult {
  readonly instances: number;
  readonly source: string;
  /** Bytes per instance: the instances as the instancer holds them (objects, strings, the cache's map, the event). */
  readonly instancerBytesPerInstance: number;
  /** Bytes per instance added by the endpointer (endpoint per instance, its maps, its snapshot) + roundRobin. */
  readonly endpointerBytesPerInstance: number;
  /** The sum: the whole pipeline, bytes per instance held. */
  readonly totalBytesPerInstance: number;
}

const noop = async (x: unknown) => x;

export async function benchMemory(n: number): Promise<MemoryResult> {
  const h0 = heapAfterGc(3);
  const list: Instance[] = [];
  for (let i = 0; i < n; i++) list.push({ key: keyOf('/services/bench/', i), address: addressOf(i) });
  const instancer = new FakeInstancer(list);
  list.length = 0;
  const h1 = heapAfterGc(3);
  const eps = endpointer(instancer, () => ({ endpoint: noop }));
  const balancer = roundRobin(eps);
  // The factory is synchronous; still, let any microtask publication settle.
  for (let i = 0; i < 10 && eps.endpoints().length < n; i++) await new Promise((r) => setImmediate(r));
  if (eps.endpoints().length !== n)
    throw new Error(`memory bench: ${eps.endpoints().length} endpoints, not ${n}`);
  consume(balancer.endpoint());
  const h2 = heapAfterGc(3);
  consume([instancer, eps, balancer]);
  await eps.close();
  instancer.stop();
  return {
    instances: n,
    source: 'FakeInstancer (@sdkit/sd-core/testing, backed by InstanceCache)',
    instancerBytesPerInstance: (h1 - h0) / n,
    endpointerBytesPerInstance: (h2 - h1) / n,
    totalBytesPerInstance: (h2 - h0) / n,
  };
}
