/**
 * The seam between sdkit's etcd logic (watch hub, lease keeper, registrar, client readiness) and the wire: the
 * handful of etcd v3 operations sdkit needs, typed with sdkit's own types — keys and values are `Uint8Array`,
 * revisions and lease ids are decimal strings (etcd's int64s), no etcd3 or protobuf types. Two implementations:
 * gRPC over `etcd3` (`grpc-transport.ts`, Node only) and HTTP/JSON over `fetch` (`http-transport.ts`, portable).
 *
 * Keys are absolute etcd keys: a client's `namespace` is applied by the callers, not here.
 * @internal
 * @packageDocumentation
 */

/** The response header fields sdkit reads. */
export interface EtcdHeader {
  /** The store revision when the response was made (decimal). */
  readonly revision: string;
  /** The cluster id (decimal), `''` if etcd did not send one. */
  readonly clusterId: string;
}

/** One key-value. */
export interface EtcdKeyValue {
  readonly key: Uint8Array;
  /** Empty when etcd sent none (a delete event, an empty value). */
  readonly value: Uint8Array;
  /** Revision of the key's last change (decimal). */
  readonly modRevision: string;
}

/** A ranged read of `[key, rangeEnd)`. */
export interface RangeRequest {
  readonly key: Uint8Array;
  /** Exclusive end; `[0]` means "every key >= key". */
  readonly rangeEnd: Uint8Array;
  /** Read at this revision (decimal); omitted: the current one. */
  readonly revision?: string;
  /** At most this many keys (the response says `more` if there are others); omitted: no limit. */
  readonly limit?: number;
  /** Count only; no key-values. */
  readonly countOnly?: boolean;
}

/** The answer to a {@link RangeRequest}. */
export interface RangeResult {
  readonly header: EtcdHeader;
  /** In key order. Empty for `countOnly`. */
  readonly kvs: readonly EtcdKeyValue[];
  /** Whether keys beyond `limit` exist in the range. */
  readonly more: boolean;
  /** Number of keys in the range (decimal), counted from `key`. */
  readonly count: string;
}

/** A watch of `[key, rangeEnd)` from `startRevision` on, with progress notifications and fragmented responses. */
export interface WatchRequest {
  readonly key: Uint8Array;
  readonly rangeEnd: Uint8Array;
  /** First revision to deliver (decimal). */
  readonly startRevision: string;
}

/** One change in a {@link WatchResponse}. */
export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly kv: EtcdKeyValue;
}

/** One watch response, as etcd sent it (fragments are not joined here). */
export interface WatchResponse {
  readonly header: EtcdHeader;
  /** The answer to the create request. */
  readonly created: boolean;
  /** etcd ended the watch (see `cancelReason`, `compactRevision`). */
  readonly canceled: boolean;
  /** Why etcd canceled, `''` if it gave no reason. */
  readonly cancelReason: string;
  /** `'0'`, or the compaction revision when `startRevision` was compacted away (the watch is then canceled). */
  readonly compactRevision: string;
  /** More fragments of the same response follow. */
  readonly fragment: boolean;
  /** In revision order. Empty for `created`, cancelation and progress notifications. */
  readonly events: readonly WatchEvent[];
}

/** What a watch stream reports. Called asynchronously, in order; none after the stream is closed or has failed. */
export interface WatchHandlers {
  /** One response. */
  response(res: WatchResponse): void;
  /**
   * The stream failed or ended (an end is a failure: etcd never ends a watch that was not canceled). The stream is
   * closed; open a new one. Called at most once.
   */
  failed(error: Error): void;
  /**
   * The transport closed a stream that stayed silent for its idle bound (a transport that cannot tell a silent
   * stall from a quiet prefix otherwise, like HTTP): nothing is known to be wrong; open a new one from the
   * revision after the last event applied. Called at most once, instead of `failed`.
   */
  quiet(): void;
}

/** An open watch. */
export interface WatchStream {
  /** Ends the watch; no handler is called afterwards. Idempotent. */
  close(): void;
}

/** Per-call settings. */
export interface CallOptions {
  /** The call fails if etcd has not answered within this many ms (from when it is sent). */
  readonly timeoutMs?: number;
  /** Aborts the call (it then rejects). */
  readonly signal?: AbortSignal;
}

/**
 * What an etcd error means to sdkit:
 * - `lease-not-found`: the lease does not exist (expired, revoked, lost with the data);
 * - `permission-denied`: auth is enabled and the user's roles do not allow the call (not transient);
 * - `compacted`: the revision asked for was compacted away;
 * - `future-revision`: the revision asked for is ahead of the store (it is another store);
 * - `unauthenticated`: the auth token is invalid or expired (authenticate again);
 * - `authentication-failed`: etcd refused the username / password;
 * - `missing-credentials`: auth is enabled and no credentials were sent;
 * - `unavailable`: no answer (connection refused or lost, timeout, no leader, etcd stopping): try again;
 * - `circuit-open`: the transport did not try, after repeated connection failures of the host (gRPC);
 * - `not-served`: something answered, but not etcd's API on this transport (e.g. etcd's gRPC proxy has no HTTP
 *   gateway: it answers 404);
 * - `closed`: the client was closed;
 * - `other`: anything else.
 *
 * The type of `EtcdHttpError.kind`; exported so that code can name it (`switch` exhaustively, map it).
 */
export type EtcdErrorKind =
  | 'lease-not-found'
  | 'permission-denied'
  | 'compacted'
  | 'future-revision'
  | 'unauthenticated'
  | 'authentication-failed'
  | 'missing-credentials'
  | 'unavailable'
  | 'circuit-open'
  | 'not-served'
  | 'closed'
  | 'other';

/** The etcd operations of sdkit. All calls reject after {@link close} with an error classified `'closed'`. */
export interface EtcdTransport {
  /** Which wire this is. */
  readonly kind: 'grpc' | 'http';
  /** A ranged read (linearizable). */
  range(req: RangeRequest, options?: CallOptions): Promise<RangeResult>;
  /** Opens a watch; failures to open are reported through `handlers.failed`. */
  watch(req: WatchRequest, handlers: WatchHandlers): WatchStream;
  /** Grants a lease; resolves with its id and the TTL etcd chose (etcd may raise a tiny TTL). */
  leaseGrant(ttlSeconds: number, options?: CallOptions): Promise<{ id: string; ttlSeconds: number }>;
  /** Revokes a lease (deleting its keys). Resolves also if the lease did not exist. */
  leaseRevoke(leaseId: string, options?: CallOptions): Promise<void>;
  /** One keep-alive of a lease: resolves with the TTL etcd answered; `<= 0` means the lease does not exist. */
  leaseKeepAlive(leaseId: string, options?: CallOptions): Promise<number>;
  /** Puts `key = value`, attached to `lease` if given. Rejects (`lease-not-found`) if that lease is gone. */
  put(key: Uint8Array, value: Uint8Array, options?: CallOptions & { readonly lease?: string }): Promise<void>;
  /** Deletes `key` only if it is attached to `leaseId` (one transaction); resolves with whether it did. */
  deleteIfLease(key: Uint8Array, leaseId: string, options?: CallOptions): Promise<boolean>;
  /** What `error` (from any call or watch of this transport) means. */
  classify(error: unknown): EtcdErrorKind;
  /** Ends every call and watch. Idempotent. */
  close(): void;
}

const utf8 = new TextEncoder();

/** `text` as UTF-8 bytes. */
export function encodeKey(text: string): Uint8Array {
  return utf8.encode(text);
}

/** `a` followed by `b`. */
export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Whether `bytes` starts with `prefix`. */
export function startsWithBytes(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** The smallest key greater than every key with this prefix (etcd's prefix range end); `[0]` for "no end". */
export function prefixRangeEnd(prefix: Uint8Array): Uint8Array {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i]! < 0xff) {
      const end = prefix.slice(0, i + 1);
      end[i]! += 1;
      return end;
    }
  }
  return Uint8Array.of(0);
}

/** Byte-wise order of two byte strings (etcd's key order). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}
