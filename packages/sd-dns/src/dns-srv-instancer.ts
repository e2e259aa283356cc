import {
  assertKnownOptions,
  type Instance,
  InstanceCache,
  type Instancer,
  type InstancerEvent,
} from '@sdkit/sd-core';
import type { Observable } from 'rxjs';
import { describeValue } from './describe-value.js';
import {
  DNS_INSTANCER_OPTION_HINTS,
  DNS_INSTANCER_OPTIONS,
  type DnsInstancerOptions,
  dnsSettings,
} from './dns-instancer-options.js';
import { lookup } from './dns-lookup.js';
import type { DnsRecord } from './dns-message.js';
import { DnsRefresher } from './dns-refresher.js';

/** Options of {@link DnsSrvInstancer}: those of every DNS instancer; `name` is the SRV name. */
export type DnsSrvInstancerOptions = DnsInstancerOptions;

/** The `metadata` of an instance found through SRV: the record's fields (RFC 2782). */
export type SrvMetadata = {
  /** Lower is preferred: clients use the lowest priority whose targets answer. */
  readonly priority: number;
  /** Relative share among targets of the same priority (lb's `weighted` reads `metadata.weight`). */
  readonly weight: number;
  /** The target host, lower case, without a trailing dot. */
  readonly target: string;
  /** The port. */
  readonly port: number;
};

/**
 * The targets of one DNS SRV name (`_http._tcp.example.`), refreshed when the records' TTL runs out (see
 * {@link Instancer} for the event contract). Each SRV record is an instance with key and address
 * `target:port` (the target lower-cased, without its trailing dot; the Factory resolves it when it dials) and
 * {@link SrvMetadata} (`priority`, `weight`, `target`, `port`) as metadata; the TTL is not metadata, so an
 * unchanged record set emits nothing.
 *
 * - Lookups go to `servers` (default: the system's) over UDP with EDNS(0), over TCP when the answer is
 *   truncated; CNAMEs are followed. The next lookup is due when the answer's smallest TTL runs out, clamped to
 *   `[minTtlMs, maxTtlMs]` (default 1 s … 5 min).
 * - An answer without SRV records (NOERROR/NODATA) is a real answer: the set becomes empty. So is a single
 *   record with target `.` ("decidedly not available", RFC 2782). Records with port 0 are skipped; of two records
 *   with the same target and port, the lower priority (then the higher weight) is kept.
 * - Failures are data: NXDOMAIN, SERVFAIL, REFUSED, timeouts, an unreachable server and unreadable answers emit
 *   `{ instances: lastKnownGood, error: DnsError }` (never an empty set because of a failure) and are retried
 *   with backoff until an answer clears the error. The first event is the first answer, or the first failure
 *   with `instances: []`.
 *
 * Timers and sockets never hold the process. `stop()` aborts the lookup in flight and completes `events$`.
 * @throws TypeError for a bad name, unknown options or bad option values.
 */
export class DnsSrvInstancer implements Instancer, Disposable {
  /** Hot; replays the latest event to each new subscriber; never errors; completes after {@link stop}. */
  readonly events$: Observable<InstancerEvent>;
  /** The SRV name looked up, absolute (with its trailing dot). */
  readonly name: string;
  /** The servers asked, as given; `undefined`: the system's resolvers. */
  readonly servers: readonly string[] | undefined;

  readonly #cache: InstanceCache;
  readonly #refresher: DnsRefresher;
  #stopped = false;

  constructor(options: DnsSrvInstancerOptions) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError(
        `DnsSrvInstancer: options must be an object with a name such as "_http._tcp.example.", got ${describeValue(options)}`,
      );
    }
    if (Object.hasOwn(options, 'port') || Object.hasOwn(options, 'family')) {
      throw new TypeError(
        'DnsSrvInstancer: each SRV record names its own target and port; for a name with A/AAAA records and a fixed port, use DnsAddressInstancer({ name, port })',
      );
    }
    assertKnownOptions('DnsSrvInstancer', options, DNS_INSTANCER_OPTIONS, DNS_INSTANCER_OPTION_HINTS);
    const settings = dnsSettings('DnsSrvInstancer', options);
    this.name = settings.name;
    this.servers = settings.serverTexts;
    // Telemetry (docs/telemetry.md): source "dns", the name looked up as its target.
    this.#cache = new InstanceCache({ source: 'dns', target: settings.name });
    this.events$ = this.#cache.events$;
    this.#refresher = new DnsRefresher(settings, this.#cache, `SRV ${settings.name}`, async (signal) => {
      const answer = await lookup(settings.name, 'SRV', settings, signal);
      return { instances: srvInstances(answer.records), ttlMs: answer.ttlMs };
    });
    this.#refresher.start();
  }

  /** The latest event, synchronously; `undefined` until the first answer (or failure). */
  current(): InstancerEvent | undefined {
    return this.#cache.current();
  }

  /** Aborts the lookup in flight, cancels the next one, and completes `events$`. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#refresher.stop();
    this.#cache.close();
  }

  /** Same as {@link stop}. */
  [Symbol.dispose](): void {
    this.stop();
  }
}

/** The instances of an SRV answer (see {@link DnsSrvInstancer} for the rules). */
export function srvInstances(records: readonly Extract<DnsRecord, { type: 'SRV' }>[]): Instance[] {
  const byKey = new Map<string, Instance & { metadata: SrvMetadata }>();
  for (const record of records) {
    const target = record.target.replace(/\.$/, '').toLowerCase();
    if (target === '' || record.port === 0) continue;
    const key = `${target}:${record.port}`;
    const metadata: SrvMetadata = {
      priority: record.priority,
      weight: record.weight,
      target,
      port: record.port,
    };
    const seen = byKey.get(key);
    if (
      seen !== undefined &&
      (seen.metadata.priority < metadata.priority ||
        (seen.metadata.priority === metadata.priority && seen.metadata.weight >= metadata.weight))
    ) {
      continue;
    }
    byKey.set(key, { key, address: key, metadata });
  }
  return [...byKey.values()];
}
