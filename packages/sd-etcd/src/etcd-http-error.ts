/**
 * The error of the HTTP/JSON etcd transport, and how an etcd answer (gRPC code, HTTP status, message) maps to
 * sdkit's {@link EtcdErrorKind}. Portable.
 * @internal
 * @packageDocumentation
 */
import type { EtcdErrorKind } from './transport.js';

/**
 * What an {@link EtcdHttpError} is made of.
 * @inline Not exported: the API reference shows it in the constructor's signature.
 */
export interface EtcdHttpErrorInit {
  readonly kind: EtcdErrorKind;
  /** The gRPC status code etcd answered, if it answered one. */
  readonly code?: number | undefined;
  /** The HTTP status of the answer, if there was one. */
  readonly status?: number | undefined;
  /** etcd's own message (e.g. `etcdserver: permission denied`), if it gave one. */
  readonly etcdMessage?: string | undefined;
  /** The endpoint called (`http(s)://host:port`). */
  readonly endpoint?: string | undefined;
  /** The gateway path called (e.g. `/v3/kv/range`). */
  readonly path?: string | undefined;
  readonly cause?: unknown;
}

/**
 * Every failure of the HTTP transport: `kind` says what it means to sdkit (the transport's `classify` returns it),
 * `code` / `status` / `etcdMessage` are etcd's answer when there was one. The message names the endpoint and path
 * and says what went wrong; it never contains a password or an auth token.
 */
export class EtcdHttpError extends Error {
  override readonly name = 'EtcdHttpError';
  /** What the failure means to sdkit: one of the kinds in this union (`'unavailable'`: no answer, try again). */
  readonly kind: EtcdErrorKind;
  /** The gRPC status code etcd answered (e.g. 7 for permission denied); `undefined` without an etcd answer. */
  readonly code: number | undefined;
  /** The HTTP status of etcd's answer; `undefined` without one (network failure, timeout, error in a stream). */
  readonly status: number | undefined;
  /** etcd's message, e.g. `etcdserver: requested lease not found`; `undefined` without one. */
  readonly etcdMessage: string | undefined;
  /** The endpoint called, if any. */
  readonly endpoint: string | undefined;
  /** The gateway path called, if any. */
  readonly path: string | undefined;

  constructor(message: string, init: EtcdHttpErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.kind = init.kind;
    this.code = init.code;
    this.status = init.status;
    this.etcdMessage = init.etcdMessage;
    this.endpoint = init.endpoint;
    this.path = init.path;
  }
}

/** gRPC status codes by the names Go's `status` package prints (`rpc error: code = Unauthenticated desc = …`). */
export const GRPC_CODES: Readonly<Record<string, number>> = Object.freeze({
  OK: 0,
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
});

/**
 * etcd messages that say "try again" whatever their code (etcdserver/api/v3rpc/rpctypes). A stopping etcd ends
 * the gateway's streams with "transport is closing" (code 14) or, about one time in 25, with its own client
 * connection's "grpc: the client connection is closing" (code 1, Canceled).
 */
const TRANSIENT =
  /etcdserver: (no leader|request timed out|leader changed|too many requests|server stopped)|transport is closing|the client connection is closing/;

/**
 * What an etcd answer means: by etcd's message first where it is specific, then by gRPC `code`, then (for an
 * answer without a code, e.g. from a proxy) by HTTP `status`.
 */
export function kindOf(code: number | undefined, status: number | undefined, message = ''): EtcdErrorKind {
  if (message.includes('authentication failed, invalid user ID or password')) return 'authentication-failed';
  if (message.includes('user name is empty')) return 'missing-credentials';
  if (message.includes('required revision has been compacted')) return 'compacted';
  if (message.includes('required revision is a future revision')) return 'future-revision';
  if (TRANSIENT.test(message)) return 'unavailable';
  switch (code) {
    case 5:
      return message.includes('lease not found') ? 'lease-not-found' : 'other';
    case 7:
      return 'permission-denied';
    case 16:
      return 'unauthenticated';
    case 4:
    case 14:
      return 'unavailable';
    case undefined:
      break;
    default:
      return 'other';
  }
  switch (status) {
    case 401:
      return 'unauthenticated';
    case 404:
    case 405:
      return 'not-served';
    case 403:
      return 'permission-denied';
    case 502:
    case 503:
    case 504:
      return 'unavailable';
    default:
      return 'other';
  }
}
