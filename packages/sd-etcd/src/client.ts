import { readFile } from 'node:fs/promises';
import { type Backoff, type BackoffDefaults, type Clock, createBackoff } from '@sdkit/sd-core';
import { Etcd3, type IOptions, isRecoverableError, type Namespace } from 'etcd3';
import {
  BASE_CLIENT_OPTIONS,
  type ClientSettings,
  clientSettings,
  type EtcdClient,
  type EtcdClientBaseOptions,
  readyOrClosed,
  TransportClient,
} from './client-core.js';
import { describeValue } from './describe-value.js';
import { createGrpcTransport } from './grpc-transport.js';
import { createHttpClient, type EtcdHttpClientOptions, HTTP_CLIENT_OPTIONS } from './http-client.js';

export {
  DEFAULT_KEEPALIVE,
  DEFAULT_MAX_REQUEST_BYTES,
  type EtcdClient,
  type EtcdClientBaseOptions,
  EtcdClientError,
  type EtcdClientErrorReason,
  type EtcdTargetOptions,
} from './client-core.js';

/**
 * PEM material for {@link EtcdClientOptions.tls}: a `Buffer` is the PEM contents; a `string` is the PEM contents
 * when it contains a `-----BEGIN` line (text before it, like openssl's "Bag Attributes", is allowed), otherwise a
 * path to a PEM file. Error messages name a path that cannot be read, but never show a value that looks like key
 * material (multi-line, or a long base64 run).
 */
export type PemSource = string | Buffer;

/** Options of {@link createEtcdClient} with the gRPC transport (the default). */
export interface EtcdClientOptions extends EtcdClientBaseOptions {
  /** `'grpc'` (default): etcd's gRPC API, over `etcd3`. `'http'`: see {@link EtcdHttpTransportOptions}. */
  transport?: 'grpc';
  /**
   * TLS towards etcd (endpoints must then be `https://`). `ca`: the CA that signed etcd's server certificate
   * (default: the system CAs). `cert` + `key` (both or neither): a client certificate, for etcd's
   * `--client-cert-auth`. Each is a {@link PemSource} (contents or file path). `https://` endpoints without
   * `tls` trust the system CAs.
   */
  tls?: { ca?: PemSource; cert?: PemSource; key?: PemSource };
  /**
   * Overrides for etcd3's fault handling (`host` policy, `global` policy, `watchBackoff`); each one given
   * replaces this module's default for it. Defaults: per host, a circuit breaker that opens after 3 consecutive
   * connection failures and lets one trial call through after 1000 ms (etcd3's own waits 5000 ms, so a client
   * stayed blind for 5 s after etcd came back); globally, etcd3's 3 attempts over the shuffled hosts; watch
   * re-connects back off 200 ms doubling to at most 2000 ms (etcd3's own grows to 30 s).
   */
  faultHandling?: IOptions['faultHandling'];
}

/**
 * Options of {@link createEtcdClient} with `transport: 'http'`: etcd's HTTP/JSON gateway over `fetch`, exactly as
 * `createEtcdClient` of `@sdkit/sd-etcd/http`. `https://` endpoints are verified by the runtime's fetch (system
 * CAs); for other TLS settings pass a `fetch` that applies them.
 */
export interface EtcdHttpTransportOptions extends EtcdHttpClientOptions {
  transport: 'http';
}

/** A gRPC {@link EtcdClient}: also gives access to the `etcd3` client underneath. */
export interface EtcdGrpcClient extends EtcdClient {
  readonly transport: 'grpc';
  /**
   * The etcd3 handle for keys, watches and leases: the `Etcd3` itself, or its `.namespace(prefix)` when
   * `namespace` was given (keys are then relative to the prefix).
   */
  readonly etcd: Namespace;
  /** The underlying `Etcd3`, not namespaced (maintenance, auth, cluster calls). Closed by `close()`. */
  readonly root: Etcd3;
}

/**
 * The largest response this client accepts (gRPC `max_receive_message_length`): 2^31 − 1 bytes, as etcd's Go
 * client (`MaxCallRecvMsgSize`). grpc-js's default, 4 MiB, made a prefix read fail over and over (so the instancer
 * never saw any instance) as soon as the values under the prefix added up to more than 4 MiB — e.g. three or four
 * large values stored there by mistake.
 */
const MAX_RECEIVE_MESSAGE_BYTES = 2 ** 31 - 1;

function fail(message: string): never {
  throw new TypeError(`createEtcdClient: ${message}`);
}

const GRPC_CLIENT_OPTIONS = [...BASE_CLIENT_OPTIONS, 'transport', 'tls', 'faultHandling'] as const;

/**
 * Creates an etcd client and resolves once etcd has answered a round-trip (see {@link EtcdClient.ready}), so a
 * misconfiguration fails here, clearly, rather than later inside a watch.
 *
 * `transport`: `'grpc'` (default) talks etcd's gRPC API through `etcd3`; `'http'` talks etcd's HTTP/JSON gateway
 * through `fetch`, as `@sdkit/sd-etcd/http` does everywhere (Deno, Bun, workerd): the same instancers and
 * registrars work on either.
 *
 * Rejects with a `TypeError` naming the bad value for invalid options (empty endpoints, bad URLs, unreadable PEM
 * files, `cert` without `key`, an option the transport does not take, …), and with an
 * {@link EtcdClientError} when etcd is unreachable within `dialTimeoutMs` or rejects the credentials; the
 * half-built client is closed in every failure case.
 */
export function createEtcdClient(options: EtcdHttpTransportOptions): Promise<EtcdClient>;
export function createEtcdClient(options: EtcdClientOptions): Promise<EtcdGrpcClient>;
export async function createEtcdClient(
  options: EtcdClientOptions | EtcdHttpTransportOptions,
): Promise<EtcdClient> {
  if (options === null || typeof options !== 'object')
    fail(`options must be an object, got ${describeValue(options)}`);
  const transport = options.transport ?? 'grpc';
  if (transport === 'http') {
    if ('tls' in options && options.tls !== undefined) {
      fail(
        "tls is not taken with transport 'http': https:// endpoints are verified by fetch against the system CAs; " +
          'for a private CA or a client certificate pass a `fetch` that applies them, or use the gRPC transport',
      );
    }
    return createHttpClient(options as EtcdHttpTransportOptions, [...HTTP_CLIENT_OPTIONS, 'transport']);
  }
  if (transport !== 'grpc') fail(`transport must be 'grpc' or 'http', got ${describeValue(transport)}`);
  const grpcOptions = options as EtcdClientOptions;
  const { tls } = grpcOptions;
  if (tls !== undefined && (tls === null || typeof tls !== 'object'))
    fail(`tls must be an object, got ${describeValue(tls)}`);
  const settings = clientSettings(grpcOptions, GRPC_CLIENT_OPTIONS, tls !== undefined);
  if (
    grpcOptions.faultHandling !== undefined &&
    (grpcOptions.faultHandling === null || typeof grpcOptions.faultHandling !== 'object')
  ) {
    fail(`faultHandling must be an object, got ${describeValue(grpcOptions.faultHandling)}`);
  }
  const { keepAlive, auth } = settings;
  const etcdOptions: IOptions = {
    hosts: [...settings.endpoints],
    faultHandling: defaultFaultHandling(settings.clock, grpcOptions.faultHandling),
    grpcOptions: {
      'grpc.max_receive_message_length': MAX_RECEIVE_MESSAGE_BYTES,
      ...(keepAlive
        ? {
            'grpc.keepalive_time_ms': keepAlive.timeMs,
            'grpc.keepalive_timeout_ms': keepAlive.timeoutMs,
            // etcd's enforcement policy refuses pings on a connection without calls (GOAWAY too_many_pings).
            'grpc.keepalive_permit_without_calls': 0,
          }
        : {}),
    },
  };
  if (tls) {
    const [ca, cert, key] = await Promise.all([
      loadPem(tls.ca, 'ca'),
      loadPem(tls.cert, 'cert'),
      loadPem(tls.key, 'key'),
    ]);
    if ((cert === undefined) !== (key === undefined)) fail('tls.cert and tls.key must be given together');
    // etcd3 passes these to grpc.credentials.createSsl; a null root certificate means "system CAs".
    etcdOptions.credentials = {
      rootCertificate: ca ?? (null as unknown as Buffer),
      ...(cert ? { certChain: cert } : {}),
      ...(key ? { privateKey: key } : {}),
    };
  }
  if (auth) etcdOptions.auth = { username: auth.username, password: auth.password };

  return readyOrClosed(new GrpcClient(new Etcd3(etcdOptions), settings));
}

class GrpcClient extends TransportClient implements EtcdGrpcClient {
  declare readonly transport: 'grpc';
  readonly etcd: Namespace;

  constructor(
    readonly root: Etcd3,
    settings: ClientSettings,
  ) {
    super(createGrpcTransport(root), settings);
    this.etcd = settings.namespace ? root.namespace(settings.namespace) : root;
  }
}

const PEM_PREFIX = '-----BEGIN';

async function loadPem(source: unknown, field: string): Promise<Buffer | undefined> {
  if (source === undefined) return undefined;
  if (Buffer.isBuffer(source)) return source;
  if (typeof source !== 'string' || source.trim() === '') {
    fail(`tls.${field} must be PEM contents (string or Buffer) or a file path, got ${describeValue(source)}`);
  }
  // Contents, also with text before the first block (openssl's "Bag Attributes" lines; OpenSSL skips it).
  if (source.includes(PEM_PREFIX)) return Buffer.from(source.trimStart());
  try {
    return await readFile(source);
  } catch (err) {
    if (!looksLikePath(source)) {
      // Probably key material pasted without its PEM armour: never echo it (the fs error would, too).
      throw new TypeError(
        `createEtcdClient: tls.${field} is neither PEM contents (no "${PEM_PREFIX}" line) nor a readable file ` +
          `path (a ${source.length}-character value, not shown: it may be a private key)`,
      );
    }
    throw new TypeError(
      `createEtcdClient: cannot read tls.${field} file ${describeValue(source)}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/** Whether a `tls.*` string that is not PEM may be shown in an error as a file path (not key material). */
function looksLikePath(source: string): boolean {
  return source.length <= 1024 && !/[\r\n]/.test(source) && !/[A-Za-z0-9+/=]{64,}/.test(source);
}

/** Opens after this many consecutive connection failures of one host… */
const BREAKER_THRESHOLD = 3;
/** …and lets one trial call through after this long: 1000 ms each time it opens, exact. */
const BREAKER_HALF_OPEN_BACKOFF: BackoffDefaults = Object.freeze({
  initialMs: 1000,
  maxMs: 1000,
  factor: 1,
  jitter: 0,
});
/**
 * Waits between etcd3's watch re-connects: 200 ms doubling to 2000 ms, exact. (etcd3 steps past the backoff it is
 * given before its first wait, so the {@link EtcdBackoffAdapter} it gets starts one step before this.)
 */
const WATCH_RECONNECT_BACKOFF: BackoffDefaults = Object.freeze({
  initialMs: 200,
  maxMs: 2000,
  factor: 2,
  jitter: 0,
});

/** Thrown while a host's circuit is open; etcd3 recognises it by `isBrokenCircuitError` (cockatiel's duck type). */
class BrokenCircuitError extends Error {
  readonly isBrokenCircuitError = true;
}

const noopEvent = (): { dispose(): void } => ({ dispose() {} });

/**
 * A per-host circuit breaker with cockatiel's `IPolicy` shape (what etcd3 calls: `execute`): after
 * {@link BREAKER_THRESHOLD} consecutive recoverable (connection) failures it rejects calls at once, so etcd3 moves
 * on to the next host, until the half-open wait ({@link BREAKER_HALF_OPEN_BACKOFF}, on the clock; its attempt is
 * the number of times the circuit re-opened since it last closed) has passed; then one trial call goes through and
 * its outcome closes or re-opens the circuit. Any answer from etcd, even an error, counts as success.
 */
class HostBreaker {
  readonly onSuccess = noopEvent;
  readonly onFailure = noopEvent;
  private failures = 0;
  /** Times the circuit opened since it last closed. */
  private opened = 0;
  private openUntil = 0;
  private trialInFlight = false;

  constructor(
    private readonly host: string,
    private readonly clock: Clock,
    private readonly halfOpen: Backoff,
  ) {}

  async execute<T>(
    fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T,
    signal?: AbortSignal,
  ): Promise<T> {
    let trial = false;
    if (this.failures >= BREAKER_THRESHOLD) {
      const wait = this.openUntil - this.clock.now();
      if (wait > 0 || this.trialInFlight) {
        throw new BrokenCircuitError(
          `etcd host ${this.host} failed ${this.failures} times in a row; next attempt in ${Math.max(0, Math.ceil(wait))} ms`,
        );
      }
      trial = true;
      this.trialInFlight = true;
    }
    try {
      const value = await fn({ signal: signal ?? new AbortController().signal });
      this.failures = 0;
      this.opened = 0;
      return value;
    } catch (err) {
      if (err instanceof Error && isRecoverableError(err)) {
        this.failures++;
        if (this.failures >= BREAKER_THRESHOLD) {
          this.openUntil = this.clock.now() + this.halfOpen.delay(this.opened++);
        }
      } else {
        this.failures = 0;
        this.opened = 0;
      }
      throw err;
    } finally {
      if (trial) this.trialInFlight = false;
    }
  }
}

/**
 * An sd-core {@link Backoff} in cockatiel's `IBackoff` shape, which etcd3 takes for its watch re-connects:
 * `duration` is the wait of retry `attempt`, `next()` the backoff after it. etcd3 calls `next()` on the one it is
 * given before its first wait (and again whenever a watch is answered), so the one given starts at attempt −1 and
 * the first wait is `delay(0)`. etcd3 times these waits with its own `setTimeout`, not with the client's clock.
 */
class EtcdBackoffAdapter {
  readonly duration: number;
  constructor(
    private readonly backoff: Backoff,
    private readonly attempt = -1,
  ) {
    this.duration = backoff.delay(attempt);
  }
  next(): EtcdBackoffAdapter {
    return new EtcdBackoffAdapter(this.backoff, this.attempt + 1);
  }
}

type FaultHandling = NonNullable<IOptions['faultHandling']>;

/** etcd3's fault handling of a client on `clock`: this module's defaults, each one replaced by an override given. @internal */
export function defaultFaultHandling(clock: Clock, overrides: IOptions['faultHandling']): FaultHandling {
  const halfOpen = createBackoff(undefined, 'createEtcdClient (host breaker)', BREAKER_HALF_OPEN_BACKOFF);
  const reconnect = createBackoff(undefined, 'createEtcdClient (watch re-connects)', WATCH_RECONNECT_BACKOFF);
  const result: FaultHandling = {
    host:
      overrides?.host ??
      (((hostname: string) => new HostBreaker(hostname, clock, halfOpen)) as unknown as NonNullable<
        FaultHandling['host']
      >),
    watchBackoff:
      overrides?.watchBackoff ??
      (new EtcdBackoffAdapter(reconnect) as unknown as NonNullable<FaultHandling['watchBackoff']>),
  };
  if (overrides?.global) result.global = overrides.global;
  return result;
}
