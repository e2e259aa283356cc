/**
 * The shared prefix watch behind {@link EtcdInstancer}: one ranged read, then one etcd watch stream per
 * (etcd handle, prefix), fanned out to every instancer on it. Internal to @sdkit/sd-etcd.
 *
 * Why not etcd3's `Watcher`: it resumes after a reconnect from the last response *header* revision (which can be
 * ahead of the events it delivered: etcd stamps a catch-up batch with the current store revision), it drops
 * `compact_revision`, and on compaction it emits `error` and gives up. This module drives the watch itself, over the
 * client's {@link EtcdTransport} (gRPC or HTTP), and keeps its own revision: the mod revision of the last event
 * applied.
 * @internal
 * @packageDocumentation
 */
import { type Backoff, type Clock, type Logger, SourceTelemetry } from '@sdkit/sd-core';
import { clip, MAX_LOGGED_KEY_LENGTH } from './codecs.js';
import { ETCD_SOURCE, etcdTarget } from './etcd-telemetry.js';
import {
  concatBytes,
  type EtcdHeader,
  type EtcdTransport,
  encodeKey,
  prefixRangeEnd,
  type RangeResult,
  startsWithBytes,
  type WatchEvent,
  type WatchResponse,
  type WatchStream,
} from './transport.js';

/** What a hub tells each member. Calls are synchronous and in order; the maps must not be kept or mutated. */
export interface WatchListener {
  /** A fresh full read: `entries` is the whole prefix (key → raw value). Replaces everything known before. */
  reset(entries: ReadonlyMap<string, Uint8Array>): void;
  /** One watch response (all its fragments): keys put (last value wins) and keys deleted; disjoint. */
  change(puts: ReadonlyMap<string, Uint8Array>, deletes: readonly string[]): void;
  /** The watch is (re)established without a re-read; any error is over. */
  healthy(): void;
  /** etcd is failing; the hub keeps retrying. Reported once per failure episode (and again if it changes). */
  error(error: Error): void;
}

/** Settings of a hub; taken from the first member, shared by all. */
export interface HubSettings {
  readonly logger: Logger;
  readonly clock: Clock;
  /** Retry timing while etcd fails. */
  readonly backoff: Backoff;
  /** Keys per page of the ranged read (pages are read at one revision). */
  readonly readPageSize: number;
}

/** Error reported while etcd is failing; `cause` is the underlying transport's error. */
export class EtcdWatchError extends Error {
  override readonly name = 'EtcdWatchError';
}

const hubs = new WeakMap<EtcdTransport, Map<string, WatchHub>>();

/**
 * Joins the shared watch of `prefix` (relative to `namespace`) on `transport`, starting it if this is the first
 * member. The listener gets the current state at once if the hub has one (`reset`, then `error` if failing).
 * Returns `leave`: idempotent; the last member to leave stops the watch.
 */
export function joinWatch(
  transport: EtcdTransport,
  namespace: string,
  prefix: string,
  settings: HubSettings,
  listener: WatchListener,
): () => void {
  let byPrefix = hubs.get(transport);
  if (!byPrefix) {
    byPrefix = new Map();
    hubs.set(transport, byPrefix);
  }
  const id = `${namespace}\u0000${prefix}`;
  let hub = byPrefix.get(id);
  if (!hub) {
    const map = byPrefix;
    hub = new WatchHub(transport, namespace, prefix, settings, () => {
      map.delete(id);
      if (map.size === 0) hubs.delete(transport);
    });
    byPrefix.set(id, hub);
  }
  return hub.join(listener);
}

/** Number of live shared watches on `transport` (for tests and diagnostics). @internal */
export function sharedWatchCount(transport: EtcdTransport): number {
  return hubs.get(transport)?.size ?? 0;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** grpc-js appends a timestamp to some messages; strip it so one failure episode has one stable message. */
function stableMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)/g, '');
}

type Phase = 'reading' | 'connecting' | 'watching' | 'waiting' | 'closed';

const lenientUtf8 = new TextDecoder();

class WatchHub {
  readonly #transport: EtcdTransport;
  readonly #prefix: string;
  readonly #settings: HubSettings;
  readonly #onClosed: () => void;
  /** The namespace's length in bytes, and the full prefix etcd sees (namespace + prefix). */
  readonly #namespaceLength: number;
  readonly #fullPrefix: Uint8Array;
  readonly #listeners = new Set<WatchListener>();
  /** Counts re-reads and reconnects (`sdkit.source.resyncs`, `sdkit.source.reconnects`). */
  readonly #telemetry: SourceTelemetry;

  #phase: Phase = 'reading';
  /** Bumped whenever the current read/stream is abandoned; stale callbacks compare and bail. */
  #generation = 0;
  #stream: WatchStream | undefined;
  /** The current stream replaces one the transport found quiet (not a failure): see {@link #onResponse}. */
  #renewal = false;
  #cancelTimer: (() => void) | undefined;
  #attempt = 0;

  /** The prefix as of {@link #revision}: key → raw value. Valid once {@link #hasSnapshot}. */
  readonly #entries = new Map<string, Uint8Array>();
  #hasSnapshot = false;
  /** Every event up to and including this store revision is applied; the watch resumes at revision + 1. */
  #revision = 0;
  #clusterId: string | undefined;
  /** Set when the revision we hold is unusable (compacted, or a different store): the next attempt re-reads. */
  #needRead = true;
  /** Fragments of a watch response still being received. */
  #pending: WatchEvent[] = [];
  #error: Error | undefined;

  constructor(
    transport: EtcdTransport,
    namespace: string,
    prefix: string,
    settings: HubSettings,
    onClosed: () => void,
  ) {
    this.#transport = transport;
    this.#prefix = prefix;
    this.#settings = settings;
    this.#onClosed = onClosed;
    const ns = encodeKey(namespace);
    this.#namespaceLength = ns.length;
    this.#fullPrefix = concatBytes(ns, encodeKey(prefix));
    this.#telemetry = new SourceTelemetry({ source: ETCD_SOURCE, target: etcdTarget(namespace, prefix) });
    this.#read();
  }

  join(listener: WatchListener): () => void {
    this.#listeners.add(listener);
    if (this.#hasSnapshot) this.#call(listener, (l) => l.reset(this.#entries));
    if (this.#error) {
      const err = this.#error;
      this.#call(listener, (l) => l.error(err));
    }
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#close();
    };
  }

  #close(): void {
    this.#phase = 'closed';
    this.#generation++;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.#dropStream();
    this.#entries.clear();
    this.#onClosed();
    this.#settings.logger.debug({ prefix: this.#prefix }, 'sdkit: etcd watch stopped');
  }

  #dropStream(): void {
    const stream = this.#stream;
    this.#stream = undefined;
    this.#pending = [];
    stream?.close();
  }

  #call(listener: WatchListener, fn: (l: WatchListener) => void): void {
    try {
      fn(listener);
    } catch (err) {
      this.#settings.logger.error({ prefix: this.#prefix, err }, 'sdkit: an etcd watch listener threw');
    }
  }

  #broadcast(fn: (l: WatchListener) => void): void {
    // A listener may leave (even close the hub) from inside its callback: skip members that are gone.
    for (const listener of [...this.#listeners]) if (this.#listeners.has(listener)) this.#call(listener, fn);
  }

  // --- reading ---------------------------------------------------------------------------------------------

  #read(): void {
    if (this.#phase === 'closed') return;
    const gen = ++this.#generation;
    this.#phase = 'reading';
    this.#readAll().then(
      (res) => {
        if (gen !== this.#generation) return;
        this.#applyRead(res);
        // A listener may have closed the hub from inside `reset`.
        if (gen === this.#generation) this.#watch();
      },
      (err: unknown) => {
        if (gen !== this.#generation) return;
        this.#fail(err, 'read');
      },
    );
  }

  /** Reads the whole prefix at one revision, page by page. */
  async #readAll(): Promise<{ header: EtcdHeader; kvs: RangeResult['kvs'][number][] }> {
    const rangeEnd = prefixRangeEnd(this.#fullPrefix);
    const kvs: RangeResult['kvs'][number][] = [];
    let key = this.#fullPrefix;
    let header: EtcdHeader | undefined;
    for (;;) {
      const res = await this.#transport.range({
        key,
        rangeEnd,
        limit: this.#settings.readPageSize,
        ...(header ? { revision: header.revision } : {}),
      });
      header ??= res.header;
      for (const kv of res.kvs) kvs.push(kv);
      const last = res.kvs[res.kvs.length - 1];
      if (!res.more || !last) break;
      key = concatBytes(last.key, Uint8Array.of(0));
    }
    return { header: header!, kvs };
  }

  #applyRead(res: { header: EtcdHeader; kvs: RangeResult['kvs'][number][] }): void {
    this.#entries.clear();
    for (const kv of res.kvs) {
      const key = this.#keyOf(kv.key);
      if (key !== undefined) this.#entries.set(key, kv.value);
    }
    this.#revision = Number(res.header.revision);
    this.#clusterId = res.header.clusterId || undefined;
    if (this.#hasSnapshot) this.#telemetry.resynced();
    this.#hasSnapshot = true;
    this.#needRead = false;
    this.#error = undefined;
    this.#settings.logger.debug(
      { prefix: this.#prefix, revision: this.#revision, count: this.#entries.size },
      'sdkit: etcd prefix read',
    );
    this.#broadcast((l) => l.reset(this.#entries));
  }

  // --- watching --------------------------------------------------------------------------------------------

  /** Opens the watch from the revision after the last one applied; `renewal`: it replaces a quiet stream. */
  #watch(renewal = false): void {
    if (this.#phase === 'closed') return;
    const gen = ++this.#generation;
    this.#phase = 'connecting';
    this.#renewal = renewal;
    this.#stream = this.#transport.watch(
      {
        key: this.#fullPrefix,
        rangeEnd: prefixRangeEnd(this.#fullPrefix),
        startRevision: String(this.#revision + 1),
      },
      {
        response: (res) => {
          if (gen === this.#generation) this.#onResponse(res);
        },
        failed: (err) => {
          if (gen === this.#generation) this.#fail(err, 'watch');
        },
        quiet: () => {
          if (gen !== this.#generation) return;
          // Nothing is known to be wrong: resume from our revision at once, without an error or a backoff.
          this.#settings.logger.debug(
            { prefix: this.#prefix, revision: this.#revision },
            'sdkit: etcd watch renewed',
          );
          this.#stream = undefined;
          this.#pending = [];
          this.#watch(true);
        },
      },
    );
  }

  #onResponse(res: WatchResponse): void {
    const compacted = Number(res.compactRevision);
    if (compacted > 0 && this.#renewal && !this.#error) {
      // A renewal of a quiet stream: the prefix had no event since the compacted revision, as far as we know; a
      // fresh read settles it without reporting an error for what is most likely no change at all.
      this.#settings.logger.info(
        { prefix: this.#prefix, revision: this.#revision, compactRevision: compacted },
        'sdkit: etcd compacted past the revision of a quiet watch; re-reading the prefix',
      );
      this.#needRead = true;
      this.#dropStream();
      this.#read();
      return;
    }
    if (compacted > 0) {
      // Our revision is gone from etcd's history: the events in between are lost, only a fresh read can tell.
      this.#settings.logger.info(
        { prefix: this.#prefix, revision: this.#revision, compactRevision: compacted },
        'sdkit: etcd compacted past the watch revision; re-reading the prefix',
      );
      this.#needRead = true;
      if (!this.#error) {
        // Only a watch just created can be told this: until the fresh read lands, the set may be missing events.
        this.#error = new EtcdWatchError(
          `etcd compacted revision ${this.#revision + 1} of prefix ${JSON.stringify(this.#prefix)} away (compact revision ${compacted}); re-reading`,
        );
        const error = this.#error;
        this.#broadcast((l) => l.error(error));
      }
      this.#retry();
      return;
    }
    if (res.created) {
      if (res.canceled) {
        this.#fail(new Error(`etcd refused the watch: ${res.cancelReason || 'no reason given'}`), 'watch');
        return;
      }
      if (this.#storeChanged(res.header)) {
        this.#settings.logger.info(
          {
            prefix: this.#prefix,
            revision: this.#revision,
            storeRevision: Number(res.header.revision),
            clusterId: res.header.clusterId,
          },
          'sdkit: etcd is a different store than before (revision went back or cluster changed); re-reading',
        );
        this.#needRead = true;
        this.#dropStream();
        this.#read();
        return;
      }
      this.#phase = 'watching';
      if (this.#attempt > 0) this.#telemetry.reconnected(); // after a failure, not the renewal of a quiet stream
      this.#attempt = 0;
      if (this.#error) this.#confirmResumed(this.#generation);
      return;
    }
    if (res.canceled) {
      this.#fail(new Error(`etcd canceled the watch: ${res.cancelReason || 'no reason given'}`), 'watch');
      return;
    }
    if (res.events.length > 0) for (const ev of res.events) this.#pending.push(ev);
    if (res.fragment) return;
    const events = this.#pending;
    this.#pending = [];
    if (events.length > 0) {
      // Events on a resumed watch: it caught up from history, so it was not compacted (see #confirmResumed). The
      // change they make clears the error in the same event.
      const wasFailing = this.#error !== undefined;
      if (wasFailing) this.#healthy(false);
      if (!this.#applyEvents(events) && wasFailing) this.#broadcast((l) => l.healthy());
    }
    // else: a progress notification; its header revision is deliberately not used (it may run ahead of events).
  }

  /** A lower revision or another cluster id than we hold means etcd was wiped or replaced. */
  #storeChanged(header: EtcdHeader): boolean {
    return (
      Number(header.revision) < this.#revision ||
      (this.#clusterId !== undefined && header.clusterId !== '' && header.clusterId !== this.#clusterId)
    );
  }

  /** Applies one watch response; returns whether it told the members of a change. */
  #applyEvents(events: readonly WatchEvent[]): boolean {
    // Coalesce per key, in revision order: the last event for a key decides (a delete then a re-put is a put).
    const last = new Map<string, Uint8Array | null>();
    let revision = this.#revision;
    for (const ev of events) {
      const rev = Number(ev.kv.modRevision);
      if (rev <= this.#revision) continue; // already applied (never expected; guards against replays)
      if (rev > revision) revision = rev;
      const key = this.#keyOf(ev.kv.key);
      if (key === undefined) continue;
      last.set(key, ev.type === 'delete' ? null : ev.kv.value);
    }
    this.#revision = revision;
    if (last.size === 0) return false;
    const puts = new Map<string, Uint8Array>();
    const deletes: string[] = [];
    for (const [key, value] of last) {
      if (value === null) {
        if (this.#entries.delete(key)) deletes.push(key);
      } else {
        this.#entries.set(key, value);
        puts.set(key, value);
      }
    }
    if (puts.size === 0 && deletes.length === 0) return false;
    this.#broadcast((l) => l.change(puts, deletes));
    return true;
  }

  /** The key relative to the client's namespace, or undefined (logged) if it is outside the prefix or not UTF-8. */
  #keyOf(raw: Uint8Array): string | undefined {
    if (!startsWithBytes(raw, this.#fullPrefix)) {
      this.#settings.logger.warn(
        { prefix: this.#prefix, key: clip(lenientUtf8.decode(raw), MAX_LOGGED_KEY_LENGTH) },
        'sdkit: etcd returned a key outside the watched prefix; ignored',
      );
      return undefined;
    }
    try {
      return strictUtf8.decode(raw.subarray(this.#namespaceLength));
    } catch {
      this.#settings.logger.warn(
        { prefix: this.#prefix, key: clip(lenientUtf8.decode(raw), MAX_LOGGED_KEY_LENGTH) },
        'sdkit: etcd key is not valid UTF-8; ignored',
      );
      return undefined;
    }
  }

  // --- failures --------------------------------------------------------------------------------------------

  #fail(err: unknown, during: 'read' | 'watch'): void {
    if (this.#phase === 'closed') return;
    // etcd3 refreshes an expired auth token only on unary calls (a read), never for a watch stream: go through a
    // read so the next watch carries a fresh token.
    if (during === 'watch' && this.#transport.classify(err) === 'unauthenticated') this.#needRead = true;
    const message = `etcd ${during} of prefix ${JSON.stringify(this.#prefix)} failed: ${stableMessage(err)}`;
    if (this.#error?.message !== message) {
      this.#error = new EtcdWatchError(message, { cause: err });
      this.#settings.logger.warn(
        { prefix: this.#prefix, err: message },
        'sdkit: etcd watch failing; retrying',
      );
      const error = this.#error;
      this.#broadcast((l) => l.error(error));
    }
    this.#retry();
  }

  /** Abandons the current read/stream and tries again after the backoff delay. */
  #retry(): void {
    if (this.#phase === 'closed') return; // e.g. the last listener left from inside `error`
    this.#generation++;
    this.#dropStream();
    this.#cancelTimer?.();
    this.#phase = 'waiting';
    const delay = this.#settings.backoff.delay(this.#attempt);
    this.#attempt++;
    this.#cancelTimer = this.#settings.clock.setTimeout(() => {
      this.#cancelTimer = undefined;
      if (this.#phase !== 'waiting') return;
      if (this.#needRead || !this.#hasSnapshot) this.#read();
      else this.#watch();
    }, delay);
  }

  /**
   * A watch resumed after a failure is confirmed (`created`) at once, but if its revision was compacted meanwhile
   * etcd cancels it with `compact_revision` only up to ~100 ms later: `created` alone must not clear the error, or
   * the last set would briefly pass for current. Events mean the watch caught up from history (a compacted one gets
   * none); otherwise a count-only read at the revision we hold tells: compacted (or a future revision: another
   * store) means a fresh read, which clears the error once its set is applied. Only done once etcd answered, so an
   * outage costs no extra calls.
   */
  #confirmResumed(gen: number): void {
    this.#transport
      .range({
        key: this.#fullPrefix,
        rangeEnd: prefixRangeEnd(this.#fullPrefix),
        revision: String(this.#revision),
        countOnly: true,
        limit: 1,
      })
      .then(
        () => {
          if (gen === this.#generation && this.#error) this.#healthy(true);
        },
        (err: unknown) => {
          if (gen !== this.#generation) return;
          const kind = this.#transport.classify(err);
          if (kind === 'compacted' || kind === 'future-revision') {
            this.#settings.logger.info(
              { prefix: this.#prefix, revision: this.#revision },
              'sdkit: etcd compacted the watch revision away (or is another store); re-reading the prefix',
            );
            this.#needRead = true;
            this.#dropStream();
            this.#read();
          } else this.#fail(err, 'watch');
        },
      );
  }

  /** The failure is over; `announce`: tell the members now (else the next change does). */
  #healthy(announce: boolean): void {
    this.#error = undefined;
    this.#settings.logger.info(
      { prefix: this.#prefix, revision: this.#revision },
      'sdkit: etcd watch resumed',
    );
    if (announce) this.#broadcast((l) => l.healthy());
  }
}
