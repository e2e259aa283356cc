/**
 * A throw-away Kubernetes API server for the Kubernetes benchmarks (test/kube-apiserver, through
 * `@sdkit/test-harness` `startKubeApiServer`), an admin writer on a kept-alive HTTPS connection, and the
 * EndpointSlices the benchmarks follow: a Service of n endpoints is ⌈n / 100⌉ slices of (at most) 100.
 */
import https from 'node:https';
import {
  KUBE_ADMIN_USER,
  type KubeApiServer,
  kubeApiServerBinDir,
  startKubeApiServer,
} from '@sdkit/test-harness';
import { bounded } from './workload.js';

/** The namespace every benchmark Service lives in. */
export const BENCH_NAMESPACE = 'bench';
/** Endpoints per EndpointSlice (the EndpointSlice controller's default `--max-endpoints-per-slice`). */
export const ENDPOINTS_PER_SLICE = 100;
/** The port every slice offers (`http`); instance keys are `ip:PORT`. */
export const PORT = 8080;

/**
 * Throws, saying to run `node test/kube-apiserver/build.mjs`, when the test API server is not built. Called
 * before any benchmark runs, so that a missing build fails the run at once rather than after the etcd benchmarks.
 */
export function requireKubeApiServer(): void {
  kubeApiServerBinDir();
}

/** The bench's API server, its admin writer, and the kubeconfig the sdkit clients load. */
export interface BenchKube {
  readonly server: KubeApiServer;
  /** `gitVersion` of the server's `/version` (e.g. `v1.36.4`). */
  readonly version: string;
  /** A kubeconfig file for the admin (cluster, CA, token, context with namespace `default`). */
  readonly kubeconfig: string;
  /**
   * One admin request on the writer's kept-alive connection (never one of the measured watchers): `body` as
   * JSON (`contentType` for a patch). Resolves with the status and the body as text; never rejects on HTTP errors.
   */
  request(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
  ): Promise<{ status: number; text: string }>;
  /** Kills the API server and its etcd, removes their data. */
  close(): Promise<void>;
}

/** Starts the API server (no periodic etcd compaction during the run) and creates {@link BENCH_NAMESPACE}. */
export async function startBenchKube(): Promise<BenchKube> {
  const server = await startKubeApiServer({ name: 'bench', extraArgs: ['--etcd-compaction-interval=0'] });
  // One kept-alive connection at a time for the measured writes (a few for populating): no TLS handshake
  // inside a measurement.
  const agent = new https.Agent({ keepAlive: true, maxSockets: 4, ca: server.caPem });
  const authorization = `Bearer ${server.tokens[KUBE_ADMIN_USER]}`;
  const request: BenchKube['request'] = (method, path, body, contentType) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const headers: Record<string, string> = { authorization, accept: 'application/json' };
      if (payload !== undefined) headers['content-type'] = contentType ?? 'application/json';
      const req = https.request(new URL(path, server.url), { method, headers, agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: no answer within 30 s`)));
      req.on('error', reject);
      req.end(payload);
    });
  try {
    const ns = await request('POST', '/api/v1/namespaces', { metadata: { name: BENCH_NAMESPACE } });
    if (ns.status !== 201 && ns.status !== 409)
      throw new Error(`creating namespace: ${ns.status} ${ns.text}`);
    const version = (JSON.parse((await request('GET', '/version')).text) as { gitVersion?: string })
      .gitVersion;
    return {
      server,
      version: version ?? 'unknown',
      kubeconfig: await server.kubeconfig(KUBE_ADMIN_USER),
      request,
      async close() {
        agent.destroy();
        await server.close();
      },
    };
  } catch (err) {
    agent.destroy();
    await server.close();
    throw err;
  }
}

/** The EndpointSlices of {@link BENCH_NAMESPACE}, optionally one of them. */
export function slicesPath(name?: string): string {
  const base = `/apis/discovery.k8s.io/v1/namespaces/${BENCH_NAMESPACE}/endpointslices`;
  return name === undefined ? base : `${base}/${name}`;
}

/** The label selector of a Service's slices, URL-encoded for a query. */
export function serviceSelector(service: string): string {
  return `labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${service}`)}`;
}

/** The `i`-th endpoint's IP (from i = 0): 10.x.y.z, distinct below 2^24. */
export function ipOf(i: number): string {
  const n = i + 1;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

/** Name of slice `s` of `service`. */
export function sliceName(service: string, s: number): string {
  return `${service}-${String(s).padStart(3, '0')}`;
}

/** How many endpoints slice `s` of a Service of `n` holds when populated. */
export function sliceSize(n: number, s: number): number {
  return Math.min(ENDPOINTS_PER_SLICE, n - s * ENDPOINTS_PER_SLICE);
}

/**
 * The `i`-th endpoint of `service` as the EndpointSlice controller writes a ready Pod's: one address, the three
 * conditions, node, zone, and the Pod as `targetRef` (so memory and parsing figures carry real metadata).
 */
export function endpointOf(service: string, i: number): object {
  return {
    addresses: [ipOf(i)],
    conditions: { ready: true, serving: true, terminating: false },
    nodeName: `node-${String(i % 50).padStart(2, '0')}`,
    zone: `zone-${'abc'[i % 3]}`,
    targetRef: {
      kind: 'Pod',
      namespace: BENCH_NAMESPACE,
      name: `${service}-7c9d8f6b5d-${i.toString(36).padStart(5, '0')}`,
      uid: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
    },
  };
}

/**
 * Creates the slices of a Service of `n` endpoints (endpoints 0..n-1, {@link ENDPOINTS_PER_SLICE} per slice, the
 * last one holding the rest); returns the number of slices.
 */
export async function populateService(kube: BenchKube, service: string, n: number): Promise<number> {
  const slices = Math.ceil(n / ENDPOINTS_PER_SLICE);
  await bounded(4, slices, async (s) => {
    const first = s * ENDPOINTS_PER_SLICE;
    const endpoints = Array.from({ length: sliceSize(n, s) }, (_, k) => endpointOf(service, first + k));
    const res = await kube.request('POST', slicesPath(), {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: sliceName(service, s),
        labels: {
          'kubernetes.io/service-name': service,
          'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
        },
      },
      addressType: 'IPv4',
      endpoints,
      ports: [{ name: 'http', port: PORT, protocol: 'TCP' }],
    });
    if (res.status !== 201)
      throw new Error(`creating slice ${sliceName(service, s)}: ${res.status} ${res.text}`);
  });
  return slices;
}

const JSON_PATCH = 'application/json-patch+json';

/**
 * Appends `endpoint` to slice `slice` with a JSON patch (`add /endpoints/-`): one small request whatever the
 * slice's size; the API server stores and sends the whole slice. Throws on anything but 200.
 */
export async function addEndpoint(kube: BenchKube, slice: string, endpoint: object): Promise<void> {
  const res = await kube.request(
    'PATCH',
    slicesPath(slice),
    [{ op: 'add', path: '/endpoints/-', value: endpoint }],
    JSON_PATCH,
  );
  if (res.status !== 200) throw new Error(`adding an endpoint to ${slice}: ${res.status} ${res.text}`);
}

/** Removes the endpoint at `index` of slice `slice`, after testing that its address is `ip`. Throws on non-200. */
export async function removeEndpoint(
  kube: BenchKube,
  slice: string,
  index: number,
  ip: string,
): Promise<void> {
  const res = await kube.request(
    'PATCH',
    slicesPath(slice),
    [
      { op: 'test', path: `/endpoints/${index}/addresses/0`, value: ip },
      { op: 'remove', path: `/endpoints/${index}` },
    ],
    JSON_PATCH,
  );
  if (res.status !== 200) throw new Error(`removing ${ip} from ${slice}: ${res.status} ${res.text}`);
}
