import type { KubeConfig } from '@kubernetes/client-node';
import {
  assertKnownOptions,
  type BackoffDefaults,
  type BackoffOptions,
  type Clock,
  createBackoff,
  holdUntilSettled,
  type Instancer,
  instancerForTarget,
  type Logger,
  notifyClosed,
  onClosed,
  silentLogger,
  systemClock,
  type TargetInstancerOptions,
  type TargetInstancerSource,
  type TargetUri,
} from '@sdkit/sd-core';
import { describeValue, errorText } from './describe-value.js';
import { KubernetesClientError } from './errors.js';
import { HttpTransport, isTlsFailure, readBody, TransportError } from './http-transport.js';
import { type ResolvedKubeConfig, resolveKubeConfig } from './kube-config.js';
import { kubernetesTargetInstancer } from './target.js';

/** Options of {@link createKubernetesClient}. */
export interface KubernetesClientOptions {
  /**
   * A path to a kubeconfig file, or a `KubeConfig` from `@kubernetes/client-node` (used as it is; its current
   * context counts). Default: the files in `KUBECONFIG`, else `~/.kube/config`, else the pod's service account
   * (like client-node's `loadFromDefault` and kubectl). Whatever client-node supports works: contexts, client
   * certificates, tokens, token files, exec plugins, auth providers, proxies.
   */
  kubeconfig?: string | KubeConfig;
  /** The kubeconfig context to use. Default: its `current-context`. Not with a `KubeConfig` object or `inCluster`. */
  context?: string;
  /**
   * Use the pod's service account: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, the mounted CA and
   * token (read again whenever the kubelet rotates it), the pod's namespace as the default namespace.
   */
  inCluster?: boolean;
  /** Logger (pino-compatible); default silent. Nothing logged holds a credential. */
  logger?: Logger;
  /** Time source for timeouts and retries; default `systemClock`. */
  clock?: Clock;
  /**
   * Bound, in ms, on {@link createKubernetesClient} (and {@link KubernetesClient.ready}): they reject with an
   * `'unreachable'` {@link KubernetesClientError} if the API server has not answered within it. Default 5000.
   */
  dialTimeoutMs?: number;
  /**
   * Bound, in ms, on one request until its response headers arrive, and on reading a whole list page. A watch
   * is bounded by its own timeouts (see `KubernetesInstancerOptions`). Default 30 000.
   */
  requestTimeoutMs?: number;
}

/** Options of a {@link KubernetesClient}'s target mapping (`[instancerForTarget]`, used by `registerKubernetesScheme`). */
export interface KubernetesTargetOptions extends TargetInstancerOptions {
  /** Also serve endpoints that are `serving` and `terminating` (see `KubernetesInstancerOptions`). Default false. */
  readonly servingTerminating?: boolean;
  /** Retry timing of the instancers' list and watch (see `KubernetesInstancerOptions`). */
  readonly backoff?: BackoffOptions;
}

/**
 * A client of one Kubernetes API server, checked with a round-trip. Hand it to `KubernetesInstancer`; close it
 * after them.
 *
 * It is also a `TargetInstancerSource`: `client[instancerForTarget](target)` follows a kuberesolver target
 * (`kubernetes:///service.namespace:port`, see `kubernetesTargetInstancer`), which is how `registerKubernetesScheme`
 * in @sdkit/sd-grpc uses it without importing this package.
 */
export interface KubernetesClient extends AsyncDisposable, TargetInstancerSource<KubernetesTargetOptions> {
  /** The configuration as loaded: the `KubeConfig` given, or the one read from files or the service account. */
  readonly kubeConfig: KubeConfig;
  /** The API server URL, e.g. `https://10.96.0.1:443`. */
  readonly server: string;
  /**
   * The namespace for Services named without one: in-cluster the pod's own (its service account's `namespace`
   * file), else the kubeconfig context's, else `default` — kuberesolver's rule.
   */
  readonly namespace: string;
  /** The kubeconfig context in use; `undefined` in-cluster. */
  readonly context: string | undefined;
  /** The kubeconfig user of that context, named in error messages; `undefined` in-cluster. Never a credential. */
  readonly user: string | undefined;
  /** The logger given (or the silent one), for the instancers on this client. */
  readonly logger: Logger;
  /** The clock given (or `systemClock`), for the instancers on this client. */
  readonly clock: Clock;
  /** The dial timeout in effect, in ms. */
  readonly dialTimeoutMs: number;
  /** The request timeout in effect, in ms. */
  readonly requestTimeoutMs: number;
  /** Whether {@link close} was called. */
  readonly closed: boolean;
  /**
   * Resolves once the API server answered `GET /apis/discovery.k8s.io/v1` with the EndpointSlice resource in it
   * (a 403 counts too: the credentials were accepted; missing RBAC shows up in the instancers' errors, naming what
   * is missing). Network errors and 5xx are retried with backoff until `dialTimeoutMs`. Rejects with a
   * {@link KubernetesClientError}: `'unreachable'` (after `dialTimeoutMs`, or at once on a TLS failure such as a
   * server certificate the kubeconfig's CA did not sign), `'unauthorized'` (a 401, or credentials that could not
   * be obtained: an exec plugin that failed, an unreadable token file), `'unsupported'` (no
   * `discovery.k8s.io/v1` EndpointSlices: Kubernetes older than 1.21), `'closed'`. Each call makes a fresh check,
   * and holds the process until it settles.
   */
  ready(): Promise<void>;
  /**
   * Stops everything on this client at once, synchronously. Idempotent.
   * - Every `KubernetesInstancer` on it emits one last event with a {@link KubernetesClientError} (`'closed'`) as
   *   its `error` (its last known instances kept, as for any error), then completes; its open list or watch
   *   request is destroyed.
   * - A pending {@link ready} rejects with `'closed'`.
   * Afterwards nothing on the client keeps the process alive.
   */
  close(): void;
  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void>;
  /**
   * A new `KubernetesInstancer` for a kuberesolver target (see `kubernetesTargetInstancer`); the caller stops it.
   * @throws TypeError naming the target when it is malformed.
   */
  [instancerForTarget](target: TargetUri, options?: KubernetesTargetOptions): Instancer;
}

const CLIENT_OPTIONS = [
  'kubeconfig',
  'context',
  'inCluster',
  'logger',
  'clock',
  'dialTimeoutMs',
  'requestTimeoutMs',
] as const;
const CLIENT_OPTION_HINTS = {
  kubeConfig: 'kubeconfig',
  config: 'kubeconfig',
  configFile: 'kubeconfig',
  kubeconfigPath: 'kubeconfig',
  currentContext: 'context',
  incluster: 'inCluster',
  dialTimeout: 'dialTimeoutMs',
  timeout: 'requestTimeoutMs',
  timeoutMs: 'requestTimeoutMs',
  requestTimeout: 'requestTimeoutMs',
  namespace: 'kubeconfig',
};

const DEFAULT_DIAL_TIMEOUT_MS = 5000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** The discovery document is a few kB; a bound keeps a misbehaving server from filling memory. */
const MAX_DISCOVERY_BYTES = 4 * 1024 * 1024;
/** Between the round-trips of {@link KubernetesClient.ready}: 50 ms doubling to 1000 ms, exact (no jitter). */
const PROBE_BACKOFF: BackoffDefaults = Object.freeze({ initialMs: 50, maxMs: 1000, factor: 2, jitter: 0 });
const probeBackoff = createBackoff(undefined, 'KubernetesClient.ready', PROBE_BACKOFF);

/**
 * Creates a client of the Kubernetes API server that the options (or the environment) name, and resolves once it
 * answered (see {@link KubernetesClient.ready}), so that a misconfiguration fails here, clearly, rather than later
 * inside a watch. Holds the process until it settles.
 *
 * Rejects with a `TypeError` naming the bad value for invalid options (unknown names, an unreadable or invalid
 * kubeconfig file, an unknown context, `kubeconfig` together with `inCluster`…), and with a
 * {@link KubernetesClientError}: `'config'` when no configuration is found (no kubeconfig and not in a pod, or
 * the service account files are missing), else as {@link KubernetesClient.ready} rejects.
 */
export function createKubernetesClient(options: KubernetesClientOptions = {}): Promise<KubernetesClient> {
  return holdUntilSettled(create(options));
}

async function create(options: KubernetesClientOptions): Promise<KubernetesClient> {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`createKubernetesClient: options must be an object, got ${describeValue(options)}`);
  }
  assertKnownOptions('createKubernetesClient', options, CLIENT_OPTIONS, CLIENT_OPTION_HINTS);
  const dialTimeoutMs = positiveMs(options.dialTimeoutMs, 'dialTimeoutMs', DEFAULT_DIAL_TIMEOUT_MS);
  const requestTimeoutMs = positiveMs(
    options.requestTimeoutMs,
    'requestTimeoutMs',
    DEFAULT_REQUEST_TIMEOUT_MS,
  );
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  if (typeof logger?.warn !== 'function') {
    throw new TypeError(
      `createKubernetesClient: logger must be a pino-compatible logger, got ${describeValue(logger)}`,
    );
  }
  if (typeof clock?.setTimeout !== 'function' || typeof clock.now !== 'function') {
    throw new TypeError(`createKubernetesClient: clock must be a Clock, got ${describeValue(clock)}`);
  }
  const config = resolveKubeConfig(options);
  const client = new Client(config, logger, clock, dialTimeoutMs, requestTimeoutMs);
  try {
    await client.ready();
  } catch (err) {
    client.close();
    throw err;
  }
  logger.info(
    { server: client.server, context: client.context, namespace: client.namespace },
    'sdkit: Kubernetes API server ready',
  );
  return client;
}

function positiveMs(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(
      `createKubernetesClient: ${name} must be a positive number of milliseconds, got ${describeValue(value)}`,
    );
  }
  return value;
}

/**
 * Calls `listener` once, synchronously, when `client` is closed (at once if it already is). Returns a function
 * that removes it. For the instancers built on the client. @internal
 */
export function onClientClose(
  client: KubernetesClient,
  listener: (error: KubernetesClientError) => void,
): () => void {
  return onClosed(client, client.closed, () => closedError(client), listener);
}

/** The transport of each client; see {@link transportOf}. */
const transports = new WeakMap<object, HttpTransport>();

/**
 * The request maker of a client from {@link createKubernetesClient}; throws a `TypeError` naming `who` (and
 * saying "did you forget await?" for a Promise) for anything else. @internal
 */
export function transportOf(client: unknown, who: string): HttpTransport {
  const transport = typeof client === 'object' && client !== null ? transports.get(client) : undefined;
  if (!transport) {
    throw new TypeError(
      `${who}: client must be a KubernetesClient from \`await createKubernetesClient(…)\`, got ${describeValue(client)}`,
    );
  }
  return transport;
}

function closedError(client: KubernetesClient): KubernetesClientError {
  return new KubernetesClientError('closed', `the Kubernetes client for ${client.server} was closed`);
}

class Client implements KubernetesClient {
  readonly kubeConfig: KubeConfig;
  readonly server: string;
  readonly namespace: string;
  readonly context: string | undefined;
  readonly user: string | undefined;
  closed = false;
  readonly #config: ResolvedKubeConfig;
  readonly #transport: HttpTransport;

  constructor(
    config: ResolvedKubeConfig,
    readonly logger: Logger,
    readonly clock: Clock,
    readonly dialTimeoutMs: number,
    readonly requestTimeoutMs: number,
  ) {
    this.#config = config;
    this.kubeConfig = config.kubeConfig;
    this.server = config.server;
    this.namespace = config.namespace;
    this.context = config.context;
    this.user = config.user;
    this.#transport = new HttpTransport(config, clock);
    transports.set(this, this.#transport);
  }

  ready(): Promise<void> {
    if (this.closed) return Promise.reject(closedError(this));
    return holdUntilSettled(this.#probe());
  }

  #probe(): Promise<void> {
    const where = `the Kubernetes API server at ${this.server} (${this.#config.source})`;
    const started = this.clock.now();
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let lastError = '';
      let lastCause: unknown;
      let cancelRetry: (() => void) | undefined;
      const attemptAbort = new AbortController();
      const stopListening = onClientClose(this, (error) =>
        settle(new KubernetesClientError('closed', `${error.message} before it was ready`)),
      );
      const settle = (err?: KubernetesClientError): void => {
        if (settled) return;
        settled = true;
        stopListening();
        cancelTimeout();
        cancelRetry?.();
        attemptAbort.abort();
        if (err) {
          this.logger.warn({ server: this.server, reason: err.reason }, `sdkit: ${err.message}`);
          reject(err);
        } else {
          this.logger.debug(
            { server: this.server, ms: Math.round(this.clock.now() - started) },
            'sdkit: Kubernetes API server answered',
          );
          resolve();
        }
      };
      const cancelTimeout = this.clock.setTimeout(() => {
        settle(
          new KubernetesClientError(
            'unreachable',
            `could not reach ${where} within ${this.dialTimeoutMs} ms${lastError ? `: ${lastError}` : ''}`,
            { cause: lastCause },
          ),
        );
      }, this.dialTimeoutMs);
      let failures = 0;
      const retry = (message: string, cause: unknown): void => {
        lastError = message;
        lastCause = cause;
        cancelRetry = this.clock.setTimeout(attempt, probeBackoff.delay(failures++));
      };
      const attempt = async (): Promise<void> => {
        cancelRetry = undefined;
        if (settled) return;
        const left = Math.max(1, this.dialTimeoutMs - (this.clock.now() - started));
        try {
          const res = await this.#transport.get('/apis/discovery.k8s.io/v1', {
            signal: attemptAbort.signal,
            headersTimeoutMs: left,
          });
          const body = await readBody(res, MAX_DISCOVERY_BYTES);
          if (settled) return;
          const status = res.statusCode ?? 0;
          if (status === 200) {
            if (servesEndpointSlices(body)) settle();
            else
              settle(
                new KubernetesClientError(
                  'unsupported',
                  `${where} serves discovery.k8s.io/v1 without endpointslices`,
                ),
              );
          } else if (status === 403) {
            settle(); // authenticated; what is not allowed is reported where it is needed
          } else if (status === 401) {
            this.#transport.invalidateToken();
            settle(
              new KubernetesClientError(
                'unauthorized',
                `${where} rejected the credentials${this.user === undefined ? '' : ` of kubeconfig user ${JSON.stringify(this.user)}`} (401 Unauthorized)${statusMessage(body)}`,
              ),
            );
          } else if (status === 404) {
            settle(
              new KubernetesClientError(
                'unsupported',
                `${where} does not serve discovery.k8s.io/v1 (404): EndpointSlices v1 need Kubernetes 1.21 or later`,
              ),
            );
          } else {
            retry(`HTTP ${status}${statusMessage(body)}`, undefined);
          }
        } catch (err) {
          if (settled) return;
          if (err instanceof TransportError && err.kind === 'credentials') {
            settle(new KubernetesClientError('unauthorized', err.message, { cause: err.cause }));
          } else if (isTlsFailure(err)) {
            settle(
              new KubernetesClientError('unreachable', `could not reach ${where}: ${errorText(err)}`, {
                cause: err,
              }),
            );
          } else {
            retry(errorText(err), err);
          }
        }
      };
      void attempt();
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    notifyClosed(this, closedError(this), (err) =>
      this.logger.error({ err: errorText(err) }, 'sdkit: a close listener of the Kubernetes client threw'),
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  [instancerForTarget](target: TargetUri, options: KubernetesTargetOptions = {}): Instancer {
    return kubernetesTargetInstancer(this, options)(target);
  }
}

/** Whether a `discovery.k8s.io/v1` APIResourceList lists `endpointslices`. */
function servesEndpointSlices(body: Buffer): boolean {
  try {
    const list = JSON.parse(body.toString('utf8')) as { resources?: { name?: unknown }[] };
    return Array.isArray(list.resources) && list.resources.some((r) => r?.name === 'endpointslices');
  } catch {
    return false;
  }
}

/** `: <message>` of a Kubernetes `Status` body, or `''`. */
export function statusMessage(body: Buffer): string {
  try {
    const status = JSON.parse(body.toString('utf8')) as { message?: unknown };
    return typeof status.message === 'string' && status.message !== ''
      ? `: ${errorText(status.message)}`
      : '';
  } catch {
    return '';
  }
}
