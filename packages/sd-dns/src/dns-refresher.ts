import type { Instance, InstanceCache } from '@sdkit/sd-core';
import { DnsError } from './dns-error.js';
import type { DnsSettings } from './dns-instancer-options.js';

/** What one lookup of a DNS instancer found: the whole set, and for how long it may be kept. */
export interface DnsLookupResult {
  readonly instances: readonly Instance[];
  /** The answer's TTL in ms (see `DnsAnswer.ttlMs`); `undefined`: the answer says nothing, refresh at the floor. */
  readonly ttlMs: number | undefined;
}

/**
 * The refresh loop of a DNS instancer: looks up now, then again when the answer's TTL runs out (clamped to
 * `[minTtlMs, maxTtlMs]`); after a failure, after a backoff delay (at most `maxTtlMs`). Answers replace the set in
 * the cache (an unchanged set emits nothing); failures go to `cache.fail` (the set is kept). One lookup at a time;
 * its timers are the clock's (unref'd), so it never holds the process.
 */
export class DnsRefresher {
  readonly #settings: DnsSettings;
  readonly #cache: InstanceCache;
  readonly #lookup: (signal: AbortSignal) => Promise<DnsLookupResult>;
  /** Description of the lookup for logs: `SRV _http._tcp.example.`. */
  readonly #what: string;
  #failures = 0;
  #lastKind: string | undefined;
  #cancelTimer: (() => void) | undefined;
  #inFlight: AbortController | undefined;
  #stopped = false;

  constructor(
    settings: DnsSettings,
    cache: InstanceCache,
    what: string,
    lookup: (signal: AbortSignal) => Promise<DnsLookupResult>,
  ) {
    this.#settings = settings;
    this.#cache = cache;
    this.#what = what;
    this.#lookup = lookup;
  }

  /** Starts the first lookup now. */
  start(): void {
    this.#run();
  }

  /** Aborts the lookup in flight and cancels the next one. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.#inFlight?.abort(new Error('the DNS instancer was stopped'));
    this.#inFlight = undefined;
  }

  #run(): void {
    this.#cancelTimer = undefined;
    if (this.#stopped) return;
    const controller = new AbortController();
    this.#inFlight = controller;
    let result: Promise<DnsLookupResult>;
    try {
      result = this.#lookup(controller.signal);
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      (found) => {
        if (controller.signal.aborted) return;
        this.#succeeded(found);
      },
      (error: unknown) => {
        if (controller.signal.aborted) return;
        this.#failed(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  #succeeded(found: DnsLookupResult): void {
    const { minTtlMs, maxTtlMs, logger } = this.#settings;
    if (this.#failures > 0) {
      logger.info(
        { lookup: this.#what, failures: this.#failures, instances: found.instances.length },
        'sdkit: DNS lookups answer again',
      );
    }
    this.#failures = 0;
    this.#lastKind = undefined;
    const delay = Math.min(maxTtlMs, Math.max(minTtlMs, found.ttlMs ?? minTtlMs));
    logger.debug(
      { lookup: this.#what, instances: found.instances.length, ttlMs: found.ttlMs, nextInMs: delay },
      'sdkit: DNS answer',
    );
    this.#cache.replace(found.instances);
    this.#schedule(delay);
  }

  #failed(error: Error): void {
    const { backoff, maxTtlMs, logger } = this.#settings;
    const delay = Math.min(maxTtlMs, backoff.delay(this.#failures));
    this.#failures++;
    const kind = error instanceof DnsError ? error.kind : 'internal';
    const context = { lookup: this.#what, kind, failures: this.#failures, retryInMs: Math.round(delay) };
    // A streak of the same failure is logged once at warn, then at debug.
    if (kind !== this.#lastKind)
      logger.warn({ ...context, err: error }, 'sdkit: DNS lookup failing; retrying');
    else logger.debug({ ...context, err: error }, 'sdkit: DNS lookup failed again');
    this.#lastKind = kind;
    this.#cache.fail(error);
    this.#schedule(delay);
  }

  #schedule(delay: number): void {
    this.#inFlight = undefined;
    if (this.#stopped) return;
    this.#cancelTimer = this.#settings.clock.setTimeout(() => this.#run(), delay);
  }
}
