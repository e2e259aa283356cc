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
  type DnsSettings,
  dnsSettings,
} from './dns-instancer-options.js';
import { type DnsAnswer, lookup } from './dns-lookup.js';
import type { DnsRecord } from './dns-message.js';
import { type DnsLookupResult, DnsRefresher } from './dns-refresher.js';

/** Which address records a {@link DnsAddressInstancer} asks for: A (4), AAAA (6) or both (`'any'`). */
export type DnsAddressFamily = 4 | 6 | 'any';

/** Options of {@link DnsAddressInstancer}. */
export interface DnsAddressInstancerOptions extends DnsInstancerOptions {
  /** The port every address is dialled on, 1–65535. */
  port: number;
  /**
   * A records (`4`), AAAA records (`6`) or both (`'any'`, the default, as gRPC's DNS resolver does): with
   * `'any'` both are asked at once, and the lookup fails if either fails (NODATA for one is fine).
   */
  family?: DnsAddressFamily;
}

/** The `metadata` of an instance found through A/AAAA records. */
export type AddressMetadata = {
  /** 4 for an A record, 6 for AAAA. */
  readonly family: 4 | 6;
};

const OPTIONS = [...DNS_INSTANCER_OPTIONS, 'port', 'family'] as const;
const HINTS = { ...DNS_INSTANCER_OPTION_HINTS, ipVersion: 'family', ip: 'family', type: 'family' };

/**
 * The addresses of one DNS name (`api.example.`) from its A and/or AAAA records, each dialled on one `port`,
 * refreshed when the records' TTL runs out (see {@link Instancer} for the event contract). Each address is an
 * instance with key and address `ip:port` (`[ip]:port` for IPv6) and {@link AddressMetadata} (`family`).
 *
 * Lookups, TTLs and failures work as in `DnsSrvInstancer`: the next lookup when the smallest TTL (of both
 * families, with `'any'`) runs out, clamped to `[minTtlMs, maxTtlMs]`; an answer without addresses
 * (NOERROR/NODATA) empties the set; NXDOMAIN, SERVFAIL, REFUSED, timeouts, unreachable servers and unreadable
 * answers emit `{ instances: lastKnownGood, error: DnsError }` and are retried with backoff.
 *
 * Timers and sockets never hold the process. `stop()` aborts the lookups in flight and completes `events$`.
 * @throws TypeError for a bad name, port or family, unknown options or bad option values.
 */
export class DnsAddressInstancer implements Instancer, Disposable {
  /** Hot; replays the latest event to each new subscriber; never errors; completes after {@link stop}. */
  readonly events$: Observable<InstancerEvent>;
  /** The name looked up, absolute (with its trailing dot). */
  readonly name: string;
  /** The port every address is dialled on. */
  readonly port: number;
  /** Which address records are asked for. */
  readonly family: DnsAddressFamily;
  /** The servers asked, as given; `undefined`: the system's resolvers. */
  readonly servers: readonly string[] | undefined;

  readonly #cache: InstanceCache;
  readonly #refresher: DnsRefresher;
  #stopped = false;

  constructor(options: DnsAddressInstancerOptions) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError(
        `DnsAddressInstancer: options must be an object with a name and a port, such as { name: "api.example.", port: 8080 }, got ${describeValue(options)}`,
      );
    }
    assertKnownOptions('DnsAddressInstancer', options, OPTIONS, HINTS);
    const settings = dnsSettings('DnsAddressInstancer', options);
    const { port } = options;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new TypeError(
        `DnsAddressInstancer: port must be an integer from 1 to 65535, got ${describeValue(port)}`,
      );
    }
    const family = options.family ?? 'any';
    if (family !== 4 && family !== 6 && family !== 'any') {
      throw new TypeError(`DnsAddressInstancer: family must be 4, 6 or "any", got ${describeValue(family)}`);
    }
    this.name = settings.name;
    this.port = port;
    this.family = family;
    this.servers = settings.serverTexts;
    // Telemetry (docs/telemetry.md): source "dns", the name looked up as its target.
    this.#cache = new InstanceCache({ source: 'dns', target: `${settings.name}:${port}` });
    this.events$ = this.#cache.events$;
    const what = `${family === 4 ? 'A' : family === 6 ? 'AAAA' : 'A/AAAA'} ${settings.name}`;
    this.#refresher = new DnsRefresher(settings, this.#cache, what, (signal) =>
      lookupAddresses(settings, family, port, signal),
    );
    this.#refresher.start();
  }

  /** The latest event, synchronously; `undefined` until the first answer (or failure). */
  current(): InstancerEvent | undefined {
    return this.#cache.current();
  }

  /** Aborts the lookups in flight, cancels the next ones, and completes `events$`. Idempotent. */
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

async function lookupAddresses(
  settings: DnsSettings,
  family: DnsAddressFamily,
  port: number,
  signal: AbortSignal,
): Promise<DnsLookupResult> {
  if (family !== 'any') {
    const answer = await lookup(settings.name, family === 4 ? 'A' : 'AAAA', settings, signal);
    return { instances: addressInstances(answer.records, port), ttlMs: answer.ttlMs };
  }
  // Both at once; the first failure aborts the other.
  const both = new AbortController();
  const onStop = (): void => both.abort(signal.reason);
  signal.addEventListener('abort', onStop, { once: true });
  try {
    const failFast = <T>(promise: Promise<T>): Promise<T> =>
      promise.catch((error: unknown) => {
        both.abort(error);
        throw error;
      });
    const [a, aaaa] = await Promise.all([
      failFast(lookup(settings.name, 'A', settings, both.signal)),
      failFast(lookup(settings.name, 'AAAA', settings, both.signal)),
    ]);
    return {
      instances: [...addressInstances(a.records, port), ...addressInstances(aaaa.records, port)],
      ttlMs: smallest(a, aaaa),
    };
  } finally {
    signal.removeEventListener('abort', onStop);
  }
}

function smallest(a: DnsAnswer, b: DnsAnswer): number | undefined {
  if (a.ttlMs === undefined) return b.ttlMs;
  if (b.ttlMs === undefined) return a.ttlMs;
  return Math.min(a.ttlMs, b.ttlMs);
}

/** The instances of A/AAAA records on `port`. */
export function addressInstances(
  records: readonly Extract<DnsRecord, { type: 'A' | 'AAAA' }>[],
  port: number,
): Instance[] {
  return records.map((record) => {
    const key = record.type === 'AAAA' ? `[${record.address}]:${port}` : `${record.address}:${port}`;
    const metadata: AddressMetadata = { family: record.type === 'AAAA' ? 6 : 4 };
    return { key, address: key, metadata };
  });
}
