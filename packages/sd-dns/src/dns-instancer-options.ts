import {
  type Backoff,
  type BackoffDefaults,
  type BackoffOptions,
  type Clock,
  createBackoff,
  DEFAULT_BACKOFF,
  type Logger,
  silentLogger,
  systemClock,
} from '@sdkit/sd-core';
import { describeValue } from './describe-value.js';
import { absoluteDnsName } from './dns-name.js';
import { type DnsServer, parseDnsServer, systemDnsServers } from './dns-server.js';
import type { DnsTransport } from './dns-transport.js';
import { nodeDnsTransport } from './node-dns-transport.js';

/** Options every DNS instancer takes. */
export interface DnsInstancerOptions {
  /**
   * The name to look up, e.g. `_http._tcp.example.` (SRV) or `api.example.` (A/AAAA). Always fully qualified: a
   * trailing dot is optional and no search domain of `/etc/resolv.conf` is tried.
   */
  name: string;
  /**
   * The DNS servers to ask, in order, as IP addresses with an optional port: `'127.0.0.1'`, `'127.0.0.1:5353'`,
   * `'::1'`, `'[::1]:5353'` (an IPv6 address with a port needs brackets). The next one is asked when one fails
   * (SERVFAIL, REFUSED, timeout, unreachable); NXDOMAIN from one is final. Default: the system's resolvers as
   * Node reports them (`dns.getServers()`), read again at each lookup, so `dns.setServers()` is followed.
   */
  servers?: readonly string[];
  /**
   * The floor of the refresh delay after an answer, in ms: a record's TTL below it (TTL 0, as Consul serves by
   * default, or 1 s left in a resolver's cache) counts as this. Bounds the load to one query per `minTtlMs` per
   * instancer. Default 1 000. Must be > 0 and <= `maxTtlMs`.
   */
  minTtlMs?: number;
  /**
   * The ceiling of the refresh delay after an answer, in ms: a longer TTL (a day, on records never meant for
   * discovery) counts as this, bounding how long a removed instance can stay. Default 300 000 (5 min). Also caps
   * the retry delay while lookups fail. `minTtlMs === maxTtlMs` refreshes at a fixed interval, as go-kit's
   * dnssrv does.
   */
  maxTtlMs?: number;
  /**
   * Longest wait for an answer from one server, in ms, for each exchange (the UDP query, and the TCP one when the
   * UDP answer came truncated). Default 2 000. Must be > 0.
   */
  timeoutMs?: number;
  /**
   * Retry timing while lookups fail (the shape every sdkit component shares): exponential from `initialMs`
   * (default 500) by `factor` (2) up to `maxMs` (30 000, and never more than `maxTtlMs`), each delay a random
   * time in `[d × (1 − jitter), d]` (jitter 0.5).
   */
  backoff?: BackoffOptions;
  /** Time source for refreshes, retries and timeouts. Default: the system clock (unref'd timers). */
  clock?: Clock;
  /** A pino-compatible logger. Default: silent. */
  logger?: Logger;
  /** How queries reach the servers. Default: {@link nodeDnsTransport} (UDP, TCP when truncated). */
  transport?: DnsTransport;
}

/** The option names of {@link DnsInstancerOptions}. */
export const DNS_INSTANCER_OPTIONS = [
  'name',
  'servers',
  'minTtlMs',
  'maxTtlMs',
  'timeoutMs',
  'backoff',
  'clock',
  'logger',
  'transport',
] as const;

/** Names people reach for, and the option meant. */
export const DNS_INSTANCER_OPTION_HINTS: Readonly<Record<string, string>> = {
  service: 'name',
  host: 'name',
  hostname: 'name',
  domain: 'name',
  server: 'servers',
  nameservers: 'servers',
  resolvers: 'servers',
  minTtl: 'minTtlMs',
  maxTtl: 'maxTtlMs',
  ttl: 'minTtlMs',
  ttlMs: 'minTtlMs',
  interval: 'minTtlMs',
  refreshIntervalMs: 'minTtlMs',
  timeout: 'timeoutMs',
  queryTimeoutMs: 'timeoutMs',
};

/** The defaults of {@link DnsInstancerOptions}. */
export const DNS_DEFAULTS = Object.freeze({
  minTtlMs: 1_000,
  maxTtlMs: 300_000,
  timeoutMs: 2_000,
  backoff: Object.freeze({ ...DEFAULT_BACKOFF, initialMs: 500, maxMs: 30_000 }) as BackoffDefaults,
});

/** Validated {@link DnsInstancerOptions}. */
export interface DnsSettings {
  /** Absolute, as given otherwise. */
  readonly name: string;
  /** The servers option as given (`undefined`: the system's). */
  readonly serverTexts: readonly string[] | undefined;
  readonly servers: () => readonly DnsServer[];
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
  readonly timeoutMs: number;
  readonly backoff: Backoff;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly transport: DnsTransport;
}

/**
 * Checks the shared options (`who` names the class in messages) and fills in the defaults. Unknown options are
 * the caller's to check (it knows its own).
 * @throws TypeError naming the bad option and what it should be.
 */
export function dnsSettings(who: string, options: DnsInstancerOptions): DnsSettings {
  const { name } = options;
  if (typeof name !== 'string') {
    throw new TypeError(`${who}: name must be a domain name string, got ${describeValue(name)}`);
  }
  const absolute = absoluteDnsName(name, (why) => {
    throw new TypeError(`${who}: name ${JSON.stringify(name)} is not a domain name: ${why}`);
  });
  const serverTexts = options.servers;
  let servers: () => readonly DnsServer[] = systemDnsServers;
  if (serverTexts !== undefined) {
    if (!Array.isArray(serverTexts) || serverTexts.length === 0) {
      throw new TypeError(
        `${who}: servers must be a non-empty array of addresses such as ["127.0.0.1:5353", "[::1]:53"], got ${describeValue(serverTexts)}`,
      );
    }
    const parsed = serverTexts.map((text: unknown) => {
      const server = typeof text === 'string' ? parseDnsServer(text) : 'it is not a string';
      if (typeof server === 'string') {
        throw new TypeError(
          `${who}: servers has ${describeValue(text)}, which is not a DNS server address: ${server} (write "127.0.0.1", "127.0.0.1:5353" or "[::1]:5353")`,
        );
      }
      return server;
    });
    const fixed = Object.freeze(parsed);
    servers = () => fixed;
  }
  const minTtlMs = positive(who, 'minTtlMs', options.minTtlMs, DNS_DEFAULTS.minTtlMs);
  const maxTtlMs = positive(who, 'maxTtlMs', options.maxTtlMs, Math.max(DNS_DEFAULTS.maxTtlMs, minTtlMs));
  if (maxTtlMs < minTtlMs) {
    throw new TypeError(`${who}: maxTtlMs (${maxTtlMs}) must be >= minTtlMs (${minTtlMs})`);
  }
  const timeoutMs = positive(who, 'timeoutMs', options.timeoutMs, DNS_DEFAULTS.timeoutMs);
  const backoff = createBackoff(options.backoff, who, DNS_DEFAULTS.backoff);
  const clock = options.clock ?? systemClock;
  if (typeof clock?.setTimeout !== 'function' || typeof clock.now !== 'function') {
    throw new TypeError(`${who}: clock must be a Clock ({ now, setTimeout }), got ${describeValue(clock)}`);
  }
  const logger = options.logger ?? silentLogger;
  if (typeof logger?.warn !== 'function' || typeof logger.debug !== 'function') {
    throw new TypeError(`${who}: logger must be a pino-compatible logger, got ${describeValue(logger)}`);
  }
  const transport = options.transport ?? nodeDnsTransport;
  if (typeof transport?.exchange !== 'function') {
    throw new TypeError(
      `${who}: transport must be a DnsTransport ({ exchange }), got ${describeValue(transport)}`,
    );
  }
  return {
    name: absolute,
    serverTexts: serverTexts === undefined ? undefined : Object.freeze([...serverTexts]),
    servers,
    minTtlMs,
    maxTtlMs,
    timeoutMs,
    backoff,
    clock,
    logger,
    transport,
  };
}

function positive(who: string, option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`${who}: ${option} must be a finite number of ms > 0, got ${describeValue(value)}`);
  }
  return value;
}
