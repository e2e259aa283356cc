import {
  assertKnownOptions,
  type BackoffDefaults,
  type BackoffOptions,
  type Clock,
  createBackoff,
  DEFAULT_BACKOFF,
  type Instance,
  InstanceCache,
  type Instancer,
  type InstancerEvent,
  type Logger,
  silentLogger,
  systemClock,
} from '@sdkit/sd-core';
import type { Observable } from 'rxjs';
import { type EtcdClient, onClientClose, transportOf } from './client-core.js';
import { type Codec, clip, codecs, decodeAndLog } from './codecs.js';
import { describeValue } from './describe-value.js';
import { ETCD_SOURCE, etcdTarget } from './etcd-telemetry.js';
import { type HubSettings, joinWatch } from './watch-hub.js';

export { EtcdWatchError } from './watch-hub.js';

/** Options of {@link EtcdInstancer}. */
export interface EtcdInstancerOptions {
  /**
   * The key prefix to follow, matched as a **raw key prefix**: nothing is added or stripped. Use the exact form
   * the writers use — go-kit registers under e.g. `/services/foosvc/`, etcd's gRPC naming under `my-service/`.
   * Without a trailing `/`, `my-service` also matches `my-service-2/…`. Non-empty, no lone UTF-16 surrogates.
   * Relative to the client's namespace, if it has one (do not repeat the namespace here).
   */
  prefix: string;
  /** How values are read. Default `codecs.auto` (go-kit strings, etcd-naming JSON and sdkit JSON). */
  codec?: Codec;
  /** Default: the client's logger. Unreadable values are logged at `warn` with `{ key, codec, reason }`. */
  logger?: Logger;
  /**
   * Retry timing while etcd fails (the same shape as the registrar's): exponential from `initialMs` (default 100)
   * by `factor` (2) up to `maxMs` (10 000), each delay a random time in `[d × (1 − jitter), d]` (jitter 0.5).
   */
  backoff?: BackoffOptions;
  /** Time source for the retry timers. Default `systemClock`. */
  clock?: Clock;
}

const INSTANCER_OPTIONS = ['prefix', 'codec', 'logger', 'backoff', 'clock'] as const;
const INSTANCER_OPTION_HINTS = { key: 'prefix', service: 'prefix', path: 'prefix', format: 'codec' };

/** Prefixes already warned about for lacking a trailing `/` (once per process each). */
const warnedPrefixes = new Set<string>();

/**
 * Warns once per prefix (through `logger` when one was given, else as a process warning, since the default
 * logger is silent) that a prefix without a trailing `/` also matches its siblings (`svc` matches `svc-canary/…`).
 */
function warnPrefixWithoutSlash(prefix: string, logger: Logger | undefined): void {
  if (prefix.endsWith('/') || warnedPrefixes.has(prefix)) return;
  warnedPrefixes.add(prefix);
  const message =
    `EtcdInstancer: prefix ${JSON.stringify(clip(prefix, 200))} has no trailing "/", so it also matches keys ` +
    `like ${JSON.stringify(clip(`${prefix}-canary/…`, 220))}; add the "/" unless that is what you want`;
  if (logger) logger.warn({ prefix: clip(prefix, 200) }, `sdkit: ${message}`);
  else
    (globalThis as { process?: { emitWarning?(m: string, o: object): void } }).process?.emitWarning?.(
      message,
      {
        code: 'SDKIT_PREFIX_WITHOUT_SLASH',
      },
    );
}

/** The instancer's backoff defaults: 100 ms doubling, jittered; a watch retries up to every 10 s while etcd fails. */
const WATCH_BACKOFF: BackoffDefaults = Object.freeze({ ...DEFAULT_BACKOFF, maxMs: 10_000 });

/**
 * go-kit's etcdv3 Instancer, done incrementally: follows every key under `prefix` and emits the instances their
 * values describe (see {@link Instancer} for the event contract).
 *
 * How it follows etcd:
 * - One ranged read of the prefix at revision R (the read's header revision; paged at that one revision), then
 *   a watch from R + 1 — no gap, no overlap. Each watch response (all its fragments) becomes at most one event,
 *   built from the changed keys only: the cost per change does not grow with the number of instances (go-kit
 *   re-reads the whole prefix on every change).
 * - On a broken stream it resumes from the revision after the last event it applied (never from a response
 *   header, which can run ahead of delivered events). If etcd compacted that revision away, or the store is a
 *   different one (its revision went backwards or its cluster id changed: wiped/restored etcd), it re-reads the
 *   prefix and emits only the difference.
 * - While etcd fails it emits `{ instances: lastKnownGood, error }` (an `EtcdWatchError` whose `cause` is the
 *   transport's error) and retries with capped exponential backoff with jitter, forever; the first successful read
 *   or watch clears the error. It never gives up and `events$` never errors.
 * - A value the codec cannot read is skipped with a warning naming the key; the other instances are unaffected.
 *   A key whose value becomes unreadable leaves the set.
 * - Instancers of the same client and `prefix` share one watch (reference-counted; the
 *   last `stop()` ends it). Each has its own codec and event stream. The shared watch takes its backoff, clock and
 *   logger from the instancer that started it.
 *
 * The first event comes after the first read (or its first failure: `{ instances: [], error }`). `stop()` leaves
 * the shared watch and completes `events$`; nothing is left running. Closing the client stops its instancers: each
 * emits its last known instances with an `EtcdClientError` (`'closed'`) as `error`, then completes. An instancer
 * never keeps the process alive by itself (its retry timers are unref'd), but an open watch does: a gRPC watch
 * call, as any open grpc-js call does, or an HTTP watch request, as any open fetch does.
 *
 * @throws TypeError for a missing client, an empty or non-string prefix (or one with lone UTF-16 surrogates, or one
 * that starts with the client's namespace: prefixes are relative to it), a codec without `decode`, or bad backoff
 * values.
 */
export class EtcdInstancer implements Instancer {
  /** Hot; replays the latest event to each new subscriber; never errors; completes after {@link stop}. */
  readonly events$: Observable<InstancerEvent>;
  /** The prefix followed, as given. */
  readonly prefix: string;
  /** The codec in use. */
  readonly codec: Codec;
  readonly #cache: InstanceCache;
  #leave: (() => void) | undefined;
  #stopListening: (() => void) | undefined;

  constructor(client: EtcdClient, options: EtcdInstancerOptions) {
    const transport = transportOf(client);
    if (!transport) {
      throw new TypeError(
        `EtcdInstancer: client must be an EtcdClient from createEtcdClient(), got ${describeValue(client)}`,
      );
    }
    if (options === null || typeof options !== 'object') {
      throw new TypeError(
        `EtcdInstancer: options must be an object with a prefix, got ${describeValue(options)}`,
      );
    }
    assertKnownOptions('EtcdInstancer', options, INSTANCER_OPTIONS, INSTANCER_OPTION_HINTS);
    const { prefix } = options;
    if (typeof prefix !== 'string' || prefix === '') {
      throw new TypeError(`EtcdInstancer: prefix must be a non-empty string, got ${describeValue(prefix)}`);
    }
    if (/\p{Surrogate}/u.test(prefix)) {
      // Not encodable as UTF-8: the watch would follow the U+FFFD spelling, which no key written as given has.
      throw new TypeError(
        `EtcdInstancer: prefix ${describeValue(prefix)} contains a lone UTF-16 surrogate, which is not valid UTF-8`,
      );
    }
    const namespace = (client as { namespace?: unknown }).namespace;
    if (typeof namespace === 'string' && namespace !== '' && prefix.startsWith(namespace)) {
      // Same rule as EtcdRegistrar's key: the prefix is relative to the namespace, so this would follow
      // `<namespace><namespace>…`, where no registrar of that client writes.
      throw new TypeError(
        `EtcdInstancer: prefix ${describeValue(clip(prefix, 200))} starts with the client's namespace ${describeValue(namespace)}, ` +
          `but prefixes are relative to the namespace: it would follow ${describeValue(clip(namespace + prefix, 200))}. ` +
          `Pass ${describeValue(clip(prefix.slice(namespace.length), 200) || '<a prefix below the namespace>')}, or create the client without \`namespace\``,
      );
    }
    const codec = options.codec ?? codecs.auto;
    if (codec === null || typeof codec !== 'object' || typeof codec.decode !== 'function') {
      throw new TypeError(`EtcdInstancer: codec must be a Codec (see codecs), got ${describeValue(codec)}`);
    }
    const backoff = createBackoff(options.backoff, 'EtcdInstancer', WATCH_BACKOFF);
    const given = options.logger ?? (client.logger === silentLogger ? undefined : client.logger);
    warnPrefixWithoutSlash(prefix, given);
    const logger = given ?? silentLogger;
    const clock = options.clock ?? systemClock;

    this.prefix = prefix;
    this.codec = codec;
    this.#cache = new InstanceCache({ source: ETCD_SOURCE, target: etcdTarget(namespace, prefix) });
    this.events$ = this.#cache.events$;

    const cache = this.#cache;
    const settings: HubSettings = { logger, clock, backoff, readPageSize: 5000 };
    this.#leave = joinWatch(transport, typeof namespace === 'string' ? namespace : '', prefix, settings, {
      reset(entries) {
        const list: Instance[] = [];
        for (const [key, value] of entries) {
          const instance = decodeAndLog(codec, key, value, logger);
          if (instance) list.push(instance);
        }
        cache.replace(list);
      },
      change(puts, deletes) {
        const put: Instance[] = [];
        const del: string[] = [...deletes];
        for (const [key, value] of puts) {
          const instance = decodeAndLog(codec, key, value, logger);
          if (instance) put.push(instance);
          else del.push(key);
        }
        cache.update({ put, delete: del });
      },
      healthy() {
        if (cache.current()?.error) cache.update({});
      },
      error(error) {
        cache.fail(error);
      },
    });
    // Closing the client ends this instancer: one last event saying so, then completion.
    this.#stopListening = onClientClose(client, (error) => {
      this.#cache.fail(error);
      this.stop();
    });
  }

  /** The latest event, synchronously; `undefined` until the first read (or its failure). */
  current(): InstancerEvent | undefined {
    return this.#cache.current();
  }

  /** Leaves the shared watch (the last one out ends it) and completes `events$`. Idempotent. */
  stop(): void {
    this.#stopListening?.();
    this.#stopListening = undefined;
    const leave = this.#leave;
    this.#leave = undefined;
    leave?.();
    this.#cache.close();
  }

  /** Same as {@link stop}. */
  [Symbol.dispose](): void {
    this.stop();
  }
}
