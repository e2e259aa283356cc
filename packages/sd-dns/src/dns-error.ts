/**
 * What can go wrong with a DNS lookup, as a discriminant ({@link DnsError.kind}):
 * - `'nxdomain'`: a server answered that the name does not exist (RCODE 3). Deleting the last record of a name
 *   in a zone makes it NXDOMAIN, so this is also how "no instances left" can look — still an error: the last known
 *   instances are kept (an Endpointer's `invalidateOnErrorMs` drops them after a while, if wanted).
 * - `'servfail'`: the server could not answer (RCODE 2): a zone that failed to load, an upstream that is down,
 *   a DNSSEC failure.
 * - `'refused'`: the server will not answer this question (RCODE 5): not authoritative and not recursive for it,
 *   or an ACL.
 * - `'rcode'`: any other error RCODE (FORMERR, NOTIMP, …); {@link DnsError.rcode} says which.
 * - `'timeout'`: no answer within `timeoutMs`.
 * - `'unreachable'`: the server cannot be reached: nothing listens on its port (ICMP port unreachable, a refused
 *   TCP connection), no route, a connection reset or closed before the answer.
 * - `'malformed'`: an answer that cannot be read, that answers another question, or whose CNAME chain loops or
 *   is longer than 8.
 * - `'no-servers'`: no server to ask (the system reports none, see `dns.getServers()`).
 */
export type DnsErrorKind =
  | 'nxdomain'
  | 'servfail'
  | 'refused'
  | 'rcode'
  | 'timeout'
  | 'unreachable'
  | 'malformed'
  | 'no-servers';

/** Where a {@link DnsError} happened, besides its kind and message. */
export interface DnsErrorDetails {
  /** The name asked for, absolute (with its trailing dot). */
  readonly question: string;
  /** The record type asked for. */
  readonly type: string;
  /** The server that failed, as `host:port` (`[v6]:port`); absent for `'no-servers'`. */
  readonly server?: string;
  /** The response code, when a server answered with an error code. */
  readonly rcode?: number;
  /** When several servers were tried and all failed: each one's error, in the order tried. */
  readonly attempts?: readonly DnsError[];
  readonly cause?: unknown;
}

/**
 * A failed DNS lookup, as the `error` of a DNS instancer's event (which then still holds the last known
 * instances). The instancer keeps retrying with backoff; the next good answer clears it. When several servers were
 * tried, the error is the first server's (its `kind`, `server`), with every server's in {@link attempts}, and the
 * message names them all.
 */
export class DnsError extends Error {
  override readonly name = 'DnsError';
  /** What went wrong (see {@link DnsErrorKind}). */
  readonly kind: DnsErrorKind;
  /** The name asked for, absolute (with its trailing dot). */
  readonly question: string;
  /** The record type asked for (`SRV`, `A`, `AAAA`). */
  readonly type: string;
  /** The server that failed, as `host:port` (`[v6]:port`); `undefined` for `'no-servers'`. */
  readonly server: string | undefined;
  /** The response code, when a server answered with an error code; `undefined` otherwise. */
  readonly rcode: number | undefined;
  /** When several servers were tried and all failed: each one's error, in the order tried; else `undefined`. */
  readonly attempts: readonly DnsError[] | undefined;

  constructor(kind: DnsErrorKind, message: string, details: DnsErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.kind = kind;
    this.question = details.question;
    this.type = details.type;
    this.server = details.server;
    this.rcode = details.rcode;
    this.attempts = details.attempts;
  }
}

/** RCODE names (RFC 1035, 2136, 6895) for messages. */
const RCODE_NAMES: Readonly<Record<number, string>> = {
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
  6: 'YXDOMAIN',
  7: 'YXRRSET',
  8: 'NXRRSET',
  9: 'NOTAUTH',
  10: 'NOTZONE',
};

/** The name of an RCODE, e.g. `NXDOMAIN`, or `RCODE 12` for one without a name here. */
export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE ${rcode}`;
}

/** The {@link DnsErrorKind} of an error RCODE. */
export function rcodeKind(rcode: number): DnsErrorKind {
  return rcode === 3 ? 'nxdomain' : rcode === 2 ? 'servfail' : rcode === 5 ? 'refused' : 'rcode';
}
