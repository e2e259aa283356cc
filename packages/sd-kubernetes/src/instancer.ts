import {
  assertKnownOptions,
  type BackoffDefaults,
  type BackoffOptions,
  type Clock,
  createBackoff,
  DEFAULT_BACKOFF,
  InstanceCache,
  type Instancer,
  type InstancerEvent,
  type Logger,
  SourceTelemetry,
  silentLogger,
} from '@sdkit/sd-core';
import type { Observable } from 'rxjs';
import { type KubernetesClient, onClientClose, transportOf } from './client.js';
import { describeValue } from './describe-value.js';
import type { PortSelector } from './endpoint-slice.js';
import { KubernetesClientError, KubernetesWatchError } from './errors.js';
import { sliceReader } from './slice-reader.js';
import { SliceUnion } from './slice-union.js';
import { SliceWatch } from './slice-watch.js';

/** Options of {@link KubernetesInstancer}. */
export interface KubernetesInstancerOptions {
  /** The Service whose endpoints to follow: its EndpointSlices carry `kubernetes.io/service-name=<service>`. */
  service: string;
  /** The Service's namespace. Default: the client's (`client.namespace`: the pod's own in-cluster). */
  namespace?: string;
  /**
   * The port instances are dialled on: a number (dialled as given, e.g. `8080`); a port name of the Service
   * (`'grpc'`, looked up in each EndpointSlice's ports, so each endpoint gets its own slice's number); or absent:
   * each slice's first port (kuberesolver's rule). A string of digits is a number. A name that none of the
   * Service's slices has makes the instancer report an error naming the ports it has.
   */
  port?: number | string;
  /**
   * Also serve endpoints that are `serving` and `terminating`: pods that are shutting down but still answer
   * (useful while a rollout drains, when no ready endpoint may be left). Default false: only ready endpoints
   * (`conditions.ready` true or unset).
   */
  servingTerminating?: boolean;
  /** Default: the client's logger. */
  logger?: Logger;
  /**
   * Retry timing while the API server fails (the same shape as sd-etcd's): exponential from `initialMs` (default
   * 100) by `factor` (2) up to `maxMs` (10 000), each delay a random time in `[d × (1 − jitter), d]` (jitter 0.5).
   */
  backoff?: BackoffOptions;
  /** Time source for retries and the watch's idle bound. Default: the client's clock. */
  clock?: Clock;
  /** EndpointSlices per list page (`limit`). Default 500. */
  pageSize?: number;
  /**
   * `timeoutSeconds` of each watch request: the API server ends the watch after it (each watch asks for a random
   * time between 80 % and 100 % of it, so that many clients do not reconnect together), and the instancer resumes
   * it from the last resourceVersion at once. Default 300.
   */
  watchTimeoutSeconds?: number;
  /**
   * A watch that sends nothing (no change, no bookmark) for this long is taken for dead and resumed from the last
   * resourceVersion. The API server sends a bookmark about once a minute to a watch that asks for them (this one
   * does). Default 90 000.
   */
  watchIdleTimeoutMs?: number;
}

const OPTIONS = [
  'service',
  'namespace',
  'port',
  'servingTerminating',
  'logger',
  'backoff',
  'clock',
  'pageSize',
  'watchTimeoutSeconds',
  'watchIdleTimeoutMs',
] as const;
const OPTION_HINTS = {
  name: 'service',
  serviceName: 'service',
  svc: 'service',
  ns: 'namespace',
  portName: 'port',
  targetPort: 'port',
  terminating: 'servingTerminating',
  includeTerminating: 'servingTerminating',
  limit: 'pageSize',
  timeoutSeconds: 'watchTimeoutSeconds',
  idleTimeoutMs: 'watchIdleTimeoutMs',
};

/** The instancer's backoff defaults: 100 ms doubling to 10 s, jittered. */
const WATCH_BACKOFF: BackoffDefaults = Object.freeze({ ...DEFAULT_BACKOFF, maxMs: 10_000 });
const DEFAULT_PAGE_SIZE = 500;
const DEFAULT_WATCH_TIMEOUT_SECONDS = 300;
const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 90_000;
const LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const DIGITS = /^[0-9]+$/;

/**
 * The endpoints of one Kubernetes Service, through every one of its `discovery.k8s.io/v1` EndpointSlices (see
 * {@link Instancer} for the event contract). Instances are `ip:port` (`[ip]:port` for IPv6), key and address
 * alike, with the endpoint's zone, node, hostname, Pod (`targetRef`), topology hints and conditions as
 * `metadata` (see `EndpointMetadata`).
 *
 * How it follows the API server:
 * - A list of the slices labelled `kubernetes.io/service-name=<service>` (paginated with `limit`/`continue`),
 *   then a watch from the list's resourceVersion with bookmarks. Each batch of watch events read together becomes
 *   at most one event, built from the changed slices only: the cost of a change is proportional to the slice it
 *   touches, not to the Service.
 * - Every slice counts, and an endpoint held by several slices counts once (see `SliceUnion`): deleting a slice
 *   removes only the endpoints no other slice holds, and an endpoint moving between slices does not flap when
 *   its new slice is written before its old one (as the EndpointSlice controller writes them) or both arrive
 *   in one read; one removed from its old slice in an earlier read than it is added to the new one does leave
 *   the set in between (nothing waits to find out).
 * - When a watch ends (the server's `timeoutSeconds`, a network error, a silent connection past
 *   `watchIdleTimeoutMs`) it resumes from the last resourceVersion seen, of objects or bookmarks. `410 Gone`
 *   (that resourceVersion is no longer in the server's history, as after an etcd compaction and a restart) means
 *   a fresh list, applied as a diff: only what changed is emitted.
 * - While the API server fails (unreachable, 5xx, 401, 403…), it emits `{ instances: lastKnownGood, error }` (a
 *   {@link KubernetesWatchError}; a 403's message names the permission missing, the namespace and the user) and
 *   retries with capped exponential backoff with jitter (at least the server's `Retry-After`), forever, until
 *   `stop()`. The first good answer clears the error: a list, an event on a resumed watch, or a resumed watch
 *   that stayed open for a second (an API server refuses a resourceVersion it no longer has at once).
 * - A port name that none of the Service's slices has is reported the same way (`error`, the last set kept),
 *   naming the ports the slices have; it clears when a slice offers the port.
 * - `FQDN` slices are skipped, with one warning per instancer.
 *
 * The first event comes after the first list (or its first failure: `{ instances: [], error }`). Closing the
 * client stops the instancer: it emits its last known instances with a `KubernetesClientError` (`'closed'`) as
 * `error`, then completes. The retry timers never keep the process alive, but an open watch request does, like
 * any open socket (as an etcd watch does): a process that should live only to watch must hold itself anyway,
 * since nothing is open while the API server is unreachable.
 *
 * @throws TypeError for a client that is not a `KubernetesClient`, a service, namespace or port that cannot name
 *   a Kubernetes object, unknown options or bad backoff values; `KubernetesClientError` (`'closed'`) for a closed
 *   client.
 */
export class KubernetesInstancer implements Instancer {
  /** Hot; replays the latest event to each new subscriber; never errors; completes after {@link stop}. */
  readonly events$: Observable<InstancerEvent>;
  /** The Service followed. */
  readonly service: string;
  /** Its namespace. */
  readonly namespace: string;
  /** The port, as given (a digit string as a number); `undefined`: each slice's first port. */
  readonly port: number | string | undefined;
  /** Whether serving-and-terminating endpoints are served too. */
  readonly servingTerminating: boolean;

  readonly #cache: InstanceCache;
  readonly #union = new SliceUnion();
  readonly #selector: PortSelector;
  readonly #where: string;
  readonly #watch: SliceWatch;

  #stopped = false;
  /** The keys the union changed since the last publication. */
  #changed = new Set<string>();
  /** The cache holds an older set than the union (a port error held it); the next good state replaces it. */
  #held = false;
  #stopListening: (() => void) | undefined;

  constructor(client: KubernetesClient, options: KubernetesInstancerOptions) {
    const transport = transportOf(client, 'KubernetesInstancer');
    if (client.closed) {
      throw new KubernetesClientError(
        'closed',
        `KubernetesInstancer: the Kubernetes client for ${client.server} is closed`,
      );
    }
    if (options === null || typeof options !== 'object') {
      throw new TypeError(
        `KubernetesInstancer: options must be an object with a service, got ${describeValue(options)}`,
      );
    }
    assertKnownOptions('KubernetesInstancer', options, OPTIONS, OPTION_HINTS);
    const { service } = options;
    if (typeof service !== 'string' || !LABEL.test(service)) {
      throw new TypeError(
        `KubernetesInstancer: service must be a Service name (a lowercase RFC 1123 label: 1-63 of a-z, 0-9, "-"), got ${describeValue(service)}`,
      );
    }
    const namespace = options.namespace ?? client.namespace;
    if (typeof namespace !== 'string' || !LABEL.test(namespace)) {
      throw new TypeError(
        `KubernetesInstancer: namespace must be a lowercase RFC 1123 label, got ${describeValue(namespace)}`,
      );
    }
    const selector = portSelector(options.port);
    const servingTerminating = options.servingTerminating ?? false;
    if (typeof servingTerminating !== 'boolean') {
      throw new TypeError(
        `KubernetesInstancer: servingTerminating must be a boolean, got ${describeValue(servingTerminating)}`,
      );
    }
    const pageSize = positiveInteger(options.pageSize, 'pageSize', DEFAULT_PAGE_SIZE);
    const watchTimeoutSeconds = positiveInteger(
      options.watchTimeoutSeconds,
      'watchTimeoutSeconds',
      DEFAULT_WATCH_TIMEOUT_SECONDS,
    );
    const idleTimeoutMs = positiveNumber(
      options.watchIdleTimeoutMs,
      'watchIdleTimeoutMs',
      DEFAULT_WATCH_IDLE_TIMEOUT_MS,
    );
    const backoff = createBackoff(options.backoff, 'KubernetesInstancer', WATCH_BACKOFF);
    const logger = options.logger ?? client.logger ?? silentLogger;
    const clock = options.clock ?? client.clock;
    if (typeof clock?.setTimeout !== 'function') {
      throw new TypeError(`KubernetesInstancer: clock must be a Clock, got ${describeValue(clock)}`);
    }

    this.service = service;
    this.namespace = namespace;
    this.port =
      selector === undefined ? undefined : selector.kind === 'number' ? selector.number : selector.name;
    this.servingTerminating = servingTerminating;
    const target = `${namespace}/${service}${this.port === undefined ? '' : `:${this.port}`}`;
    this.#cache = new InstanceCache({ source: 'kubernetes', target });
    this.events$ = this.#cache.events$;
    this.#selector = selector;
    const where = `service ${JSON.stringify(`${namespace}/${service}`)}`;
    this.#where = where;
    const read = sliceReader({ port: selector, servingTerminating }, logger, where);
    const telemetry = new SourceTelemetry({ source: 'kubernetes', target });
    const settings = {
      client,
      transport,
      service,
      namespace,
      where,
      logger,
      clock,
      backoff,
      pageSize,
      read,
      telemetry,
    };
    this.#watch = new SliceWatch(
      { ...settings, watchTimeoutSeconds, idleTimeoutMs },
      {
        reset: (slices, resourceVersion) => {
          this.#union.reset(slices, this.#changed);
          logger.debug(
            { service: where, slices: slices.size, instances: this.#union.size, resourceVersion },
            'sdkit: listed the EndpointSlices',
          );
        },
        change: (slice) => this.#union.set(slice, this.#changed),
        delete: (name) => this.#union.delete(name, this.#changed),
        healthy: () => this.#publish(),
        error: (error) => this.#cache.fail(error),
      },
    );

    // Closing the client ends this instancer: one last event saying so, then completion.
    this.#stopListening = onClientClose(client, (error) => {
      this.#cache.fail(error);
      this.stop();
    });
    if (!this.#stopped) this.#watch.start();
  }

  /** The latest event, synchronously; `undefined` until the first list (or its failure). */
  current(): InstancerEvent | undefined {
    return this.#cache.current();
  }

  /** Ends the list or watch request in flight and every timer, and completes `events$`. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#watch.stop();
    this.#stopListening?.();
    this.#stopListening = undefined;
    this.#cache.close();
  }

  /** Same as {@link stop}. */
  [Symbol.dispose](): void {
    this.stop();
  }

  /**
   * The API server answered well (the slice watch ended any failure): the union's changes go to the cache — unless
   * the port is missing from every slice, which is reported as the error instead, the last set kept.
   */
  #publish(): void {
    const changed = this.#changed;
    this.#changed = new Set();
    const problem = this.#portProblem();
    if (problem !== undefined) {
      this.#held = true;
      this.#cache.fail(new KubernetesWatchError(problem));
      return;
    }
    if (this.#held) {
      this.#held = false;
      this.#cache.replace(this.#union.instances());
      return;
    }
    const put = [];
    const del = [];
    for (const key of changed) {
      const instance = this.#union.get(key);
      if (instance === undefined) del.push(key);
      else put.push(instance);
    }
    this.#cache.update({ put, delete: del });
  }

  #portProblem(): string | undefined {
    const selector = this.#selector;
    if (selector?.kind === 'number') return undefined;
    const { slices, withPort } = this.#union.portCoverage();
    if (slices === 0 || withPort > 0) return undefined;
    const offered = this.#union.portsOffered();
    const ports = offered.length === 0 ? 'none' : offered.join(', ');
    if (selector?.kind === 'name') {
      return `${this.#where} has no port named ${JSON.stringify(selector.name)}; the ports of its EndpointSlices: ${ports}`;
    }
    return `${this.#where} has no port with a number in its EndpointSlices (ports: ${ports}); give a port number, e.g. "${this.service}.${this.namespace}:8080"`;
  }
}

function portSelector(port: unknown): PortSelector {
  if (port === undefined) return undefined;
  if (typeof port === 'number') {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new TypeError(
        `KubernetesInstancer: port must be an integer from 1 to 65535, got ${describeValue(port)}`,
      );
    }
    return { kind: 'number', number: port };
  }
  if (typeof port === 'string' && DIGITS.test(port)) return portSelector(Number(port));
  if (typeof port !== 'string' || !LABEL.test(port)) {
    throw new TypeError(
      `KubernetesInstancer: port must be a port number or the name of a port of the Service (a lowercase RFC 1123 label), got ${describeValue(port)}`,
    );
  }
  return { kind: 'name', name: port };
}

function positiveInteger(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(
      `KubernetesInstancer: ${name} must be a positive integer, got ${describeValue(value)}`,
    );
  }
  return value;
}

function positiveNumber(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(
      `KubernetesInstancer: ${name} must be a positive number, got ${describeValue(value)}`,
    );
  }
  return value;
}
