import type { Observable } from 'rxjs';
import { type Backoff, type BackoffDefaults, createBackoff } from './backoff.js';
import { InstanceCache } from './instance-cache.js';
import { assertKnownOptions } from './known-options.js';
import { LatestSubject } from './latest-subject.js';
import { RegistrarTelemetry } from './registrar-telemetry.js';
import {
  type Clock,
  type Instance,
  type Instancer,
  type Logger,
  type Registrar,
  type RegistrarState,
  silentLogger,
  systemClock,
} from './types.js';

/**
 * The wait of a registrar that lost its entry before it registers again: 100 ms each time, exact (the
 * `reregisterDelayMs` option sets `initialMs` and `maxMs`).
 */
const REREGISTER_BACKOFF: BackoffDefaults = Object.freeze({
  initialMs: 100,
  maxMs: 100,
  factor: 1,
  jitter: 0,
});

/** Options of {@link MemoryRegistry}. */
export interface MemoryRegistryOptions {
  /** Time source for TTLs, heartbeats and re-registration. Default {@link systemClock}. */
  readonly clock?: Clock;
  /** Where expirations and lost registrations are reported. Default: silent. */
  readonly logger?: Logger;
  /**
   * How long a registrar that lost its entry waits before registering again, in ms (default 100). Keeps two
   * registrars fighting over one key from spinning.
   */
  readonly reregisterDelayMs?: number;
}

/** Options of {@link MemoryRegistry.registrar}: the instance to announce. */
export interface MemoryRegistrarOptions {
  /** The entry's key, and the instance key instancers report. Non-empty. */
  readonly key: string;
  /** What clients dial. Non-empty. */
  readonly address: string;
  /** Reported as the instance's metadata (copied and frozen). */
  readonly metadata?: Readonly<Record<string, unknown>>;
  /**
   * With a TTL, the entry expires that long after the registrar's last heartbeat; the registrar heartbeats every
   * `ttlSeconds / 3` while registered. Without one, the entry stays until it is deregistered or deleted.
   */
  readonly ttlSeconds?: number;
}

/**
 * A {@link Registrar} for a {@link MemoryRegistry}. Its `state$` emits nothing until the first `register()` or
 * `deregister()`.
 *
 * It owns its entry while registered: if the entry disappears or is replaced by someone else (an expiry, a
 * `registry.delete`, a `registry.put` or another registrar on the same key), it goes `lost`, then `registering` and
 * `registered` again after the registry's `reregisterDelayMs`, as the etcd registrar does when its lease is lost.
 */
export interface MemoryRegistrar extends Registrar {
  /** The entry's key. */
  readonly key: string;
  /** The latest state, or `undefined` before the first `register()`/`deregister()`. */
  readonly state: RegistrarState | undefined;
  /**
   * Simulates a crash (a SIGKILLed process): stops heartbeats and every reaction without removing the entry, which
   * then expires after its TTL (never, without one). Final: `state$` completes, `register()` rejects and
   * `deregister()` does nothing afterwards. Idempotent.
   */
  abandon(): void;
}

interface Entry {
  readonly instance: Instance;
  readonly owner: MemoryRegistrarImpl | undefined;
  cancelExpiry: (() => void) | undefined;
}

interface PrefixWatch {
  readonly prefix: string;
  readonly cache: InstanceCache;
}

/**
 * An embedded, in-process discovery source: entries (key → address, metadata) that registrars announce and keep
 * alive with TTLs, and instancers that follow every entry under a key prefix. The default for the demo and for
 * tests that need no server.
 *
 * Each change is seen by every matching instancer at once, as one event, at a cost proportional to the change (not
 * to the number of entries). Nothing here keeps the process alive: timers go through the clock (unref'd by
 * default), and `close()` cancels them all.
 */
export class MemoryRegistry implements Disposable {
  readonly #clock: Clock;
  readonly #logger: Logger;
  /** The wait before registering again after a loss; undefined for `reregisterDelayMs: 0` (at once). */
  readonly #reregister: Backoff | undefined;
  readonly #entries = new Map<string, Entry>();
  readonly #watches = new Set<PrefixWatch>();
  readonly #registrars = new Set<MemoryRegistrarImpl>();
  #closed = false;

  /** @throws TypeError if `reregisterDelayMs` is negative, NaN or infinite, or `clock`/`logger` is not one. */
  constructor(options: MemoryRegistryOptions = {}) {
    if (typeof options === 'object' && options !== null) {
      assertKnownOptions('MemoryRegistry', options, ['clock', 'logger', 'reregisterDelayMs']);
    }
    const { clock, logger, reregisterDelayMs = REREGISTER_BACKOFF.initialMs } = options;
    if (clock !== undefined && (typeof clock?.setTimeout !== 'function' || typeof clock.now !== 'function')) {
      throw new TypeError('MemoryRegistry: clock must be a Clock (now, setTimeout)');
    }
    if (logger !== undefined && typeof logger?.warn !== 'function') {
      throw new TypeError('MemoryRegistry: logger must be a Logger (debug/info/warn/error)');
    }
    if (
      typeof reregisterDelayMs !== 'number' ||
      !Number.isFinite(reregisterDelayMs) ||
      reregisterDelayMs < 0
    ) {
      throw new TypeError(
        `MemoryRegistry: reregisterDelayMs must be a finite number >= 0 (got ${reregisterDelayMs})`,
      );
    }
    this.#clock = clock ?? systemClock;
    this.#logger = logger ?? silentLogger;
    this.#reregister =
      reregisterDelayMs === 0
        ? undefined
        : createBackoff(
            { initialMs: reregisterDelayMs, maxMs: reregisterDelayMs },
            'MemoryRegistry',
            REREGISTER_BACKOFF,
          );
  }

  /** Whether {@link MemoryRegistry.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Number of entries now. */
  get size(): number {
    return this.#entries.size;
  }

  /** The instance under `key` now, if any. */
  get(key: string): Instance | undefined {
    return this.#entries.get(key)?.instance;
  }

  /**
   * Puts an entry that never expires (replacing any entry under `key`; a registrar that owned it goes `lost`).
   * Instancers whose prefix matches see it at once; putting the same value again changes nothing.
   * @throws TypeError for an empty key or address, or metadata that is not an object.
   * @throws Error after {@link MemoryRegistry.close}.
   */
  put(key: string, address: string, metadata?: Readonly<Record<string, unknown>>): void {
    this.#assertOpen('put');
    this.#write(makeInstance('MemoryRegistry.put', key, address, metadata), undefined, undefined);
  }

  /**
   * Removes the entry under `key` at once; a registrar that owned it goes `lost` (and registers again).
   * @returns whether there was an entry.
   * @throws Error after {@link MemoryRegistry.close}.
   */
  delete(key: string): boolean {
    this.#assertOpen('delete');
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    this.#remove(key, entry);
    entry.owner?.[lostEntry]();
    return true;
  }

  /**
   * An {@link Instancer} over every entry whose key starts with `prefix` (`''`: every entry). Its first event (the
   * entries now, possibly none) exists at once; each later change of a matching entry gives one event carrying
   * `changes`. Any number of instancers may watch the same or overlapping prefixes. `stop()` ends only this one; the
   * registry's `close()` stops them all.
   * @throws TypeError if `prefix` is not a string. @throws Error after {@link MemoryRegistry.close}.
   */
  instancer(prefix = ''): Instancer {
    if (typeof prefix !== 'string') {
      throw new TypeError(`MemoryRegistry.instancer: prefix must be a string (got ${typeof prefix})`);
    }
    this.#assertOpen('instancer');
    const watch: PrefixWatch = { prefix, cache: new InstanceCache({ source: 'memory', target: prefix }) };
    const initial: Instance[] = [];
    for (const [key, entry] of this.#entries) if (key.startsWith(prefix)) initial.push(entry.instance);
    watch.cache.replace(initial);
    this.#watches.add(watch);
    const stop = () => {
      this.#watches.delete(watch);
      watch.cache.close();
    };
    return Object.freeze({
      events$: watch.cache.events$,
      current: () => watch.cache.current(),
      stop,
      [Symbol.dispose]: stop,
    });
  }

  /**
   * A registrar that announces `{ key, address, metadata }` here (see {@link MemoryRegistrar}). Nothing is written
   * until its `register()`.
   * @throws TypeError for an empty key or address, metadata that is not an object, or a `ttlSeconds` that is not a
   *   finite number > 0. @throws Error after {@link MemoryRegistry.close}.
   */
  registrar(options: MemoryRegistrarOptions): MemoryRegistrar {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(
        'MemoryRegistry.registrar: expected options { key, address, metadata?, ttlSeconds? }',
      );
    }
    assertKnownOptions('MemoryRegistry.registrar', options, ['key', 'address', 'metadata', 'ttlSeconds'], {
      ttl: 'ttlSeconds',
      ttlMs: 'ttlSeconds',
    });
    const { key, address, metadata, ttlSeconds } = options;
    const instance = makeInstance('MemoryRegistry.registrar', key, address, metadata);
    if (
      ttlSeconds !== undefined &&
      (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds) || ttlSeconds <= 0)
    ) {
      throw new TypeError(
        `MemoryRegistry.registrar: ttlSeconds must be a finite number > 0 (got ${ttlSeconds})`,
      );
    }
    this.#assertOpen('registrar');
    const ttlMs = ttlSeconds === undefined ? undefined : ttlSeconds * 1000;
    const registrar = new MemoryRegistrarImpl(instance, ttlMs, {
      clock: this.#clock,
      logger: this.#logger,
      reregister: this.#reregister,
      closed: () => this.#closed,
      claim: (r) => this.#claim(r, instance, ttlMs),
      touch: (r) => this.#touch(r, instance.key, ttlMs),
      release: (r) => this.#release(r, instance.key),
      forget: (r) => this.#registrars.delete(r),
    });
    this.#registrars.add(registrar);
    return registrar;
  }

  /**
   * Stops every instancer (their `events$` complete), ends every registrar (state `deregistered` unless abandoned;
   * `state$` completes), cancels every timer and drops every entry. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const entry of this.#entries.values()) entry.cancelExpiry?.();
    this.#entries.clear();
    for (const watch of this.#watches) watch.cache.close();
    this.#watches.clear();
    const registrars = [...this.#registrars];
    this.#registrars.clear();
    for (const registrar of registrars) registrar[registryClosed]();
  }

  /** Same as {@link MemoryRegistry.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #assertOpen(what: string): void {
    if (this.#closed) throw new Error(`MemoryRegistry.${what}: the registry is closed`);
  }

  /** Writes an entry, notifies instancers, then tells a previous owner (if another) that it lost the entry. */
  #write(instance: Instance, owner: MemoryRegistrarImpl | undefined, ttlMs: number | undefined): void {
    const prev = this.#entries.get(instance.key);
    prev?.cancelExpiry?.();
    const entry: Entry = { instance, owner, cancelExpiry: undefined };
    this.#entries.set(instance.key, entry);
    this.#arm(entry, ttlMs);
    for (const watch of this.#watches) {
      if (instance.key.startsWith(watch.prefix)) watch.cache.update({ put: [instance] });
    }
    if (prev?.owner !== undefined && prev.owner !== owner) prev.owner[lostEntry]();
  }

  #remove(key: string, entry: Entry): void {
    entry.cancelExpiry?.();
    this.#entries.delete(key);
    for (const watch of this.#watches)
      if (key.startsWith(watch.prefix)) watch.cache.update({ delete: [key] });
  }

  #arm(entry: Entry, ttlMs: number | undefined): void {
    if (ttlMs === undefined) return;
    const key = entry.instance.key;
    entry.cancelExpiry = this.#clock.setTimeout(() => {
      if (this.#entries.get(key) !== entry) return;
      this.#logger.info({ key }, 'sdkit MemoryRegistry: registration expired (no heartbeat within its TTL)');
      this.#remove(key, entry);
      entry.owner?.[lostEntry]();
    }, ttlMs);
  }

  #claim(owner: MemoryRegistrarImpl, instance: Instance, ttlMs: number | undefined): void {
    this.#write(instance, owner, ttlMs);
  }

  /** A heartbeat: restarts the TTL if `owner` still owns the entry; false otherwise. */
  #touch(owner: MemoryRegistrarImpl, key: string, ttlMs: number | undefined): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined || entry.owner !== owner) return false;
    entry.cancelExpiry?.();
    this.#arm(entry, ttlMs);
    return true;
  }

  /** Deregistration: removes the entry if `owner` still owns it. */
  #release(owner: MemoryRegistrarImpl, key: string): void {
    const entry = this.#entries.get(key);
    if (entry !== undefined && entry.owner === owner) this.#remove(key, entry);
  }
}

/** What a registrar may do to its registry (module-internal). */
interface RegistryLink {
  readonly clock: Clock;
  readonly logger: Logger;
  /** The wait before registering again after the n-th loss in a row (0-based); undefined: no wait. */
  readonly reregister: Backoff | undefined;
  closed(): boolean;
  claim(registrar: MemoryRegistrarImpl): void;
  touch(registrar: MemoryRegistrarImpl): boolean;
  release(registrar: MemoryRegistrarImpl): void;
  forget(registrar: MemoryRegistrarImpl): void;
}

const lostEntry = Symbol('lostEntry');
const registryClosed = Symbol('registryClosed');

class MemoryRegistrarImpl implements MemoryRegistrar {
  readonly #instance: Instance;
  readonly #ttlMs: number | undefined;
  readonly #link: RegistryLink;
  readonly #subject = new LatestSubject<RegistrarState>();
  #state: RegistrarState | undefined;
  /** register() was called and deregister() was not since. */
  #wanted = false;
  /** Abandoned, disposed, or its registry closed: nothing happens any more. */
  #ended: 'abandoned' | 'disposed' | 'registry closed' | undefined;
  #cancelHeartbeat: (() => void) | undefined;
  #cancelRetry: (() => void) | undefined;
  /** Losses since the last `register()` / `deregister()` call: the attempt of the next re-registration's wait. */
  #losses = 0;

  readonly state$: Observable<RegistrarState> = this.#subject.asObservable();

  constructor(instance: Instance, ttlMs: number | undefined, link: RegistryLink) {
    this.#instance = instance;
    this.#ttlMs = ttlMs;
    this.#link = link;
  }

  get key(): string {
    return this.#instance.key;
  }

  get state(): RegistrarState | undefined {
    return this.#state;
  }

  register(): Promise<void> {
    if (this.#ended !== undefined) {
      return Promise.reject(
        new Error(`MemoryRegistrar ${JSON.stringify(this.key)}: cannot register, ${this.#ended}`),
      );
    }
    this.#wanted = true;
    this.#losses = 0;
    if (this.#state !== 'registered') this.#register();
    return Promise.resolve();
  }

  deregister(): Promise<void> {
    if (this.#ended !== undefined) return Promise.resolve();
    this.#wanted = false;
    this.#losses = 0;
    this.#stopTimers();
    this.#link.release(this);
    this.#setState('deregistered');
    return Promise.resolve();
  }

  abandon(): void {
    if (this.#ended !== undefined) return;
    this.#end('abandoned');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#ended !== undefined) return;
    await this.deregister();
    this.#end('disposed');
  }

  /** Called by the registry when this registrar's entry expired, was deleted or was replaced by someone else. */
  [lostEntry](): void {
    if (this.#ended !== undefined || !this.#wanted) return;
    this.#stopTimers();
    const retryInMs = this.#link.reregister?.delay(this.#losses++) ?? 0;
    this.#link.logger.warn(
      { key: this.key, retryInMs },
      'sdkit MemoryRegistrar: registration lost; registering again',
    );
    this.#setState('lost');
    this.#cancelRetry = this.#link.clock.setTimeout(() => {
      this.#cancelRetry = undefined;
      if (this.#ended === undefined && this.#wanted && this.#state === 'lost') this.#register();
    }, retryInMs);
  }

  /** Called by the registry's close(). */
  [registryClosed](): void {
    if (this.#ended !== undefined) return;
    this.#stopTimers();
    if (this.#state !== undefined) this.#setState('deregistered');
    this.#end('registry closed');
  }

  #register(): void {
    if (this.#link.closed()) return;
    this.#stopTimers();
    this.#setState('registering');
    this.#link.claim(this);
    // A subscriber may have reacted to the write by removing it again (then we are `lost` already).
    if (this.#state !== 'registering') return;
    this.#setState('registered');
    this.#scheduleHeartbeat();
  }

  #scheduleHeartbeat(): void {
    const ttlMs = this.#ttlMs;
    if (ttlMs === undefined) return;
    this.#cancelHeartbeat = this.#link.clock.setTimeout(() => {
      this.#cancelHeartbeat = undefined;
      if (this.#ended !== undefined || this.#state !== 'registered') return;
      // A failed touch means the entry is gone or someone else's: the registry reports that as a loss.
      if (this.#link.touch(this)) this.#scheduleHeartbeat();
    }, ttlMs / 3);
  }

  #stopTimers(): void {
    this.#cancelHeartbeat?.();
    this.#cancelHeartbeat = undefined;
    this.#cancelRetry?.();
    this.#cancelRetry = undefined;
  }

  #end(reason: 'abandoned' | 'disposed' | 'registry closed'): void {
    this.#ended = reason;
    this.#stopTimers();
    this.#link.forget(this);
    this.#subject.complete();
  }

  #setState(state: RegistrarState): void {
    if (this.#state === state) return;
    this.#state = state;
    registrarTelemetry.stateChanged(state);
    this.#subject.next(state);
  }
}

/** Every memory registrar's telemetry: `sdkit.source.name` = 'memory'. */
const registrarTelemetry = new RegistrarTelemetry('memory');

function makeInstance(
  fn: string,
  key: unknown,
  address: unknown,
  metadata: Readonly<Record<string, unknown>> | undefined,
): Instance {
  if (typeof key !== 'string' || key === '') {
    throw new TypeError(`${fn}: key must be a non-empty string (got ${JSON.stringify(key)})`);
  }
  if (typeof address !== 'string' || address === '') {
    throw new TypeError(
      `${fn}: address of ${JSON.stringify(key)} must be a non-empty string (got ${JSON.stringify(address)})`,
    );
  }
  if (metadata === undefined) return Object.freeze({ key, address });
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new TypeError(`${fn}: metadata of ${JSON.stringify(key)} must be an object`);
  }
  return Object.freeze({ key, address, metadata: Object.freeze({ ...metadata }) });
}
