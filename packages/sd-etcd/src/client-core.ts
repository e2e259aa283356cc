/**
 * What every etcd client of sdkit is, whatever its transport: the {@link EtcdClient} contract, its errors, the
 * options both `createEtcdClient`s share, and the client built over an {@link EtcdTransport}. Portable: imports
 * nothing Node-only.
 * @module
 */
import {
  assertKnownOptions,
  type BackoffDefaults,
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
import { type Codec, codecs } from './codecs.js';
import { describeValue, errorText } from './describe-value.js';
import { EtcdInstancer } from './instancer.js';
import { etcdPrefixForTarget } from './target.js';
import { type EtcdTransport, encodeKey, prefixRangeEnd } from './transport.js';

/** The options of a `createEtcdClient`, whatever the transport. */
export interface EtcdClientBaseOptions {
  /**
   * etcd client URLs, e.g. `['http://127.0.0.1:2379']`: non-empty; each `http://` or `https://` with a host and a
   * port and no path; all with the same scheme.
   */
  endpoints: readonly string[];
  /** etcd user credentials (etcd auth enabled). The password is never logged nor put in an error message. */
  auth?: { username: string; password: string };
  /**
   * Bound, in ms, for the first round-trip: `createEtcdClient` (and {@link EtcdClient.ready}) reject if etcd has
   * not answered within it. Default 3000. With a single endpoint, a TLS failure (etcd's certificate not trusted,
   * our client certificate refused, no TLS on the port) rejects at once instead: it will not pass by waiting.
   * (Over HTTP in Node, etcd refusing a missing client certificate only shows as a closed connection, so that one
   * case waits for the dial timeout.)
   */
  dialTimeoutMs?: number;
  /**
   * How a connection that went silent is noticed (a member gone without a TCP reset, a firewall or NAT dropping
   * the flow), so that an `EtcdInstancer` reports the error (its last known instances plus `error`) and recovers
   * when etcd answers, instead of waiting for hours (the OS's TCP keepalive) with its instances silently stale.
   * A silent watch is noticed within `timeMs + timeoutMs` on both transports:
   * - gRPC: while the client has calls open, it pings etcd every `timeMs` and drops the connection when a ping
   *   stays unanswered for `timeoutMs`. `timeMs` must not be below etcd's `--grpc-keepalive-min-time` (default
   *   5 s): etcd answers faster pings with GOAWAY "too_many_pings". No pings while no call is open.
   * - HTTP: a watch that received nothing for `timeMs` is renewed (a new request, resuming from the last
   *   revision applied, nothing lost); a watch request not answered within `timeoutMs` is a failure.
   *
   * Default `{ timeMs: 10_000, timeoutMs: 5_000 }`. `false` turns it off.
   */
  keepAlive?: { timeMs?: number; timeoutMs?: number } | false;
  /**
   * Key prefix: when given, every key read, written or watched through the client is relative to it (e.g.
   * `'/tenant-a/'`), as with etcd3's `.namespace(prefix)`. Non-empty. Joined by plain concatenation, as etcd's
   * gRPC proxy `--namespace` does.
   */
  namespace?: string;
  /**
   * The largest request etcd accepts, in bytes: **must match etcd's `--max-request-bytes`** (default 1572864 =
   * 1.5 MiB, etcd's own default). `EtcdRegistrar` checks every registration against it in its constructor, so
   * a value that etcd would refuse ("request is too large") fails at once, with nothing written, instead of being
   * retried forever. An integer >= 1024.
   */
  maxRequestBytes?: number;
  /** Logger (pino-compatible); default silent. */
  logger?: Logger;
  /** Time source for the dial timeout, retries and (gRPC) the host circuit breaker; default `systemClock`. */
  clock?: Clock;
}

/** Why {@link EtcdClient.ready} (and `createEtcdClient`) failed. */
export type EtcdClientErrorReason = 'unreachable' | 'authentication-failed' | 'closed';

/**
 * A connection failure with a message a person can act on. `reason`: `'unreachable'` (no answer within the dial
 * timeout; the message names the endpoints and the last underlying error, e.g. a TLS handshake failure, which it
 * also explains: server certificate not signed by `tls.ca`, or client certificate missing or refused),
 * `'authentication-failed'` (etcd rejected the username/password), `'closed'` (the client was closed meanwhile).
 * The underlying transport error, if any, is `cause`.
 */
export class EtcdClientError extends Error {
  override readonly name = 'EtcdClientError';
  constructor(
    readonly reason: EtcdClientErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Options of an {@link EtcdClient}'s target mapping (`[instancerForTarget]`, used by `registerEtcdScheme`). */
export interface EtcdTargetOptions extends TargetInstancerOptions {
  /** How values are read. Default `codecs.auto` (etcd-naming JSON, go-kit strings and sdkit JSON alike). */
  readonly codec?: Codec;
}

/** Where an {@link EtcdClient} keeps its transport (internal to @sdkit/sd-etcd). @internal */
export const etcdTransport: unique symbol = Symbol('sdkit.etcdTransport');

/**
 * A connected etcd client. Hand it to `EtcdInstancer` / `EtcdRegistrar`; close it after them.
 *
 * It is also a `TargetInstancerSource`: `client[instancerForTarget](target)` follows a gRPC target the way etcd's
 * own resolver does (`etcd:///my-service` → an `EtcdInstancer` on the prefix `my-service/`, see
 * `etcdPrefixForTarget`), which is how `registerEtcdScheme` in @sdkit/sd-grpc uses it without importing sd-etcd.
 */
export interface EtcdClient extends AsyncDisposable, TargetInstancerSource<EtcdTargetOptions> {
  /** How it talks to etcd: gRPC (over `etcd3`) or HTTP/JSON (etcd's gateway, over `fetch`). */
  readonly transport: 'grpc' | 'http';
  /** The endpoints, as given. */
  readonly endpoints: readonly string[];
  /** The namespace prefix, or `''`. */
  readonly namespace: string;
  /** The logger given (or the silent one), for components built on this client. */
  readonly logger: Logger;
  /** The dial timeout in effect, in ms. */
  readonly dialTimeoutMs: number;
  /** The keepalive in effect ({@link EtcdClientBaseOptions.keepAlive}), or `false` when off. */
  readonly keepAlive: { readonly timeMs: number; readonly timeoutMs: number } | false;
  /** etcd's request size limit assumed ({@link EtcdClientBaseOptions.maxRequestBytes}), in bytes. */
  readonly maxRequestBytes: number;
  /**
   * The etcd user this client authenticates as (`auth.username`), or `undefined` without `auth`; named in
   * "permission denied" errors. (The password is not kept here.)
   */
  readonly username: string | undefined;
  /**
   * Resolves once a round-trip to etcd succeeds: a linearizable read of one key (so a member without quorum is
   * not "ready"), authenticating first when `auth` is set; "permission denied" on that key still counts as
   * success (the credentials were accepted). Rejects with an {@link EtcdClientError}: after `dialTimeoutMs`
   * (`'unreachable'`, earlier attempts are retried with backoff until then), at once on wrong credentials or when
   * etcd requires credentials and none were given (`'authentication-failed'`), or if the client is closed
   * (`'closed'`). Each call makes a fresh check.
   */
  ready(): Promise<void>;
  /** Whether {@link close} was called. */
  readonly closed: boolean;
  /**
   * Stops everything on this client at once, then closes the transport. Idempotent.
   * - Lease keep-alives end; leases are not revoked, so the keys of registrars still registered expire within
   *   their TTL, exactly as after a crash (`deregister()` them first to remove them at once). Those registrars go
   *   to `lost` and complete their `state$`; their pending `register()` rejects, and a later `register()` or
   *   `deregister()` rejects, with an {@link EtcdClientError} (`'closed'`).
   * - Watches end: every `EtcdInstancer` on the client emits one last event with an {@link EtcdClientError}
   *   (`'closed'`) as its `error` (its last known instances kept, as for any error), then completes.
   * - A pending {@link ready} (or `createEtcdClient`) rejects with `'closed'`.
   * Afterwards nothing on the client keeps the process alive.
   */
  close(): void;
  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void>;
  /** @internal */
  readonly [etcdTransport]: EtcdTransport;
}

/** etcd's default `--max-request-bytes` (1.5 MiB), the default of {@link EtcdClientBaseOptions.maxRequestBytes}. */
export const DEFAULT_MAX_REQUEST_BYTES = 1_572_864;

/** Default of {@link EtcdClientBaseOptions.keepAlive}. */
export const DEFAULT_KEEPALIVE = Object.freeze({ timeMs: 10_000, timeoutMs: 5_000 });

/** The key read by {@link EtcdClient.ready}'s round-trip (its value, if any, is ignored). */
const READY_PROBE_KEY = encodeKey('__sdkit_ready_probe__');

/** Between the round-trips of {@link EtcdClient.ready}: 50 ms doubling to 500 ms, exact (no jitter). */
const READY_BACKOFF: BackoffDefaults = Object.freeze({ initialMs: 50, maxMs: 500, factor: 2, jitter: 0 });
const readyBackoff = createBackoff(undefined, 'EtcdClient.ready', READY_BACKOFF);

/** The option names every `createEtcdClient` takes. */
export const BASE_CLIENT_OPTIONS = [
  'endpoints',
  'auth',
  'dialTimeoutMs',
  'keepAlive',
  'namespace',
  'maxRequestBytes',
  'logger',
  'clock',
] as const;

/** Names people try instead of the real ones. */
export const CLIENT_OPTION_HINTS = {
  hosts: 'endpoints',
  endpoint: 'endpoints',
  dialTimeout: 'dialTimeoutMs',
  timeout: 'dialTimeoutMs',
  credentials: 'tls',
  username: 'auth',
  password: 'auth',
  prefix: 'namespace',
};

/** The validated shared options. */
export interface ClientSettings {
  readonly endpoints: readonly string[];
  readonly auth: { readonly username: string; readonly password: string } | undefined;
  readonly dialTimeoutMs: number;
  readonly keepAlive: EtcdClient['keepAlive'];
  readonly namespace: string;
  readonly maxRequestBytes: number;
  readonly logger: Logger;
  readonly clock: Clock;
}

function fail(message: string): never {
  throw new TypeError(`createEtcdClient: ${message}`);
}

/**
 * Validates the options every `createEtcdClient` shares (`known`: every option name the caller accepts), throwing
 * a `TypeError` naming the bad value. `withTls`: endpoints must be `https://`.
 */
export function clientSettings(
  options: EtcdClientBaseOptions,
  known: readonly string[],
  withTls = false,
): ClientSettings {
  if (options === null || typeof options !== 'object')
    fail(`options must be an object, got ${describeValue(options)}`);
  assertKnownOptions('createEtcdClient', options, known, CLIENT_OPTION_HINTS);
  const endpoints = validateEndpoints(options.endpoints, withTls);
  const dialTimeoutMs = options.dialTimeoutMs ?? 3000;
  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  if (!Number.isSafeInteger(maxRequestBytes) || maxRequestBytes < 1024) {
    fail(
      `maxRequestBytes must be an integer >= 1024 matching etcd's --max-request-bytes (default ${DEFAULT_MAX_REQUEST_BYTES}), got ${describeValue(maxRequestBytes)}`,
    );
  }
  if (typeof dialTimeoutMs !== 'number' || !Number.isFinite(dialTimeoutMs) || dialTimeoutMs <= 0) {
    fail(`dialTimeoutMs must be a positive number of milliseconds, got ${describeValue(dialTimeoutMs)}`);
  }
  const keepAlive = validKeepAlive(options.keepAlive);
  const { namespace, auth } = options;
  if (namespace !== undefined && (typeof namespace !== 'string' || namespace === '')) {
    fail(`namespace must be a non-empty string, got ${describeValue(namespace)}`);
  }
  if (auth !== undefined) {
    if (auth === null || typeof auth !== 'object')
      fail(`auth must be { username, password }, got ${describeValue(auth)}`);
    if (typeof auth.username !== 'string' || auth.username === '') {
      fail(`auth.username must be a non-empty string, got ${describeValue(auth.username)}`);
    }
    if (typeof auth.password !== 'string') fail('auth.password must be a string'); // value not shown
  }
  return {
    endpoints,
    auth: auth ? { username: auth.username, password: auth.password } : undefined,
    dialTimeoutMs,
    keepAlive,
    namespace: namespace ?? '',
    maxRequestBytes,
    logger: options.logger ?? silentLogger,
    clock: options.clock ?? systemClock,
  };
}

function validateEndpoints(endpoints: unknown, withTls: boolean): string[] {
  if (!Array.isArray(endpoints) || endpoints.length === 0) {
    fail(`endpoints must be a non-empty array of URLs, got ${describeValue(endpoints)}`);
  }
  const schemes = new Set<string>();
  const out: string[] = [];
  for (const endpoint of endpoints as unknown[]) {
    if (typeof endpoint !== 'string') fail(`endpoint must be a string URL, got ${describeValue(endpoint)}`);
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      fail(`endpoint ${describeValue(endpoint)} is not a valid URL (expected e.g. "http://127.0.0.1:2379")`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      fail(`endpoint ${describeValue(endpoint)} must use http:// or https://`);
    }
    if (url.port === '')
      fail(`endpoint ${describeValue(endpoint)} must include a port (etcd's default is 2379)`);
    if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username) {
      fail(`endpoint ${describeValue(endpoint)} must be scheme://host:port only`);
    }
    schemes.add(url.protocol);
    out.push(`${url.protocol}//${url.host}`);
  }
  if (schemes.size > 1) fail(`endpoints mix http:// and https:// (${endpoints.join(', ')})`);
  if (withTls && !schemes.has('https:'))
    fail(`tls options need https:// endpoints, got ${endpoints.join(', ')}`);
  return out;
}

function validKeepAlive(option: EtcdClientBaseOptions['keepAlive']): EtcdClient['keepAlive'] {
  if (option === false) return false;
  if (option === undefined) return DEFAULT_KEEPALIVE;
  if (option === null || typeof option !== 'object') {
    fail(`keepAlive must be { timeMs?, timeoutMs? } or false, got ${describeValue(option)}`);
  }
  const timeMs = option.timeMs ?? DEFAULT_KEEPALIVE.timeMs;
  const timeoutMs = option.timeoutMs ?? DEFAULT_KEEPALIVE.timeoutMs;
  for (const [name, value] of [
    ['timeMs', timeMs],
    ['timeoutMs', timeoutMs],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1) {
      fail(
        `keepAlive.${name} must be a positive integer number of milliseconds, got ${describeValue(value)}`,
      );
    }
  }
  return Object.freeze({ timeMs, timeoutMs });
}

/**
 * Calls `listener` once, synchronously, when `client` is closed (at once if it already is). Returns a function
 * that removes it. For the instancers, registrars and lease pools built on the client. @internal
 */
export function onClientClose(client: EtcdClient, listener: (error: EtcdClientError) => void): () => void {
  return onClosed(client, client.closed === true, () => closedError(client), listener);
}

function closedError(client: EtcdClient): EtcdClientError {
  return new EtcdClientError('closed', `the etcd client for ${client.endpoints?.join(', ')} was closed`);
}

/**
 * Throws unless `client` looks like an {@link EtcdClient}: a `TypeError` naming `who` (and saying "did you
 * forget await?" for a Promise), or an {@link EtcdClientError} (`'closed'`) for a closed client. @internal
 */
export function assertEtcdClient(client: unknown, who: string): asserts client is EtcdClient {
  if (client === null || typeof client !== 'object' || typeof transportOf(client) !== 'object') {
    throw new TypeError(
      `${who}: client must be an EtcdClient from \`await createEtcdClient(…)\`, got ${describeValue(client)}`,
    );
  }
  if ((client as EtcdClient).closed === true) {
    throw new EtcdClientError('closed', `${who}: ${closedError(client as EtcdClient).message}`);
  }
}

/** The transport of an {@link EtcdClient}, or `undefined` if `client` is not one. @internal */
export function transportOf(client: unknown): EtcdTransport | undefined {
  const transport =
    client !== null && typeof client === 'object'
      ? (client as Partial<Record<typeof etcdTransport, EtcdTransport>>)[etcdTransport]
      : undefined;
  return transport !== null && typeof transport === 'object' && typeof transport.watch === 'function'
    ? transport
    : undefined;
}

/**
 * A TLS handshake failure in `err` (grpc-js and fetch pass OpenSSL's text through, e.g. "sslv3 alert bad
 * certificate") said in plain words, to append to the `'unreachable'` message; `''` when `err` is not one. The
 * advice names what the `transport` takes: `tls` for gRPC; the runtime's trust store or a `fetch` for HTTP (which
 * refuses `tls`).
 */
export function tlsHint(err: unknown, transport: 'grpc' | 'http' = 'grpc'): string {
  const text = deepText(err);
  if (
    /unable to verify|self[- ]signed certificate|unable to get (local )?issuer|certificate verify failed/i.test(
      text,
    )
  ) {
    return transport === 'http'
      ? " (TLS: etcd's server certificate is not signed by a CA that fetch trusts: a system CA or, in Node, one " +
          'added with NODE_EXTRA_CA_CERTS; or pass a `fetch` that trusts its CA)'
      : " (TLS: etcd's server certificate is not signed by the CA given as tls.ca — or, without tls.ca, by a system CA)";
  }
  if (/alert (bad certificate|certificate required|unknown ca|certificate unknown)/i.test(text)) {
    return (
      " (TLS: etcd refused the client certificate: none was given, or it is not signed by a CA in etcd's " +
      (transport === 'http'
        ? '--trusted-ca-file; with --client-cert-auth the HTTP transport needs a `fetch` that presents one)'
        : '--trusted-ca-file; with --client-cert-auth etcd needs tls.cert and tls.key)')
    );
  }
  if (/wrong version number|packet length too long/i.test(text)) {
    return transport === 'http'
      ? ' (TLS: etcd does not seem to serve TLS on this port; use an http:// endpoint)'
      : ' (TLS: etcd does not seem to serve TLS on this port; use an http:// endpoint without tls)';
  }
  return '';
}

/** `err`'s message with the messages of its causes (fetch hides the reason in `cause`). */
function deepText(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    parts.push(current instanceof Error ? current.message : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(': ');
}

/** Why a round-trip failed, for an `'unreachable'` message: the error's text plus the plain-words {@link tlsHint}. */
function unreachableCause(err: unknown, transport: 'grpc' | 'http'): string {
  return `${errorText(err).replace(/\s*Resolution note:\s*$/, '')}${tlsHint(err, transport)}`;
}

/** Resolves with `client` once it is {@link EtcdClient.ready}; if it is not, closes it and rejects. @internal */
export async function readyOrClosed<T extends EtcdClient>(client: T): Promise<T> {
  try {
    await client.ready();
  } catch (err) {
    client.close();
    throw err;
  }
  return client;
}

/**
 * An {@link EtcdClient} over an {@link EtcdTransport}: readiness, close and the target mapping, the same for every
 * transport. @internal
 */
export class TransportClient implements EtcdClient {
  closed = false;
  readonly transport: 'grpc' | 'http';
  readonly endpoints: readonly string[];
  readonly namespace: string;
  readonly logger: Logger;
  readonly dialTimeoutMs: number;
  readonly keepAlive: EtcdClient['keepAlive'];
  readonly maxRequestBytes: number;
  readonly username: string | undefined;
  readonly [etcdTransport]: EtcdTransport;
  readonly #clock: Clock;

  constructor(transport: EtcdTransport, settings: ClientSettings) {
    this[etcdTransport] = transport;
    this.transport = transport.kind;
    this.endpoints = settings.endpoints;
    this.namespace = settings.namespace;
    this.logger = settings.logger;
    this.dialTimeoutMs = settings.dialTimeoutMs;
    this.keepAlive = settings.keepAlive;
    this.maxRequestBytes = settings.maxRequestBytes;
    this.username = settings.auth?.username;
    this.#clock = settings.clock;
  }

  ready(): Promise<void> {
    const where = this.endpoints.join(', ');
    if (this.closed)
      return Promise.reject(new EtcdClientError('closed', `etcd client for ${where} is closed`));
    const transport = this[etcdTransport];
    const clock = this.#clock;
    const started = clock.now();
    // Its timers are unref'd like every sdkit timer; the caller's await must still see the outcome.
    return holdUntilSettled(
      new Promise<void>((resolve, reject) => {
        let settled = false;
        let lastError: unknown;
        let cancelRetry: (() => void) | undefined;
        const stopListening = onClientClose(this, () =>
          settle(new EtcdClientError('closed', `etcd client for ${where} was closed before it was ready`)),
        );
        const settle = (err?: EtcdClientError): void => {
          if (settled) return;
          settled = true;
          stopListening();
          cancelTimeout();
          cancelRetry?.();
          if (err) {
            this.logger.warn({ endpoints: this.endpoints, reason: err.reason }, err.message);
            reject(err);
          } else {
            this.logger.debug(
              { endpoints: this.endpoints, ms: Math.round(clock.now() - started) },
              'etcd ready',
            );
            resolve();
          }
        };
        const cancelTimeout = clock.setTimeout(() => {
          const last = lastError === undefined ? '' : `: ${unreachableCause(lastError, transport.kind)}`;
          settle(
            new EtcdClientError(
              'unreachable',
              `could not reach etcd at ${where} within ${this.dialTimeoutMs} ms${last}`,
              { cause: lastError },
            ),
          );
        }, this.dialTimeoutMs);
        let failures = 0;
        const attempt = (): void => {
          cancelRetry = undefined;
          if (settled) return;
          if (this.closed) {
            settle(new EtcdClientError('closed', `etcd client for ${where} was closed before it was ready`));
            return;
          }
          const left = Math.max(1, this.dialTimeoutMs - (clock.now() - started));
          transport
            .range(
              { key: READY_PROBE_KEY, rangeEnd: prefixRangeEnd(READY_PROBE_KEY), limit: 1 },
              { timeoutMs: left },
            )
            .then(
              () => settle(),
              (err: unknown) => {
                if (settled) return;
                const kind = transport.classify(err);
                if (kind === 'permission-denied') {
                  settle();
                  return;
                }
                if (kind === 'missing-credentials') {
                  settle(
                    new EtcdClientError(
                      'authentication-failed',
                      `etcd at ${where} requires authentication (auth is enabled) but no credentials were given`,
                      { cause: err },
                    ),
                  );
                  return;
                }
                if (kind === 'authentication-failed') {
                  settle(
                    new EtcdClientError(
                      'authentication-failed',
                      `etcd at ${where} rejected the credentials of user ${JSON.stringify(this.username ?? '')}: ` +
                        'wrong username or password',
                      { cause: err },
                    ),
                  );
                  return;
                }
                if (kind === 'not-served') {
                  // Not a passing failure either: this endpoint is not etcd (or not etcd's API on this transport).
                  settle(
                    new EtcdClientError(
                      'unreachable',
                      `etcd at ${where} does not serve the ${transport.kind === 'http' ? "HTTP/JSON gateway (etcd's gRPC proxy does not; point the HTTP transport at an etcd member or its L4 gateway, or use the gRPC transport)" : 'gRPC API'}: ${unreachableCause(err, transport.kind)}`,
                      { cause: err },
                    ),
                  );
                  return;
                }
                if (tlsHint(err) !== '' && this.endpoints.length === 1) {
                  // A certificate etcd or we refuse is not a passing failure: say so now, not after dialTimeoutMs.
                  // (With several endpoints another one may still answer.)
                  settle(
                    new EtcdClientError(
                      'unreachable',
                      `could not reach etcd at ${where}: ${unreachableCause(err, transport.kind)}`,
                      {
                        cause: err,
                      },
                    ),
                  );
                  return;
                }
                // Keep the most telling cause: an open circuit only says that earlier attempts failed.
                if (kind !== 'circuit-open' || lastError === undefined) lastError = err;
                cancelRetry = clock.setTimeout(attempt, readyBackoff.delay(failures++));
              },
            );
        };
        attempt();
      }),
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    notifyClosed(this, closedError(this), (err) =>
      this.logger.error({ err }, 'sdkit: a close listener of the etcd client threw'),
    );
    this[etcdTransport].close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  [instancerForTarget](target: TargetUri, options: EtcdTargetOptions = {}): Instancer {
    return new EtcdInstancer(this, {
      prefix: etcdPrefixForTarget(target),
      codec: options.codec ?? codecs.auto,
      logger: options.logger ?? this.logger,
    });
  }
}
