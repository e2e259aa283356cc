/**
 * The handful of etcd operations leases and registrations need, behind a small interface so that the lease
 * keeper and the registrar can be unit-tested against a hand-written fake; {@link transportLeaseBackend} is the
 * real one, over either {@link EtcdTransport}.
 * @module
 */
import { concatBytes, type EtcdTransport, encodeKey } from './transport.js';

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

/** Options for {@link transportLeaseBackend}. */
export interface TransportLeaseBackendOptions {
  /** The client's namespace, prepended to every key (`''` for none). */
  readonly namespace: string;
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

/** One gate per transport (per client), shared by every backend made over it. */
const gates = new WeakMap<EtcdTransport, CallGate>();

function gateFor(transport: EtcdTransport): CallGate {
  let gate = gates.get(transport);
  if (!gate) {
    gate = new CallGate(MAX_CALLS_IN_FLIGHT);
    gates.set(transport, gate);
  }
  return gate;
}

/**
 * The real {@link LeaseBackend}: unary calls with a deadline, at most {@link MAX_CALLS_IN_FLIGHT} of them in
 * flight per client, and keep-alives of one round-trip each (not `etcd3`'s `Lease`, whose loss detection is final
 * and whose open stream and timers keep the process alive). Keys are relative to `options.namespace` (lease ids
 * are global in etcd).
 */
export function transportLeaseBackend(
  transport: EtcdTransport,
  options: TransportLeaseBackendOptions,
): LeaseBackend {
  const timeoutMs = options.requestTimeoutMs ?? 5000;
  const namespace = encodeKey(options.namespace);
  const keyOf = (key: string): Uint8Array => concatBytes(namespace, encodeKey(key));
  // Counted from when the gate lets the call go, so the deadline does not include the wait for a slot.
  const call = { timeoutMs };
  const gate = gateFor(transport);
  const is = (error: unknown, kind: ReturnType<EtcdTransport['classify']>): boolean =>
    transport.classify(error) === kind;
  return {
    grant: (ttlSeconds) => gate.run(() => transport.leaseGrant(ttlSeconds, call)),
    revoke: (leaseId) => gate.run(() => transport.leaseRevoke(leaseId, call)),
    async keepAlive(handlers) {
      // Each keep-alive is one round-trip of its own, so nothing stays open between keep-alives: keep-alives are
      // background upkeep and must not keep the process alive (docs/architecture.md, "Process lifetime").
      let open = true;
      let current: AbortController | undefined;
      const fail = (error: Error): void => {
        if (!open) return;
        open = false;
        current?.abort();
        current = undefined;
        handlers.onClose(error);
      };
      return {
        send(leaseId) {
          if (!open) return;
          current?.abort(); // an answer still missing is late; the keeper counts it as missing
          const controller = new AbortController();
          current = controller;
          transport.leaseKeepAlive(leaseId, { signal: controller.signal }).then(
            (ttlSeconds) => {
              if (controller.signal.aborted) return;
              if (current === controller) current = undefined;
              if (open) handlers.onResponse(leaseId, ttlSeconds);
            },
            (err: unknown) => {
              if (!controller.signal.aborted) fail(err instanceof Error ? err : new Error(String(err)));
            },
          );
        },
        close() {
          open = false;
          current?.abort();
          current = undefined;
        },
      };
    },
    async put(key, value, leaseId) {
      await gate.run(() => transport.put(keyOf(key), encodeKey(value), { ...call, lease: leaseId }));
    },
    deleteIfLease: (key, leaseId) => gate.run(() => transport.deleteIfLease(keyOf(key), leaseId, call)),
    isLeaseNotFound: (error) => is(error, 'lease-not-found'),
    isClientClosed: (error) => is(error, 'closed'),
    isPermissionDenied: (error) => is(error, 'permission-denied'),
  };
}
