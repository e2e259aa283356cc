import type { IncomingMessage } from 'node:http';
import {
  assertKnownOptions,
  type Backoff,
  type BackoffOptions,
  type Clock,
  createBackoff,
  InstanceCache,
  type Instancer,
  type InstancerEvent,
  type Logger,
  silentLogger,
} from '@sdkit/sd-core';
import type { Observable } from 'rxjs';
import { type KubernetesClient, onClientClose, transportOf } from './client.js';
import { describeValue, errorText } from './describe-value.js';
import {
  type EndpointSlice,
  type PortSelector,
  readSlice,
  type SliceContribution,
} from './endpoint-slice.js';
import { KubernetesClientError, KubernetesWatchError } from './errors.js';
import { type HttpTransport, readBody, TransportError } from './http-transport.js';
import { LineSplitter } from './line-splitter.js';
import { SliceUnion } from './slice-union.js';

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

/** The instancer's default `backoff.maxMs`. */
const MAX_BACKOFF_MS = 10_000;
const DEFAULT_PAGE_SIZE = 500;
const DEFAULT_WATCH_TIMEOUT_SECONDS = 300;
const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 90_000;
/** A list page or error body larger than this is refused (a bound against a misbehaving server, not a limit met). */
const MAX_BODY_BYTES = 256 * 1024 * 1024;
/** One watch event (one EndpointSlice: at most 1000 endpoints) larger than this is refused. */
const MAX_LINE_BYTES = 64 * 1024 * 1024;
/**
 * A watch resumed after a failure is taken as healthy (the error cleared) at its first event, or after this long
 * without an error event: an API server refuses a too-old resourceVersion at once (410, or an ERROR event).
 */
const RESUME_CONFIRM_MS = 1000;
/**
 * A watch that ends cleanly sooner than this (or than half its timeoutSeconds) without sending anything counts as
 * a failure, so that a server that ends every watch at once meets the backoff, not a request loop.
 */
const MIN_STREAM_MS = 1000;
/** Consecutive relists after 410 done at once; later ones wait for the backoff. */
const IMMEDIATE_RELISTS = 2;

const LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const DIGITS = /^[0-9]+$/;

type Phase = 'listing' | 'watching' | 'waiting' | 'stopped';

/** A Kubernetes `Status` object, as in error bodies and watch ERROR events. */
interface KubeStatus {
  readonly kind?: string;
  readonly code?: number;
  readonly reason?: string;
  readonly message?: string;
}

interface WatchEvent {
  readonly type?: string;
  readonly object?: EndpointSlice & KubeStatus;
}

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

  readonly #cache = new InstanceCache();
  readonly #union = new SliceUnion();
  readonly #client: KubernetesClient;
  readonly #transport: HttpTransport;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #backoff: Backoff;
  readonly #selector: PortSelector;
  readonly #pageSize: number;
  readonly #watchTimeoutSeconds: number;
  readonly #idleTimeoutMs: number;
  readonly #basePath: string;
  readonly #where: string;

  #phase: Phase = 'waiting';
  /** Bumped by every new request, retry and stop: callbacks of an older generation do nothing. */
  #generation = 0;
  #abort: AbortController | undefined;
  #cancelTimer: (() => void) | undefined;
  #cancelIdle: (() => void) | undefined;
  #cancelConfirm: (() => void) | undefined;
  /** The last resourceVersion seen: the list's, then each event's and bookmark's. */
  #resourceVersion: string | undefined;
  #listed = false;
  #needList = true;
  #attempt = 0;
  #relists = 0;
  /** The list or watch failure reported last, until a good answer. */
  #error: KubernetesWatchError | undefined;
  /** The cache holds an older set than the union (a port error held it); the next good state replaces it. */
  #held = false;
  #warnedAddressTypes = new Set<string>();
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
    this.#pageSize = positiveInteger(options.pageSize, 'pageSize', DEFAULT_PAGE_SIZE);
    this.#watchTimeoutSeconds = positiveInteger(
      options.watchTimeoutSeconds,
      'watchTimeoutSeconds',
      DEFAULT_WATCH_TIMEOUT_SECONDS,
    );
    this.#idleTimeoutMs = positiveNumber(
      options.watchIdleTimeoutMs,
      'watchIdleTimeoutMs',
      DEFAULT_WATCH_IDLE_TIMEOUT_MS,
    );
    this.#backoff = createBackoff(options.backoff, 'KubernetesInstancer', MAX_BACKOFF_MS);
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
    this.events$ = this.#cache.events$;
    this.#client = client;
    this.#transport = transport;
    this.#logger = logger;
    this.#clock = clock;
    this.#selector = selector;
    this.#where = `service ${JSON.stringify(`${namespace}/${service}`)}`;
    this.#basePath =
      `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices` +
      `?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${service}`)}`;

    // Closing the client ends this instancer: one last event saying so, then completion.
    this.#stopListening = onClientClose(client, (error) => {
      this.#cache.fail(error);
      this.stop();
    });
    if (this.#phase !== 'stopped') void this.#list();
  }

  /** The latest event, synchronously; `undefined` until the first list (or its failure). */
  current(): InstancerEvent | undefined {
    return this.#cache.current();
  }

  /** Ends the list or watch request in flight and every timer, and completes `events$`. Idempotent. */
  stop(): void {
    if (this.#phase === 'stopped') return;
    this.#begin('stopped');
    this.#stopListening?.();
    this.#stopListening = undefined;
    this.#cache.close();
  }

  /** Same as {@link stop}. */
  [Symbol.dispose](): void {
    this.stop();
  }

  // --- requests ---------------------------------------------------------------------------------------------

  /** Starts a new phase: everything of the previous one (request, timers) ends. Returns its generation. */
  #begin(phase: Phase): number {
    this.#generation++;
    this.#abort?.abort();
    this.#abort = phase === 'listing' || phase === 'watching' ? new AbortController() : undefined;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.#cancelIdle?.();
    this.#cancelIdle = undefined;
    this.#cancelConfirm?.();
    this.#cancelConfirm = undefined;
    this.#phase = phase;
    return this.#generation;
  }

  async #list(): Promise<void> {
    const gen = this.#begin('listing');
    const signal = this.#abort!.signal;
    const slices = new Map<string, SliceContribution>();
    let resourceVersion: string | undefined;
    let next: string | undefined;
    let restarts = 0;
    try {
      for (;;) {
        const path = `${this.#basePath}&limit=${this.#pageSize}${next === undefined ? '' : `&continue=${encodeURIComponent(next)}`}`;
        const res = await this.#transport.get(path, {
          signal,
          headersTimeoutMs: this.#client.requestTimeoutMs,
        });
        const body = await this.#readBounded(res);
        if (gen !== this.#generation) return;
        const status = res.statusCode ?? 0;
        if (status === 410 && next !== undefined && restarts < IMMEDIATE_RELISTS) {
          // The continue token expired (the list took longer than etcd keeps its revision): start over.
          this.#logger.info(
            { service: this.#where },
            'sdkit: Kubernetes list continue token expired; listing again',
          );
          restarts++;
          slices.clear();
          next = undefined;
          continue;
        }
        if (status !== 200) throw this.#statusError('list', status, parseStatus(body), res);
        const list = parseJson(body) as {
          metadata?: { resourceVersion?: unknown; continue?: unknown };
          items?: unknown;
        } | null;
        if (list === null || typeof list !== 'object' || (list.items != null && !Array.isArray(list.items))) {
          throw new KubernetesWatchError(
            this.#message('list', 'the API server sent a list that is not an EndpointSliceList'),
          );
        }
        for (const item of (list.items ?? []) as EndpointSlice[]) {
          const slice = this.#read(item);
          if (slice) slices.set(slice.name, slice);
        }
        const rv = list.metadata?.resourceVersion;
        if (typeof rv === 'string' && rv !== '') resourceVersion = rv;
        const cont = list.metadata?.continue;
        next = typeof cont === 'string' && cont !== '' ? cont : undefined;
        if (next === undefined) break;
      }
    } catch (err) {
      if (gen === this.#generation) this.#fail(err, 'list');
      return;
    }
    const changed = new Set<string>();
    this.#union.reset(slices, changed);
    this.#resourceVersion = resourceVersion;
    this.#listed = true;
    this.#needList = false;
    // After a 410 the next watch must show progress first: a server that keeps refusing its own list's
    // resourceVersion must meet a growing backoff, not a relist loop.
    if (this.#relists === 0) this.#attempt = 0;
    this.#logger.debug(
      { service: this.#where, slices: slices.size, instances: this.#union.size, resourceVersion },
      'sdkit: listed the EndpointSlices',
    );
    this.#publish(changed);
    if (gen === this.#generation) void this.#watch();
  }

  async #watch(): Promise<void> {
    const gen = this.#begin('watching');
    const signal = this.#abort!.signal;
    const timeoutSeconds = Math.max(1, Math.round(this.#watchTimeoutSeconds * (0.8 + 0.2 * Math.random())));
    const path =
      `${this.#basePath}&watch=true&allowWatchBookmarks=true&timeoutSeconds=${timeoutSeconds}` +
      (this.#resourceVersion === undefined
        ? ''
        : `&resourceVersion=${encodeURIComponent(this.#resourceVersion)}`);
    let res: IncomingMessage;
    try {
      res = await this.#transport.get(path, { signal, headersTimeoutMs: this.#client.requestTimeoutMs });
    } catch (err) {
      if (gen === this.#generation) this.#fail(err, 'watch');
      return;
    }
    if (gen !== this.#generation) {
      res.destroy();
      return;
    }
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      let body: Buffer;
      try {
        body = await this.#readBounded(res);
      } catch (err) {
        if (gen === this.#generation) this.#fail(err, 'watch');
        return;
      }
      if (gen !== this.#generation) return;
      const st = parseStatus(body);
      if (status === 410 || isGone(st)) this.#gone(st);
      else this.#fail(this.#statusError('watch', status, st, res), 'watch');
      return;
    }
    this.#follow(gen, res, Math.min(MIN_STREAM_MS, timeoutSeconds * 500));
  }

  /**
   * Reads a watch response until it ends; every batch of complete lines becomes at most one event. A stream that
   * ends sooner than `minStreamMs` having sent nothing counts as a failure.
   */
  #follow(gen: number, res: IncomingMessage, minStreamMs: number): void {
    const splitter = new LineSplitter(MAX_LINE_BYTES);
    const opened = this.#clock.now();
    let received = 0;
    const armIdle = (): void => {
      this.#cancelIdle?.();
      this.#cancelIdle = this.#clock.setTimeout(() => {
        if (gen !== this.#generation) return;
        this.#logger.info(
          { service: this.#where, idleMs: this.#idleTimeoutMs, resourceVersion: this.#resourceVersion },
          'sdkit: the Kubernetes watch sent nothing for too long; resuming it',
        );
        void this.#watch();
      }, this.#idleTimeoutMs);
    };
    armIdle();
    if (this.#error !== undefined) {
      this.#cancelConfirm = this.#clock.setTimeout(() => {
        this.#cancelConfirm = undefined;
        if (gen === this.#generation && this.#error !== undefined) {
          this.#attempt = 0;
          this.#publish(new Set());
        }
      }, RESUME_CONFIRM_MS);
    }
    res.on('data', (chunk: Buffer) => {
      if (gen !== this.#generation) return;
      armIdle();
      let lines: string[];
      try {
        lines = splitter.push(chunk);
      } catch (err) {
        this.#fail(
          new KubernetesWatchError(this.#message('watch', `the API server sent ${errorText(err)}`)),
          'watch',
        );
        return;
      }
      if (lines.length > 0) {
        received += lines.length;
        this.#onLines(gen, lines);
      }
    });
    res.on('error', (err) => {
      if (gen === this.#generation) this.#fail(err, 'watch');
    });
    res.on('close', () => {
      if (gen !== this.#generation) return;
      if (!res.complete) {
        this.#fail(new TransportError('network', 'the watch response broke off'), 'watch');
      } else if (received === 0 && this.#clock.now() - opened < minStreamMs) {
        this.#fail(
          new KubernetesWatchError(
            this.#message('watch', 'the API server ended the watch at once, sending nothing'),
          ),
          'watch',
        );
      } else {
        this.#logger.debug(
          { service: this.#where, resourceVersion: this.#resourceVersion },
          'sdkit: the Kubernetes watch ended; resuming it',
        );
        void this.#watch();
      }
    });
  }

  #onLines(gen: number, lines: readonly string[]): void {
    const changed = new Set<string>();
    let progressed = false;
    for (const line of lines) {
      const event = parseJson(line) as WatchEvent | null;
      if (event === null || typeof event !== 'object' || typeof event.type !== 'string') {
        if (progressed) this.#publish(changed);
        this.#fail(
          new KubernetesWatchError(
            this.#message('watch', 'the API server sent a line that is not a watch event'),
          ),
          'watch',
        );
        return;
      }
      const object = event.object;
      if (event.type === 'ERROR') {
        if (progressed) this.#publish(changed);
        if (gen !== this.#generation) return;
        if (isGone(object)) this.#gone(object);
        else this.#fail(this.#statusError('watch', object?.code ?? 0, object, undefined), 'watch');
        return;
      }
      const rv = object?.metadata?.resourceVersion;
      if (typeof rv === 'string' && rv !== '') this.#resourceVersion = rv;
      progressed = true;
      if (event.type === 'ADDED' || event.type === 'MODIFIED') {
        const slice = object === undefined ? undefined : this.#read(object);
        if (slice) this.#union.set(slice, changed);
      } else if (event.type === 'DELETED') {
        const name = object?.metadata?.name;
        if (typeof name === 'string') this.#union.delete(name, changed);
      } else if (event.type !== 'BOOKMARK') {
        this.#logger.debug(
          { service: this.#where, type: event.type },
          'sdkit: unknown watch event type; ignored',
        );
      }
    }
    if (progressed) {
      this.#attempt = 0;
      this.#relists = 0;
      this.#publish(changed);
    }
  }

  /** Reads a whole (non-watch) body within the request timeout. */
  async #readBounded(res: IncomingMessage): Promise<Buffer> {
    const ms = this.#client.requestTimeoutMs;
    const cancel = this.#clock.setTimeout(() => {
      res.destroy(
        new TransportError('network', `the API server did not send the whole response within ${ms} ms`),
      );
    }, ms);
    try {
      return await readBody(res, MAX_BODY_BYTES);
    } finally {
      cancel();
    }
  }

  /** Reads one slice, warning once per address type this instancer cannot use (FQDN). */
  #read(raw: EndpointSlice): SliceContribution | undefined {
    if (raw === null || typeof raw !== 'object' || typeof raw.metadata?.name !== 'string') {
      this.#logger.warn({ service: this.#where }, 'sdkit: an EndpointSlice without a name; ignored');
      return undefined;
    }
    const slice = readSlice(raw, { port: this.#selector, servingTerminating: this.servingTerminating });
    const type = slice.addressType;
    if (type !== 'IPv4' && type !== 'IPv6' && !this.#warnedAddressTypes.has(type)) {
      this.#warnedAddressTypes.add(type);
      this.#logger.warn(
        { service: this.#where, slice: slice.name, addressType: type },
        `sdkit: ${this.#where} has ${type === 'FQDN' ? 'FQDN' : `${JSON.stringify(type)}`} EndpointSlices; only IPv4 and IPv6 slices are used, these are skipped`,
      );
    }
    return slice;
  }

  // --- state ------------------------------------------------------------------------------------------------

  /**
   * The API server answered well: the failure (if any) is over, and the union's changes go to the cache — unless
   * the port is missing from every slice, which is reported as the error instead, the last set kept.
   */
  #publish(changed: ReadonlySet<string>): void {
    if (this.#phase === 'stopped') return;
    if (this.#error !== undefined) {
      this.#logger.info({ service: this.#where }, 'sdkit: Kubernetes list/watch works again');
      this.#error = undefined;
      this.#cancelConfirm?.();
      this.#cancelConfirm = undefined;
    }
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

  /** `410 Gone`: the resourceVersion is no longer in the server's history; list again and apply the diff. */
  #gone(status: KubeStatus | undefined): void {
    this.#needList = true;
    this.#relists++;
    this.#logger.info(
      { service: this.#where, resourceVersion: this.#resourceVersion, message: status?.message },
      'sdkit: the Kubernetes watch resourceVersion is too old (410 Gone); listing again',
    );
    if (this.#relists <= IMMEDIATE_RELISTS) void this.#list();
    else this.#retry(0);
  }

  #fail(err: unknown, during: 'list' | 'watch'): void {
    if (this.#phase === 'stopped') return;
    const error =
      err instanceof KubernetesWatchError
        ? err
        : new KubernetesWatchError(this.#message(during, errorText(err)), { cause: err });
    if (error.status === 401) this.#transport.invalidateToken();
    if (this.#error?.message !== error.message) {
      this.#error = error;
      this.#logger.warn(
        { service: this.#where, err: error.message },
        'sdkit: Kubernetes list/watch failing; retrying',
      );
      this.#cache.fail(error);
    }
    this.#retry(retryAfterMs(err));
  }

  /** Abandons the current request and tries again after the backoff delay (at least `minDelayMs`). */
  #retry(minDelayMs: number): void {
    if (this.#phase === 'stopped') return;
    this.#begin('waiting');
    const delay = Math.max(this.#backoff.delay(this.#attempt), minDelayMs);
    this.#attempt++;
    this.#cancelTimer = this.#clock.setTimeout(() => {
      this.#cancelTimer = undefined;
      if (this.#phase !== 'waiting') return;
      if (this.#needList || !this.#listed) void this.#list();
      else void this.#watch();
    }, delay);
  }

  #message(during: 'list' | 'watch', what: string): string {
    return `Kubernetes ${during} of the EndpointSlices of ${this.#where} failed: ${what}`;
  }

  /** The error for an HTTP status (or a watch ERROR event's Status) other than success and 410. */
  #statusError(
    during: 'list' | 'watch',
    code: number,
    status: KubeStatus | undefined,
    res: IncomingMessage | undefined,
  ): KubernetesWatchError {
    const said = status?.message ? `; the API server said: ${errorText(status.message)}` : '';
    let what: string;
    if (code === 403) {
      const user = /\bUser "([^"]*)"/.exec(status?.message ?? '')?.[1];
      const who =
        user !== undefined
          ? `user ${JSON.stringify(user)}`
          : this.#client.user !== undefined
            ? `kubeconfig user ${JSON.stringify(this.#client.user)}`
            : 'the client’s user';
      what =
        `403 Forbidden: needs list and watch on endpointslices.discovery.k8s.io in namespace ` +
        `${JSON.stringify(this.namespace)} (${who}); grant them with a Role and a RoleBinding, e.g. ` +
        `\`kubectl create role endpointslice-reader -n ${this.namespace} --verb=list,watch ` +
        `--resource=endpointslices.discovery.k8s.io\` and \`kubectl create rolebinding endpointslice-reader ` +
        `-n ${this.namespace} --role=endpointslice-reader ${bindingSubject(user)}\`${said}`;
    } else if (code === 401) {
      const who =
        this.#client.user === undefined ? '' : ` of kubeconfig user ${JSON.stringify(this.#client.user)}`;
      what = `401 Unauthorized: the API server rejected the credentials${who} (expired or revoked token?)${said}`;
    } else if (code === 404) {
      what = `404 Not Found: the API server does not serve discovery.k8s.io/v1 EndpointSlices (Kubernetes 1.21 or later needed)${said}`;
    } else {
      const reason = status?.reason ? ` ${status.reason}` : '';
      what = `${code === 0 ? 'error' : `HTTP ${code}`}${reason}${said}`;
    }
    const error = new KubernetesWatchError(this.#message(during, what), {
      status: code,
      ...(status?.reason === undefined ? {} : { reason: status.reason }),
    });
    const retryAfter = Number(res?.headers['retry-after']);
    if (Number.isFinite(retryAfter) && retryAfter > 0)
      retryAfters.set(error, Math.min(retryAfter, 600) * 1000);
    return error;
  }
}

/** `Retry-After` of the responses behind errors, in ms. */
const retryAfters = new WeakMap<object, number>();

function retryAfterMs(err: unknown): number {
  return (typeof err === 'object' && err !== null && retryAfters.get(err)) || 0;
}

/** The subject for `kubectl create rolebinding`: `--serviceaccount=ns:name` for a service account. */
function bindingSubject(user: string | undefined): string {
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user ?? '');
  if (sa) return `--serviceaccount=${sa[1]}:${sa[2]}`;
  return `--user=${user ?? '<user>'}`;
}

function isGone(status: KubeStatus | undefined): boolean {
  return status?.code === 410 || status?.reason === 'Expired' || status?.reason === 'Gone';
}

function parseJson(text: string | Buffer): unknown {
  try {
    return JSON.parse(typeof text === 'string' ? text : text.toString('utf8'));
  } catch {
    return null;
  }
}

function parseStatus(body: Buffer): KubeStatus | undefined {
  const status = parseJson(body);
  return status !== null && typeof status === 'object' ? (status as KubeStatus) : undefined;
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
