/**
 * Discovery propagation on a real etcd: time from the start of a put to the moment a watcher has the new key.
 * Six watchers, each on its own connection and its own prefix of n keys; the first five are measured change by
 * change in a shuffled order, the baseline on its own afterwards (see {@link benchPropagation}):
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
import { type BenchEtcd, compactHistory, msSince, percentile, populate } from './etcd-env.js';
import { collectGarbage } from './measure.js';
import { prng } from './tail-latency-model.js';
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

/** The watchers measured change by change, each on a prefix of its own. */
const INTERLEAVED = ['sdkit', 'pipeline', 'http', 'floor', 'httpFloor'] as const;
type WatcherKind = (typeof INTERLEAVED)[number] | 'baseline';

/** Unmeasured rounds at the start (JIT, connection warm-up, the after-effects of the opening reads). */
const WARMUP = 5;
/** Seed of the order of the watchers within each round (reproducible from run to run). */
const ORDER_SEED = 14;

/**
 * Measures propagation at each size.
 *
 * The five cheap watchers are measured change by change: each follows a prefix of its own holding n keys (so a
 * change reaches exactly one of them), all are open at once, and every round puts one new key under each prefix
 * in a freshly shuffled order, each awaited by its watcher before the next put. Consecutive changes thus go to
 * different watchers, and whatever the machine does over the run falls on all of them alike. (On the 2-core VMs
 * this was tuned on, the bare watch's median over blocks of 40 consecutive changes ranged from 0.86 to 1.44 ms
 * within one run; with each watcher in blocks of its own, that drift decided the ratios.)
 *
 * The go-kit baseline runs afterwards on its own, with the others closed: its whole-prefix re-reads load etcd,
 * whose after-effects would fall on whichever watcher came next.
 *
 * Leaves `propagationPrefix(n)` holding exactly n keys for the other etcd benchmarks (the other prefixes are
 * deleted), and etcd's history compacted (see {@link compactHistory}).
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
  const random = prng(ORDER_SEED);
  for (const n of sizes) {
    const count = changes(n);
    const t = process.hrtime.bigint();
    const prefixOf = (kind: WatcherKind) =>
      kind === 'sdkit' || kind === 'baseline' ? propagationPrefix(n) : `/bench/prop-${n}-${kind}/`;
    const ms = Object.fromEntries([...INTERLEAVED, 'baseline'].map((k) => [k, [] as number[]])) as Record<
      WatcherKind,
      number[]
    >;
    let next = n;
    /** Puts one new key under the watcher's prefix; records the time until the watcher has it. */
    const change = async (kind: WatcherKind, probe: Probe, measured: boolean) => {
      const key = keyOf(prefixOf(kind), next);
      const seen = probe.expect(key);
      const t0 = process.hrtime.bigint();
      await env.writer.put(key).value(addressOf(next++));
      const at = await seen;
      if (measured) ms[kind].push(Number(at - t0) / 1e6);
    };

    for (const kind of INTERLEAVED) await populate(env.writer, prefixOf(kind), n);
    const probes: Probe[] = [];
    for (const kind of INTERLEAVED) probes.push(await open(kind, prefixOf(kind), n));
    // Collect what opening left behind (a 100 000-key read makes ≈ 100 MB of garbage) before measuring.
    collectGarbage();
    const order = INTERLEAVED.map((_, i) => i);
    for (let round = 0; round < WARMUP + count; round++) {
      shuffle(order, random);
      for (const i of order) await change(INTERLEAVED[i]!, probes[i]!, round >= WARMUP);
    }
    for (const probe of probes) await probe.close();

    // Back to n keys under propagationPrefix(n) (the added ones removed), and nothing under the others.
    const base = propagationPrefix(n);
    const dropAdded = () =>
      env.writer
        .delete()
        .inRange({ start: keyOf(base, n), end: keyOf(base, next) })
        .exec();
    await dropAdded();
    for (const kind of INTERLEAVED)
      if (prefixOf(kind) !== base) await env.writer.delete().prefix(prefixOf(kind)).exec();

    const baseline = await open('baseline', base, n);
    collectGarbage();
    for (let i = 0; i < WARMUP + count; i++) await change('baseline', baseline, i >= WARMUP);
    await baseline.close();
    await dropAdded();
    // The five prefixes' writes and deletes (≈ 5 n revisions) would slow etcd for every benchmark after this one.
    await compactHistory(env.writer);

    const p50 = (kind: WatcherKind) => percentile(ms[kind], 50);
    const row: PropagationResult = {
      instances: n,
      changes: ms.sdkit.length,
      sdkit: summary(ms.sdkit),
      pipeline: summary(ms.pipeline),
      http: summary(ms.http),
      floor: summary(ms.floor),
      httpFloor: summary(ms.httpFloor),
      baseline: summary(ms.baseline),
      sdkitOverFloor: p50('sdkit') / p50('floor'),
      pipelineOverFloor: p50('pipeline') / p50('floor'),
      httpOverFloor: p50('http') / p50('floor'),
      httpOverHttpFloor: p50('http') / p50('httpFloor'),
      baselineOverSdkit: p50('baseline') / p50('sdkit'),
    };
    out.push(row);
    say(
      `  propagation n=${n}: sdkit p50 ${row.sdkit.p50.toFixed(2)} ms, pipeline ${row.pipeline.p50.toFixed(2)} ms, http ${row.http.p50.toFixed(2)} ms, floor ${row.floor.p50.toFixed(2)} ms, ` +
        `baseline ${row.baseline.p50.toFixed(2)} ms (${msSince(t).toFixed(0)} ms)`,
    );
  }
  return out;
}

/** Fisher–Yates, in place. */
function shuffle(items: number[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}

/** The prefix {@link benchPropagation} fills with `n` keys. */
export function propagationPrefix(n: number): string {
  return `/bench/prop-${n}/`;
}
