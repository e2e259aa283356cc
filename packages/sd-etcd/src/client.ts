import { readFile } from 'node:fs/promises';
import {
  assertKnownOptions,
  type Clock,
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
import {
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  type IOptions,
  isRecoverableError,
  type Namespace,
} from 'etcd3';
import { type Codec, codecs } from './codecs.js';
import { describeValue, errorText } from './describe-value.js';
import { EtcdInstancer } from './instancer.js';
import { etcdPrefixForTarget } from './target.js';

/**
 * PEM material for {@link EtcdClientOptions.tls}: a `Buffer` is the PEM contents; a `string` is the PEM contents
 * when it contains a `-----BEGIN` line (text before it, like openssl's "Bag Attributes", is allowed), otherwise a
 * path to a PEM file. Error messages name a path that cannot be read, but never show a value that looks like key
 * material (multi-line, or a long base64 run).
 */
export type PemSource = string | Buffer;

/** Options of {@link createEtcdClient}. */
export interface EtcdClientOptions {
  /**
   * etcd client URLs, e.g. `['http://127.0.0.1:2379']`: non-empty; each `http://` or `https://` with a host and a
   * port and no path; all with the same scheme. `https://` endpoints without `tls` trust the system CAs.
   */
  endpoints: readonly string[];
  /**
   * TLS towards etcd (endpoints must then be `https://`). `ca`: the CA that signed etcd's server certificate
   * (default: the system CAs). `cert` + `key` (both or neither): a client certificate, for etcd's
   * `--client-cert-auth`. Each is a {@link PemSource} (contents or file path).
   */
  tls?: { ca?: PemSource; cert?: PemSource; key?: PemSource };
  /** etcd user credentials (etcd auth enabled). The password is never logged nor put in an error message. */
  auth?: { username: string; password: string };
  /**
   * Bound, in ms, for the first round-trip: `createEtcdClient` (and {@link EtcdClient.ready}) reject if etcd has
   * not answered within it. Default 3000. (etcd3's own `dialTimeout` option is ignored by etcd3; this implements
   * it.) With a single endpoint, a TLS failure (etcd's certificate not trusted, our client certificate refused,
   * no TLS on the port) rejects at once instead: it will not pass by waiting.
   */
  dialTimeoutMs?: number;
  /**
   * gRPC keepalive, to notice a connection that went silent: while the client has calls open (a watch, a lease's
   * keep-alive call), it pings etcd every `timeMs` and drops the connection when a ping stays unanswered for
   * `timeoutMs`. The calls on it then fail and are opened again (on another endpoint, if one answers): an
   * `EtcdInstancer` reports the error (its last known instances plus `error`) and recovers when etcd answers.
   * Without it a silent partition — a member gone without a TCP reset, a firewall or NAT dropping the flow — leaves
   * a watch waiting for hours (the OS's TCP keepalive), its instances silently stale.
   *
   * Default `{ timeMs: 10_000, timeoutMs: 5_000 }`. `timeMs` must not be below etcd's `--grpc-keepalive-min-time`
   * (default 5 s): etcd answers pings that come faster with GOAWAY "too_many_pings" (grpc-js then doubles its
   * interval). No pings while no call is open (etcd refuses those too). `false` turns keepalive off.
   */
  keepAlive?: { timeMs?: number; timeoutMs?: number } | false;
  /**
   * Key prefix: when given, {@link EtcdClient.etcd} is `etcd3`'s `.namespace(prefix)`, so every key read,
   * written or watched through it is relative to the prefix (e.g. `'/tenant-a/'`). Non-empty.
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
  /** Time source for the dial timeout and the host circuit breaker; default `systemClock`. */
  clock?: Clock;
  /**
   * Overrides for etcd3's fault handling (`host` policy, `global` policy, `watchBackoff`); each one given
   * replaces this module's default for it. Defaults: per host, a circuit breaker that opens after 3 consecutive
   * connection failures and lets one trial call through after 1000 ms (etcd3's own waits 5000 ms, so a client
   * stayed blind for 5 s after etcd came back); globally, etcd3's 3 attempts over the shuffled hosts; watch
   * re-connects back off 100 ms doubling to at most 2000 ms (etcd3's own grows to 30 s).
   */
  faultHandling?: IOptions['faultHandling'];
}

/** Why {@link createEtcdClient} / {@link EtcdClient.ready} failed. */
export type EtcdClientErrorReason = 'unreachable' | 'authentication-failed' | 'closed';

/**
 * A connection failure with a message a person can act on. `reason`: `'unreachable'` (no answer within the dial
 * timeout; the message names the endpoints and the last underlying error, e.g. a TLS handshake failure, which it
 * also explains: server certificate not signed by `tls.ca`, or client certificate missing or refused),
 * `'authentication-failed'` (etcd rejected the username/password), `'closed'` (the client was closed meanwhile).
 * The underlying etcd3/gRPC error, if any, is `cause`.
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

/**
 * A connected etcd client. Hand it to `EtcdInstancer` / `EtcdRegistrar`; close it after them.
 *
 * It is also a `TargetInstancerSource`: `client[instancerForTarget](target)` follows a gRPC target the way etcd's
 * own resolver does (`etcd:///my-service` → an `EtcdInstancer` on the prefix `my-service/`, see
 * `etcdPrefixForTarget`), which is how `registerEtcdScheme` in @sdkit/sd-grpc uses it without importing sd-etcd.
 */
export interface EtcdClient extends AsyncDisposable, TargetInstancerSource<EtcdTargetOptions> {
  /**
   * The etcd3 handle to use for keys, watches and leases: the `Etcd3` itself, or its `.namespace(prefix)` when
   * `namespace` was given (keys are then relative to the prefix).
   */
  readonly etcd: Namespace;
  /** The underlying `Etcd3`, not namespaced (maintenance, auth, cluster calls). Closed by {@link close}. */
  readonly root: Etcd3;
  /** The endpoints, as given. */
  readonly endpoints: readonly string[];
  /** The namespace prefix, or `''`. */
  readonly namespace: string;
  /** The logger given (or the silent one), for components built on this client. */
  readonly logger: Logger;
  /** The dial timeout in effect, in ms. */
  readonly dialTimeoutMs: number;
  /** The gRPC keepalive in effect ({@link EtcdClientOptions.keepAlive}), or `false` when off. */
  readonly keepAlive: { readonly timeMs: number; readonly timeoutMs: number } | false;
  /** etcd's request size limit assumed ({@link EtcdClientOptions.maxRequestBytes}), in bytes. */
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
   * Stops everything on this client at once, then closes the underlying `Etcd3`. Idempotent.
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
}

const PEM_PREFIX = '-----BEGIN';

/** etcd's default `--max-request-bytes` (1.5 MiB), the default of {@link EtcdClientOptions.maxRequestBytes}. */
export const DEFAULT_MAX_REQUEST_BYTES = 1_572_864;

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

/** The option names of {@link createEtcdClient}, and the names people try instead. */
const CLIENT_OPTIONS = [
  'endpoints',
  'tls',
  'auth',
  'dialTimeoutMs',
  'keepAlive',
  'namespace',
  'maxRequestBytes',
  'logger',
  'clock',
  'faultHandling',
] as const;
const CLIENT_OPTION_HINTS = {
  hosts: 'endpoints',
  endpoint: 'endpoints',
  dialTimeout: 'dialTimeoutMs',
  timeout: 'dialTimeoutMs',
  credentials: 'tls',
  username: 'auth',
  password: 'auth',
  prefix: 'namespace',
};

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
  if (client === null || typeof client !== 'object' || typeof (client as EtcdClient).etcd !== 'object') {
    throw new TypeError(
      `${who}: client must be an EtcdClient from \`await createEtcdClient(…)\`, got ${describeValue(client)}`,
    );
  }
  if ((client as EtcdClient).closed === true) {
    throw new EtcdClientError('closed', `${who}: ${closedError(client as EtcdClient).message}`);
  }
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

function isAuthFailure(err: unknown): boolean {
  return (
    err instanceof EtcdAuthenticationFailedError ||
    (err instanceof Error && /authentication failed|invalid user ID or password/i.test(err.message))
  );
}

/** etcd has auth enabled but the client sent no credentials. */
function isMissingCredentials(err: unknown): boolean {
  return err instanceof Error && /user name is empty/i.test(err.message);
}

/** The key read by {@link EtcdClient.ready}'s round-trip (its value, if any, is ignored). */
const READY_PROBE_KEY = '__sdkit_ready_probe__';

/** Opens after this many consecutive connection failures of one host… */
const BREAKER_THRESHOLD = 3;
/** …and lets one trial call through after this long. */
const BREAKER_HALF_OPEN_MS = 1000;

/** Thrown while a host's circuit is open; etcd3 recognises it by `isBrokenCircuitError` (cockatiel's duck type). */
class BrokenCircuitError extends Error {
  readonly isBrokenCircuitError = true;
}

const noopEvent = (): { dispose(): void } => ({ dispose() {} });

/**
 * A per-host circuit breaker with cockatiel's `IPolicy` shape (what etcd3 calls: `execute`): after
 * {@link BREAKER_THRESHOLD} consecutive recoverable (connection) failures it rejects calls at once, so etcd3 moves
 * on to the next host, until {@link BREAKER_HALF_OPEN_MS} have passed; then one trial call goes through and its
 * outcome closes or re-opens the circuit. Any answer from etcd, even an error, counts as success.
 */
class HostBreaker {
  readonly onSuccess = noopEvent;
  readonly onFailure = noopEvent;
  private failures = 0;
  private openUntil = 0;
  private trialInFlight = false;

  constructor(
    private readonly host: string,
    private readonly clock: Clock,
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
      return value;
    } catch (err) {
      if (err instanceof Error && isRecoverableError(err)) {
        this.failures++;
        if (this.failures >= BREAKER_THRESHOLD) this.openUntil = this.clock.now() + BREAKER_HALF_OPEN_MS;
      } else {
        this.failures = 0;
      }
      throw err;
    } finally {
      if (trial) this.trialInFlight = false;
    }
  }
}

/** Watch re-connect backoff (cockatiel `IBackoff` shape): 100 ms doubling to 2000 ms. */
class CappedBackoff {
  constructor(readonly duration = 100) {}
  next(): CappedBackoff {
    return new CappedBackoff(Math.min(this.duration * 2, 2000));
  }
}

type FaultHandling = NonNullable<IOptions['faultHandling']>;

function defaultFaultHandling(clock: Clock, overrides: IOptions['faultHandling']): FaultHandling {
  const result: FaultHandling = {
    host:
      overrides?.host ??
      (((hostname: string) => new HostBreaker(hostname, clock)) as unknown as NonNullable<
        FaultHandling['host']
      >),
    watchBackoff:
      overrides?.watchBackoff ??
      (new CappedBackoff() as unknown as NonNullable<FaultHandling['watchBackoff']>),
  };
  if (overrides?.global) result.global = overrides.global;
  return result;
}

function isBrokenCircuit(err: unknown): boolean {
  return err instanceof Error && 'isBrokenCircuitError' in err;
}

/**
 * A TLS handshake failure in `err` (grpc-js passes OpenSSL's text through, e.g. "sslv3 alert bad certificate")
 * said in plain words, to append to the `'unreachable'` message; `''` when `err` is not one.
 */
function tlsHint(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  if (
    /unable to verify|self[- ]signed certificate|unable to get (local )?issuer|certificate verify failed/i.test(
      text,
    )
  ) {
    return " (TLS: etcd's server certificate is not signed by the CA given as tls.ca — or, without tls.ca, by a system CA)";
  }
  if (/alert (bad certificate|certificate required|unknown ca|certificate unknown)/i.test(text)) {
    return (
      " (TLS: etcd refused the client certificate: none was given, or it is not signed by a CA in etcd's " +
      '--trusted-ca-file; with --client-cert-auth etcd needs tls.cert and tls.key)'
    );
  }
  if (/wrong version number|packet length too long/i.test(text)) {
    return ' (TLS: etcd does not seem to serve TLS on this port; use an http:// endpoint without tls)';
  }
  return '';
}

/** Why a round-trip failed, for an `'unreachable'` message: grpc-js's text (without its trailing empty "Resolution note:") plus the plain-words {@link tlsHint}. */
function unreachableCause(err: unknown): string {
  return `${errorText(err).replace(/\s*Resolution note:\s*$/, '')}${tlsHint(err)}`;
}

/** Default of {@link EtcdClientOptions.keepAlive}. */
export const DEFAULT_KEEPALIVE = Object.freeze({ timeMs: 10_000, timeoutMs: 5_000 });

function validKeepAlive(option: EtcdClientOptions['keepAlive']): EtcdClient['keepAlive'] {
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
 * Creates an etcd client over `etcd3` and resolves once etcd has answered a round-trip (see
 * {@link EtcdClient.ready}), so a misconfiguration fails here, clearly, rather than later inside a watch.
 * Rejects with a `TypeError` naming the bad value for invalid options (empty endpoints, bad URLs, unreadable PEM
 * files, `cert` without `key`, …), and with an {@link EtcdClientError} when etcd is unreachable within
 * `dialTimeoutMs` or rejects the credentials; the half-built client is closed in every failure case.
 */
export async function createEtcdClient(options: EtcdClientOptions): Promise<EtcdClient> {
  if (options === null || typeof options !== 'object')
    fail(`options must be an object, got ${describeValue(options)}`);
  assertKnownOptions('createEtcdClient', options, CLIENT_OPTIONS, CLIENT_OPTION_HINTS);
  const { tls, auth, namespace } = options;
  if (tls !== undefined && (tls === null || typeof tls !== 'object'))
    fail(`tls must be an object, got ${describeValue(tls)}`);
  const endpoints = validateEndpoints(options.endpoints, tls !== undefined);
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
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;

  if (
    options.faultHandling !== undefined &&
    (options.faultHandling === null || typeof options.faultHandling !== 'object')
  ) {
    fail(`faultHandling must be an object, got ${describeValue(options.faultHandling)}`);
  }
  const etcdOptions: IOptions = {
    hosts: endpoints,
    faultHandling: defaultFaultHandling(clock, options.faultHandling),
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

  const root = new Etcd3(etcdOptions);
  const client = new Client(
    root,
    endpoints,
    namespace ?? '',
    logger,
    clock,
    dialTimeoutMs,
    auth?.username,
    maxRequestBytes,
    keepAlive,
  );
  try {
    await client.ready();
  } catch (err) {
    client.close();
    throw err;
  }
  return client;
}

class Client implements EtcdClient {
  readonly etcd: Namespace;
  closed = false;

  constructor(
    readonly root: Etcd3,
    readonly endpoints: readonly string[],
    readonly namespace: string,
    readonly logger: Logger,
    private readonly clock: Clock,
    readonly dialTimeoutMs: number,
    readonly username: string | undefined,
    readonly maxRequestBytes: number,
    readonly keepAlive: EtcdClient['keepAlive'],
  ) {
    this.etcd = namespace ? root.namespace(namespace) : root;
  }

  ready(): Promise<void> {
    const where = this.endpoints.join(', ');
    if (this.closed)
      return Promise.reject(new EtcdClientError('closed', `etcd client for ${where} is closed`));
    const started = this.clock.now();
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
              { endpoints: this.endpoints, ms: Math.round(this.clock.now() - started) },
              'etcd ready',
            );
            resolve();
          }
        };
        const cancelTimeout = this.clock.setTimeout(() => {
          const last = lastError === undefined ? '' : `: ${unreachableCause(lastError)}`;
          settle(
            new EtcdClientError(
              'unreachable',
              `could not reach etcd at ${where} within ${this.dialTimeoutMs} ms${last}`,
              {
                cause: lastError,
              },
            ),
          );
        }, this.dialTimeoutMs);
        let backoff = 50;
        const attempt = (): void => {
          cancelRetry = undefined;
          if (settled) return;
          if (this.closed) {
            settle(new EtcdClientError('closed', `etcd client for ${where} was closed before it was ready`));
            return;
          }
          const left = Math.max(1, this.dialTimeoutMs - (this.clock.now() - started));
          const probe = this.root
            .get(READY_PROBE_KEY)
            .options({ deadline: Date.now() + left })
            .exec();
          probe.then(
            () => settle(),
            (err: unknown) => {
              if (settled) return;
              if (err instanceof EtcdPermissionDeniedError) {
                settle();
                return;
              }
              if (isMissingCredentials(err)) {
                settle(
                  new EtcdClientError(
                    'authentication-failed',
                    `etcd at ${where} requires authentication (auth is enabled) but no credentials were given`,
                    { cause: err },
                  ),
                );
                return;
              }
              if (isAuthFailure(err)) {
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
              if (tlsHint(err) !== '' && this.endpoints.length === 1) {
                // A certificate etcd or we refuse is not a passing failure: say so now, not after dialTimeoutMs.
                // (With several endpoints another one may still answer.)
                settle(
                  new EtcdClientError(
                    'unreachable',
                    `could not reach etcd at ${where}: ${unreachableCause(err)}`,
                    { cause: err },
                  ),
                );
                return;
              }
              // Keep the most telling cause: an open circuit only says that earlier attempts failed.
              if (!isBrokenCircuit(err) || lastError === undefined) lastError = err;
              cancelRetry = this.clock.setTimeout(attempt, backoff);
              backoff = Math.min(backoff * 2, 500);
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
    this.root.close();
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
