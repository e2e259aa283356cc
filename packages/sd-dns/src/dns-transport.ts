import type { DnsServer } from './dns-server.js';

/** One message exchange with one server, as a {@link DnsTransport} gets it. */
export interface DnsExchange {
  /** Whom to ask. */
  readonly server: DnsServer;
  /** `'udp'` first; `'tcp'` when the UDP answer came truncated. */
  readonly protocol: 'udp' | 'tcp';
  /** The query message (for TCP without the two-byte length prefix: the transport adds it). */
  readonly message: Uint8Array;
  /**
   * Aborted when the exchange is no longer wanted (its `timeoutMs` passed, or the instancer stopped): the transport
   * then releases its socket at once and rejects.
   */
  readonly signal: AbortSignal;
}

/**
 * How queries reach DNS servers. The default, {@link nodeDnsTransport}, speaks DNS over UDP and TCP with
 * `node:dgram` and `node:net`; a test can pass its own. A transport never holds the process (its sockets are
 * unref'd) and never applies a timeout of its own: the caller aborts `signal`.
 */
export interface DnsTransport {
  /**
   * Sends `exchange.message` and resolves with the response message (for TCP without the length prefix): over
   * UDP the first datagram from the server whose ID (first two bytes) is the query's — others are ignored.
   * Rejects when the server cannot be reached (a `DnsError` of kind `'unreachable'`, or any error, which the
   * caller counts as unreachable) or when `signal` is aborted.
   */
  exchange(exchange: DnsExchange): Promise<Uint8Array>;
}
