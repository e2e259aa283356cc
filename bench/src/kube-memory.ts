/**
 * Memory per endpoint held by the Kubernetes pipeline on a real API server: a `KubernetesInstancer` following a
 * Service of N endpoints (N / 100 EndpointSlices, each endpoint with the metadata the EndpointSlice controller
 * writes: conditions, node, zone, Pod) + `endpointer` (a factory returning a trivial endpoint, as in `memory.ts`)
 * + `roundRobin`. Figures are heapUsed after full GCs minus the heap before the instancer was made (the client
 * already connected), divided by N: the instances with their metadata, the per-slice union, the instance cache,
 * the current event, the endpoints; the open watch and its buffers count too, spread over N.
 *
 * Measured twice: just after the list, and again once every slice has been rewritten (one endpoint added to it,
 * then removed; the others unchanged), which is what a long-running client holds — a cluster rewrites a slice
 * whenever one of its Pods changes.
 */
import { roundRobin } from '@sdkit/lb';
import { endpointer, type InstancerEvent } from '@sdkit/sd-core';
import { type KubernetesClient, KubernetesInstancer } from '@sdkit/sd-kubernetes';
import {
  addEndpoint,
  BENCH_NAMESPACE,
  type BenchKube,
  ENDPOINTS_PER_SLICE,
  endpointOf,
  ipOf,
  PORT,
  removeEndpoint,
  sliceName,
  sliceSize,
} from './kube-env.js';
import { consume, heapAfterGc } from './measure.js';

/** Result of the Kubernetes memory benchmark. */
export interface KubeMemoryResult {
  readonly endpoints: number;
  /** Bytes per endpoint: the KubernetesInstancer with the Service listed and watched. */
  readonly instancerBytesPerEndpoint: number;
  /** Bytes per endpoint added by the endpointer (endpoint per instance, its maps, its snapshot) + roundRobin. */
  readonly endpointerBytesPerEndpoint: number;
  /** The sum just after the list: the whole pipeline, bytes per endpoint held. */
  readonly totalBytesPerEndpoint: number;
  /** The whole pipeline once every slice has been rewritten: bytes per endpoint held. */
  readonly rewrittenBytesPerEndpoint: number;
}

const noop = async (x: unknown) => x;

/** A few event-loop turns (pending socket closes and timers run). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

/** Resolves at the first event of `instancer` (the current one included) for which `check` holds. */
function until(instancer: KubernetesInstancer, check: (event: InstancerEvent) => boolean): Promise<void> {
  let sub: { unsubscribe(): void } | undefined;
  let done = false;
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('kubernetes memory bench: no such event in 30 s')),
      30_000,
    );
    sub = instancer.events$.subscribe((event) => {
      if (event.error) reject(event.error);
      else if (check(event)) resolve();
      else return;
      done = true;
      clearTimeout(timer);
      sub?.unsubscribe();
    });
    if (done) sub.unsubscribe();
  });
}

/** Measures on `service` (of `kube`), which must hold exactly `n` endpoints, populated by `populateService`. */
export async function benchKubeMemory(
  kube: BenchKube,
  client: KubernetesClient,
  service: string,
  n: number,
): Promise<KubeMemoryResult> {
  // Let what stopped before (a watch's socket, its parser and buffers) be released first: a stopped instancer's
  // request is destroyed, but its objects stay reachable until the socket's close is handled.
  await settle();
  const h0 = heapAfterGc(3);
  const instancer = new KubernetesInstancer(client, { service, namespace: BENCH_NAMESPACE });
  // The first good event holds the whole list (the endpointer reads this array too).
  await until(instancer, (event) => event.instances.length === n);
  // Steady state: the watch open, the list's response and its parsed JSON gone.
  await settle();
  const h1 = heapAfterGc(3);
  const eps = endpointer(instancer, () => ({ endpoint: noop }));
  const balancer = roundRobin(eps);
  await eps.ready();
  if (eps.endpoints().length !== n)
    throw new Error(`kubernetes memory bench: ${eps.endpoints().length} endpoints, not ${n}`);
  consume(balancer.endpoint());
  await settle();
  const h2 = heapAfterGc(3);
  // Rewrite every slice once: add an endpoint, wait for it, remove it, wait for that.
  for (let s = 0; s < Math.ceil(n / ENDPOINTS_PER_SLICE); s++) {
    const ip = ipOf(n + s);
    const key = `${ip}:${PORT}`;
    const added = until(instancer, (e) => e.changes?.added.some((i) => i.key === key) ?? false);
    await addEndpoint(kube, sliceName(service, s), endpointOf(service, n + s));
    await added;
    const removed = until(instancer, (e) => e.changes?.removed.some((i) => i.key === key) ?? false);
    await removeEndpoint(kube, sliceName(service, s), sliceSize(n, s), ip);
    await removed;
  }
  if (eps.endpoints().length !== n)
    throw new Error(
      `kubernetes memory bench: ${eps.endpoints().length} endpoints after the rewrites, not ${n}`,
    );
  consume(balancer.endpoint());
  await settle();
  const h3 = heapAfterGc(3);
  consume([instancer, eps, balancer]);
  await eps.close();
  instancer.stop();
  consume(undefined);
  return {
    endpoints: n,
    instancerBytesPerEndpoint: (h1 - h0) / n,
    endpointerBytesPerEndpoint: (h2 - h1) / n,
    totalBytesPerEndpoint: (h2 - h0) / n,
    rewrittenBytesPerEndpoint: (h3 - h0) / n,
  };
}
