import {
  assertKnownOptions,
  type Backoff,
  type BackoffOptions,
  type Clock,
  createBackoff,
  holdUntilSettled,
  type Instance,
  type Logger,
  type Registrar,
  type RegistrarState,
  retryWithin,
  silentLogger,
  systemClock,
} from '@sdkit/sd-core';
import { type Observable, ReplaySubject } from 'rxjs';
import {
  assertEtcdClient,
  DEFAULT_MAX_REQUEST_BYTES,
  type EtcdClient,
  EtcdClientError,
} from './client-core.js';
import { type Codec, clip, codecs } from './codecs.js';
import { describeValue, errorText } from './describe-value.js';
import { registrarTelemetry } from './etcd-telemetry.js';
import type { LeaseBackend } from './lease-backend.js';
import type { LeaseHolder, LeaseKeeper } from './lease-keeper.js';
import { EtcdLeasePool } from './lease-pool.js';

/** The instance an {@link EtcdRegistrar} announces: `key` may be left out (the registrar's `key` is used). */
export interface RegistrarInstance {
  /** If given, must equal the registrar's `key`. */
  readonly key?: string;
  /** What clients dial, e.g. `http://10.0.0.5:8080` or `10.0.0.5:50051`. Non-empty. */
  readonly address: string;
  /** Zone, weight, version…; written only by codecs that can carry it (not `gokit`). */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** Options of {@link EtcdRegistrar}. Exactly one of `instance` and `value` is required. */
export interface EtcdRegistrarOptions {
  /**
   * The etcd key, unique per instance, e.g. `/services/foosvc/10.0.0.5:8080` (go-kit) or
   * `my-service/10.0.0.5:50051` (etcd naming). Non-empty, no lone UTF-16 surrogates. May be left out when
   * `instance.key` is given.
   *
   * **Relative to the client's namespace**, if it has one: with `createEtcdClient({ namespace: '/services/' })`
   * the key `foosvc/10.0.0.5:8080` is stored as `/services/foosvc/10.0.0.5:8080`. A key that starts with the
   * namespace itself (`/services/foosvc/…`, which would be stored as `/services//services/foosvc/…`) is refused:
   * drop the namespace from the key, or create the client without `namespace`.
   */
  readonly key?: string;
  /** The instance to announce; its value is `codec.encode(instance)`. */
  readonly instance?: RegistrarInstance;
  /** The value to store, verbatim (e.g. go-kit's `http://10.0.0.5:8080`). Non-empty. Not with `instance`/`codec`. */
  readonly value?: string;
  /** Lease TTL in seconds (etcd's unit): integer >= 1. Default 10 (keep-alive every TTL/3). */
  readonly ttlSeconds?: number;
  /**
   * How `instance` is written. Default `codecs.auto`: the go-kit instance string (the `address`, byte-identical to
   * what go-kit's `sd/etcdv3` writes) when the instance has no metadata, sdkit's JSON when it has (so nothing is
   * silently dropped). Use `codecs.etcdNaming` for `{"Op":0,"Addr":…,"Metadata":…}` (gRPC naming).
   */
  readonly codec?: Codec;
  /**
   * Which lease the key lives on:
   * - `'shared'` (default): the lease of `EtcdLeasePool.for(client)` for this `ttlSeconds`, shared by every
   *   registrar of the client with that TTL (one lease, one keep-alive per TTL/3, per process);
   * - `'exclusive'`: a lease of its own, revoked on deregister (uses this registrar's `clock`/`backoff`);
   * - an {@link EtcdLeasePool} of the same client: that pool's (shared or not, as the pool says).
   */
  readonly lease?: 'shared' | 'exclusive' | EtcdLeasePool;
  /** Default: the client's logger. */
  readonly logger?: Logger;
  /** Time source for this registrar's retries (and its lease with `lease: 'exclusive'`). Default `systemClock`. */
  readonly clock?: Clock;
  /**
   * Backoff between failed puts (and, with `lease: 'exclusive'`, failed grants/reconnects).
   * Default `{ initialMs: 100, maxMs: 5000, factor: 2 }` with jitter.
   */
  readonly backoff?: BackoffOptions;
}

/** What etcd refused in an {@link EtcdAccessDeniedError}. */
export type EtcdAccessOperation = 'grant' | 'put' | 'delete' | 'revoke';

/**
 * etcd refused an {@link EtcdRegistrar}'s call with "permission denied": auth is enabled and the roles of the
 * client's user do not allow it (a read-only user registering, a key outside the user's prefix, roles changed
 * while registered). Not transient, so it is not retried.
 *
 * `operation`: `'put'` of {@link key} or `'grant'` of a lease for it (from `register()`; the registrar then gives
 * up), `'delete'` of the key or `'revoke'` of its lease (from `deregister()`; the key then expires with the
 * lease). `username`: the client's `auth.username`, or `undefined` without auth. `cause`: etcd3's
 * `EtcdPermissionDeniedError`. The message names the permission denied, the key and the user, and never
 * contains a credential.
 */
export class EtcdAccessDeniedError extends Error {
  override readonly name = 'EtcdAccessDeniedError';
  constructor(
    readonly operation: EtcdAccessOperation,
    readonly key: string,
    readonly username: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const DEFAULT_TTL_SECONDS = 10;

const REGISTRAR_OPTIONS = [
  'key',
  'instance',
  'value',
  'ttlSeconds',
  'codec',
  'lease',
  'logger',
  'clock',
  'backoff',
] as const;
const REGISTRAR_OPTION_HINTS = {
  ttl: 'ttlSeconds',
  ttlMs: 'ttlSeconds',
  leaseTtl: 'ttlSeconds',
  address: 'instance',
  addr: 'instance',
  prefix: 'key',
};

/**
 * What a put adds to key + value in the request etcd checks against `--max-request-bytes` (the raft request: the
 * protobuf framing of key, value and lease id, and the request header), as the registrar counts it: 64 bytes, plus
 * the length of the auth username when the client has one (the header carries it). Measured against etcd 3.4.23
 * on a lease, as the registrar puts: 31–35 bytes without auth (keys up to 200 bytes, values up to 1.5 MiB),
 * 35 + the username's length with auth; so a registration the registrar accepts always fits, and the margin
 * refused is under 40 bytes.
 */
export const PUT_REQUEST_OVERHEAD_BYTES = 64;

/** A lone (unpaired) UTF-16 surrogate: not encodable as UTF-8, so etcd3 would send U+FFFD in its place. */
const LONE_SURROGATE = /\p{Surrogate}/u;
/** etcd's largest lease TTL (`MaxLeaseTTL`, 9e9 s). */
const MAX_TTL_SECONDS = 9_000_000_000;

const noop = (): void => {};

const utf8 = new TextEncoder();
/** The length of `text` in UTF-8 bytes. */
function utf8Length(text: string): number {
  return utf8.encode(text).length;
}

/**
 * Throws `TypeError` when the put of `key` = `value` would exceed the client's `maxRequestBytes` (see
 * {@link PUT_REQUEST_OVERHEAD_BYTES}): etcd would answer "request is too large" to every attempt.
 */
function checkRequestSize(client: EtcdClient, namespace: string, key: string, value: string): void {
  const c = client as { maxRequestBytes?: unknown; username?: unknown } | null | undefined;
  const limit = typeof c?.maxRequestBytes === 'number' ? c.maxRequestBytes : DEFAULT_MAX_REQUEST_BYTES;
  const keyBytes = utf8Length(namespace + key);
  const valueBytes = utf8Length(value);
  const username = typeof c?.username === 'string' ? utf8Length(c.username) : 0;
  const overhead = PUT_REQUEST_OVERHEAD_BYTES + username;
  const total = keyBytes + valueBytes + overhead;
  if (total <= limit) return;
  throw new TypeError(
    `EtcdRegistrar: the registration of ${describeValue(clip(key, 200))} is too large for etcd: ` +
      `key ${keyBytes} bytes${namespace === '' ? '' : ' (with the namespace)'} + value ${valueBytes} bytes + ` +
      `${overhead} bytes of request overhead = ${total} bytes, over the limit of ${limit} bytes ` +
      `(the client's maxRequestBytes, which must match etcd's --max-request-bytes); nothing was written. ` +
      'Store less (e.g. move large metadata elsewhere) or raise both limits',
  );
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(error: Error): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // The caller may fire-and-forget register(); a rejection (deregistered first) must not crash the process.
  promise.catch(noop);
  return { promise, resolve, reject };
}

/** One register() … deregister() span; it is the lease holder, so callbacks of an old span are inert. */
class Session implements LeaseHolder {
  active = true;
  keeper!: LeaseKeeper;
  readonly registered = deferred();
  /** The lease the keeper says is alive; the key must be put under it. */
  targetLease: string | undefined;
  /** The lease the key was last put under (successfully) since the last loss. */
  putLease: string | undefined;
  /** Leases a put was attempted under whose key may exist: deregister deletes under each. */
  readonly attempted = new Set<string>();
  putting = false;
  inflight: Promise<unknown> | undefined;
  everRegistered = false;
  wake: (() => void) | undefined;

  constructor(private readonly owner: SessionOwner) {}

  leaseReady(leaseId: string): void {
    if (!this.active) return;
    this.targetLease = leaseId;
    this.wake?.();
    void this.owner.putLoop(this);
  }

  leaseLost(error: Error): void {
    if (!this.active) return;
    this.targetLease = undefined;
    this.putLease = undefined;
    this.wake?.();
    this.owner.lost(this, error);
  }

  leaseDenied(error: Error): void {
    if (!this.active) return;
    this.owner.denied(this, 'grant', error);
  }

  clientClosed(error: Error): void {
    if (!this.active) return;
    this.owner.clientClosed(this, error);
  }
}

/** What a {@link Session} calls back into (the registrar's private methods). */
interface SessionOwner {
  putLoop(session: Session): Promise<void>;
  lost(session: Session, error: Error): void;
  denied(session: Session, operation: 'grant' | 'put', error: Error): void;
  clientClosed(session: Session, error: Error): void;
}

/**
 * Registers one instance in etcd under a lease that is kept alive, and keeps it registered (go-kit's
 * `etcdv3.Registrar`, plus what it lacks): if the lease is lost — etcd restarted with its data wiped, a
 * partition longer than the TTL, someone revoked it — a new lease is granted and the key put again, with
 * exponential backoff and jitter while etcd fails, until {@link EtcdRegistrar.deregister}.
 *
 * - `register()` is idempotent (concurrent calls share one attempt) and resolves once etcd has acknowledged the
 *   put. It keeps trying while etcd is unreachable (transient); it rejects if `deregister()` comes first, or at
 *   once with an {@link EtcdAccessDeniedError} if etcd denies the put or the lease grant (auth enabled and the
 *   user's roles do not allow writing the key): then the registrar gives up — nothing is retried, its lease hold
 *   is released and the state goes to `deregistered` — until `register()` is called again. A denial while
 *   registered (roles changed, then the lease was lost) ends the same way, logged at `error`.
 * - `deregister()` deletes the key at once (only if it is still on this registrar's lease, so a newer owner of the
 *   same key is left alone) and, if no other registrar shares the lease, revokes the lease. Idempotent. An
 *   in-flight put is awaited first, so the key cannot come back afterwards. A failed delete or revoke is retried
 *   with the registrar's backoff for up to one TTL (etcd's "too many requests" when thousands deregister at once,
 *   a leader election, a dropped connection); permission denied and a closed client are not retried. It rejects
 *   if etcd could not be told by then: the key then expires within the TTL, except on a lease shared with
 *   registrars still registered, which keeps it until they deregister or the process exits. The state is
 *   `deregistered` either way. `register()` may be called again afterwards.
 * - `[Symbol.asyncDispose]()` deregisters, completes `state$`, and makes later `register()` calls reject.
 * - `register()` and `deregister()` keep the process alive until they settle (their timers are unref'd like all
 *   of sdkit's); keeping the lease alive afterwards does not (see docs/architecture.md, "Process lifetime").
 * - Closing the client while registered (or registering) leaves the lease to expire within the TTL, as a crash
 *   would: the state goes to `lost`, `state$` completes, a pending `register()` rejects, and later `register()` /
 *   `deregister()` calls reject, with an `EtcdClientError` (`'closed'`). Deregister before closing the client.
 * - `state$` is hot, replays the current state (nothing before the first `register()`/`deregister()`, like
 *   sd-core's MemoryRegistrar), emits only changes: `registering` → `registered`; on loss `lost` →
 *   `registering` → `registered`; `deregistered`.
 *
 * Leases: by default every registrar of a client with the same `ttlSeconds` shares one lease (one keep-alive
 * stream per process; see {@link EtcdRegistrarOptions.lease}); when the process dies without deregistering,
 * all its keys vanish together within the TTL. On a shared lease `deregister()` deletes the key with a
 * transaction guarded on the lease and leaves the lease to the others; the last one revokes it.
 *
 * Validation happens in the constructor, before anything is written: `TypeError` for an empty key, a key that
 * starts with the client's namespace (see {@link EtcdRegistrarOptions.key}), a key or value with lone UTF-16
 * surrogates (etcd would store U+FFFD instead), neither or both of `instance` and `value`, a `ttlSeconds` that
 * is not an integer >= 1, a codec without `encode`, a value the codec refuses, or a registration too large for
 * etcd: key (with the namespace) + value + {@link PUT_REQUEST_OVERHEAD_BYTES} (+ the auth username) over the
 * client's `maxRequestBytes` (etcd's `--max-request-bytes`, default 1.5 MiB), which etcd would refuse on every
 * attempt.
 */
export class EtcdRegistrar implements Registrar {
  /** The etcd key (relative to the client's namespace). */
  readonly key: string;
  /** The value written under {@link key}. */
  readonly value: string;
  /** The lease TTL asked for, in seconds. */
  readonly ttlSeconds: number;
  readonly #pool: EtcdLeasePool;
  readonly #backend: LeaseBackend;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #backoff: Backoff;
  readonly #state$ = new ReplaySubject<RegistrarState>(1);
  #state: RegistrarState | undefined;
  #session: Session | undefined;
  #deregistering: Promise<void> | undefined;
  #disposed = false;
  readonly #owner: SessionOwner = {
    putLoop: (session) => this.#putLoop(session),
    lost: (session, error) => this.#lost(session, error),
    denied: (session, operation, error) => this.#denied(session, operation, error),
    clientClosed: (session, error) => this.#clientClosed(session, error),
  };
  /** Set when the client was closed under a registration: what later calls reject with. */
  #closedBy: EtcdClientError | undefined;

  /** Hot; replays the current state; distinct states only; completes on `[Symbol.asyncDispose]()`. */
  readonly state$: Observable<RegistrarState>;

  /** @throws TypeError for invalid options (see the class documentation). */
  constructor(client: EtcdClient, options: EtcdRegistrarOptions) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`EtcdRegistrar: options must be an object, got ${describeValue(options)}`);
    }
    if (!(options.lease instanceof EtcdLeasePool) || options.lease.client !== client) {
      assertEtcdClient(client, 'EtcdRegistrar');
    }
    assertKnownOptions('EtcdRegistrar', options, REGISTRAR_OPTIONS, REGISTRAR_OPTION_HINTS);
    const { instance, value, codec } = options;
    if ((instance === undefined) === (value === undefined)) {
      throw new TypeError(
        `EtcdRegistrar: exactly one of 'instance' and 'value' is required, got ${
          instance === undefined ? 'neither' : 'both'
        }`,
      );
    }
    let key = options.key;
    if (instance !== undefined) {
      if (instance === null || typeof instance !== 'object') {
        throw new TypeError(
          `EtcdRegistrar: instance must be an object { address, metadata? }, got ${describeValue(instance)}`,
        );
      }
      if (instance.key !== undefined && key !== undefined && instance.key !== key) {
        throw new TypeError(
          `EtcdRegistrar: instance.key ${describeValue(instance.key)} differs from key ${describeValue(key)}; give one or make them equal`,
        );
      }
      key ??= instance.key;
    }
    if (typeof key !== 'string' || key === '') {
      throw new TypeError(`EtcdRegistrar: key must be a non-empty string, got ${describeValue(key)}`);
    }
    if (LONE_SURROGATE.test(key)) {
      throw new TypeError(
        `EtcdRegistrar: key ${describeValue(clip(key, 200))} contains a lone UTF-16 surrogate, which is not valid UTF-8 (etcd would store U+FFFD in its place)`,
      );
    }
    const namespace = (client as { namespace?: unknown } | null | undefined)?.namespace;
    if (typeof namespace === 'string' && namespace !== '' && key.startsWith(namespace)) {
      const rest = key.slice(namespace.length);
      throw new TypeError(
        `EtcdRegistrar: key ${describeValue(clip(key, 200))} starts with the client's namespace ${describeValue(namespace)}, ` +
          `but keys are relative to the namespace: it would be stored as ${describeValue(clip(namespace + key, 200))}. ` +
          (rest === ''
            ? 'Give the key below the namespace'
            : `Pass the key without the namespace (${describeValue(clip(rest, 200))})`) +
          ', or create the client without `namespace`',
      );
    }
    const ttlSeconds = options.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TTL_SECONDS) {
      throw new TypeError(
        `EtcdRegistrar: ttlSeconds must be an integer from 1 to ${MAX_TTL_SECONDS} (etcd's lease TTL, in seconds), got ${describeValue(ttlSeconds)}`,
      );
    }
    let encoded: string;
    if (instance !== undefined) {
      const c = codec ?? codecs.auto;
      if (c === null || typeof c !== 'object' || typeof c.encode !== 'function') {
        throw new TypeError(
          `EtcdRegistrar: codec must be a Codec (e.g. codecs.gokit), got ${describeValue(c)}`,
        );
      }
      const full: Instance =
        instance.metadata === undefined
          ? { key, address: instance.address }
          : { key, address: instance.address, metadata: instance.metadata };
      try {
        encoded = c.encode(full);
      } catch (err) {
        throw new TypeError(
          `EtcdRegistrar: codec ${c.name} cannot encode instance ${describeValue(key)}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      if (typeof encoded !== 'string' || encoded === '') {
        throw new TypeError(
          `EtcdRegistrar: codec ${c.name} encoded ${describeValue(key)} as ${describeValue(encoded)}, not a non-empty string`,
        );
      }
    } else {
      if (codec !== undefined) {
        throw new TypeError("EtcdRegistrar: 'codec' applies to 'instance' only; 'value' is written verbatim");
      }
      if (typeof value !== 'string' || value === '') {
        throw new TypeError(`EtcdRegistrar: value must be a non-empty string, got ${describeValue(value)}`);
      }
      encoded = value;
    }
    if (LONE_SURROGATE.test(encoded)) {
      throw new TypeError(
        `EtcdRegistrar: the value of ${describeValue(clip(key, 200))} contains a lone UTF-16 surrogate, which is not valid UTF-8 (etcd would store U+FFFD in its place)`,
      );
    }
    checkRequestSize(client, typeof namespace === 'string' ? namespace : '', key, encoded);
    this.#clock = options.clock ?? systemClock;
    this.#backoff = createBackoff(options.backoff, 'EtcdRegistrar');
    const lease = options.lease ?? 'shared';
    if (lease === 'shared') {
      this.#pool = EtcdLeasePool.for(client);
    } else if (lease === 'exclusive') {
      this.#pool = new EtcdLeasePool(client, {
        share: false,
        clock: this.#clock,
        ...(options.backoff ? { backoff: options.backoff } : {}),
        ...(options.logger ? { logger: options.logger } : {}),
      });
    } else if (lease instanceof EtcdLeasePool) {
      if (lease.client !== client) {
        throw new TypeError('EtcdRegistrar: the lease pool belongs to another EtcdClient');
      }
      this.#pool = lease;
    } else {
      throw new TypeError(
        `EtcdRegistrar: lease must be 'shared', 'exclusive' or an EtcdLeasePool, got ${describeValue(lease)}`,
      );
    }
    this.key = key;
    this.value = encoded;
    this.ttlSeconds = ttlSeconds;
    this.#backend = this.#pool.backend;
    this.#logger = options.logger ?? this.#pool.logger ?? silentLogger;
    this.state$ = this.#state$.asObservable();
  }

  /** The current state (see {@link EtcdRegistrar.state$}); `undefined` before the first register()/deregister(). */
  get state(): RegistrarState | undefined {
    return this.#state;
  }

  /** The id (decimal string) of the lease the key was last put under, while registered; else `undefined`. */
  get leaseId(): string | undefined {
    return this.#session?.putLease;
  }

  /**
   * Writes the key (under a kept-alive lease) and keeps it there. Resolves once etcd acknowledged the put;
   * idempotent (while registered or registering, returns the same promise). Rejects if `deregister()` is called
   * before it succeeded, if the registrar was disposed, or with an {@link EtcdAccessDeniedError} (`operation`
   * `'put'` or `'grant'`) if etcd denies the permission — state `deregistered` by then, nothing retried; call
   * `register()` again (after fixing the roles) to retry.
   */
  register(): Promise<void> {
    if (this.#disposed) {
      return Promise.reject(
        new Error(`EtcdRegistrar: register() of ${describeValue(this.key)} after dispose`),
      );
    }
    const closed = this.#closedError('register');
    if (closed) return Promise.reject(closed);
    // Held: its work waits on unref'd timers (lease grant, backoff) and must not be cut short by an exit.
    if (this.#session) return holdUntilSettled(this.#session.registered.promise);
    if (this.#deregistering) {
      // Wait for the running deregistration, so its delete cannot remove the new registration.
      return this.#deregistering.catch(noop).then(() => this.register());
    }
    const session = new Session(this.#owner);
    this.#session = session;
    this.#setState('registering');
    this.#logger.debug({ key: this.key, ttlSeconds: this.ttlSeconds }, 'sdkit: registering in etcd');
    session.keeper = this.#pool.acquire(this.ttlSeconds, session);
    return holdUntilSettled(session.registered.promise);
  }

  /** The error register()/deregister() reject with once the client is closed, else `undefined`. */
  #closedError(call: 'register' | 'deregister'): EtcdClientError | undefined {
    const closed = this.#closedBy !== undefined || this.#pool.client?.closed === true;
    if (!closed) return undefined;
    const registered = this.#closedBy !== undefined;
    return new EtcdClientError(
      'closed',
      `EtcdRegistrar: ${call}() of ${describeValue(this.key)}: the etcd client was closed` +
        (call === 'deregister' && registered
          ? `; the key was not deleted and expires with its lease within ${this.ttlSeconds} s`
          : ''),
      { cause: this.#closedBy },
    );
  }

  /** The client was closed while registered or registering: the lease is left to expire, nothing more happens. */
  #clientClosed(session: Session, error: Error): void {
    if (this.#session !== session) return;
    this.#session = undefined;
    session.active = false;
    session.wake?.();
    this.#closedBy = error instanceof EtcdClientError ? error : new EtcdClientError('closed', error.message);
    session.registered.reject(this.#closedError('register')!);
    this.#logger.warn(
      { key: this.key, ttlSeconds: this.ttlSeconds },
      'sdkit: etcd client closed while registered; the key expires with its lease',
    );
    this.#setState('lost');
    this.#state$.complete();
  }

  /**
   * Stops keeping the key alive and removes it at once: deletes it (if still on this registrar's lease) and
   * revokes the lease unless other registrars share it. Idempotent: concurrent calls share one attempt; a call
   * while not registered resolves at once. State is `deregistered` when it settles. Failures are retried with
   * backoff for up to `ttlSeconds`; then it rejects (the key expires within `ttlSeconds`, unless its lease is
   * shared with registrars still registered). Rejects at once with an {@link EtcdAccessDeniedError} (`operation`
   * `'delete'` or `'revoke'`) if etcd denied the permission.
   */
  deregister(): Promise<void> {
    if (this.#deregistering) return holdUntilSettled(this.#deregistering);
    if (this.#closedBy) return Promise.reject(this.#closedError('deregister'));
    const session = this.#session;
    if (!session) {
      this.#setState('deregistered');
      return Promise.resolve();
    }
    return holdUntilSettled(
      this.#end(
        session,
        new Error(
          `EtcdRegistrar: deregister() was called before the registration of ${describeValue(this.key)} completed`,
        ),
        false,
      ),
    );
  }

  /** Deregisters, completes `state$`; later `register()` calls reject. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#disposed = true;
    try {
      await this.deregister();
    } finally {
      this.#state$.complete();
    }
  }

  #deregisterDone(work: Promise<void>): void {
    if (this.#deregistering === work) this.#deregistering = undefined;
  }

  /**
   * Ends `session`: no more puts, its `register()` promise rejects with `rejection`, its lease hold is released
   * (the lease revoked if no one else holds it) and the key deleted if it is still on one of its leases. The
   * result settles once etcd was told, and is what `register()`/`deregister()` wait for meanwhile. By default
   * (deregister) the state becomes `deregistered` then and the result rejects if etcd could not be told; with
   * `givingUp` the state becomes `deregistered` at once and the result never rejects (failures are logged).
   */
  #end(session: Session, rejection: Error, givingUp: boolean): Promise<void> {
    this.#session = undefined;
    session.active = false;
    session.wake?.();
    session.registered.reject(rejection);
    const closing = this.#pool.release(session.keeper, session);
    // Handled at once: the revoke may fail while the in-flight put below settles (its failure is reported then).
    closing?.catch(noop);
    const work = (async () => {
      // A put still in flight could land after our delete: let it settle first.
      await session.inflight?.catch(noop);
      const ops: Array<{ operation: 'delete' | 'revoke'; done: Promise<unknown> }> = [
        ...session.attempted,
      ].map((leaseId) => ({
        operation: 'delete',
        done: retryWithin(() => this.#backend.deleteIfLease(this.key, leaseId), {
          clock: this.#clock,
          backoff: this.#backoff,
          // Past one TTL an unshared lease has expired with the key; a shared one keeps it (see #removalError).
          budgetMs: this.ttlSeconds * 1000,
          isFinal: (e) => this.#backend.isPermissionDenied(e) || this.#backend.isClientClosed(e),
          onRetry: (err, waitMs) =>
            this.#logger.debug({ key: this.key, err, waitMs }, 'sdkit: etcd delete failed; retrying'),
        }),
      }));
      if (closing) ops.push({ operation: 'revoke', done: closing });
      const results = await Promise.allSettled(ops.map((op) => op.done));
      this.#setState('deregistered');
      const failed = results.findIndex((r) => r.status === 'rejected');
      if (failed >= 0) {
        const cause = (results[failed] as PromiseRejectedResult).reason;
        const error = this.#removalError(ops[failed]!.operation, cause, closing === undefined);
        this.#logger[givingUp ? 'debug' : 'warn']({ key: this.key, err: cause }, error.message);
        if (givingUp) return;
        throw error;
      }
      this.#logger[givingUp ? 'debug' : 'info'](
        { key: this.key },
        givingUp
          ? 'sdkit: gave up registering in etcd; lease hold released'
          : 'sdkit: deregistered from etcd',
      );
    })();
    this.#deregistering = work;
    work.then(
      () => this.#deregisterDone(work),
      () => this.#deregisterDone(work),
    );
    if (givingUp) this.#setState('deregistered');
    return work;
  }

  /**
   * How a failed delete/revoke at deregistration is reported: permission denied gets its own error. `shared`: the
   * lease lives on for other registrars, so a key left on it does not expire by itself.
   */
  #removalError(operation: 'delete' | 'revoke', cause: unknown, shared: boolean): Error {
    const expiry = shared
      ? 'it stays while the shared lease lives (until the other registrars on it deregister, or the process exits)'
      : `it expires within ${this.ttlSeconds} s`;
    if (this.#backend.isPermissionDenied(cause)) {
      const what = operation === 'delete' ? 'delete it' : 'revoke its lease';
      return new EtcdAccessDeniedError(
        operation,
        this.key,
        this.#username(),
        `EtcdRegistrar: could not remove ${describeValue(this.key)} from etcd: permission denied: ` +
          `${this.#who()} may not ${what} (${errorText(cause)}); ${expiry}`,
        { cause },
      );
    }
    return new Error(
      `EtcdRegistrar: could not remove ${describeValue(this.key)} from etcd (${errorText(cause)}); ${expiry}`,
      { cause },
    );
  }

  /**
   * etcd denied the put of the key or the grant of its lease: not transient, so give up — `register()` rejects
   * with an {@link EtcdAccessDeniedError}, the lease hold is released, the state goes to `deregistered`, nothing
   * is retried; a later `register()` tries again.
   */
  #denied(session: Session, operation: 'grant' | 'put', cause: Error): void {
    if (this.#session !== session || !session.active) return;
    const what =
      operation === 'put'
        ? `write ${describeValue(this.key)}`
        : `grant a lease for ${describeValue(this.key)}`;
    const error = new EtcdAccessDeniedError(
      operation,
      this.key,
      this.#username(),
      `EtcdRegistrar: permission denied: ${this.#who()} may not ${what} (${errorText(cause)}); not retrying. ` +
        "Grant the user's role readwrite on the key (etcdctl role grant-permission <role> readwrite <prefix> " +
        '--prefix=true), then call register() again',
      { cause },
    );
    this.#logger.error({ key: this.key, operation, username: error.username, err: cause }, error.message);
    void this.#end(session, error, true);
  }

  #username(): string | undefined {
    const name = (this.#pool.client as Partial<EtcdClient> | undefined)?.username;
    return typeof name === 'string' ? name : undefined;
  }

  /** "etcd user "alice"", for messages. */
  #who(): string {
    const name = this.#username();
    return name === undefined ? 'this etcd client (no auth.username)' : `etcd user ${describeValue(name)}`;
  }

  #setState(state: RegistrarState): void {
    if (this.#state === state) return;
    this.#state = state;
    registrarTelemetry.stateChanged(state);
    this.#state$.next(state);
  }

  /** Puts the key under the session's target lease until it is there, with backoff on failures. */
  async #putLoop(session: Session): Promise<void> {
    if (session.putting) return;
    session.putting = true;
    let failures = 0;
    try {
      while (session.active) {
        const leaseId = session.targetLease;
        if (leaseId === undefined || leaseId === session.putLease) break;
        this.#setState('registering');
        session.attempted.add(leaseId);
        const op = this.#backend.put(this.key, this.value, leaseId);
        session.inflight = op;
        try {
          await op;
        } catch (error) {
          if (!session.active) break;
          const err = error instanceof Error ? error : new Error(String(error));
          if (this.#backend.isLeaseNotFound(err)) {
            session.attempted.delete(leaseId);
            if (session.targetLease === leaseId) session.targetLease = undefined;
            session.keeper.reportLeaseNotFound(leaseId, err);
            continue;
          }
          if (this.#backend.isClientClosed(err)) {
            this.#logger.error({ key: this.key, err }, 'sdkit: etcd client closed; cannot register');
            break;
          }
          if (this.#backend.isPermissionDenied(err)) {
            // A denied put wrote nothing (and a delete of the key would be denied as well).
            session.attempted.delete(leaseId);
            this.#denied(session, 'put', err);
            break;
          }
          const delay = this.#backoff.delay(failures++);
          this.#logger[failures === 1 ? 'warn' : 'debug'](
            { key: this.key, err, attempt: failures, retryInMs: Math.round(delay) },
            'sdkit: could not put the registration into etcd; retrying',
          );
          await this.#sleep(session, delay);
          continue;
        } finally {
          if (session.inflight === op) session.inflight = undefined;
        }
        if (!session.active) break;
        failures = 0;
        session.putLease = leaseId;
        session.attempted.clear();
        session.attempted.add(leaseId);
        if (session.targetLease === leaseId) {
          const again = session.everRegistered;
          session.everRegistered = true;
          this.#setState('registered');
          session.registered.resolve();
          this.#logger.info(
            { key: this.key, leaseId },
            again ? 'sdkit: registered in etcd again, on a new lease' : 'sdkit: registered in etcd',
          );
        }
      }
    } finally {
      session.putting = false;
    }
  }

  /** The session's lease is gone (or presumed gone). */
  #lost(session: Session, error: Error): void {
    if (this.#session !== session) return;
    if (session.everRegistered) {
      this.#setState('lost');
      this.#logger.warn({ key: this.key, err: error }, 'sdkit: etcd registration lost; registering again');
    }
  }

  #sleep(session: Session, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const cancel = this.#clock.setTimeout(done, ms);
      function done(): void {
        cancel();
        if (session.wake === done) session.wake = undefined;
        resolve();
      }
      session.wake = done;
    });
  }
}
