/**
 * LeaseKeeper: owns one etcd lease on behalf of any number of holders (registrars) — grant, keep-alive, loss
 * detection, re-grant — and tells its holders when to (re)attach their keys and when their keys are gone.
 *
 * Why not `etcd3`'s `Lease`: its `lost` event is final (the caller must build a new Lease and re-put every key),
 * it declares a lease lost after 2×TTL of unreachability even when etcd later comes back with the lease intact,
 * its timers are not unref'd, and time is not injectable. The keeper drives the raw `LeaseKeepAlive` stream itself.
 * @module
 */
import type { Clock, Logger } from '@sdkit/sd-core';
import { type Backoff, retryWithin } from '@sdkit/sd-core';
import { registrarTelemetry } from './etcd-telemetry.js';
import type { KeepAliveStream, LeaseBackend } from './lease-backend.js';

/** Someone whose keys live on a {@link LeaseKeeper}'s lease. Callbacks must not throw (errors are logged). */
export interface LeaseHolder {
  /**
   * Lease `leaseId` is alive: (re)attach the key to it. Called on attach if the lease is already alive, after
   * each (re)grant, and when a lease presumed expired turns out to be alive after all.
   */
  leaseReady(leaseId: string): void;
  /**
   * The lease is gone (etcd said so: revoked, expired, lost with wiped data), or presumed gone (no keep-alive
   * answered for a whole TTL): the key is not, or may not be, in etcd any more. A new lease is on its way.
   */
  leaseLost(error: Error): void;
  /**
   * etcd refused to grant a lease with "permission denied" (`error` is etcd's): not transient, so the keeper
   * stopped trying and went back to `idle`. The holder should give up and detach; a holder attaching afterwards
   * (e.g. after the roles were fixed) makes the keeper try again.
   */
  leaseDenied(error: Error): void;
  /**
   * The client was closed ({@link LeaseKeeper.abandon}): the keeper stopped for good without revoking, so the
   * key expires with the lease's TTL. Nothing more will happen.
   */
  clientClosed(error: Error): void;
}

/**
 * - `idle`: nothing started: no holder yet, or etcd denied the grant (permission denied; the next holder to
 *   attach makes it try again).
 * - `granting`: asking etcd for a lease (retrying with backoff while etcd is unreachable).
 * - `alive`: lease held and kept alive every TTL/3.
 * - `expired`: lease held, but no keep-alive answered for a whole TTL; still trying the same lease (it survives
 *   an etcd restart that keeps the data) until etcd says it is gone.
 * - `closed`: stopped for good.
 */
export type LeaseKeeperPhase = 'idle' | 'granting' | 'alive' | 'expired' | 'closed';

/** Settings of a {@link LeaseKeeper}. */
export interface LeaseKeeperOptions {
  /** TTL to ask etcd for (integer >= 1); etcd may grant more (its minimum depends on the election timeout). */
  readonly ttlSeconds: number;
  readonly clock: Clock;
  readonly backoff: Backoff;
  readonly logger: Logger;
}

/**
 * One lease, kept alive for its holders, re-granted whenever it is lost, until {@link LeaseKeeper.close}.
 *
 * Loss detection: a keep-alive answered with TTL 0 (etcd: "lease not found"), or a holder's put failing with
 * "lease not found" ({@link LeaseKeeper.reportLeaseNotFound}). Both lead to `leaseLost` for every holder and a new
 * grant (first attempt at once, then exponential backoff with jitter while etcd fails), then `leaseReady(newId)`.
 * A keep-alive that stays unanswered for a whole TTL (etcd unreachable or partitioned) makes the keeper presume
 * the lease expired (`leaseLost`) while it keeps trying; whatever etcd answers then decides (`leaseReady` with the
 * same id if the lease survived, else a new grant). A stalled stream (no answer within TTL/3) is re-opened.
 * A grant etcd denies ("permission denied", auth enabled) is not retried: every holder gets `leaseDenied` and
 * the keeper goes back to `idle` (etcd 3.4 checks no permission on grants, but a proxy or a later etcd may).
 * Timers go through the injected clock (unref'd with the system clock) and each keep-alive is a short call, so
 * nothing keeps the process alive.
 */
export class LeaseKeeper {
  readonly #backend: LeaseBackend;
  readonly #ttlSeconds: number;
  readonly #clock: Clock;
  readonly #backoff: Backoff;
  readonly #logger: Logger;
  readonly #holders = new Set<LeaseHolder>();

  #phase: LeaseKeeperPhase = 'idle';
  /** The lease held (phases alive and expired). */
  #lease: { readonly id: string; readonly ttlMs: number } | undefined;
  #lastAckAt = 0;
  #grantedAt = 0;
  #grantAttempt = 0;
  /** A lease was granted before: the next grant is a re-grant (`sdkit.registrar.lease.regrants`). */
  #granted = false;
  /** Consecutive losses of leases that lived less than a TTL (someone revoking in a loop): slows re-granting. */
  #quickLosses = 0;
  #grantInFlight: Promise<unknown> | undefined;
  /** A lease granted after close() (revoked by close). */
  #orphan: string | undefined;
  #cancelTimer: (() => void) | undefined;
  #stream: KeepAliveStream | undefined;
  #opening = false;
  #streamFailures = 0;
  #awaitingAckSince: number | undefined;
  #closing: Promise<void> | undefined;

  constructor(backend: LeaseBackend, options: LeaseKeeperOptions) {
    this.#backend = backend;
    this.#ttlSeconds = options.ttlSeconds;
    this.#clock = options.clock;
    this.#backoff = options.backoff;
    this.#logger = options.logger;
  }

  /** Current phase (see {@link LeaseKeeperPhase}). */
  get phase(): LeaseKeeperPhase {
    return this.#phase;
  }

  /** The lease id held now (alive or presumed expired), or `undefined`. */
  get leaseId(): string | undefined {
    return this.#lease?.id;
  }

  /** The TTL asked for, in seconds. */
  get ttlSeconds(): number {
    return this.#ttlSeconds;
  }

  /** Number of attached holders. */
  get holderCount(): number {
    return this.#holders.size;
  }

  /**
   * Adds a holder. The first one starts the keeper (grant). If the lease is alive, `holder.leaseReady` is called
   * synchronously. Throws if the keeper is closed.
   */
  attach(holder: LeaseHolder): void {
    if (this.#phase === 'closed') throw new Error('LeaseKeeper: attach() after close()');
    if (this.#holders.has(holder)) return;
    this.#holders.add(holder);
    if (this.#phase === 'idle') this.#startGranting();
    else if (this.#phase === 'alive' && this.#lease) this.#call(holder, 'leaseReady', this.#lease.id);
  }

  /** Removes a holder (it gets no more callbacks). Returns true when no holder is left. */
  detach(holder: LeaseHolder): boolean {
    this.#holders.delete(holder);
    return this.#holders.size === 0;
  }

  /**
   * A holder learnt from etcd (a put rejected with "lease not found") that lease `leaseId` is gone. Ignored if
   * the keeper has moved on to another lease.
   */
  reportLeaseNotFound(leaseId: string, error: Error): void {
    if (this.#lease?.id === leaseId && (this.#phase === 'alive' || this.#phase === 'expired')) {
      this.#leaseGone(error);
    }
  }

  /**
   * Stops for good: no more timers or keep-alives, and revokes the lease (deleting every key still attached to
   * it), also one whose grant was in flight. Holders get no callback. Idempotent. A failed revoke is retried
   * with backoff for up to one TTL unless final (permission denied, client closed); then it rejects (the lease
   * expires by itself within its TTL).
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    const lease = this.#stop();
    this.#closing = (async () => {
      await this.#grantInFlight?.catch(() => undefined);
      const ids = [lease?.id, this.#orphan].filter((id): id is string => id !== undefined);
      await Promise.all(
        ids.map((id) =>
          retryWithin(() => this.#backend.revoke(id), {
            clock: this.#clock,
            backoff: this.#backoff,
            // Past one TTL without keep-alives the lease has expired by itself.
            budgetMs: this.#ttlSeconds * 1000,
            isFinal: (e) => this.#backend.isPermissionDenied(e) || this.#backend.isClientClosed(e),
            onRetry: (err, waitMs) =>
              this.#logger.debug({ leaseId: id, err, waitMs }, 'sdkit: etcd lease revoke failed; retrying'),
          }),
        ),
      );
      if (ids.length > 0) this.#logger.debug({ leaseIds: ids }, 'sdkit: etcd lease revoked');
    })();
    return this.#closing;
  }

  /**
   * The client is being closed: stops at once like {@link close} (no more timers or keep-alives) but revokes
   * nothing, so the lease expires within its TTL, as after a crash. Every holder gets `clientClosed(error)`.
   */
  abandon(error: Error): void {
    if (this.#phase === 'closed') return;
    const holders = [...this.#holders];
    this.#stop();
    this.#closing = Promise.resolve();
    this.#logger.debug({ holders: holders.length }, 'sdkit: etcd client closed; lease left to expire');
    for (const holder of holders) this.#call(holder, 'clientClosed', error);
  }

  /** Stops for good (phase `closed`): no holders, timers or keep-alives. Returns the lease that was held. */
  #stop(): { readonly id: string } | undefined {
    this.#phase = 'closed';
    this.#holders.clear();
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.#stream?.close();
    this.#stream = undefined;
    const lease = this.#lease;
    this.#lease = undefined;
    return lease;
  }

  // --- granting --------------------------------------------------------------------------------------------

  #startGranting(delayMs = 0): void {
    this.#phase = 'granting';
    this.#lease = undefined;
    this.#awaitingAckSince = undefined;
    this.#grantAttempt = 0;
    this.#schedule(() => this.#grant(), delayMs);
  }

  #grant(): void {
    const attempt = this.#backend.grant(this.#ttlSeconds).then(
      (granted) => {
        if (this.#phase !== 'granting') {
          this.#orphan = granted.id; // closed meanwhile: close() revokes it
          return;
        }
        const now = this.#clock.now();
        if (this.#granted) registrarTelemetry.leaseRegranted();
        this.#granted = true;
        this.#lease = { id: granted.id, ttlMs: Math.max(1, granted.ttlSeconds) * 1000 };
        this.#phase = 'alive';
        this.#lastAckAt = now;
        this.#grantedAt = now;
        this.#logger.debug(
          { leaseId: granted.id, ttlSeconds: granted.ttlSeconds, holders: this.#holders.size },
          'sdkit: etcd lease granted',
        );
        this.#schedule(this.#tick, this.#intervalMs());
        this.#notify('leaseReady', granted.id);
      },
      (error: unknown) => {
        if (this.#phase !== 'granting') return;
        const err = asError(error);
        if (this.#backend.isClientClosed(err)) {
          this.#fatal(err);
          return;
        }
        if (this.#backend.isPermissionDenied(err)) {
          // Not transient: retrying would hammer etcd until someone changes the roles. Stop; tell the holders.
          this.#phase = 'idle';
          this.#logger.warn(
            { err, holders: this.#holders.size },
            'sdkit: etcd denied a lease grant (permission denied); not retrying',
          );
          this.#notify('leaseDenied', err);
          return;
        }
        const delay = this.#backoff.delay(this.#grantAttempt++);
        const log = this.#grantAttempt === 1 ? 'warn' : 'debug';
        this.#logger[log](
          { err, attempt: this.#grantAttempt, retryInMs: Math.round(delay) },
          'sdkit: could not grant an etcd lease; retrying',
        );
        this.#schedule(() => this.#grant(), delay);
      },
    );
    this.#grantInFlight = attempt;
  }

  // --- keep-alive ------------------------------------------------------------------------------------------

  #intervalMs(): number {
    return (this.#lease?.ttlMs ?? this.#ttlSeconds * 1000) / 3;
  }

  readonly #tick = (): void => {
    this.#cancelTimer = undefined;
    const lease = this.#lease;
    if ((this.#phase !== 'alive' && this.#phase !== 'expired') || !lease) return;
    const now = this.#clock.now();
    const interval = this.#intervalMs();
    if (this.#awaitingAckSince !== undefined && now - this.#awaitingAckSince >= interval) {
      this.#streamClosed(new Error(`no keep-alive answer within ${Math.round(interval)} ms`), false);
    }
    if (this.#phase === 'alive' && now - this.#lastAckAt >= lease.ttlMs) {
      this.#phase = 'expired';
      const err = new Error(
        `no keep-alive of etcd lease ${lease.id} was answered for ${Math.round(now - this.#lastAckAt)} ms ` +
          `(TTL ${lease.ttlMs / 1000} s): presumed expired`,
      );
      this.#logger.warn({ leaseId: lease.id }, `sdkit: ${err.message}; still trying`);
      this.#notify('leaseLost', err);
      if (this.#phase !== 'expired') return; // a holder callback changed things (close)
    }
    this.#sendKeepAlive(lease.id);
    const delay =
      this.#streamFailures > 0 ? Math.min(interval, this.#backoff.delay(this.#streamFailures - 1)) : interval;
    this.#schedule(this.#tick, delay);
  };

  #sendKeepAlive(leaseId: string): void {
    if (this.#stream) {
      this.#awaitingAckSince ??= this.#clock.now();
      this.#stream.send(leaseId);
      return;
    }
    if (this.#opening) return;
    this.#opening = true;
    let stream: KeepAliveStream | undefined;
    this.#backend
      .keepAlive({
        onResponse: (id, ttl) => {
          if (stream === this.#stream) this.#onResponse(id, ttl);
        },
        onClose: (error) => {
          if (stream !== undefined && stream === this.#stream) this.#streamClosed(error, true);
        },
      })
      .then(
        (opened) => {
          this.#opening = false;
          if (this.#phase === 'closed') {
            opened.close();
            return;
          }
          stream = opened;
          this.#stream = opened;
          const current = this.#lease;
          if (current && (this.#phase === 'alive' || this.#phase === 'expired')) {
            this.#awaitingAckSince = this.#clock.now();
            opened.send(current.id);
          }
        },
        (error: unknown) => {
          this.#opening = false;
          if (this.#phase === 'closed') return;
          const err = asError(error);
          if (this.#backend.isClientClosed(err)) this.#fatal(err);
          else this.#streamClosed(err, true);
        },
      );
  }

  #onResponse(leaseId: string, ttlSeconds: number): void {
    const lease = this.#lease;
    if (!lease || lease.id !== leaseId || (this.#phase !== 'alive' && this.#phase !== 'expired')) return;
    this.#awaitingAckSince = undefined;
    this.#streamFailures = 0;
    if (!(ttlSeconds > 0)) {
      this.#leaseGone(new Error(`etcd lease ${leaseId} not found (expired, revoked, or etcd lost its data)`));
      return;
    }
    this.#lastAckAt = this.#clock.now();
    if (this.#phase === 'expired') {
      this.#phase = 'alive';
      this.#logger.info({ leaseId }, 'sdkit: etcd lease presumed expired is alive');
      this.#notify('leaseReady', leaseId);
    }
  }

  /** The stream failed (or stalled): drop it; the next tick (sooner, with backoff) opens a new one. */
  #streamClosed(error: Error, reschedule: boolean): void {
    const stream = this.#stream;
    this.#stream = undefined;
    stream?.close();
    this.#awaitingAckSince = undefined;
    this.#streamFailures++;
    const log = this.#streamFailures === 1 ? 'info' : 'debug';
    this.#logger[log](
      { err: error, leaseId: this.#lease?.id, failures: this.#streamFailures },
      'sdkit: etcd keep-alive stream failed; reopening',
    );
    if (reschedule && (this.#phase === 'alive' || this.#phase === 'expired')) {
      this.#schedule(this.#tick, Math.min(this.#intervalMs(), this.#backoff.delay(this.#streamFailures - 1)));
    }
  }

  #leaseGone(error: Error): void {
    const lease = this.#lease;
    const now = this.#clock.now();
    this.#quickLosses = lease && now - this.#grantedAt < lease.ttlMs ? this.#quickLosses + 1 : 0;
    this.#logger.warn({ leaseId: lease?.id, err: error }, 'sdkit: etcd lease lost; granting a new one');
    if (this.#quickLosses === 3) {
      this.#logger.error(
        { leaseId: lease?.id },
        'sdkit: etcd leases keep getting lost right after being granted. Someone may be revoking them, or int64 ' +
          "lease ids lose precision (protobufjs could not require('long'), e.g. because Node runs with " +
          '--conditions=import)',
      );
    }
    this.#startGranting(this.#quickLosses > 0 ? this.#backoff.delay(this.#quickLosses - 1) : 0);
    this.#notify('leaseLost', error);
  }

  /** The client was closed under us: nothing can be done any more. */
  #fatal(error: Error): void {
    this.#logger.error({ err: error }, 'sdkit: etcd client closed; the lease keeper stops');
    const holders = [...this.#holders];
    void this.close().catch(() => undefined);
    for (const holder of holders) this.#call(holder, 'leaseLost', error);
  }

  // --- plumbing --------------------------------------------------------------------------------------------

  #schedule(fn: () => void, delayMs: number): void {
    this.#cancelTimer?.();
    this.#cancelTimer = this.#clock.setTimeout(() => {
      this.#cancelTimer = undefined;
      fn();
    }, delayMs);
  }

  #notify(method: 'leaseReady', arg: string): void;
  #notify(method: 'leaseLost' | 'leaseDenied', arg: Error): void;
  #notify(method: HolderMethod, arg: string | Error): void {
    for (const holder of [...this.#holders]) {
      if (!this.#holders.has(holder)) continue;
      this.#call(holder, method, arg);
    }
  }

  #call(holder: LeaseHolder, method: HolderMethod, arg: string | Error): void {
    try {
      if (method === 'leaseReady') holder.leaseReady(arg as string);
      else if (method === 'leaseLost') holder.leaseLost(arg as Error);
      else if (method === 'clientClosed') holder.clientClosed(arg as Error);
      else holder.leaseDenied(arg as Error);
    } catch (err) {
      this.#logger.error({ err }, `sdkit: lease holder threw from ${method}`);
    }
  }
}

type HolderMethod = 'leaseReady' | 'leaseLost' | 'leaseDenied' | 'clientClosed';

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
