/**
 * Discovery propagation on a real etcd: time from the start of a put to the moment a watcher has the new key.
 * Five watchers, each on its own connection, take turns following the prefix (interleaved blocks, one watcher
 * at a time, see {@link benchPropagation}):
 * - `sdkit`: an `EtcdInstancer` (the event whose `changes.added` holds the key);
 * - `pipeline`: the same instancer → `endpointer` (a factory making a trivial endpoint per instance) →
 *   `roundRobin`, done when the endpointer's `snapshot()` — what `roundRobin` picks from — holds the endpoint made
 *   for the new key (issue 14's measure: from then on a pick can return it);
 * - `http`: the same `EtcdInstancer` on a client with `transport: 'http'` (etcd's HTTP/JSON gateway over fetch);
 * - `floor`: a bare etcd3 prefix watch (`watch().prefix(p).create()`, its `put` event for the key);
 * - `httpFloor`: a bare watch on etcd's HTTP/JSON gateway (one `fetch` of `/v3/watch`, lines split and parsed with
 *   `JSON.parse`, keys compared in base64): what the gateway itself costs, next to which `http` is sdkit's part;
 * - `baseline`: go-kit sd/etcdv3's algorithm over etcd3 — on every watch notification, re-read the whole prefix
 *   (`getAll().prefix(p)`) and rebuild the sorted instance set; done when the rebuilt set holds the key.
 */
import { roundRobin } from '@sdkit/lb';
import { type Endpoint, endpointer, type InstancerEvent } from '@sdkit/sd-core';
import { type EtcdClient, EtcdInstancer } from '@sdkit/sd-etcd';
import type { Etcd3, Watcher } from 'etcd3';
import { type BenchEtcd, msSince, percentile, populate } from './etcd-env.js';
import { collectGarbage } from './measure.js';
import { addressOf, deferred, keyOf } from './workload.js';

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
  /** The same instancer → endpointer → roundRobin (a pick can return the new endpoint). */
  readonly pipeline: Latency;
  /** The EtcdInstancer over etcd's HTTP/JSON gateway. */
  readonly http: Latency;
  readonly floor: Latency;
  /** A bare watch on etcd's HTTP/JSON gateway. */
  readonly httpFloor: Latency;
  readonly baseline: Latency;
  /** sdkit p50 / floor p50 (goal ≤ 1.2). */
  readonly sdkitOverFloor: number;
  /** pipeline p50 / floor p50 (issue 14's goal: ≤ 1.2 at 100 000). */
  readonly pipelineOverFloor: number;
  /** HTTP p50 / floor p50 (the floor is a gRPC watch; goal ≤ 1.3 at 100 and 10 000). */
  readonly httpOverFloor: number;
  /** HTTP p50 / bare HTTP watch p50: sdkit's own share of the HTTP path. */
  readonly httpOverHttpFloor: number;
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

async function sdkitProbe(client: EtcdClient, prefix: string, initial: number): Promise<Probe> {
  const instancer = new EtcdInstancer(client, { prefix });
  const w = new Waiting();
  const ready = deferred<void>();
  let isReady = false;
  const sub = instancer.events$.subscribe((event: InstancerEvent) => {
    // Reading `instances` builds the whole array: do it only until the prefix is loaded.
    if (!isReady && event.instances.length >= initial) {
      isReady = true;
      ready.resolve();
    }
    if (w.key === undefined || !event.changes) return;
    for (const inst of event.changes.added) if (inst.key === w.key) return w.seen();
  });
  await ready.promise;
  return {
    expect: (key) => w.expect(key),
    async close() {
      sub.unsubscribe();
      instancer.stop();
    },
  };
}

async function pipelineProbe(client: EtcdClient, prefix: string, initial: number): Promise<Probe> {
  const instancer = new EtcdInstancer(client, { prefix });
  const w = new Waiting();
  // The endpoint the factory made for the awaited key: the one a pick must be able to return.
  let watchedEndpoint: Endpoint | undefined;
  const eps = endpointer(instancer, (instance) => {
    const endpoint: Endpoint = async () => instance.address;
    if (instance.key === w.key) watchedEndpoint = endpoint;
    return { endpoint };
  });
  const balancer = roundRobin(eps);
  // What roundRobin picks from: the endpointer's snapshot (O(change) to update, O(log n) to look a key up). Not
  // `endpoints$`, whose every emission is a new array of the whole set (O(n): 1.5 ms at 100 000).
  const check = (): void => {
    const key = w.key;
    if (key === undefined || watchedEndpoint === undefined) return;
    const snapshot = eps.snapshot!();
    const at = snapshot.indexOfKey(key);
    if (at >= 0 && snapshot.endpointAt(at) === watchedEndpoint) {
      watchedEndpoint = undefined;
      w.seen();
    }
  };
  // Subscribed after the endpointer, so it runs once the endpointer has applied the event; the microtask covers
  // an endpoint the endpointer publishes after a microtask.
  const sub = instancer.events$.subscribe(() => {
    check();
    if (w.key !== undefined) queueMicrotask(check);
  });
  await eps.ready();
  if (eps.snapshot!().length < initial) throw new Error(`pipeline: ${initial} endpoints expected at start`);
  if (typeof balancer.endpoint() !== 'function') throw new Error('pipeline: roundRobin picked no endpoint');
  return {
    expect: (key) => w.expect(key),
    async close() {
      sub.unsubscribe();
      await eps.close();
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

/** A bare watch on etcd's gateway: one streaming POST, lines split, each parsed; done at the put of the key. */
async function httpFloorProbe(endpoint: string, prefix: string): Promise<Probe> {
  const w = new Waiting();
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const end = Buffer.from(prefix);
  end[end.length - 1]! += 1;
  const controller = new AbortController();
  const res = await fetch(`${endpoint}/v3/watch`, {
    method: 'POST',
    body: JSON.stringify({ create_request: { key: b64(prefix), range_end: end.toString('base64') } }),
    signal: controller.signal,
  });
  const created = deferred<void>();
  const pump = (async () => {
    const decoder = new TextDecoder();
    let buffered = '';
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const result = JSON.parse(line).result;
        if (result?.created) created.resolve();
        if (w.key === undefined) continue;
        const want = b64(w.key);
        for (const ev of result?.events ?? []) if (ev.kv?.key === want && ev.type !== 'DELETE') w.seen();
      }
    }
  })().catch(() => {});
  await created.promise;
  return {
    expect: (key) => w.expect(key),
    async close() {
      controller.abort();
      await pump;
    },
  };
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

/** The watchers compared, and the order of their first blocks. */
const WATCHERS = ['sdkit', 'pipeline', 'http', 'floor', 'httpFloor', 'baseline'] as const;
type WatcherKind = (typeof WATCHERS)[number];

/** Blocks per watcher and size: the changes are measured in this many interleaved blocks. */
const ROUNDS = 4;
/** Unmeasured changes at the start of each block (JIT, connection warm-up). */
const WARMUP = 5;

/**
 * Measures propagation at each size: populates `/bench/prop-<n>/` with n keys (left in place for the other etcd
 * benchmarks), then puts new keys one at a time, each awaited by the watcher before the next.
 *
 * Only one watcher follows the prefix at a time, so none waits behind another's delivery in this process or
 * behind the baseline's re-reads in etcd; the three take turns in {@link ROUNDS} interleaved blocks (rotating
 * which goes first), so machine noise over the run hits them alike.
 */
export async function benchPropagation(
  env: BenchEtcd,
  sizes: readonly number[],
  changes: (n: number) => number,
  say: (line: string) => void,
): Promise<PropagationResult[]> {
  const out: PropagationResult[] = [];
  const sdkitClient = await env.sdkit();
  const httpClient = await env.sdkit('http');
  const floorClient = env.raw();
  const baselineClient = env.raw();
  const open = (kind: WatcherKind, prefix: string, n: number): Promise<Probe> =>
    kind === 'sdkit' || kind === 'http'
      ? sdkitProbe(kind === 'http' ? httpClient : sdkitClient, prefix, n)
      : kind === 'pipeline'
        ? pipelineProbe(sdkitClient, prefix, n)
        : kind === 'floor'
          ? floorProbe(floorClient, prefix)
          : kind === 'httpFloor'
            ? httpFloorProbe(env.server.endpoints[0]!, prefix)
            : baselineProbe(baselineClient, prefix);
  for (const n of sizes) {
    const prefix = propagationPrefix(n);
    await populate(env.writer, prefix, n);
    const ms: Record<WatcherKind, number[]> = {
      sdkit: [],
      pipeline: [],
      http: [],
      floor: [],
      httpFloor: [],
      baseline: [],
    };
    const count = changes(n);
    const t = process.hrtime.bigint();
    let next = n;
    for (let round = 0; round < ROUNDS; round++) {
      const block = Math.ceil(count / ROUNDS);
      for (let w = 0; w < WATCHERS.length; w++) {
        const kind = WATCHERS[(w + round) % WATCHERS.length]!;
        const probe = await open(kind, prefix, n);
        // Every block starts after the same work in etcd: the instancers open with a read of the whole prefix,
        // whose after-effects in etcd (≈ 30 MB of responses for its Go GC to collect) would otherwise fall on
        // their own first changes only; the bare watches open with no read. So each watcher's block follows one
        // more read of the prefix by the writer.
        await env.writer.getAll().prefix(prefix).keys();
        // Collect what opening left behind (a 100 000-key read makes ≈ 100 MB of garbage) before measuring, so
        // no watcher's block pays for its start-up.
        collectGarbage();
        for (let i = 0; i < WARMUP + block; i++) {
          const key = keyOf(prefix, next);
          const seen = probe.expect(key);
          const t0 = process.hrtime.bigint();
          await env.writer.put(key).value(addressOf(next++));
          const at = await seen;
          if (i >= WARMUP) ms[kind].push(Number(at - t0) / 1e6);
        }
        await probe.close();
      }
    }
    // Remove the added keys, so the prefix holds exactly n again.
    await env.writer
      .delete()
      .inRange({ start: keyOf(prefix, n), end: keyOf(prefix, next) })
      .exec();
    const row: PropagationResult = {
      instances: n,
      changes: ms.sdkit.length,
      sdkit: summary(ms.sdkit),
      pipeline: summary(ms.pipeline),
      http: summary(ms.http),
      floor: summary(ms.floor),
      httpFloor: summary(ms.httpFloor),
      baseline: summary(ms.baseline),
      sdkitOverFloor: percentile(ms.sdkit, 50) / percentile(ms.floor, 50),
      pipelineOverFloor: percentile(ms.pipeline, 50) / percentile(ms.floor, 50),
      httpOverFloor: percentile(ms.http, 50) / percentile(ms.floor, 50),
      httpOverHttpFloor: percentile(ms.http, 50) / percentile(ms.httpFloor, 50),
      baselineOverSdkit: percentile(ms.baseline, 50) / percentile(ms.sdkit, 50),
    };
    out.push(row);
    say(
      `  propagation n=${n}: sdkit p50 ${row.sdkit.p50.toFixed(2)} ms, pipeline ${row.pipeline.p50.toFixed(2)} ms, http ${row.http.p50.toFixed(2)} ms, floor ${row.floor.p50.toFixed(2)} ms, ` +
        `baseline ${row.baseline.p50.toFixed(2)} ms (${msSince(t).toFixed(0)} ms)`,
    );
  }
  return out;
}

/** The prefix {@link benchPropagation} fills with `n` keys. */
export function propagationPrefix(n: number): string {
  return `/bench/prop-${n}/`;
}
