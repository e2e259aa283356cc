/**
 * EtcdLeasePool: hands out {@link LeaseKeeper}s to registrars, sharing one lease per TTL (the default) so that a
 * process with many registrations holds one lease and sends one keep-alive per TTL/3, as etcd's gRPC proxy coalesces them.
 * @module
 */
import {
  assertKnownOptions,
  type BackoffOptions,
  type Clock,
  createBackoff,
  type Logger,
  silentLogger,
  systemClock,
} from '@sdkit/sd-core';
import { type EtcdClient, onClientClose, transportOf } from './client-core.js';
import { describeValue } from './describe-value.js';
import { type LeaseBackend, transportLeaseBackend } from './lease-backend.js';
import { type LeaseHolder, LeaseKeeper } from './lease-keeper.js';

/**
 * Test seam: a {@link LeaseBackend} to use instead of the client's etcd (unit tests with a fake etcd).
 * Not part of the public API. @internal
 */
export const leaseBackendOverride: unique symbol = Symbol('sdkit.leaseBackendOverride');

/** Options of {@link EtcdLeasePool}. */
export interface EtcdLeasePoolOptions {
  /**
   * Whether registrars asking for the same `ttlSeconds` share one lease (default `true`). With `false`, every
   * registrar gets a lease of its own (revoked when it deregisters).
   */
  readonly share?: boolean;
  /** Time source for keep-alives and retries. Default `systemClock`. */
  readonly clock?: Clock;
  /** Backoff between failed grants / keep-alive reconnects. Default `{ initialMs: 100, maxMs: 5000, factor: 2 }`. */
  readonly backoff?: BackoffOptions;
  /** Default: the client's logger. */
  readonly logger?: Logger;
  /** Deadline of each unary etcd call the leases and registrars make (grant, revoke, put, delete), ms. Default 5000. */
  readonly requestTimeoutMs?: number;
  /** @internal */
  readonly [leaseBackendOverride]?: LeaseBackend;
}

const defaultPools = new WeakMap<EtcdClient, EtcdLeasePool>();

const POOL_OPTIONS = ['share', 'clock', 'backoff', 'logger', 'requestTimeoutMs'] as const;

/**
 * The leases of one {@link EtcdClient}, shared by the registrars given this pool (`lease: pool`).
 *
 * With `share: true` (default) there is at most one lease per `ttlSeconds`: the first registrar to register
 * grants it, the others attach their keys to it, a loss of it makes every one of them re-register on the new
 * lease, and the last one to deregister revokes it. Each lease has one keep-alive (a short call) every TTL/3.
 *
 * `EtcdLeasePool.for(client)` is the pool registrars use by default (`lease: 'shared'`); make your own to choose
 * the clock, backoff or sharing. A pool holds nothing while no registrar is registered.
 */
export class EtcdLeasePool {
  /** The client whose leases these are. */
  readonly client: EtcdClient;
  /** Whether registrars with the same TTL share a lease. */
  readonly share: boolean;
  /** @internal */
  readonly backend: LeaseBackend;
  /** @internal */
  readonly clock: Clock;
  /** @internal */
  readonly logger: Logger;
  readonly #backoff: ReturnType<typeof createBackoff>;
  readonly #shared = new Map<number, LeaseKeeper>();
  readonly #all = new Set<LeaseKeeper>();
  /** Set while the pool holds a keeper: removes the client close listener. */
  #stopListening: (() => void) | undefined;

  /**
   * @throws TypeError for a client that is not an sdkit `EtcdClient` or invalid options.
   */
  constructor(client: EtcdClient, options: EtcdLeasePoolOptions = {}) {
    const backend = options[leaseBackendOverride];
    const transport = transportOf(client);
    if (!backend && !transport) {
      throw new TypeError(
        `EtcdLeasePool: client must be an EtcdClient (from createEtcdClient), got ${describeValue(client)}`,
      );
    }
    assertKnownOptions('EtcdLeasePool', options, POOL_OPTIONS, {
      ttl: 'ttlSeconds (an EtcdRegistrar option)',
    });
    const timeout = options.requestTimeoutMs ?? 5000;
    if (!Number.isFinite(timeout) || timeout <= 0) {
      throw new TypeError(
        `EtcdLeasePool: requestTimeoutMs must be a finite number > 0, got ${String(timeout)}`,
      );
    }
    this.client = client;
    this.share = options.share ?? true;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? client?.logger ?? silentLogger;
    this.#backoff = createBackoff(options.backoff, 'EtcdLeasePool');
    this.backend =
      backend ??
      transportLeaseBackend(transport!, { namespace: client.namespace ?? '', requestTimeoutMs: timeout });
  }

  /** The pool registrars of `client` use by default: one per client, shared, with the default settings. */
  static for(client: EtcdClient): EtcdLeasePool {
    let pool = defaultPools.get(client);
    if (!pool) {
      pool = new EtcdLeasePool(client);
      defaultPools.set(client, pool);
    }
    return pool;
  }

  /** Number of leases held (or being granted) now. */
  get size(): number {
    return this.#all.size;
  }

  /** Ids of the leases held now (alive or presumed expired), for diagnostics. */
  leaseIds(): string[] {
    return [...this.#all].map((k) => k.leaseId).filter((id): id is string => id !== undefined);
  }

  /** Attaches `holder` to a keeper for `ttlSeconds` (the shared one, or a new one). @internal */
  acquire(ttlSeconds: number, holder: LeaseHolder): LeaseKeeper {
    let keeper = this.share ? this.#shared.get(ttlSeconds) : undefined;
    if (keeper?.phase === 'closed') {
      // Stopped by itself (the client was closed): forget it.
      this.#forget(keeper);
      keeper = undefined;
    }
    if (!keeper) {
      keeper = new LeaseKeeper(this.backend, {
        ttlSeconds,
        clock: this.clock,
        backoff: this.#backoff,
        logger: this.logger,
      });
      this.#all.add(keeper);
      if (this.share) this.#shared.set(ttlSeconds, keeper);
      this.#stopListening ??= onClientClose(this.client, (error) => this.#abandonAll(error));
    }
    keeper.attach(holder);
    return keeper;
  }

  /**
   * Detaches `holder`. If it was the last holder, the keeper leaves the pool at once (a later `acquire` grants a
   * new lease) and is closed: the returned promise settles when its lease is revoked. Otherwise `undefined`.
   * @internal
   */
  release(keeper: LeaseKeeper, holder: LeaseHolder): Promise<void> | undefined {
    if (!keeper.detach(holder)) return undefined;
    this.#forget(keeper);
    return keeper.close();
  }

  #forget(keeper: LeaseKeeper): void {
    this.#all.delete(keeper);
    if (this.#shared.get(keeper.ttlSeconds) === keeper) this.#shared.delete(keeper.ttlSeconds);
    if (this.#all.size === 0) {
      this.#stopListening?.();
      this.#stopListening = undefined;
    }
  }

  /** The client is closing: every lease is left to expire (see `EtcdClient.close`). */
  #abandonAll(error: Error): void {
    this.#stopListening = undefined;
    const keepers = [...this.#all];
    this.#all.clear();
    this.#shared.clear();
    for (const keeper of keepers) keeper.abandon(error);
  }
}
