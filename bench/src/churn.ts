/**
 * Churn: how many puts + deletes per second under a populated prefix an `EtcdInstancer` keeps up with, with proof
 * that it converges exactly.
 *
 * Method: `changes` writes (alternating: put a new key, delete an existing one) are fired as fast as etcd takes
 * them with `concurrency` requests in flight (each a single put/delete, or a transaction of `batch` of them), then one
 * sentinel put. Watch events arrive in revision order, so when the
 * instancer's event contains the sentinel it has applied every change before it. Rate = changes / (time from the
 * first write to the sentinel's event). The writers' own rate (until the last acknowledgement) is reported too: if
 * the two are close, etcd's write throughput was the limit, not the instancer. Convergence: the instancer's final
 * set (key → address) equals a fresh ranged read of the prefix, checked key by key.
 */
import type { Instance, InstancerEvent } from '@sdkit/sd-core';
import { EtcdInstancer } from '@sdkit/sd-etcd';
import { addressOf, type BenchEtcd, bounded, keyOf, msSince } from './etcd-env.js';

/** Result of the churn benchmark. */
export interface ChurnResult {
  readonly instances: number;
  readonly changes: number;
  readonly concurrency: number;
  /** Changes per write request: 1 = one put or delete each; more = transactions of that many. */
  readonly batch: number;
  /** changes / s until the instancer had applied them all. */
  readonly changesPerSec: number;
  /** changes / s etcd acknowledged (the writers' rate; an upper bound for the above). */
  readonly writesPerSec: number;
  /** ms between the last write's acknowledgement and the instancer's event holding the sentinel. */
  readonly lagAfterLastAckMs: number;
  /** Instancer events seen during the run (watch responses coalesce several changes into one event). */
  readonly events: number;
  /** The final set equals a fresh ranged read (same keys, same addresses). */
  readonly converged: boolean;
  readonly finalInstances: number;
  /**
   * Heap growth (MiB, after a full GC, instancer still alive) over the run. Large values mean past events are
   * retained: each event's `changes.since` points at the previous event, so a live instancer keeps its whole
   * history (one O(n) instances array per event).
   */
  readonly retainedHeapMiB: number;
}

const gc = (globalThis as { gc?: () => void }).gc;
function heapMiB(): number {
  if (!gc) return Number.NaN;
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

function sameSet(instances: readonly Instance[], read: Record<string, string>): boolean {
  const keys = Object.keys(read);
  if (keys.length !== instances.length) return false;
  for (const inst of instances) if (read[inst.key] !== inst.address) return false;
  return true;
}

/**
 * Runs churn under `prefix`, which must already hold keys `keyOf(prefix, 0..instances-1)` (the keys it adds are
 * numbered from `instances` on). Leaves the prefix changed (same size, different keys).
 */
export async function benchChurn(
  env: BenchEtcd,
  prefix: string,
  instances: number,
  changes: number,
  concurrency: number,
  batch = 1,
): Promise<ChurnResult> {
  const client = await env.sdkit();
  const instancer = new EtcdInstancer(client, { prefix });
  const sentinel = `${prefix}~sentinel`;
  let events = 0;
  let started = false;
  let resolveSentinel: (t: bigint) => void;
  const sentinelSeen = new Promise<bigint>((r) => {
    resolveSentinel = r;
  });
  let resolveReady: () => void;
  const ready = new Promise<void>((r) => {
    resolveReady = r;
  });
  const sub = instancer.events$.subscribe((event: InstancerEvent) => {
    if (!started) {
      if (event.instances.length >= instances) resolveReady();
      return;
    }
    events++;
    if (event.changes?.added.some((i) => i.key === sentinel)) resolveSentinel(process.hrtime.bigint());
  });
  await ready;
  const heapBefore = heapMiB();

  const t0 = process.hrtime.bigint();
  started = true;
  // Change i: even → put a new key; odd → delete one of the original keys.
  const requests = Math.ceil(changes / batch);
  await bounded(concurrency, requests, (r) => {
    if (batch === 1) {
      const j = r >> 1;
      return r % 2 === 0
        ? env.writer
            .put(keyOf(prefix, instances + j))
            .value(addressOf(instances + j, 1))
            .exec()
        : env.writer.delete().key(keyOf(prefix, j)).exec();
    }
    // One transaction of `batch` changes: etcd answers the watch with one response for it.
    const success = [];
    for (let i = r * batch; i < Math.min(changes, (r + 1) * batch); i++) {
      const j = i >> 1;
      success.push(
        i % 2 === 0
          ? {
              request_put: {
                key: Buffer.from(keyOf(prefix, instances + j)),
                value: Buffer.from(addressOf(instances + j, 1)),
              },
            }
          : { request_delete_range: { key: Buffer.from(keyOf(prefix, j)) } },
      );
    }
    return env.writer.kv.txn({ success });
  });
  const writesMs = msSince(t0);
  const tAck = process.hrtime.bigint();
  await env.writer.put(sentinel).value('http://127.0.0.1:1');
  const seen = await sentinelSeen;
  const totalMs = Number(seen - t0) / 1e6;
  const lagMs = Number(seen - tAck) / 1e6;

  const final = instancer.current()?.instances ?? [];
  const read = await env.writer.getAll().prefix(prefix).strings();
  const converged = sameSet(final, read);
  const retainedHeapMiB = heapMiB() - heapBefore;
  sub.unsubscribe();
  instancer.stop();
  await env.writer.delete().key(sentinel).exec();
  return {
    instances,
    changes,
    concurrency,
    batch,
    changesPerSec: changes / (totalMs / 1000),
    writesPerSec: changes / (writesMs / 1000),
    lagAfterLastAckMs: lagMs,
    events,
    converged,
    finalInstances: final.length,
    retainedHeapMiB,
  };
}
