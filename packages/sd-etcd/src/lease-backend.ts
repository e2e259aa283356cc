/**
 * The handful of etcd operations leases and registrations need, behind a small interface so that the lease
 * keeper and the registrar can be unit-tested against a hand-written fake; {@link etcd3LeaseBackend} is the real
 * one, over an `etcd3` `Namespace`.
 * @module
 */
import { ClientClosedError, EtcdLeaseInvalidError, EtcdPermissionDeniedError, type Namespace } from 'etcd3';

/**
 * A lease keep-alive channel (over etcd's bidirectional `LeaseKeepAlive` RPC). The real one opens one short call
 * per {@link KeepAliveStream.send}, so that nothing stays open between keep-alives.
 */
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
  /** Deadline of each unary call (grant, revoke, put, delete), in ms, counted from when it is sent. Default 5000. */
  readonly requestTimeoutMs?: number;
}

/**
 * Most unary calls (grant, revoke, put, delete) the registrations of one client have in flight at once; the rest
 * wait their turn, in order. Without a bound, 10 000 registrars starting (or deregistering) together send 10 000
 * requests at once: etcd answers part of them "too many requests" (its apply backlog guard), others pass their
 * deadline, and etcd3 takes either error as a broken connection — it resets the channel (failing every call in
 * flight on it) and the host's circuit breaker opens, so the burst turns into a storm of retries (measured on
 * 2 cores: 10 000 registrations took 10–500 s, and thousands of deregistrations failed; with this bound, 7–10 s
 * and no error — etcd3's own CPU cost per call is then the limit; 16, 128 and 256 measured the same).
 */
export const MAX_CALLS_IN_FLIGHT = 64;

/** A FIFO gate letting at most `limit` calls run at once. */
class CallGate {
  #running = 0;
  readonly #waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}

  async run<T>(call: () => Promise<T>): Promise<T> {
    if (this.#running >= this.limit) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running++;
    try {
      return await call();
    } finally {
      const next = this.#waiting.shift();
      // The slot passes straight to the next waiter; `#running` only drops when no one waits.
      if (next) next();
      else this.#running--;
    }
  }
}

/** One gate per etcd3 client (its root namespace), shared by every backend made over it. */
const gates = new WeakMap<object, CallGate>();

function gateFor(etcd: Namespace): CallGate {
  // All namespaces of one client share its connection pool; key the gate by that.
  const root = ((etcd as unknown as { pool?: object }).pool ?? etcd) as object;
  let gate = gates.get(root);
  if (!gate) {
    gate = new CallGate(MAX_CALLS_IN_FLIGHT);
    gates.set(root, gate);
  }
  return gate;
}

/**
 * The real {@link LeaseBackend}: unary calls with a deadline, at most {@link MAX_CALLS_IN_FLIGHT} of them in
 * flight per client, and raw `LeaseKeepAlive` calls, one per keep-alive (not `etcd3`'s `Lease`, whose loss
 * detection is final and whose open stream and timers keep the process alive). Keys are relative to the
 * namespace `etcd` (lease ids are global in etcd).
 */
export function etcd3LeaseBackend(etcd: Namespace, options: Etcd3LeaseBackendOptions = {}): LeaseBackend {
  const timeoutMs = options.requestTimeoutMs ?? 5000;
  // Called when the gate lets the call go, so the deadline does not include the wait for a slot.
  const callOptions = () => ({ deadline: Date.now() + timeoutMs });
  const gate = gateFor(etcd);
  return {
    async grant(ttlSeconds) {
      const res = await gate.run(() => etcd.leaseClient.leaseGrant({ TTL: ttlSeconds }, callOptions()));
      if (res.error) throw new Error(`etcd refused to grant a lease: ${res.error}`);
      return { id: String(res.ID), ttlSeconds: Number(res.TTL) || ttlSeconds };
    },
    async revoke(leaseId) {
      try {
        await gate.run(() => etcd.leaseClient.leaseRevoke({ ID: leaseId }, callOptions()));
      } catch (error) {
        if (!(error instanceof EtcdLeaseInvalidError)) throw error;
      }
    },
    async keepAlive(handlers) {
      // One short LeaseKeepAlive call per keep-alive, not one stream kept open: grpc-js keeps the process alive
      // while a call is open, and keep-alives are background upkeep (docs/architecture.md, "Process lifetime").
      // A keep-alive every TTL/3 makes opening a call each time negligible.
      let open = true;
      let current: { cancel(): void } | undefined;
      const fail = (error: Error): void => {
        if (!open) return;
        open = false;
        cancel(current);
        current = undefined;
        handlers.onClose(error);
      };
      return {
        send(leaseId) {
          if (!open) return;
          cancel(current); // an answer still missing is late; the keeper counts it as missing
          let call: Awaited<ReturnType<typeof etcd.leaseClient.leaseKeepAlive>> | undefined;
          let done = false;
          const handle = {
            cancel() {
              done = true;
              cancel(call);
            },
          };
          current = handle;
          etcd.leaseClient.leaseKeepAlive().then(
            (stream) => {
              call = stream;
              if (done || !open) {
                cancel(stream);
                return;
              }
              stream.on('data', (res) => {
                if (done) return;
                done = true;
                if (current === handle) current = undefined;
                cancel(stream);
                if (open) handlers.onResponse(String(res.ID), Number(res.TTL));
              });
              // A cancelled call still emits 'error'; an unhandled 'error' event would crash the process.
              stream.on('error', (err) => {
                if (!done) fail(err instanceof Error ? err : new Error(String(err)));
              });
              stream.on('end', () => {
                if (!done) fail(new Error('etcd ended the keep-alive call without an answer'));
              });
              try {
                stream.write({ ID: leaseId });
              } catch (err) {
                fail(err instanceof Error ? err : new Error(String(err)));
              }
            },
            (err: unknown) => {
              if (!done) fail(err instanceof Error ? err : new Error(String(err)));
            },
          );
        },
        close() {
          open = false;
          cancel(current);
          current = undefined;
        },
      };
    },
    async put(key, value, leaseId) {
      await gate.run(() => etcd.put(key).value(value).lease(leaseId).options(callOptions()).exec());
    },
    async deleteIfLease(key, leaseId) {
      const res = await gate.run(() =>
        etcd.if(key, 'Lease', '==', leaseId).then(etcd.delete().key(key)).options(callOptions()).commit(),
      );
      return res.succeeded;
    },
    isLeaseNotFound: (error) => error instanceof EtcdLeaseInvalidError,
    isClientClosed: (error) => error instanceof ClientClosedError,
    isPermissionDenied: (error) => error instanceof EtcdPermissionDeniedError,
  };
}

/** Cancels a gRPC call, ignoring one that already ended. */
function cancel(call: { cancel(): void } | undefined): void {
  try {
    call?.cancel();
  } catch {
    // already finished
  }
}
