/**
 * What a cluster admin (or the EndpointSlice controller) does, through `@kubernetes/client-node`'s typed API on
 * the same `KubeConfig` the sdkit client loaded: a namespace, a Service without a selector, and EndpointSlices
 * written by hand. Nothing here is sdkit: the client side only reads.
 */
import { isIPv6 } from 'node:net';
import {
  ApiException,
  CoreV1Api,
  DiscoveryV1Api,
  type KubeConfig,
  type V1EndpointSlice,
} from '@kubernetes/client-node';

/** The label that marks EndpointSlices not managed by the EndpointSlice controller (here: by this example). */
const MANAGED_BY = 'endpointslice.kubernetes.io/managed-by';
const MANAGER = 'sdkit-example';

/** One endpoint of a slice: a "pod" (here, one of the example's servers, all on this machine). */
export interface SliceEndpoint {
  /** Its IP address. */
  readonly ip: string;
  /** The pod name (the endpoint's `targetRef`). */
  readonly pod: string;
  readonly zone: string;
  /** `conditions.ready`; a not-ready endpoint is written as terminating (a pod shutting down). */
  readonly ready: boolean;
}

export class Admin {
  readonly #core: CoreV1Api;
  readonly #discovery: DiscoveryV1Api;
  readonly #created: string[] = [];
  readonly #slices = new Set<string>();

  constructor(
    kubeConfig: KubeConfig,
    readonly namespace: string,
    readonly service: string,
  ) {
    this.#core = kubeConfig.makeApiClient(CoreV1Api);
    this.#discovery = kubeConfig.makeApiClient(DiscoveryV1Api);
  }

  /** Creates the namespace and the Service when missing; removes this example's slices left by an earlier run. */
  async setUp(): Promise<string> {
    const { namespace, service } = this;
    const done: string[] = [];
    if (
      await this.#createUnlessExists(() =>
        this.#core.createNamespace({ body: { metadata: { name: namespace } } }),
      )
    ) {
      this.#created.push('namespace');
      done.push(`namespace ${namespace} created`);
    } else {
      done.push(`namespace ${namespace} exists`);
    }
    const body = {
      metadata: { name: service },
      // No selector: the EndpointSlice controller leaves its slices alone; they are written below.
      spec: { ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
    };
    if (await this.#createUnlessExists(() => this.#core.createNamespacedService({ namespace, body }))) {
      this.#created.push('service');
      done.push(`Service ${service} (port "http") created`);
    } else {
      done.push(`Service ${service} exists`);
    }
    await this.#discovery.deleteCollectionNamespacedEndpointSlice({
      namespace,
      labelSelector: `${MANAGED_BY}=${MANAGER}`,
    });
    return done.join(', ');
  }

  /**
   * Creates or replaces the EndpointSlice `name` of the Service: its endpoints, its port "http" with the number
   * `port` (a slice holds one port mapping for all its endpoints: servers on different ports
   * need different slices, as pods whose named port maps to different numbers do).
   */
  async putSlice(name: string, port: number, endpoints: readonly SliceEndpoint[]): Promise<void> {
    const { namespace } = this;
    const slice: V1EndpointSlice = {
      metadata: {
        name,
        labels: { 'kubernetes.io/service-name': this.service, [MANAGED_BY]: MANAGER },
      },
      addressType: endpoints.some((e) => isIPv6(e.ip)) ? 'IPv6' : 'IPv4',
      endpoints: endpoints.map((e) => ({
        addresses: [e.ip],
        conditions: { ready: e.ready, serving: true, terminating: !e.ready },
        zone: e.zone,
        targetRef: { kind: 'Pod', name: e.pod, namespace },
      })),
      ports: [{ name: 'http', port, protocol: 'TCP' }],
    };
    this.#slices.add(name);
    if (
      await this.#createUnlessExists(() =>
        this.#discovery.createNamespacedEndpointSlice({ namespace, body: slice }),
      )
    ) {
      return;
    }
    // It exists (an earlier write): replace it, at the resourceVersion read (a conflict would be a 409).
    const current = await this.#discovery.readNamespacedEndpointSlice({ name, namespace });
    const resourceVersion = current.metadata?.resourceVersion;
    await this.#discovery.replaceNamespacedEndpointSlice({
      name,
      namespace,
      body: { ...slice, metadata: { ...slice.metadata, ...(resourceVersion ? { resourceVersion } : {}) } },
    });
  }

  async deleteSlice(name: string): Promise<void> {
    await this.#discovery.deleteNamespacedEndpointSlice({ name, namespace: this.namespace });
    this.#slices.delete(name);
  }

  /** Deletes the slices written and what {@link setUp} created, Service before namespace. */
  async tearDown(): Promise<string> {
    const { namespace, service } = this;
    const done: string[] = [];
    for (const name of [...this.#slices]) {
      await this.deleteSlice(name);
      done.push(`EndpointSlice ${name}`);
    }
    if (this.#created.includes('service')) {
      await this.#core.deleteNamespacedService({ name: service, namespace });
      done.push(`Service ${service}`);
    }
    if (this.#created.includes('namespace')) {
      await this.#core.deleteNamespace({ name: namespace });
      done.push(`namespace ${namespace}`);
    }
    return done.length === 0 ? 'nothing' : done.join(', ');
  }

  /** Runs `create`; false when the object already exists (409). */
  async #createUnlessExists(create: () => Promise<unknown>): Promise<boolean> {
    try {
      await create();
      return true;
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) return false;
      throw err;
    }
  }
}

/** A readable line for a failed API call (client-node's `ApiException` message holds the whole body). */
export function describeApiError(err: unknown): string {
  if (err instanceof ApiException) {
    let message = '';
    try {
      const status = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as {
        message?: unknown;
      };
      if (typeof status?.message === 'string') message = `: ${status.message}`;
    } catch {}
    return `the API server answered ${err.code}${message}`;
  }
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
