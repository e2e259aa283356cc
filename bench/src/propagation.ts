/**
 * Discovery propagation on a real etcd: time from the start of a put to the moment a watcher has the new key.
 * Three watchers follow the same prefix at once, each on its own connection, and every put is observed by all
 * three, so machine noise hits them alike:
 * - `sdkit`: an `EtcdInstancer` (the event whose `changes.added` holds the key);
 * - `floor`: a bare etcd3 prefix watch (`watch().prefix(p).create()`, its `put` event for the key);
 * - `baseline`: go-kit sd/etcdv3's algorithm over etcd3 — on every watch notification, re-read the whole prefix
 *   (`getAll().prefix(p)`) and rebuild the sorted instance set; done when the rebuilt set holds the key.
 */
import type { InstancerEvent } from '@sdkit/sd-core';
import { EtcdInstancer } from '@sdkit/sd-etcd';
import type { Etcd3, Watcher } from 'etcd3';
import { addressOf, type BenchEtcd, keyOf, msSince, percentile, populate } from './etcd-env.js';

/** Latency summary in ms. */
export interface Latency {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** One row: propagation at `instances` keys under the prefix. */
export interface PropagationResult {
  readonly instances: number;
  readonly changes: number;
  readonly sdkit: Latency;
  readonly floor: Latency;
  readonly baseline: Latency;
  /** sdkit p50 / floor p50 (goal ≤ 1.2). */
  readonly sdkitOverFloor: number;
  /** baseline p50 / sdkit p50 (goal ≥ 20 at 10 000). */
  readonly baselineOverSdkit: number;
}

function summary(ms: readonly number[]): Latency {
  return { p50: percentile(ms, 50), p99: percentile(ms, 99), max: Math.max(...ms) };
}

/** A watcher that can be asked to report when `key` shows up; resolves with the hrtime it saw it. */
interface Probe {
  expect(key: string): Promise<bigint>;
  close(): Promise<void>;
}

/** Resolver bookkeeping shared by the probes: one awaited key at a time. */
class Waiting {
  key: string | undefined;
  #resolve: ((t: bigint) => void) | undefined;
  expect(key: string): Promise<bigint> {
    this.key = key;
    return new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }
  seen(): void {
    const resolve = this.#resolve;
    this.key = undefined;
    this.#resolve = undefined;
    resolve?.(process.hrtime.bigint());
  }
}

async function sdkitProbe(env: BenchEtcd, prefix: string, initial: number): Promise<Probe> {
  const client = await env.sdkit();
  const instancer = new EtcdInstancer(client, { prefix });
  const w = new Waiting();
  let ready: () => void;
  const readyP = new Promise<void>((r) => {
    ready = r;
  });
  let isReady = false;
  const sub = instancer.events$.subscribe((event: InstancerEvent) => {
    // Reading `instances` builds the whole array: do it only until the prefix is loaded.
    if (!isReady && event.instances.length >= initial) {
      isReady = true;
      ready();
    }
    if (w.key === undefined || !event.changes) return;
    for (const inst of event.changes.added) if (inst.key === w.key) return w.seen();
  });
  await readyP;
  return {
    expect: (key) => w.expect(key),
    async close() {
      sub.unsubscribe();
      instancer.stop();
    },
  };
}

async function floorProbe(raw: Etcd3, prefix: string): Promise<Probe> {
  const w = new Waiting();
  const watcher: Watcher = await raw.watch().prefix(prefix).create();
  watcher.on('put', (kv) => {
    if (w.key !== undefined && kv.key.toString() === w.key) w.seen();
  });
  return { expect: (key) => w.expect(key), close: () => watcher.cancel() };
}

/** go-kit sd/etcdv3: watch the prefix; on every notification re-read it all and rebuild the sorted set. */
async function baselineProbe(raw: Etcd3, prefix: string): Promise<Probe> {
  const w = new Waiting();
  let instances: string[] = [];
  let keys = new Set<string>();
  const reread = async () => {
    const all = await raw.getAll().prefix(prefix).strings();
    const next = Object.values(all).sort();
    // go-kit's cache.Update: replace only if the set differs (reflect.DeepEqual on the sorted slice).
    if (next.length !== instances.length || next.some((v, i) => v !== instances[i])) {
      instances = next;
      keys = new Set(Object.keys(all));
    }
    if (w.key !== undefined && keys.has(w.key)) w.seen();
  };
  await reread();
  let chain = Promise.resolve();
  const watcher: Watcher = await raw.watch().prefix(prefix).create();
  watcher.on('data', () => {
    // go-kit handles notifications one at a time from a channel.
    chain = chain.then(reread, reread);
  });
  return {
    expect: (key) => w.expect(key),
    async close() {
      await watcher.cancel();
      await chain;
    },
  };
}

/**
 * Measures propagation at each size: populates `/bench/prop-<n>/` with n keys (left in place for the other etcd
 * benchmarks), then puts `changes` new keys one at a time, awaiting all three watchers after each.
 */
export async function benchPropagation(
  env: BenchEtcd,
  sizes: readonly number[],
  changes: (n: number) => number,
  say: (line: string) => void,
): Promise<PropagationResult[]> {
  const out: PropagationResult[] = [];
  const floorClient = env.raw();
  const baselineClient = env.raw();
  for (const n of sizes) {
    const prefix = propagationPrefix(n);
    await populate(env.writer, prefix, n);
    const probes = {
      sdkit: await sdkitProbe(env, prefix, n),
      floor: await floorProbe(floorClient, prefix),
      baseline: await baselineProbe(baselineClient, prefix),
    };
    const ms = { sdkit: [] as number[], floor: [] as number[], baseline: [] as number[] };
    const count = changes(n);
    // A few unmeasured changes first (JIT, connection warm-up).
    const warmup = 10;
    for (let i = 0; i < warmup + count; i++) {
      const key = keyOf(prefix, n + i);
      const seen = [probes.sdkit.expect(key), probes.floor.expect(key), probes.baseline.expect(key)];
      const t0 = process.hrtime.bigint();
      await env.writer.put(key).value(addressOf(n + i));
      const [s, f, b] = await Promise.all(seen);
      if (i < warmup) continue;
      ms.sdkit.push(Number(s! - t0) / 1e6);
      ms.floor.push(Number(f! - t0) / 1e6);
      ms.baseline.push(Number(b! - t0) / 1e6);
    }
    const t = process.hrtime.bigint();
    for (const p of Object.values(probes)) await p.close();
    // Remove the added keys, so the prefix holds exactly n again.
    await env.writer
      .delete()
      .inRange({ start: keyOf(prefix, n), end: keyOf(prefix, n + warmup + count) })
      .exec();
    const row: PropagationResult = {
      instances: n,
      changes: count,
      sdkit: summary(ms.sdkit),
      floor: summary(ms.floor),
      baseline: summary(ms.baseline),
      sdkitOverFloor: percentile(ms.sdkit, 50) / percentile(ms.floor, 50),
      baselineOverSdkit: percentile(ms.baseline, 50) / percentile(ms.sdkit, 50),
    };
    out.push(row);
    say(
      `  propagation n=${n}: sdkit p50 ${row.sdkit.p50.toFixed(2)} ms, floor ${row.floor.p50.toFixed(2)} ms, ` +
        `baseline ${row.baseline.p50.toFixed(2)} ms (close ${msSince(t).toFixed(0)} ms)`,
    );
  }
  return out;
}

/** The prefix {@link benchPropagation} fills with `n` keys. */
export function propagationPrefix(n: number): string {
  return `/bench/prop-${n}/`;
}
