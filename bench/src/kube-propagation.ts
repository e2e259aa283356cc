/**
 * Discovery propagation on a real Kubernetes API server: time from the start of an EndpointSlice write that adds
 * one endpoint (an admin JSON patch, `add /endpoints/-`) to the moment a watcher can use the new endpoint. Two
 * watchers, each on its own connection, take turns following the Service (interleaved blocks, one watcher at a
 * time, see {@link benchKubePropagation}):
 * - `sdkit`: `KubernetesInstancer` → `endpointer` (a factory making a trivial endpoint per instance) →
 *   `roundRobin`, on a client from `createKubernetesClient` (the admin kubeconfig). Done when an `endpoints$`
 *   snapshot — the very array `roundRobin` picks from — holds the endpoint made for the new instance: from then
 *   on a pick can return it. `endpoints$` publishes in the microtask after the change, so nothing polls.
 * - `floor`: a bare watch of the same EndpointSlices (one HTTPS request, `watch=true&allowWatchBookmarks=true`
 *   with the same label selector, as the admin): JSON lines split and parsed; done when an event of the written
 *   slice lists the new address.
 */
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { roundRobin } from '@sdkit/lb';
import { type Endpoint, endpointer } from '@sdkit/sd-core';
import { type KubernetesClient, KubernetesInstancer } from '@sdkit/sd-kubernetes';
import { KUBE_ADMIN_USER } from '@sdkit/test-harness';
import { msSince, percentile } from './etcd-env.js';
import {
  addEndpoint,
  BENCH_NAMESPACE,
  type BenchKube,
  endpointOf,
  ipOf,
  PORT,
  populateService,
  removeEndpoint,
  serviceSelector,
  sliceName,
  sliceSize,
  slicesPath,
} from './kube-env.js';
import { collectGarbage } from './measure.js';
import { deferred } from './workload.js';

/** Latency summary in ms. */
export interface KubeLatency {
  readonly p50: number;
  readonly p90: number;
  readonly max: number;
  /**
   * Median µs this process's event loop was busy from the write's start to the detection: the writer's request
   * and response, and the watch event's handling (parsing, and for sdkit the instancer, endpointer and snapshot).
   */
  readonly busyUs: number;
}

/** One row: propagation for a Service of `endpoints` endpoints in `slices` slices. */
export interface KubePropagationResult {
  readonly endpoints: number;
  readonly slices: number;
  /** Measured changes per watcher. */
  readonly changes: number;
  readonly sdkit: KubeLatency;
  readonly floor: KubeLatency;
  /** sdkit p50 / floor p50 (goal ≤ 1.2). */
  readonly sdkitOverFloor: number;
  /** sdkit p90 / floor p90. */
  readonly sdkitOverFloorP90: number;
}

/** What a probe waits for: `ip` (key `ip:PORT`) present in, or gone from, what the watcher holds. */
interface Target {
  readonly slice: string;
  readonly ip: string;
  readonly key: string;
  readonly present: boolean;
}

/** When a probe saw its target: hrtime, and the event loop's active ms (`eventLoopUtilization().active`). */
interface Seen {
  readonly at: bigint;
  readonly activeMs: number;
}

/** A watcher that reports when a {@link Target} holds. */
interface Probe {
  expect(target: Target): Promise<Seen>;
  close(): Promise<void>;
}

/** Longest wait for a target before the run fails (a lost event must not hang the bench). */
const EXPECT_TIMEOUT_MS = 30_000;

/** Resolver bookkeeping shared by the probes: one awaited target at a time. */
class Waiting {
  target: Target | undefined;
  #resolve: ((seen: Seen) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  constructor(readonly label: string) {}
  expect(target: Target): Promise<Seen> {
    this.target = target;
    return new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#timer = setTimeout(() => {
        this.target = undefined;
        reject(
          new Error(
            `${this.label}: ${target.key} ${target.present ? 'not seen' : 'not gone'} within ${EXPECT_TIMEOUT_MS} ms`,
          ),
        );
      }, EXPECT_TIMEOUT_MS);
    });
  }
  seen(): void {
    const at = process.hrtime.bigint();
    const activeMs = performance.eventLoopUtilization().active;
    const resolve = this.#resolve;
    clearTimeout(this.#timer);
    this.target = undefined;
    this.#resolve = undefined;
    resolve?.({ at, activeMs });
  }
}

/** Resolves when `promise` does; rejects after {@link EXPECT_TIMEOUT_MS} saying `what` did not happen. */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${EXPECT_TIMEOUT_MS} ms`)), EXPECT_TIMEOUT_MS);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A new trivial endpoint. Made outside the probe so that it holds nothing of it: a closed probe (its instancer
 * and endpointer) must not stay reachable through an endpoint kept elsewhere.
 */
function trivialEndpoint(): Endpoint {
  return async (request) => request;
}

async function sdkitProbe(client: KubernetesClient, service: string, initial: number): Promise<Probe> {
  const w = new Waiting('sdkit');
  // The endpoint the factory made for the awaited key: the one a pick must be able to return.
  let watchedKey: string | undefined;
  let watchedEndpoint: Endpoint | undefined;
  const instancer = new KubernetesInstancer(client, { service, namespace: BENCH_NAMESPACE });
  const eps = endpointer(instancer, (instance) => {
    const endpoint = trivialEndpoint();
    if (instance.key === watchedKey) watchedEndpoint = endpoint;
    return { endpoint };
  });
  const balancer = roundRobin(eps);
  const ready = deferred<void>();
  let isReady = false;
  const sub = eps.endpoints$.subscribe((snapshot) => {
    if (!isReady && snapshot.length >= initial) {
      isReady = true;
      ready.resolve();
    }
    const target = w.target;
    if (target === undefined || watchedEndpoint === undefined) return;
    if (snapshot.includes(watchedEndpoint) === target.present) w.seen();
  });
  await within(ready.promise, `sdkit: ${initial} endpoints of ${service} not listed`);
  if (typeof balancer.endpoint() !== 'function') throw new Error('sdkit: roundRobin picked no endpoint');
  return {
    expect(target) {
      if (target.present) {
        watchedKey = target.key;
        watchedEndpoint = undefined;
      }
      return w.expect(target);
    },
    async close() {
      sub.unsubscribe();
      await eps.close();
      instancer.stop();
    },
  };
}

interface SliceJson {
  readonly metadata?: { readonly name?: string };
  readonly endpoints?: readonly { readonly addresses?: readonly string[] }[] | null;
}

/**
 * A bare watch from now (no resourceVersion): an ADDED event per existing slice, then the changes. Ready once
 * the ADDED events hold `initial` endpoints.
 */
async function floorProbe(kube: BenchKube, service: string, initial: number): Promise<Probe> {
  const w = new Waiting('floor');
  const ready = deferred<void>();
  let listed = 0;
  let buffer = '';
  const onLine = (line: string): void => {
    const event = JSON.parse(line) as { type?: string; object?: SliceJson };
    const slice = event.object;
    if (listed < initial && event.type === 'ADDED') {
      listed += slice?.endpoints?.length ?? 0;
      if (listed >= initial) ready.resolve();
    }
    const target = w.target;
    if (target === undefined || slice?.metadata?.name !== target.slice) return;
    const has = slice.endpoints?.some((e) => e.addresses?.includes(target.ip)) ?? false;
    if (has === target.present) w.seen();
  };
  const path = `${slicesPath()}?${serviceSelector(service)}&watch=true&allowWatchBookmarks=true&timeoutSeconds=3600`;
  const req = https.request(new URL(path, kube.server.url), {
    headers: {
      authorization: `Bearer ${kube.server.tokens[KUBE_ADMIN_USER]}`,
      accept: 'application/json',
    },
    ca: kube.server.caPem,
    agent: false,
  });
  const opened = new Promise<void>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`floor: watch answered ${res.statusCode}`));
        res.resume();
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (line.length > 0) onLine(line);
        }
      });
      resolve();
    });
  });
  req.end();
  await within(opened, `floor: watch of ${service} not opened`);
  await within(ready.promise, `floor: ${initial} endpoints of ${service} not listed`);
  return {
    expect: (target) => w.expect(target),
    async close() {
      req.destroy();
    },
  };
}

/** The watchers compared, and the order of their first blocks. */
const WATCHERS = ['sdkit', 'floor'] as const;
type WatcherKind = (typeof WATCHERS)[number];

/** Blocks per watcher and size: the changes are measured in this many interleaved blocks. */
const ROUNDS = 4;
/** Unmeasured changes at the start of each block (JIT, connection warm-up). */
const WARMUP = 5;

/**
 * Measures propagation at each size: populates Service `kprop-<n>` with n endpoints, 100 per slice (left in
 * place: see {@link kubePropagationService}), then adds endpoints one at a time, rotating over the slices, each
 * awaited by the watcher before the next. After each, an unmeasured patch removes it again (awaited too), so
 * every write finds the slices at their populated size.
 *
 * Only one watcher follows the Service at a time, so neither waits behind the other's delivery; they take turns
 * in {@link ROUNDS} interleaved blocks (rotating which goes first), with a full GC before each, so machine noise
 * over the run hits both alike.
 */
export async function benchKubePropagation(
  kube: BenchKube,
  client: KubernetesClient,
  sizes: readonly number[],
  changes: number,
  say: (line: string) => void,
): Promise<KubePropagationResult[]> {
  const out: KubePropagationResult[] = [];
  const open = (kind: WatcherKind, service: string, n: number): Promise<Probe> =>
    kind === 'sdkit' ? sdkitProbe(client, service, n) : floorProbe(kube, service, n);
  for (const n of sizes) {
    const service = kubePropagationService(n);
    const slices = await populateService(kube, service, n);
    const ms: Record<WatcherKind, number[]> = { sdkit: [], floor: [] };
    const busyUs: Record<WatcherKind, number[]> = { sdkit: [], floor: [] };
    const t = process.hrtime.bigint();
    let next = 0;
    const block = Math.ceil(changes / ROUNDS);
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < WATCHERS.length; k++) {
        const kind = WATCHERS[(k + round) % WATCHERS.length]!;
        const probe = await open(kind, service, n);
        collectGarbage();
        for (let i = 0; i < WARMUP + block; i++) {
          const c = next++;
          const s = c % slices;
          const slice = sliceName(service, s);
          const ip = ipOf(n + c);
          const key = `${ip}:${PORT}`;
          const seen = probe.expect({ slice, ip, key, present: true });
          const body = endpointOf(service, n + c);
          const active0 = performance.eventLoopUtilization().active;
          const t0 = process.hrtime.bigint();
          await addEndpoint(kube, slice, body);
          const { at, activeMs } = await seen;
          if (i >= WARMUP) {
            ms[kind].push(Number(at - t0) / 1e6);
            busyUs[kind].push((activeMs - active0) * 1000);
          }
          const gone = probe.expect({ slice, ip, key, present: false });
          await removeEndpoint(kube, slice, sliceSize(n, s), ip);
          await gone;
        }
        await probe.close();
      }
    }
    const summary = (kind: WatcherKind): KubeLatency => ({
      p50: percentile(ms[kind], 50),
      p90: percentile(ms[kind], 90),
      max: Math.max(...ms[kind]),
      busyUs: percentile(busyUs[kind], 50),
    });
    const row: KubePropagationResult = {
      endpoints: n,
      slices,
      changes: ms.sdkit.length,
      sdkit: summary('sdkit'),
      floor: summary('floor'),
      sdkitOverFloor: percentile(ms.sdkit, 50) / percentile(ms.floor, 50),
      sdkitOverFloorP90: percentile(ms.sdkit, 90) / percentile(ms.floor, 90),
    };
    out.push(row);
    say(
      `  kubernetes propagation n=${n} (${slices} slices): sdkit p50 ${row.sdkit.p50.toFixed(2)} ms, ` +
        `floor ${row.floor.p50.toFixed(2)} ms; busy ${row.sdkit.busyUs.toFixed(0)} / ${row.floor.busyUs.toFixed(0)} µs ` +
        `(${msSince(t).toFixed(0)} ms)`,
    );
  }
  return out;
}

/** The Service {@link benchKubePropagation} populates with `n` endpoints (`n / 100` slices, left in place). */
export function kubePropagationService(n: number): string {
  return `kprop-${n}`;
}
