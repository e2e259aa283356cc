/**
 * Churn: how many puts + deletes per second under a populated prefix an `EtcdInstancer` keeps up with, with proof
 * that it converges exactly.
 *
 * Method: `changes` writes (alternating: put a new key, delete an existing one) are fired as fast as etcd takes
 * them with `concurrency` requests in flight (each a single put/delete, or a transaction of `batch` of them), then one
 * sentinel put. The writes come from a worker thread (`churn-writer.worker.ts`) through the lean
 * `LoadWriter` (`load-writer.ts`), so the load generator neither shares the instancer's event loop nor caps the rate itself. Watch events arrive in revision order, so when the
 * instancer's event contains the sentinel it has applied every change before it. Rate = changes / (time from the
 * first write to the sentinel's event). The writers' own rate (until the last acknowledgement) is reported too: if
 * the two are close, etcd's write throughput was the limit, not the instancer. Convergence: the instancer's final
 * set (key → address) equals a fresh ranged read of the prefix, checked key by key.
 */

import type { EventLoopUtilization } from 'node:perf_hooks';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { InstancerEvent } from '@sdkit/sd-core';
import { EtcdInstancer } from '@sdkit/sd-etcd';
import type { ChurnLoad, ChurnLoadDone } from './churn-writer.worker.js';
import type { BenchEtcd } from './etcd-env.js';
import { heapAfterGc } from './measure.js';
import { deferred } from './workload.js';

/** Result of the churn benchmark. */
export interface ChurnResult {
  /** `sdkit` (an `EtcdInstancer`) or `floor` (a bare etcd3 watch into a Map). */
  readonly follower: ChurnFollower;
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
  /**
   * Busy time of the follower's thread (its event loop's active time, which includes etcd3's and grpc-js's
   * decoding of the watch responses) per change applied, in µs: the follower's own cost, free of the writer's
   * and etcd's. 1e6 / this is the rate one core could sustain for it.
   */
  readonly busyUsPerChange: number;
  /** Share of the run the follower's thread was busy (0..1); below 1 means it waited for etcd. */
  readonly utilization: number;
  /** Follower events seen during the run (watch responses coalesce several changes into one event). */
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

function heapMiB(): number {
  return heapAfterGc(2) / 2 ** 20;
}

/** Who follows the prefix during a churn run: sdkit's `EtcdInstancer`, or the floor (a bare etcd3 watch). */
export type ChurnFollower = 'sdkit' | 'floor';

/** A follower of the prefix, as the churn run sees it. */
interface Follower {
  /** Resolves once the follower holds the `instances` keys already there. */
  readonly ready: Promise<void>;
  /** Resolves with the hrtime at which the sentinel key was applied. */
  readonly sentinelSeen: Promise<bigint>;
  /** Events (sdkit) or watch responses (floor) since `start()`. */
  readonly events: number;
  /** Starts counting (the load is about to start). */
  start(): void;
  /** The follower's set, key → address. */
  final(): Map<string, string>;
  close(): Promise<void>;
}

/** Called by a follower the moment it applies the sentinel (before it reads the clock). */
type SentinelHook = () => void;

async function sdkitFollower(
  env: BenchEtcd,
  prefix: string,
  instances: number,
  sentinel: string,
  onSentinel: SentinelHook,
): Promise<Follower> {
  const instancer = new EtcdInstancer(await env.sdkit(), { prefix });
  let started = false;
  let events = 0;
  const ready = deferred<void>();
  const seen = deferred<bigint>();
  const sub = instancer.events$.subscribe((event: InstancerEvent) => {
    if (!started) {
      // Reading `instances` builds the whole array: only until the prefix is loaded.
      if (event.instances.length >= instances) ready.resolve();
      return;
    }
    events++;
    if (event.changes?.added.some((i) => i.key === sentinel)) {
      onSentinel();
      seen.resolve(process.hrtime.bigint());
    }
  });
  return {
    ready: ready.promise,
    sentinelSeen: seen.promise,
    get events() {
      return events;
    },
    start() {
      started = true;
    },
    final: () => new Map((instancer.current()?.instances ?? []).map((i) => [i.key, i.address])),
    async close() {
      sub.unsubscribe();
      instancer.stop();
    },
  };
}

/** The floor: a bare etcd3 prefix watch applying puts and deletes to a Map (after one ranged read). */
async function floorFollower(
  env: BenchEtcd,
  prefix: string,
  sentinel: string,
  onSentinel: SentinelHook,
): Promise<Follower> {
  const raw = env.raw();
  const set = new Map<string, string>();
  const read = await raw.getAll().prefix(prefix).exec();
  for (const kv of read.kvs) set.set(kv.key.toString(), kv.value.toString());
  let started = false;
  let events = 0;
  const seen = deferred<bigint>();
  const watcher = await raw
    .watch()
    .prefix(prefix)
    .startRevision(String(Number(read.header.revision) + 1))
    .create();
  watcher.on('data', (res) => {
    if (started) events++;
    for (const e of res.events) {
      const key = e.kv.key.toString();
      if (e.type === 'Put') set.set(key, e.kv.value.toString());
      else set.delete(key);
      if (started && key === sentinel && e.type === 'Put') {
        onSentinel();
        seen.resolve(process.hrtime.bigint());
      }
    }
  });
  return {
    ready: Promise.resolve(),
    sentinelSeen: seen.promise,
    get events() {
      return events;
    },
    start() {
      started = true;
    },
    final: () => set,
    close: () => watcher.cancel(),
  };
}

function sameSet(final: ReadonlyMap<string, string>, read: Record<string, string>): boolean {
  const keys = Object.keys(read);
  if (keys.length !== final.size) return false;
  for (const [key, address] of final) if (read[key] !== address) return false;
  return true;
}

/**
 * Runs churn under `prefix`, which must already hold keys `keyOf(prefix, 0..instances-1)` (the keys it adds are
 * numbered from `instances` on), followed by `follower`. Leaves the prefix changed (same size, different keys).
 */
export async function benchChurn(
  env: BenchEtcd,
  prefix: string,
  instances: number,
  changes: number,
  concurrency: number,
  batch = 1,
  followerKind: ChurnFollower = 'sdkit',
): Promise<ChurnResult> {
  const sentinel = `${prefix}~sentinel`;
  let eluStart: EventLoopUtilization | undefined;
  let eluEnd: EventLoopUtilization | undefined;
  const onSentinel = () => {
    eluEnd = performance.eventLoopUtilization();
  };
  const follower =
    followerKind === 'sdkit'
      ? await sdkitFollower(env, prefix, instances, sentinel, onSentinel)
      : await floorFollower(env, prefix, sentinel, onSentinel);
  await follower.ready;
  const heapBefore = heapMiB();

  const load: ChurnLoad = {
    endpoint: env.server.endpoints[0]!,
    prefix,
    instances,
    changes,
    concurrency,
    batch,
    connections: Math.min(concurrency, 4),
  };
  const writer = new Worker(new URL('./churn-writer.worker.js', import.meta.url), { workerData: load });
  const done = new Promise<ChurnLoadDone>((resolve, reject) => {
    writer.on('error', reject);
    writer.on('exit', (code) => reject(new Error(`churn writer exited (${code}) before it was done`)));
    writer.on('message', (m: 'ready' | ChurnLoadDone | { error: string }) => {
      if (m === 'ready') {
        follower.start();
        eluStart = performance.eventLoopUtilization();
        writer.postMessage('go');
      } else if ('error' in m) reject(new Error(`churn writer: ${m.error}`));
      else resolve(m);
    });
  });
  let t0: bigint;
  let tAck: bigint;
  try {
    ({ firstWrite: t0, lastAck: tAck } = await done);
  } finally {
    await writer.terminate();
  }
  const writesMs = Number(tAck - t0) / 1e6;
  await env.writer.put(sentinel).value('http://127.0.0.1:1');
  const seen = await follower.sentinelSeen;
  const totalMs = Number(seen - t0) / 1e6;
  const lagMs = Number(seen - tAck) / 1e6;
  const elu = performance.eventLoopUtilization(eluEnd!, eluStart!);
  // Before the convergence check, whose fresh read and key → address map would count as retained.
  const retainedHeapMiB = heapMiB() - heapBefore;

  const final = follower.final();
  const read = await env.writer.getAll().prefix(prefix).strings();
  const converged = sameSet(final, read);
  await follower.close();
  await env.writer.delete().key(sentinel).exec();
  return {
    follower: followerKind,
    instances,
    changes,
    concurrency,
    batch,
    changesPerSec: changes / (totalMs / 1000),
    writesPerSec: changes / (writesMs / 1000),
    lagAfterLastAckMs: lagMs,
    busyUsPerChange: (elu.active * 1000) / changes,
    utilization: elu.utilization,
    events: follower.events,
    converged,
    finalInstances: final.size,
    retainedHeapMiB,
  };
}
