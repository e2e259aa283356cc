/**
 * The handful of etcd operations leases and registrations need, behind a small interface so that the lease
 * keeper and the registrar can be unit-tested against a hand-written fake; {@link etcd3LeaseBackend} is the real
 * one, over an `etcd3` `Namespace`.
 * @module
 */
import { ClientClosedError, EtcdLeaseInvalidError, EtcdPermissionDeniedError, type Namespace } from 'etcd3';

/** One open lease keep-alive stream (etcd's bidirectional `LeaseKeepAlive` RPC). */
export interface KeepAliveStream {
  /** Asks etcd to refresh lease `leaseId`; the answer comes through `onResponse`. */
  send(leaseId: string): void;
  /** Closes the stream; afterwards no handler is called any more. Idempotent. */
  close(): void;
}

/** What a {@link KeepAliveStream} reports. */
export interface KeepAliveHandlers {
  /** etcd answered a keep-alive: `ttlSeconds <= 0` means the lease does not exist (expired or revoked). */
  onResponse(leaseId: string, ttlSeconds: number): void;
  /** The stream failed or ended; it is closed, open a new one. Called at most once per stream. */
  onClose(error: Error): void;
}

/** The etcd operations the lease keeper and the registrar use. Lease ids are decimal strings (int64). */
export interface LeaseBackend {
  /** Grants a lease; resolves with its id and the TTL etcd chose (it may raise a tiny TTL to its minimum). */
  grant(ttlSeconds: number): Promise<{ id: string; ttlSeconds: number }>;
  /** Revokes a lease, deleting every key attached to it. Resolves if the lease did not exist (any more). */
  revoke(leaseId: string): Promise<void>;
  /** Opens a keep-alive stream. */
  keepAlive(handlers: KeepAliveHandlers): Promise<KeepAliveStream>;
  /** Puts `key = value` attached to `leaseId`. Rejects with an error {@link isLeaseNotFound} accepts if the lease is gone. */
  put(key: string, value: string, leaseId: string): Promise<void>;
  /** Deletes `key` only if it is attached to `leaseId` (so it never deletes somebody else's registration). */
  deleteIfLease(key: string, leaseId: string): Promise<boolean>;
  /** Whether `error` says that the lease does not exist (expired, revoked, or lost with the data). */
  isLeaseNotFound(error: unknown): boolean;
  /** Whether `error` means the client was closed, so retrying is pointless. */
  isClientClosed(error: unknown): boolean;
  /**
   * Whether `error` is etcd's "permission denied" (auth is enabled and the user's roles do not allow the call):
   * not transient, so retrying the same call is pointless until someone changes the roles.
   */
  isPermissionDenied(error: unknown): boolean;
}

/** Options for {@link etcd3LeaseBackend}. */
export interface Etcd3LeaseBackendOptions {
  /** Deadline of each unary call (grant, revoke, put, delete), in ms. Default 5000. */
  readonly requestTimeoutMs?: number;
}

/**
 * The real {@link LeaseBackend}: unary calls with a deadline, and a raw `LeaseKeepAlive` stream (not `etcd3`'s
 * `Lease`, whose loss detection is final and whose timers keep the process alive). Keys are relative to the
 * namespace `etcd` (lease ids are global in etcd).
 */
export function etcd3LeaseBackend(etcd: Namespace, options: Etcd3LeaseBackendOptions = {}): LeaseBackend {
  const timeoutMs = options.requestTimeoutMs ?? 5000;
  const callOptions = () => ({ deadline: Date.now() + timeoutMs });
  return {
    async grant(ttlSeconds) {
      const res = await etcd.leaseClient.leaseGrant({ TTL: ttlSeconds }, callOptions());
      if (res.error) throw new Error(`etcd refused to grant a lease: ${res.error}`);
      return { id: String(res.ID), ttlSeconds: Number(res.TTL) || ttlSeconds };
    },
    async revoke(leaseId) {
      try {
        await etcd.leaseClient.leaseRevoke({ ID: leaseId }, callOptions());
      } catch (error) {
        if (!(error instanceof EtcdLeaseInvalidError)) throw error;
      }
    },
    async keepAlive(handlers) {
      const stream = await etcd.leaseClient.leaseKeepAlive();
      let open = true;
      const close = (error: Error | undefined): void => {
        if (!open) return;
        open = false;
        try {
          stream.cancel();
        } catch {
          // already finished
        }
        if (error) handlers.onClose(error);
      };
      stream.on('data', (res) => {
        if (open) handlers.onResponse(String(res.ID), Number(res.TTL));
      });
      // A cancelled or failed stream still emits 'error'; an unhandled 'error' event would crash the process.
      stream.on('error', (err) => close(err instanceof Error ? err : new Error(String(err))));
      stream.on('end', () => close(new Error('the etcd keep-alive stream ended')));
      return {
        send(leaseId) {
          if (!open) return;
          try {
            stream.write({ ID: leaseId });
          } catch (err) {
            close(err instanceof Error ? err : new Error(String(err)));
          }
        },
        close: () => close(undefined),
      };
    },
    async put(key, value, leaseId) {
      await etcd.put(key).value(value).lease(leaseId).options(callOptions());
    },
    async deleteIfLease(key, leaseId) {
      const res = await etcd
        .if(key, 'Lease', '==', leaseId)
        .then(etcd.delete().key(key))
        .options(callOptions())
        .commit();
      return res.succeeded;
    },
    isLeaseNotFound: (error) => error instanceof EtcdLeaseInvalidError,
    isClientClosed: (error) => error instanceof ClientClosedError,
    isPermissionDenied: (error) => error instanceof EtcdPermissionDeniedError,
  };
}
